"""95% confidence intervals: the percentile bootstrap over test images, seeded and vectorised.

Localization: ``resamples`` draws of the manipulated test images with replacement. Every statistic of a resample
is a weighted sum over images (weights: how often each image was drawn), so all resamples are one matrix
product, ``C [R, n] @ per-image values [n, k]``: means (NaN-aware for pixel AP / AUC), pooled IoU / F1 (ratios of
summed counts) and pooled AP / AUC (from the summed per-image histograms, coarsened to ``pixel.COARSE`` levels).

Detection: AP on balanced resamples (per resample min(n_real, n_fake) reals and as many fakes, each drawn with
replacement from its class: the spread of the test images and of the balanced subsample together); ROC-AUC and
accuracy on stratified resamples (reals and fakes resampled separately, sizes kept). A resample is a vector of
weights (how often each image was drawn) over the scores sorted once: two cumulative sums per resample.

The interval is [2.5th, 97.5th] percentile of the resampled statistic (x100); reports print ± half its width.
"""

from __future__ import annotations

import numpy as np

from .pixel import COARSE, DOLOS_KEYS, PIXEL_KEYS, PixelStats, ranking

LEVEL = 95.0
BLOCK = 100  # resamples per block in the detection bootstrap (bounded memory for large test sets)


def draw_weights(n: int, size: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[R, n] float64: how often each of n items is drawn in each of R draws of ``size`` with replacement."""
    draws = rng.integers(0, n, size=(resamples, size)) + (np.arange(resamples) * n)[:, None]
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(np.float64)


def resample_weights(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[R, n] float32: how many times each of n items is drawn in each of R bootstrap resamples (size n)."""
    return draw_weights(n, n, resamples, rng).astype(np.float32)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """[R, ...] resampled statistics -> [..., 2] (lo, hi); NaN resamples ignored."""
    tail = (100 - level) / 2
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanpercentile(samples, [tail, 100 - tail], axis=0)
    return np.stack([lo, hi], axis=-1)


def bootstrap_means(values: np.ndarray, resamples: int, seed: int, level: float = LEVEL) -> np.ndarray:
    """[n, k] per-item values (NaN = undefined, left out) -> [k, 2] intervals of their means."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    weights = resample_weights(len(values), resamples, np.random.default_rng(seed))
    defined = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (weights @ np.where(defined, values, 0)) / (weights @ defined)
    return percentile_interval(means, level)


def localization_intervals(stats: PixelStats, resamples: int, seed: int, level: float = LEVEL) -> dict:
    """{"localization": {key: [lo, hi]}, "pixel": {key: [lo, hi]}} x100, for every mean and pooled value."""
    per, c = stats.per_image, stats.counts
    n = len(per["iou_lg"])
    if n == 0 or resamples <= 0:
        return {}
    keys = DOLOS_KEYS + PIXEL_KEYS
    values = np.stack([per[k] for k in keys], axis=1)
    defined = np.isfinite(values)
    union = c["n_pred"] + c["n_true"] - c["inter"]
    pooled_counts = np.stack([c["inter"], union, c["n_pred"] + c["n_true"]], axis=1)
    columns = np.concatenate([np.where(defined, values, 0), defined, pooled_counts,
                              stats.coarse.reshape(n, -1)], axis=1).astype(np.float32)
    weights = resample_weights(n, resamples, np.random.default_rng(seed))
    sums = (weights @ columns).astype(np.float64)  # [R, columns]
    k = len(keys)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums[:, :k] / sums[:, k:2 * k]
        inter, union_sum, both = sums[:, 2 * k], sums[:, 2 * k + 1], sums[:, 2 * k + 2]
        iou_pooled = np.where(union_sum > 0, inter / union_sum, 1.0)
        f1_pooled = np.where(both > 0, 2 * inter / both, 1.0)
    rank = ranking(sums[:, 2 * k + 3:].reshape(resamples, COARSE + 1, 2))
    found = percentile_interval(np.column_stack([means, iou_pooled, f1_pooled, rank["ap"], rank["auc"]]) * 100,
                                level)
    names = list(keys) + ["iou_pooled", "f1_pooled", "ap_pooled", "auc_pooled"]
    table = {name: [float(lo), float(hi)] for name, (lo, hi) in zip(names, found)}
    return {"localization": {key: table[key] for key in DOLOS_KEYS},
            "pixel": {key: table[key] for key in names if key not in DOLOS_KEYS}}


def weighted_ap_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's average precision and ROC-AUC of ``scores`` / 0-1 ``labels`` [m] with per-row sample
    weights [R, m] (a bootstrap resample = how often each item was drawn; ties: one threshold for AP, half a pair
    for AUC). The scores are sorted once; each row is then two cumulative sums. NaN where a class is missing."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    s = np.asarray(scores, dtype=np.float64)[order]
    y = np.asarray(labels, dtype=bool)[order]
    w = np.asarray(weights, dtype=np.float64).reshape(-1, len(s))[:, order]
    m = len(s)
    wy = w * y
    tp = np.cumsum(wy, axis=1)
    seen = np.cumsum(w, axis=1)
    last = np.r_[s[:-1] != s[1:], True]  # the last position of its tie group
    if last.all():  # no ties (the usual case for continuous scores): each position is its own group
        tp_end, seen_end, tp_before = tp, seen, tp - wy
    else:
        end = np.minimum.accumulate(np.where(last, np.arange(m), m)[::-1])[::-1]
        start = np.maximum.accumulate(np.where(np.r_[True, last[:-1]], np.arange(m), 0))
        tp_end, seen_end = tp[:, end], seen[:, end]
        tp_before = np.where(start > 0, tp[:, np.maximum(start - 1, 0)], 0.0)
    n_pos, n_neg = tp[:, -1], seen[:, -1] - tp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(n_pos > 0, (wy * tp_end / np.maximum(seen_end, 1e-300)).sum(1) / n_pos, np.nan)
        auc = np.where(n_pos * n_neg > 0, ((w - wy) * (tp_before + tp_end)).sum(1) * 0.5 / (n_pos * n_neg), np.nan)
    return ap, auc


def detection_intervals(scores: np.ndarray, labels: np.ndarray, resamples: int, seed: int,
                        level: float = LEVEL) -> dict:
    """{"ap", "auc", "acc": [lo, hi]} x100 (see the module docstring)."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(int)
    real, fake = scores[labels == 0], scores[labels == 1]
    if resamples <= 0 or not len(real) or not len(fake):
        return {}
    rng = np.random.default_rng(seed)
    num = min(len(real), len(fake))
    ordered = np.r_[real, fake]
    truth = np.r_[np.zeros(len(real)), np.ones(len(fake))]
    correct = (ordered > 0.5) == truth
    ap, auc, acc = [], [], []
    for start in range(0, resamples, BLOCK):
        r = min(BLOCK, resamples - start)
        balanced = np.concatenate([draw_weights(len(real), num, r, rng), draw_weights(len(fake), num, r, rng)], 1)
        ap.append(weighted_ap_auc(ordered, truth, balanced)[0])
        strata = np.concatenate([draw_weights(len(real), len(real), r, rng),
                                 draw_weights(len(fake), len(fake), r, rng)], 1)
        auc.append(weighted_ap_auc(ordered, truth, strata)[1])
        acc.append(strata @ correct / len(ordered))
    found = percentile_interval(np.column_stack([np.concatenate(ap), np.concatenate(auc), np.concatenate(acc)])
                                * 100, level)
    return {name: [float(lo), float(hi)] for name, (lo, hi) in zip(("ap", "auc", "acc"), found)}
