"""GradCAM maps as the official evaluation scored them (pytorch-grad-cam's BaseCAM + DOLOS' predict.py), the
block-11 map kept as an option, and checkpoints that rebuild the right one."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from weakloc.errors import ConfigError
from weakloc.evaluate.metrics import localization_scores
from weakloc.methods import build_model
from weakloc.methods.gradcam import minmax, official_cam_map, scale_cam_image, squash_relu
from weakloc.train.checkpoint import CARD_KEY, load_checkpoint, save_checkpoint

SIZE = 64  # Xception at 64 px: the block-11 map is 4x4


def images(n: int, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def gradcam(setup: str = "A", **options) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("gradcam", setup, options).eval()


# ------------------------------------------------------------------ the reference, step by step in numpy/cv2

def np_scale_cam_image(cam: np.ndarray, target_size: tuple[int, int] | None = None) -> np.ndarray:
    """pytorch-grad-cam utils/image.py scale_cam_image (target_size is cv2's (width, height))."""
    result = []
    for img in cam:
        img = img - np.min(img)
        img = img / (1e-7 + np.max(img))
        if target_size is not None:
            img = cv2.resize(np.float32(img), target_size)
        result.append(img)
    return np.float32(result)


def np_official_map(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """BaseCAM.compute_cam_per_layer + aggregate_multi_layers for one target layer, then DOLOS' grad_cam
    predict.py ``mask_pred / mask_pred.max()``, image by image."""
    cam = np.maximum(cam, 0)
    scaled = np_scale_cam_image(cam, (width, height))
    per_layer = np.concatenate([scaled[:, None, :]], axis=1)
    per_layer = np.maximum(per_layer, 0)
    result = np_scale_cam_image(np.mean(per_layer, axis=1))
    return np.stack([r / r.max() for r in result])


def fixed_cams(n: int = 4, side: int = 19, seed: int = 0) -> np.ndarray:
    cam = np.random.default_rng(seed).normal(0, 1e-3, (n, side, side)).astype(np.float32)  # small, like a CAM
    cam[1] += 5e-3  # all positive: the min is not 0 before the first scaling
    return cam


@pytest.mark.parametrize("height,width", [(299, 299), (64, 64), (299, 256)])
def test_official_cam_map_equals_pytorch_grad_cams_pipeline(height: int, width: int) -> None:
    cam = fixed_cams()
    ours = official_cam_map(torch.from_numpy(cam), (height, width)).numpy()
    want = np_official_map(cam, height, width)
    assert ours.shape == want.shape == (4, height, width)
    assert np.abs(ours - want).max() < 1e-5
    assert (ours.min(axis=(1, 2)) == 0).all() and (ours.max(axis=(1, 2)) == 1).all()  # predict.py: / max
    # before predict.py's division the peak is 1 - ~1e-7: BaseCAM's second scale_cam_image keeps its 1e-7
    scaled = scale_cam_image(F.relu(scale_cam_image(F.relu(torch.from_numpy(cam)), (height, width))))
    assert (scaled.amax(dim=(1, 2)) < 1).all() and (scaled.amax(dim=(1, 2)) > 1 - 1e-6).all()


def test_a_cam_without_positive_values_maps_to_zero() -> None:
    """Officially 0 / 0 = NaN (which no threshold selects); here 0 (which none selects either)."""
    out = official_cam_map(-torch.ones(1, 19, 19), (299, 299))
    assert torch.equal(out, torch.zeros(1, 299, 299))


@pytest.mark.parametrize("src,dst", [((19, 19), (299, 299)), ((4, 4), (64, 64)), ((10, 10), (37, 37)),
                                     ((19, 12), (299, 200))])
def test_bilinear_upsampling_is_cv2s_inter_linear(src: tuple[int, int], dst: tuple[int, int]) -> None:
    x = np.random.default_rng(1).random((2, *src)).astype(np.float32)
    ours = F.interpolate(torch.from_numpy(x)[:, None], size=dst, mode="bilinear", align_corners=False,
                         antialias=False)[:, 0].numpy()
    want = np.stack([cv2.resize(m, (dst[1], dst[0])) for m in x])  # cv2's default: INTER_LINEAR
    assert np.abs(ours - want).max() < 5e-6  # float32 rounding of the weights (1.4e-6 measured at 19 -> 299)


# ------------------------------------------------------------------ the method's options

def test_default_map_is_the_official_one_at_input_size() -> None:
    m = gradcam()
    x = images(3)
    with torch.enable_grad():
        out = m.localize(x)
    cam, logits = m.cam(x)
    assert out.map.shape == (3, SIZE, SIZE)
    torch.testing.assert_close(out.map, official_cam_map(cam, (SIZE, SIZE)), rtol=0, atol=1e-6)
    assert np.abs(out.map.numpy() - np_official_map(cam.numpy(), SIZE, SIZE)).max() < 1e-5
    assert m.map_size(299) == 299 and m.map_size(SIZE) == SIZE


def test_layer_option_reproduces_the_block11_map() -> None:
    old, new = gradcam(cam_size="layer"), gradcam()
    assert torch.equal(old.state_dict()["fc.weight"], new.state_dict()["fc.weight"])
    x = images(3)
    with torch.enable_grad():
        a, b = old.localize(x), new.localize(x)
    cam, _ = old.cam(x)
    assert torch.equal(a.map, minmax(F.relu(cam))) and a.map.shape == (3, 4, 4)  # weakloc's earlier map
    assert torch.equal(a.score, b.score)
    assert old.map_size(299) == 19 and old.map_size(SIZE) == 4


def test_relu_norm_stays_at_layer_size_unless_asked() -> None:
    x = images(2)
    relu, relu_input = gradcam(cam_norm="relu"), gradcam(cam_norm="relu", cam_size="input")
    with torch.enable_grad():
        small, big = relu.localize(x).map, relu_input.localize(x).map
    cam, _ = relu.cam(x)
    assert torch.equal(small, squash_relu(cam)) and relu.map_size(299) == 19
    assert big.shape == (2, SIZE, SIZE) and relu_input.map_size(SIZE) == SIZE
    assert big.min() >= 0 and big.max() < 1
    torch.testing.assert_close(big, F.interpolate(small[:, None], size=(SIZE, SIZE), mode="bilinear",
                                                  align_corners=False)[:, 0])


def test_cam_size_is_checked_and_setup_c_has_none() -> None:
    with pytest.raises(ConfigError, match="cam_size"):
        build_model("gradcam", "A", {"cam_size": "mask"})
    with pytest.raises(ConfigError, match="not available in setup C"):
        build_model("gradcam", "C", {"cam_size": "input"})
    c = gradcam("C")
    assert c.map_size(299) == 19 and c.options()["cam_size"] is None


def _drop_option(path, name: str) -> None:
    """Rewrite a checkpoint's card as a weakloc without the option would have written it."""
    with safe_open(str(path), framework="pt") as f:
        card = json.loads(f.metadata()[CARD_KEY])
    del card["options"][name]
    save_file(load_file(str(path)), str(path), metadata={CARD_KEY: json.dumps(card)})


def test_checkpoints_rebuild_the_map_they_were_saved_with(tmp_path) -> None:
    x = images(2, seed=4)
    for options, side in (({"cam_size": "layer"}, 4), ({}, SIZE)):
        m = gradcam(**options)
        path = save_checkpoint(tmp_path / "m.safetensors", m, {"input_size": SIZE})
        again, card = load_checkpoint(path)
        assert card["options"]["cam_size"] == options.get("cam_size")
        with torch.enable_grad():
            a, b = m.localize(x), again.localize(x)
        assert torch.equal(a.map, b.map) and a.map.shape[-1] == side
    _drop_option(path, "cam_size")  # a card written before the option existed: today's default
    old, card = load_checkpoint(path)
    assert "cam_size" not in card["options"] and old.map_size(SIZE) == SIZE


def test_input_sized_maps_at_299_go_through_evaluation() -> None:
    """Random weights at the paper's 299 px: a 299 x 299 map per image, scored against 256 x 256 masks."""
    m = gradcam()
    with torch.enable_grad():
        out = m.localize(images(2, size=299, seed=2))
    peaks = out.map.amax(dim=(1, 2))
    assert out.map.shape == (2, 299, 299) and out.map.min() == 0 and ((peaks == 1) | (peaks == 0)).all()
    masks = np.zeros((2, 256, 256), bool)
    masks[:, 64:192, 64:192] = True
    scores = localization_scores(list(out.map.numpy()), list(masks))
    assert all(((0 <= v) & (v <= 1)).all() for v in scores.values())
