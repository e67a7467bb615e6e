"""Localization and detection metrics, vectorised (no per-image Python loop on the hot path).

Localization (DOLOS convention, REFERENCE.md): on fake test images only, per image, at a fixed threshold:
- "lg": the map is resized to the mask's native size with PIL's bicubic filter, binarised at ``> threshold``.
  done for a whole batch by :func:`weakloc.predict.maps.resize_maps` (PIL's own weights as two matrix
  products, within ~1e-7 of per-image PIL ``resize``);
- "sm": the mask is resized to the map's size with PIL's NEAREST (:func:`weakloc.data.images.nearest_indices`,
  PIL's own index map, ties included) and the map binarised as it is.
IoU = |P ∩ G| / |P ∪ G|, 1 when the union is empty; PBCA = fraction of pixels classified correctly.
Per-image values are averaged and multiplied by 100.

Detection: AP on balanced subsamples, ``repeats`` times, reported as mean and 2 x std (ddof 0); ROC-AUC and
accuracy at 0.5 on the full test set. Subsampling (``sampling``):
- "official" (default): the DOLOS evaluation's draw exactly. A ``random.Random(seed)`` (seed 1337 there, set
  at import with ``random.seed``; here a private instance, the global state is never touched); each repeat
  draws ``random.sample`` of min(n_real, n_fake) reals, then as many fakes (both classes are sampled, even
  the smaller one, which reorders it and consumes random state); labels zeros then ones. The draw depends on
  the order of the scores: reals and fakes in test-split order (weakloc: sorted by id).
- "numpy": ``numpy.random.default_rng(seed).choice`` without replacement, reals then fakes (earlier weakloc;
  its numbers come back with ``seed=0``).
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Iterator, Sequence

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from ..config import AP_SAMPLINGS
from ..data.images import nearest_indices
from ..predict.maps import resize_maps

CHUNK_PIXELS = 64 * 2**20  # resize at most this many output pixels at once (bounded memory)
OFFICIAL_AP_SEED = 1337  # the DOLOS evaluation's random.seed


def resize_masks_nearest(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[N, H, W] bool -> [N, h, w] bool, exactly PIL's NEAREST (pure indexing with PIL's index maps)."""
    masks = np.asarray(masks, dtype=bool)
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    return masks[:, nearest_indices(masks.shape[1], size[0])][:, :, nearest_indices(masks.shape[2], size[1])]


def iou_pbca(pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image IoU and pixel accuracy of boolean [N, H, W] predictions and targets.

    Counted with numpy's count_nonzero (several times faster than torch's bool reductions on CPU):
    union = |P| + |G| - |P∩G|, wrong pixels = |P| + |G| - 2|P∩G|."""
    pred = np.asarray(pred).reshape(len(pred), -1)
    target = np.asarray(target).reshape(len(target), -1)
    inter = np.count_nonzero(pred & target, axis=1).astype(np.float64)
    return counts_iou_pbca(inter, np.count_nonzero(pred, axis=1), np.count_nonzero(target, axis=1), pred.shape[1])


def counts_iou_pbca(inter: np.ndarray, n_pred: np.ndarray, n_true: np.ndarray,
                    n_pixels: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """IoU (1 when the union is empty) and pixel accuracy from per-image counts."""
    inter = np.asarray(inter, dtype=np.float64)
    union = n_pred + n_true - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    pbca = 1.0 - (n_pred + n_true - 2 * inter) / n_pixels
    return iou, pbca


def _groups(shapes: Sequence[tuple]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, shape in enumerate(shapes):
        groups[shape].append(i)
    return groups


def chunks(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], max_images: int | None = None,
           mask_axis: int = 0) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """(positions, stacked maps [n, h, w] float32, stacked masks [n, H, W] bool) for groups of equal (map, mask)
    shapes, in chunks of at most CHUNK_PIXELS mask pixels (and ``max_images`` images): bounded memory.
    ``mask_axis=1``: the masks are stacked in [H, n, W] memory (the order ``resize_maps`` returns maps in) and
    yielded as an [n, H, W] view of it."""
    if len(maps) != len(masks):
        raise ValueError(f"{len(maps)} maps but {len(masks)} masks")
    shapes = [(np.shape(m), np.shape(g)) for m, g in zip(maps, masks)]
    for (_, mask_shape), members in _groups(shapes).items():
        step = max(1, CHUNK_PIXELS // (mask_shape[0] * mask_shape[1]))
        step = min(step, max_images or step)
        for start in range(0, len(members), step):
            idx = members[start:start + step]
            stacked = np.stack([np.asarray(masks[i], dtype=bool) for i in idx], axis=mask_axis)
            yield (idx, np.stack([np.asarray(maps[i], dtype=np.float32) for i in idx]),
                   stacked if mask_axis == 0 else np.moveaxis(stacked, mask_axis, 0))


def localization_scores(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                        threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Per-image ``iou_lg, pbca_lg, iou_sm, pbca_sm`` for maps (any h x w, values in [0, 1]) and boolean masks
    (native size). Images are processed in groups of equal (map, mask) shapes, in bounded chunks.
    (``evaluate.pixel.pixel_statistics`` gives the same four and the threshold-free metrics in one pass.)"""
    out = {key: np.zeros(len(maps)) for key in ("iou_lg", "pbca_lg", "iou_sm", "pbca_sm")}
    for idx, m, g in chunks(maps, masks):
        big = resize_maps(torch.from_numpy(m), g.shape[1:]).numpy()
        out["iou_lg"][idx], out["pbca_lg"][idx] = iou_pbca(big > threshold, g)
        out["iou_sm"][idx], out["pbca_sm"][idx] = iou_pbca(m > threshold, resize_masks_nearest(g, m.shape[1:]))
    return out


def summarize_localization(per_image: dict[str, np.ndarray]) -> dict[str, float]:
    """Means x 100 (the paper's percentages)."""
    return {key: float(np.mean(values) * 100) if len(values) else float("nan") for key, values in per_image.items()}


def balanced_draws(n_real: int, n_fake: int, repeats: int, seed: int, sampling: str) -> list[np.ndarray]:
    """Per repeat, the positions drawn (min(n_real, n_fake) reals, then as many fakes), fakes offset by n_real.

    "official": ``random.sample`` picks by position and reads nothing but the population's length, so
    sampling ``range(n)`` draws exactly the elements ``random.sample(list(scores), n)`` draws."""
    if sampling not in AP_SAMPLINGS:
        raise ValueError(f"AP sampling must be one of {', '.join(AP_SAMPLINGS)}, not {sampling!r}")
    num = min(n_real, n_fake)
    draws = []
    if sampling == "official":
        rng = random.Random(seed)  # private: the global random state is left alone
        for _ in range(repeats):
            reals = rng.sample(range(n_real), num)
            fakes = rng.sample(range(n_fake), num)
            draws.append(np.array(reals + [n_real + i for i in fakes], dtype=np.int64))
    else:
        gen = np.random.default_rng(seed)
        for _ in range(repeats):
            draws.append(np.concatenate([gen.choice(n_real, num, replace=False),
                                         n_real + gen.choice(n_fake, num, replace=False)]))
    return draws


def detection_scores(scores: np.ndarray, labels: np.ndarray, *, repeats: int = 5, seed: int = OFFICIAL_AP_SEED,
                     sampling: str = "official") -> dict[str, float]:
    """AP on balanced subsamples (mean, 2 std; x100), ROC-AUC and accuracy at 0.5 (x100). Reals and fakes
    are each taken in the order they have in ``scores`` (the draw depends on it; see the module docstring)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int)
    real, fake = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    if len(real) == 0 or len(fake) == 0:
        raise ValueError("detection metrics need both real and fake test images")
    ordered = np.concatenate([scores[real], scores[fake]])
    num = min(len(real), len(fake))
    truth = np.concatenate([np.zeros(num), np.ones(num)])
    aps = np.array([100 * average_precision_score(truth, ordered[draw])
                    for draw in balanced_draws(len(real), len(fake), repeats, seed, sampling)])
    return {"ap": float(aps.mean()), "ap_2std": float(2 * aps.std()), "auc": float(roc_auc_score(labels, scores) * 100),
            "acc": float(((scores > 0.5) == labels).mean() * 100), "n_real": int(len(real)), "n_fake": int(len(fake))}


def detection_baselines(labels: np.ndarray, random_seed: int, **options) -> dict[str, dict]:
    """``detection_scores`` of trivial image scores on the same test images and balanced draws (``options``):
    all-fake (every score 1), all-real (every score 0), random (uniform on [0, 1), seeded). A constant score has
    AP 50 on balanced subsamples (chance) and ROC-AUC 50; its accuracy is the share of its class."""
    labels = np.asarray(labels).astype(int)
    scores = {"all-fake": np.ones(len(labels)), "all-real": np.zeros(len(labels)),
              "random": np.random.default_rng(random_seed).random(len(labels))}
    keep = ("ap", "ap_2std", "auc", "acc")
    return {name: {k: v for k, v in detection_scores(s, labels, **options).items() if k in keep}
            for name, s in scores.items()}
