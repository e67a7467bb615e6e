"""The DOLOS evaluation reproduced exactly: detection AP's random subsamples (python ``random``, seed 1337) and
PIL's NEAREST mask resizing (ties included) for the "sm" metrics and the setup-C training targets."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import average_precision_score

from weakloc.config import EvalConfig
from weakloc.data.images import nearest_indices
from weakloc.errors import ConfigError
from weakloc.evaluate.metrics import detection_scores, resize_masks_nearest
from weakloc.methods.base import resize_mask


def official_detection(pred_real: np.ndarray, pred_fake: np.ndarray) -> tuple[float, float]:
    """bit-ml/dolos patch_forensics/evaluate.py evaluate_detection, written plainly: the module seeds the
    global ``random`` with 1337 at import, then samples both classes to min(n) five times."""
    random.seed(1337)
    num = min(len(pred_real), len(pred_fake))

    def np_sample(xs, n):
        return np.array(random.sample(list(xs), n))

    def compute_ap1():
        pred_real_ss = np_sample(pred_real, num)
        pred_fake_ss = np_sample(pred_fake, num)
        true = np.hstack((np.zeros(num), np.ones(num)))
        pred = np.hstack((pred_real_ss, pred_fake_ss))
        return average_precision_score(true, pred)

    aps = [100 * compute_ap1() for _ in range(5)]
    return np.mean(aps), 2 * np.std(aps)


@pytest.fixture
def global_random_kept():
    """The official code reseeds the global ``random``; give the other tests their state back."""
    state = random.getstate()
    yield
    random.setstate(state)


@pytest.mark.parametrize("n_real,n_fake", [(7, 3), (3, 7), (50, 20), (20, 50), (64, 64), (1000, 613), (613, 1000)])
def test_detection_ap_equals_the_official_draw(global_random_kept, n_real: int, n_fake: int) -> None:
    rng = np.random.default_rng(n_real * 1000 + n_fake)
    real, fake = rng.normal(0, 2, n_real), rng.normal(1, 2, n_fake)  # raw-logit-like, overlapping
    labels = np.r_[np.zeros(n_real), np.ones(n_fake)]
    before = random.getstate()
    ours = detection_scores(np.r_[real, fake], labels)
    assert random.getstate() == before  # a private Random: the global state is untouched
    ap, ap_2std = official_detection(real, fake)
    assert ours["ap"] == ap and ours["ap_2std"] == ap_2std  # exactly, not approximately
    assert ours["ap_2std"] > 0 or min(n_real, n_fake) == max(n_real, n_fake)


def test_detection_takes_each_class_in_its_own_order(global_random_kept) -> None:
    """Reals and fakes interleaved in ``scores``: each class keeps its relative order, as the official
    separate prediction files do."""
    rng = np.random.default_rng(5)
    labels = rng.permutation(np.r_[np.zeros(40), np.ones(25)])
    scores = rng.random(65) + 0.3 * labels
    ours = detection_scores(scores, labels)
    ap, ap_2std = official_detection(scores[labels == 0], scores[labels == 1])
    assert ours["ap"] == ap and ours["ap_2std"] == ap_2std


def test_the_numpy_option_and_the_seed_change_the_draw() -> None:
    rng = np.random.default_rng(9)
    labels = np.r_[np.zeros(60), np.ones(30)]
    scores = rng.random(90) + 0.2 * labels
    official = detection_scores(scores, labels)
    assert detection_scores(scores, labels, sampling="numpy")["ap"] != official["ap"]
    assert detection_scores(scores, labels, seed=0)["ap"] != official["ap"]
    with pytest.raises(ValueError, match="official, numpy"):
        detection_scores(scores, labels, sampling="torch")
    assert EvalConfig().ap_sampling == "official" and EvalConfig().ap_seed == 1337
    with pytest.raises(ConfigError, match="ap_sampling"):
        EvalConfig(ap_sampling="torch")


# ------------------------------------------------------------------ NEAREST mask resizing

SQUARE = [(200, 37), (256, 37), (299, 19), (1024, 37), (37, 299), (256, 299), (1024, 299), (4, 6), (48, 6),
          (299, 37), (256, 32), (64, 4)]
RECTANGLES = [((200, 256), (37, 19)), ((1024, 768), (37, 37)), ((64, 80), (16, 16)), ((37, 19), (299, 200))]


def pil_nearest(mask: np.ndarray, size: tuple[int, int], mode: str = "L") -> np.ndarray:
    """PIL's NEAREST resize of a bool mask (the official: ``Image.fromarray(float mask)`` = mode "F")."""
    array = mask.astype(np.uint8) * 255 if mode == "L" else mask.astype(np.float64)
    return np.asarray(Image.fromarray(array).resize((size[1], size[0]), Image.NEAREST)) > 0


def random_masks(n: int, shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape)) > 0.5  # every pixel matters


@pytest.mark.parametrize("src,dst", [((a, a), (b, b)) for a, b in SQUARE] + RECTANGLES)
def test_mask_resizing_is_pils_nearest_exactly(src: tuple[int, int], dst: tuple[int, int]) -> None:
    masks = random_masks(3, src, seed=src[0] + dst[0])
    want = np.stack([pil_nearest(m, dst) for m in masks])
    assert np.array_equal(resize_masks_nearest(masks, dst), want)  # "sm" metrics
    assert np.array_equal(want[0], pil_nearest(masks[0], dst, mode="F"))  # the official float masks: same
    for dtype in (torch.uint8, torch.bool):  # setup-C training targets
        target = resize_mask(torch.from_numpy(masks).to(dtype), dst)
        assert target.dtype == torch.int64 and np.array_equal(target.numpy(), want)


def old_nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """The closed form weakloc used before (and torch's 'nearest-exact' alike)."""
    return np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.int64), n_in - 1)


@pytest.mark.parametrize("n_in,n_out,where", [(200, 37, 18), (256, 299, 149), (1024, 299, 149)])
def test_pil_breaks_ties_where_the_closed_form_did_not(n_in: int, n_out: int, where: int) -> None:
    """(18 + 0.5) * 200 / 37 = 100 exactly, but PIL steps 200/37 in floating point and lands just under 100."""
    pil, old = nearest_indices(n_in, n_out), old_nearest_index(n_in, n_out)
    assert np.flatnonzero(pil != old).tolist() == [where] and old[where] == pil[where] + 1
    mask = np.zeros((1, n_in, n_in), bool)
    mask[:, old[where]:] = True  # the two candidate source rows differ
    want = pil_nearest(mask[0], (n_out, n_out))[None]
    assert np.array_equal(resize_masks_nearest(mask, (n_out, n_out)), want)
    assert not np.array_equal(mask[:, old][:, :, old], want)  # the old rule scores a different target
    nearest_exact = torch.nn.functional.interpolate(torch.from_numpy(mask)[:, None].float(), size=(n_out, n_out),
                                                    mode="nearest-exact")[:, 0].bool().numpy()
    assert not np.array_equal(nearest_exact, want)  # ... and so did the old training targets


def test_index_maps_are_memoised_and_read_only() -> None:
    assert nearest_indices(200, 37) is nearest_indices(200, 37)
    with pytest.raises(ValueError):
        nearest_indices(200, 37)[0] = 1
