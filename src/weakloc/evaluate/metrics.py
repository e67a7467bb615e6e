"""Localization and detection metrics, vectorised (no per-image Python loop on the hot path).

Localization (DOLOS convention, REFERENCE.md): on fake test images only, per image, at a fixed threshold:
- "lg": the map is resized to the mask's native size with bicubic interpolation (PIL's kernel, a = -0.5,
  which torch reproduces with ``antialias=True`` to ~1e-6), binarised at ``> threshold``;
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
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, roc_auc_score

CHUNK_PIXELS = 64 * 2**20  # resize at most this many output pixels at once (bounded memory)


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[N, h, w] float maps -> [N, H, W] with PIL-equivalent bicubic interpolation."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps.float()
    return F.interpolate(maps[:, None].float(), size=size, mode="bicubic", antialias=True, align_corners=False)[:, 0]


def resize_masks_nearest(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks.bool()
    return F.interpolate(masks[:, None].float(), size=size, mode="nearest-exact")[:, 0] > 0.5


def iou_pbca(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image IoU and pixel accuracy of boolean [N, H, W] predictions and targets."""
    inter = (pred & target).flatten(1).sum(1).double()
    union = (pred | target).flatten(1).sum(1).double()
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    pbca = (pred == target).flatten(1).double().mean(1)
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
            m = torch.from_numpy(np.stack([np.asarray(maps[i], dtype=np.float32) for i in idx]))
            g = torch.from_numpy(np.stack([np.asarray(masks[i], dtype=bool) for i in idx]))
            iou, pbca = iou_pbca(resize_maps(m, mask_shape) > threshold, g)
            out["iou_lg"][idx], out["pbca_lg"][idx] = iou.numpy(), pbca.numpy()
            iou, pbca = iou_pbca(m > threshold, resize_masks_nearest(g, map_shape))
            out["iou_sm"][idx], out["pbca_sm"][idx] = iou.numpy(), pbca.numpy()
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
