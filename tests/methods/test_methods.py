"""GradCAM and Attention localizers: the shared contract, the method-specific maps and losses, batched
Grad-CAM, timm initialisation, checkpoints, and Table 2 end to end at a tiny size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TINY
from safetensors.torch import save_file

from weakloc.train.checkpoint import load_checkpoint, save_checkpoint
from weakloc.errors import ConfigError
from weakloc.methods import METHODS, build_model
from weakloc.methods.attention import mask_target
from weakloc.methods.gradcam import minmax, squash_relu
from weakloc.methods.xception import legacy_xception, load_timm_weights, run_stages

SIZE = 64  # Xception at 64 px: block-7/11 maps are 4x4


def images(n: int, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def model(method: str, setup: str, **options) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(method, setup, options)


def mask_batch(n: int, size: int = SIZE) -> torch.Tensor:
    """Left half (or a quarter, alternately) manipulated."""
    masks = torch.zeros(n, size, size, dtype=torch.uint8)
    for i in range(n):
        masks[i, :, : size // 2 if i % 2 == 0 else size // 4] = 1
    return masks


def test_registry_has_the_three_methods() -> None:
    assert set(METHODS) >= {"gradcam", "patches", "attention"}
    with pytest.raises(ConfigError, match="cam_norm"):
        build_model("gradcam", "A", {"cam_norm": "sigmoid"})
    with pytest.raises(ConfigError, match="not available in setup C"):
        build_model("attention", "C", {"score": "softmax"})  # setup C has no trained classifier
    with pytest.raises(ConfigError, match="not available in setup C"):
        build_model("gradcam", "C", {"cam_norm": "relu"})  # the FCN map is not a CAM
    with pytest.raises(ConfigError, match="lam"):
        build_model("attention", "A", {"lam": -1.0})
    with pytest.raises(ConfigError, match="lam"):
        build_model("attention", "C", {"lam": 1.0})  # C's loss has no map-max term to weigh
    with pytest.raises(ConfigError, match="bn_momentum"):
        build_model("gradcam", "A", {"bn_momentum": 0.0})


@pytest.mark.parametrize("method", ["gradcam", "attention"])
def test_bn_momentum_option_reaches_every_batchnorm(method: str) -> None:
    momenta = {m.momentum for m in model(method, "C", bn_momentum=0.5).modules()
               if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {0.5}
    assert {m.momentum for m in model(method, "C").modules() if isinstance(m, torch.nn.BatchNorm2d)} == {0.1}


@pytest.mark.parametrize("method,setup", [("gradcam", "A"), ("gradcam", "C"), ("attention", "B"), ("attention", "C")])
def test_maps_are_19x19_at_299_and_the_taps_are_728_channels(method: str, setup: str) -> None:
    layer = {"cam_size": "layer"} if (method, setup) == ("gradcam", "A") else {}  # A's default: input-sized
    m = model(method, setup, **layer).eval()
    assert m.trunk[-1] == ("block11" if method == "gradcam" else "block7")
    with torch.no_grad():
        features = run_stages(m, m.trunk, torch.zeros(1, 3, 299, 299))
    assert features.shape == (1, 728, 19, 19)
    assert m.map_size(299) == 19 and m.map_size(SIZE) == 4


@pytest.mark.parametrize("method,setup", [("gradcam", "A"), ("gradcam", "C"), ("attention", "A"), ("attention", "C")])
def test_localize_follows_the_contract(method: str, setup: str) -> None:
    m = model(method, setup).eval()
    with torch.set_grad_enabled(m.needs_grad_to_localize):
        out = m.localize(images(3))
    side = SIZE if (method, setup) == ("gradcam", "A") else 4  # weak Grad-CAM: upsampled to the input
    assert out.score.shape == (3,) and out.map.shape == (3, side, side) and m.map_size(SIZE) == side
    for t in (out.score, out.map):
        assert t.dtype == torch.float32 and t.min() >= 0 and t.max() <= 1 and not t.requires_grad
    assert m.needs_grad_to_localize == (method == "gradcam" and setup != "C")


def test_batched_cam_equals_per_image_cam_and_the_gradcam_formula() -> None:
    m = model("gradcam", "B").eval()
    x = images(3)
    cam, logits = m.cam(x)
    assert cam.shape == (3, 4, 4) and logits.shape == (3, 2)
    for i in range(3):
        one, _ = m.cam(x[i:i + 1])
        torch.testing.assert_close(cam[i], one[0], rtol=1e-4, atol=1e-9)
    # per-image targets: class 0 for the first image, class 1 for the others
    mixed, _ = m.cam(x, target=torch.tensor([0, 1, 1]))
    torch.testing.assert_close(mixed[1:], cam[1:])
    assert not torch.allclose(mixed[0], cam[0])
    # the definition: ReLU-free sum over channels of (spatial mean of d fake-logit / d A) * A at block 11
    features = run_stages(m, m.trunk, x).detach().requires_grad_(True)
    fake = run_stages(m, m.tail, features)[:, 1]
    (grad,) = torch.autograd.grad(fake.sum(), features)
    expected = (grad.mean(dim=(2, 3), keepdim=True) * features).sum(dim=1)
    torch.testing.assert_close(cam, expected.detach(), rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(logits, run_stages(m, m.tail, features).detach())


def test_gradcam_localize_leaves_no_parameter_gradients() -> None:
    m = model("gradcam", "A").eval()
    with torch.set_grad_enabled(True):
        m.localize(images(2))
    assert all(p.grad is None for p in m.parameters())


def test_cam_normalisations() -> None:
    cam = torch.tensor([[[-2.0, 0.0], [1.0, 3.0]], [[0.5, 0.5], [0.5, 0.5]]])
    scaled = minmax(F.relu(cam))
    torch.testing.assert_close(scaled[0], torch.tensor([[0.0, 0.0], [1 / 3, 1.0]]))
    assert torch.equal(scaled[1], torch.zeros(2, 2))  # a flat map has no peak to point at
    raw = squash_relu(cam)  # h*w = 4: tanh(4 * relu(cam))
    torch.testing.assert_close(raw[0], torch.tanh(torch.tensor([[0.0, 0.0], [4.0, 12.0]])))
    torch.testing.assert_close(raw[1], torch.full((2, 2), float(np.tanh(2.0))))


@pytest.mark.parametrize("options,expected", [({}, "logit"), ({"score": "softmax"}, "softmax")])
def test_gradcam_scores(options: dict, expected: str) -> None:
    m = model("gradcam", "A", **options).eval()
    x = images(2)
    out = m.localize(x)
    with torch.no_grad():
        logits = m(x)["logits"]
    want = logits.softmax(1)[:, 1] if expected == "softmax" else torch.sigmoid(logits[:, 1])
    torch.testing.assert_close(out.score, want)


def test_attention_map_multiplies_the_block7_features() -> None:
    m = model("attention", "A").eval()
    with torch.no_grad():
        torch.nn.init.zeros_(m.head.pointwise.weight)  # sigmoid(0) = 0.5 everywhere
        x = images(2)
        features = run_stages(m, m.trunk, x)
        out = m(x)
        torch.testing.assert_close(out["logits"], run_stages(m, m.tail, 0.5 * features))
    assert out["map_logits"].shape == (2, 1, 4, 4)


def test_attention_weak_loss_is_ce_plus_lambda_bce_of_the_map_max() -> None:
    batch = {"label": torch.tensor([0, 1, 1])}
    outputs = {"logits": torch.tensor([[2.0, -1.0], [0.0, 1.0], [0.5, 0.5]]),
               "map_logits": torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))}
    peak = torch.sigmoid(outputs["map_logits"]).amax(dim=(1, 2, 3))
    bce = F.binary_cross_entropy(peak, batch["label"].float())
    ce = F.cross_entropy(outputs["logits"], batch["label"])
    for lam in (0.0, 1.0, 2.5):
        torch.testing.assert_close(model("attention", "A", lam=lam).loss(outputs, batch), ce + lam * bce)


def test_attention_mask_target_matches_pil_bilinear_then_threshold() -> None:
    """The official loader resizes the mask with PIL (bilinear, antialiased when shrinking), then > 0.5."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:299, :299]
    for _ in range(5):
        cx, cy, r = rng.uniform(0, 299, 3)
        mask = (((xx - cx) ** 2 + (yy - cy) ** 2) < (0.6 * r) ** 2).astype(np.uint8)
        pil = np.asarray(Image.fromarray(mask * 255).resize((19, 19), Image.BILINEAR)) > 127.5
        ours = mask_target(torch.from_numpy(mask)[None], (19, 19))[0].numpy()
        assert ours.dtype == np.float32 and np.array_equal(ours > 0, pil)


@pytest.mark.parametrize("method,setup", [("gradcam", "A"), ("gradcam", "C"), ("attention", "A"), ("attention", "C")])
def test_gradients_reach_the_map_head(method: str, setup: str) -> None:
    m = model(method, setup).train()
    batch = {"image": images(2), "label": torch.tensor([0, 1]), "mask": mask_batch(2)}
    m.loss(m(batch["image"]), batch).backward()
    head = {"gradcam": {"A": "fc.weight", "C": "head.4.weight"}, "attention": {"A": "head.pointwise.weight",
                                                                                  "C": "head.conv1.weight"}}
    grads = dict(m.named_parameters())[head[method][setup]].grad
    assert grads is not None and grads.abs().sum() > 0
    assert m.conv1.weight.grad.abs().sum() > 0  # ... and the whole backbone


@pytest.mark.parametrize("method,setup", [("gradcam", "B"), ("gradcam", "C"), ("attention", "B"), ("attention", "C")])
def test_loss_falls_when_overfitting_a_handful_of_images(method: str, setup: str) -> None:
    m = model(method, setup).train()
    batch = {"image": images(4, seed=3), "label": torch.tensor([0, 1, 0, 1]), "mask": mask_batch(4)}
    optimizer = torch.optim.Adam(m.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        loss = m.loss(m(batch["image"]), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses


def test_timm_weights_initialise_every_method(tmp_path) -> None:
    torch.manual_seed(1)
    source = legacy_xception(num_classes=1000).state_dict()
    path = tmp_path / "xception.safetensors"
    save_file({k: v.contiguous() for k, v in source.items()}, str(path))
    timm_keys = {k for k in source if not k.startswith("fc.")}

    def through(last_block: int) -> set[str]:
        stages = {"conv1", "bn1", "conv2", "bn2", *(f"block{i}" for i in range(1, last_block + 1))}
        return {k for k in timm_keys if k.split(".")[0] in stages}

    expected = {("gradcam", "A"): timm_keys, ("attention", "B"): timm_keys,
                ("gradcam", "C"): through(11), ("attention", "C"): through(7)}
    for (method, setup), keys in expected.items():
        m = model(method, setup)
        loaded = load_timm_weights(m, path)
        assert set(loaded) == keys, (method, setup)
        state = m.state_dict()
        assert all(torch.equal(state[k], source[k]) for k in keys)
    # Patches' trunk carries timm's stage names too (weakloc 0.1 named them features.0 ... features.7)
    patches = model("patches", "A")
    loaded = load_timm_weights(patches, path)
    assert set(loaded) == through(2)
    assert torch.equal(patches.state_dict()["conv1.weight"], source["conv1.weight"])


@pytest.mark.parametrize("method,setup,options", [("gradcam", "A", {"cam_norm": "relu", "score": "logit"}),
                                                  ("gradcam", "C", {"score": "max"}),
                                                  ("attention", "B", {"lam": 0.25, "score": "max"}),
                                                  ("attention", "C", {})])
def test_checkpoints_reload_to_identical_predictions(tmp_path, method: str, setup: str, options: dict) -> None:
    m = model(method, setup, **options).train()
    batch = {"image": images(4), "label": torch.tensor([0, 1, 0, 1]), "mask": mask_batch(4)}
    optimizer = torch.optim.Adam(m.parameters(), lr=1e-3)
    for _ in range(2):  # move weights and BN statistics away from their initial values
        loss = m.loss(m(batch["image"]), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    m.eval()
    path = save_checkpoint(tmp_path / "m.safetensors", m, {"input_size": SIZE})
    again, card = load_checkpoint(path)
    assert card["method"] == method and card["setup"] == setup
    assert {k: v for k, v in card["options"].items() if v is not None} == options
    x = images(3, seed=5)
    with torch.set_grad_enabled(m.needs_grad_to_localize):
        a, b = m.localize(x), again.localize(x)
    assert torch.equal(a.map, b.map) and torch.equal(a.score, b.score)


def test_table2_runs_end_to_end_at_tiny_size(tmp_path, tiny_root) -> None:
    from weakloc.experiment.run import run_experiment
    from weakloc.experiment.spec import load_experiment

    exp = load_experiment("builtin-table2", [
        f"data.root={tiny_root}", f"data.builtin_images={TINY['n']}", f"data.builtin_size={TINY['size']}",
        f"data.builtin_seed={TINY['seed']}", "data.builtin_preset=quick", f"data.input_size={TINY['size']}",
        "train.epochs=1", "train.iters_per_epoch=1", "train.batch_size=4", "train.keep_best=1"])
    for run in exp.runs:  # command-line settings win over the file's per-run values
        assert run.train["epochs"] == 1 and run.train["batch_size"] == 4
    assert sorted((r.method, r.setup) for r in exp.runs) == sorted(
        (m, s) for m in ("gradcam", "patches", "attention") for s in "ABC")
    results = run_experiment(exp, tmp_path / "runs", progress=False)
    assert len(results) == 9
    for res in results.values():
        assert 0 <= res["localization"]["iou_lg"] <= 100 and 0 <= res["detection"]["ap"] <= 100
    report = (tmp_path / "runs" / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith(("| A |", "| B |", "| C |"))]
    assert len(rows) == 3
    cells = [row.strip("|").split("|")[3:] for row in rows]
    assert all(c.strip() != "–" for row in cells[:2] for c in row)  # A, B: IoU, PBCA, AP for GC, PT, AT
    assert [c.strip() for c in cells[2][6:]] == ["–"] * 3 and all(c.strip() != "–" for c in cells[2][:6])


@pytest.mark.parametrize("method", ["patches", "gradcam", "attention"])
def test_setup_c_losses_take_soft_area_targets(method: str) -> None:
    """data.mask_resize = "area": a float mask of fake shares is a soft target. Shares of exactly 0 and 1 give the
    hard target's loss; halfway shares give a different one."""
    torch.manual_seed(0)
    model = build_model(method, "C").eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        outputs = model(images)
    size = model.map_size(64)
    hard = (torch.rand(2, size, size) > 0.5).to(torch.uint8)
    labels = torch.ones(2, dtype=torch.long)
    with torch.no_grad():
        want = model.loss(outputs, {"mask": hard, "label": labels})
        got = model.loss(outputs, {"mask": hard.float(), "label": labels})
        half = model.loss(outputs, {"mask": torch.full((2, size, size), 0.5), "label": labels})
    assert torch.allclose(got, want, atol=1e-6) and not torch.allclose(half, want, atol=1e-3)
