"""Metric values on hand-made cases, and the vectorised code held to a plain per-image reference."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import average_precision_score

import torch

from weakloc.evaluate.metrics import detection_scores, localization_scores, summarize_localization
from weakloc.predict.maps import resize_maps


def pil_resize(m, shape):
    return np.asarray(Image.fromarray(np.asarray(m, np.float32), mode="F").resize((shape[1], shape[0]), Image.BICUBIC))


def torch_resize(m, shape):
    return resize_maps(torch.from_numpy(np.asarray(m, np.float32))[None], shape)[0].numpy()


def reference_localization(maps, masks, threshold=0.5, resize=pil_resize):
    """The DOLOS definition written plainly, one image at a time (official: PIL's bicubic 'F'-mode resize)."""
    iou, pbca = [], []
    for m, g in zip(maps, masks):
        p = resize(m, g.shape) > threshold
        union = np.logical_or(p, g).sum()
        iou.append(1.0 if union == 0 else np.logical_and(p, g).sum() / union)
        pbca.append((p == g).mean())
    return np.array(iou), np.array(pbca)


def test_hand_made_cases():
    mask = np.zeros((4, 4), bool)
    mask[:2] = True  # top half fake
    perfect = mask.astype(np.float32)
    half = np.zeros((4, 4), np.float32)
    half[:1] = 1.0  # finds one of the two fake rows
    empty_pred, empty_mask = np.zeros((4, 4), np.float32), np.zeros((4, 4), bool)
    out = localization_scores([perfect, half, empty_pred], [mask, mask, empty_mask])
    assert out["iou_lg"].tolist() == [1.0, 0.5, 1.0]  # empty union counts as IoU 1
    assert out["pbca_lg"].tolist() == [1.0, 0.75, 1.0]
    assert summarize_localization(out)["iou_lg"] == pytest.approx(250 / 3)


def test_lg_resizes_map_to_mask_and_sm_resizes_mask_to_map():
    mask = np.zeros((8, 8), bool)
    mask[:, :4] = True
    coarse = np.array([[1, 0], [1, 0]], np.float32)  # left half fake, at 2x2
    out = localization_scores([coarse], [mask])
    assert out["iou_sm"][0] == 1.0 and out["pbca_sm"][0] == 1.0
    assert out["iou_lg"][0] > 0.7  # bicubic-resized map still covers the left half


def test_vectorised_equals_per_image_reference():
    rng = np.random.default_rng(0)
    maps, masks = [], []
    for i in range(60):
        h = (37, 19, 16)[i % 3]
        mh, mw = ((256, 256), (64, 80), (37, 37))[i % 3]
        m = rng.random((h, h)).astype(np.float32)
        m = np.clip(m * 1.2 - 0.1, 0, 1)
        g = np.zeros((mh, mw), bool)
        y, x = rng.integers(0, mh // 2), rng.integers(0, mw // 2)
        g[y:y + rng.integers(1, mh // 2), x:x + rng.integers(1, mw // 2)] = True
        if i == 5:
            g[:] = False  # an all-real mask
        maps.append(m)
        masks.append(g)
    out = localization_scores(maps, masks)
    iou, pbca = reference_localization(maps, masks, resize=torch_resize)
    assert np.abs(out["iou_lg"] - iou).max() < 1e-6  # grouping, chunking and batching change nothing
    assert np.abs(out["pbca_lg"] - pbca).max() < 1e-6
    # against the official PIL resize: a pixel within ~1e-6 of the threshold may flip, nothing more
    iou_pil, pbca_pil = reference_localization(maps, masks, resize=pil_resize)
    assert np.abs(out["iou_lg"] - iou_pil).max() < 1e-3 and np.abs(out["pbca_lg"] - pbca_pil).max() < 1e-4
    assert abs(out["iou_lg"].mean() - iou_pil.mean()) < 1e-5


def test_bicubic_resize_matches_pil():
    rng = np.random.default_rng(1)
    for src, dst in (((37, 37), (256, 256)), ((19, 19), (299, 299)), ((37, 37), (20, 24)), ((16, 16), (64, 80))):
        m = rng.random(src).astype(np.float32)
        assert np.abs(torch_resize(m, dst) - pil_resize(m, dst)).max() < 1e-5


def test_detection_balanced_ap_auc_accuracy():
    labels = np.array([0] * 6 + [1] * 3)
    perfect = np.array([0.1] * 6 + [0.9] * 3)
    res = detection_scores(perfect, labels, repeats=5)
    assert res["ap"] == 100.0 and res["ap_2std"] == 0.0 and res["auc"] == 100.0 and res["acc"] == 100.0
    rng = np.random.default_rng(3)
    scores = rng.random(9)
    res = detection_scores(scores, labels, repeats=5, seed=0, sampling="numpy")
    draw = np.random.default_rng(0)  # the same balanced subsamples, recomputed by hand (the numpy option)
    aps = []
    for _ in range(5):
        idx = np.concatenate([draw.choice(np.arange(6), 3, replace=False), draw.choice(np.arange(6, 9), 3, replace=False)])
        aps.append(average_precision_score(labels[idx], scores[idx]) * 100)
    assert res["ap"] == pytest.approx(np.mean(aps)) and res["ap_2std"] == pytest.approx(2 * np.std(aps))
    assert res["ap_2std"] > 0  # subsampling the 6 reals does vary
    with pytest.raises(ValueError, match="both real and fake"):
        detection_scores(scores[:6], labels[:6])
