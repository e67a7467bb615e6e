"""Localization and detection metrics, vectorised (no per-image Python loop on the hot path).

Localization (DOLOS convention, REFERENCE.md): on fake test images only, per image, at a fixed threshold:
- "lg": the map is resized to the mask's native size with PIL's bicubic filter, binarised at ``> threshold``.
  done for a whole batch by :func:`weakloc.predict.maps.resize_maps` (PIL's own weights as two matrix
  products, within ~1e-7 of per-image PIL ``resize``);
- "sm": the mask is resized to the map's size (NEAREST, pixel centres) and the map binarised as it is.
IoU = |P ∩ G| / |P ∪ G|, 1 when the union is empty; PBCA = fraction of pixels classified correctly.
Per-image values are averaged and multiplied by 100.

Detection: AP on balanced subsamples (the larger class subsampled to the smaller's size), ``repeats``
times, reported as mean and 2 x std; ROC-AUC and accuracy at 0.5 on the full test set.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from ..predict.maps import resize_maps

CHUNK_PIXELS = 64 * 2**20  # resize at most this many output pixels at once (bounded memory)


def nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output pixel for NEAREST resizing with PIL's pixel-centre convention."""
    return np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.int64), n_in - 1)


def resize_masks_nearest(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[N, H, W] bool -> [N, h, w] bool, NEAREST (pure indexing, no arithmetic)."""
    masks = np.asarray(masks, dtype=bool)
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    return masks[:, nearest_index(masks.shape[1], size[0])][:, :, nearest_index(masks.shape[2], size[1])]


def iou_pbca(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image IoU and pixel accuracy of boolean [N, H, W] predictions and targets.

    Counted with numpy's count_nonzero (several times faster than torch's bool reductions on CPU):
    union = |P| + |G| - |P∩G|, wrong pixels = |P| + |G| - 2|P∩G|."""
    pred = np.asarray(pred).reshape(len(pred), -1)
    target = np.asarray(target).reshape(len(target), -1)
    inter = np.count_nonzero(pred & target, axis=1).astype(np.float64)
    n_pred = np.count_nonzero(pred, axis=1)
    n_true = np.count_nonzero(target, axis=1)
    union = n_pred + n_true - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    pbca = 1.0 - (n_pred + n_true - 2 * inter) / pred.shape[1]
    return iou, pbca


def _groups(shapes: Sequence[tuple]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, shape in enumerate(shapes):
        groups[shape].append(i)
    return groups


def localization_scores(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                        threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Per-image ``iou_lg, pbca_lg, iou_sm, pbca_sm`` for maps (any h x w, values in [0, 1]) and boolean masks
    (native size). Images are processed in groups of equal (map, mask) shapes, in bounded chunks."""
    if len(maps) != len(masks):
        raise ValueError(f"{len(maps)} maps but {len(masks)} masks")
    out = {key: np.zeros(len(maps)) for key in ("iou_lg", "pbca_lg", "iou_sm", "pbca_sm")}
    shapes = [(np.shape(m), np.shape(g)) for m, g in zip(maps, masks)]
    for (map_shape, mask_shape), members in _groups(shapes).items():
        step = max(1, CHUNK_PIXELS // (mask_shape[0] * mask_shape[1]))
        for start in range(0, len(members), step):
            idx = members[start:start + step]
            m = np.stack([np.asarray(maps[i], dtype=np.float32) for i in idx])
            g = np.stack([np.asarray(masks[i], dtype=bool) for i in idx])
            big = resize_maps(torch.from_numpy(m), mask_shape).numpy()
            out["iou_lg"][idx], out["pbca_lg"][idx] = iou_pbca(big > threshold, g)
            out["iou_sm"][idx], out["pbca_sm"][idx] = iou_pbca(m > threshold, resize_masks_nearest(g, map_shape))
    return out


def summarize_localization(per_image: dict[str, np.ndarray]) -> dict[str, float]:
    """Means x 100 (the paper's percentages)."""
    return {key: float(np.mean(values) * 100) if len(values) else float("nan") for key, values in per_image.items()}


def detection_scores(scores: np.ndarray, labels: np.ndarray, *, repeats: int = 5, seed: int = 0) -> dict[str, float]:
    """AP on balanced subsamples (mean, 2 std; x100), ROC-AUC and accuracy at 0.5 (x100)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int)
    real, fake = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    if len(real) == 0 or len(fake) == 0:
        raise ValueError("detection metrics need both real and fake test images")
    n = min(len(real), len(fake))
    rng = np.random.default_rng(seed)
    aps = []
    for _ in range(repeats):
        chosen = np.concatenate([rng.choice(real, n, replace=False), rng.choice(fake, n, replace=False)])
        aps.append(average_precision_score(labels[chosen], scores[chosen]))
    aps = np.array(aps) * 100
    return {"ap": float(aps.mean()), "ap_2std": float(2 * aps.std()), "auc": float(roc_auc_score(labels, scores) * 100),
            "acc": float(((scores > 0.5) == labels).mean() * 100), "n_real": int(len(real)), "n_fake": int(len(fake))}
