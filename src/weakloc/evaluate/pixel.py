"""Pixel metrics beside the DOLOS pair, all on the "lg" map (resized bicubic to the mask's native size, as for
IoU lg), from one pass over the pixels: F1 at the threshold, threshold-free AP and ROC-AUC, the best-threshold
("oracle") IoU and F1 per image, dataset-wide (pooled) values, the threshold that maximises mean IoU (to choose
it on held-out data), IoU by mask area, and the scores of trivial maps (baselines).

The pass: each resized map is quantised on a grid of its own, ``level = ceil(v * 2^e) - m``, where 2^-e is the
finest power-of-two step that fits the image's range [lo, hi] into at most ``LEVELS`` steps (e from 1 to 20: a map
spanning [0, 1] gets 1/1024, one spanning [0.34, 0.36] 2^-15) and m = ceil(lo * 2^e); then the image's real and
fake pixels are counted per level (a ``bincount`` per image). Scaling by a power of two is exact in float32, so
``v > k / 2^e`` is exactly ``level > k - m``: IoU, PBCA and F1 at a threshold on the image's grid (0.5 always is)
come out of the counts exactly (equal to the DOLOS metrics bit for bit); other thresholds are compared directly.
Everything else is arithmetic on the counts ([n, LEVELS + 1, 2]):

- AP and ROC-AUC equal scikit-learn's ``average_precision_score`` / ``roc_auc_score`` on the quantised map (tested).
  On the unquantised map they can differ only through pixels sharing a level, and :func:`ranking` bounds that per
  image (reported as ``error_bounds``): ROC-AUC by half the share of (fake, real) pixel pairs in one level; AP by
  the lowest and highest precisions the fake pixels of each level can have, whatever their order inside it.
- oracle: the image's best IoU / F1 over the cuts ``level >= j`` of its grid (from every pixel to none). The best
  over all thresholds is higher by at most the reported bound. An oracle sees the test mask: an upper bound on
  what a threshold can do, never a result (Choe et al., CVPR 2020).
- dataset-wide values (pooled AP / AUC, the mean-IoU curve that chooses a threshold) need one grid for all images:
  the common grid (e_c, m_c) covers the range every resized map can reach (the small maps' range widened by the
  bicubic filter's largest overshoot, from its weights), and each image's dyadic grid nests in it (e_i >= e_c), so
  its counts move to the common grid exactly.
- images whose mask has no fake pixel have no AP (and no AUC; nor one without real pixels): NaN per image,
  left out of the means, counted in ``n_ap`` / ``n_auc``. F1 of an empty prediction of an empty mask is 1, as IoU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .metrics import chunks, counts_iou_pbca, resize_masks_nearest
from ..predict.maps import resize_maps, resize_matrix

LEVELS = 1024  # at most this many steps per image's grid (and on the common grid)
SCALES = (1, 20)  # the grid step 2^-e, e in this range (2^20 * |v| stays far below float32's 2^24)
COARSE = 128  # levels kept per image for the bootstrap of the pooled AP / AUC (memory and speed)
BASELINE_LEVELS = 64  # the random baseline map draws each pixel uniformly from {1/64, ..., 64/64}
MAX_CHUNK_IMAGES = 2048  # per-image histograms held at once ([n, LEVELS + 1, 2] int64: 34 MB)
AREA_EDGES = (0, 1, 2, 4, 8, 16, 32, 64, 100)  # mask-area bins, % of the image (first bin includes 0)
DOLOS_KEYS = ("iou_lg", "pbca_lg", "iou_sm", "pbca_sm")
PIXEL_KEYS = ("f1_lg", "ap_px", "auc_px", "oracle_iou_lg", "oracle_f1_lg")  # per image, beside DOLOS_KEYS
BOUND_KEYS = ("ap_px", "auc_px", "oracle_iou_lg", "oracle_f1_lg")
_MAGIC, _MAGIC_BITS = float(2 ** 23), 0x4B000000  # float32 x in [2^23, 2^24) holds the integer x - 2^23 in its bits


@dataclass
class PixelStats:
    """Per-image values (fractions, not x100), their quantisation bounds, the counts behind them."""

    per_image: dict[str, np.ndarray]  # DOLOS_KEYS + PIXEL_KEYS
    bounds: dict[str, np.ndarray]  # BOUND_KEYS: |quantised - exact| <= bound, per image
    counts: dict[str, np.ndarray]  # inter, n_pred, n_true, n_pixels (lg, at the threshold); n_true_sm, n_pixels_sm
    hist: np.ndarray  # [LEVELS + 1, 2] (real, fake) pixels per level of the common grid, summed over images
    coarse: np.ndarray  # [n, COARSE + 1, 2] per image on the common grid, coarsened (bootstrap of pooled AP / AUC)
    iou_curve: np.ndarray  # [LEVELS + 2] mean IoU over images of the common grid's cut "level >= j"
    grid: tuple[int, int] = (10, 0)  # the common grid (e, m): level = ceil(v * 2^e) - m
    steps: np.ndarray | None = None  # per image, its grid's e (the step is 2^-e)


def grid_scale(lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """The finest e (in SCALES) with ceil(hi 2^e) - ceil(lo 2^e) <= LEVELS: a grid of step 2^-e holds [lo, hi] in
    at most LEVELS steps ([0, 1] gets exactly 2^-10)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(LEVELS / np.maximum(hi - lo, 0)))
    e = np.clip(np.nan_to_num(e, posinf=SCALES[1]), *SCALES)
    wide = np.ceil(hi * 2.0 ** e) - np.ceil(lo * 2.0 ** e) > LEVELS  # rounding up at both ends: one step more
    return np.maximum(e - wide, SCALES[0]).astype(np.int64)


def overshoot(map_shape: tuple[int, int], mask_shape: tuple[int, int]) -> float:
    """How far beyond its input's [lo, hi] the bicubic resize can go, as a share of hi - lo: the largest sum of
    negative products of row and column weights (PIL's weights, each output's summing to 1)."""
    if tuple(map_shape) == tuple(mask_shape):
        return 0.0
    r = resize_matrix(map_shape[0], mask_shape[0]).double().numpy()
    c = resize_matrix(map_shape[1], mask_shape[1]).double().numpy()
    pos_r, neg_r = np.clip(r, 0, None).sum(1), np.clip(-r, 0, None).sum(1)
    pos_c, neg_c = np.clip(c, 0, None).sum(1), np.clip(-c, 0, None).sum(1)
    return float((pos_r[:, None] * neg_c[None, :] + neg_r[:, None] * pos_c[None, :]).max())


def common_grid(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> tuple[int, int]:
    """(e, m) of a grid of at most LEVELS steps holding every value the resized maps can take. Refuses NaN."""
    if not len(maps):
        return 10, 0
    values = np.concatenate([np.ravel(m) for m in maps])
    lo, hi = float(values.min()), float(values.max())
    if np.isnan(lo) or np.isnan(hi):
        first = next(i for i, m in enumerate(maps) if np.isnan(m).any())
        raise ValueError(f"the map at position {first} has NaN values")
    pairs = {(np.shape(m), np.shape(g)) for m, g in zip(maps, masks)}
    reach = max(overshoot(a, b) for a, b in pairs) * (hi - lo) + 1e-6 * max(1.0, abs(lo), abs(hi))  # + rounding
    e = int(grid_scale(lo - reach, hi + reach))
    return e, int(np.ceil((lo - reach) * 2.0 ** e))


def level_histograms(values: np.ndarray, fake: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """[n, H, W] float32 ``values`` (OVERWRITTEN), bool masks and per image ``scale`` = 2^e and ``offset`` = m ->
    [n, LEVELS + 1, 2] counts of real and fake pixels per level ``ceil(v * 2^e) - m`` (which must lie in
    0 .. LEVELS). In place, in the array's own memory order (resize_maps returns an [H, n, W] buffer); integers
    through the float bits; then one ``bincount`` per image, whose 2 (LEVELS + 1) counters stay in cache
    (several times faster than one scatter over all images)."""
    n, width = values.shape[0], 2 * (LEVELS + 1)
    order = tuple(int(a) for a in np.argsort(values.strides, kind="stable")[::-1])
    v = values.transpose(order)
    if not v.flags.c_contiguous or v.dtype != np.float32:
        v = np.ascontiguousarray(v, dtype=np.float32)
    f = np.ascontiguousarray(np.asarray(fake, dtype=bool).transpose(order)).view(np.uint8)
    shape = [1] * 3
    shape[order.index(0)] = n
    np.multiply(v, np.asarray(scale, dtype=np.float32).reshape(shape), out=v)  # exact: powers of two
    np.ceil(v, out=v)
    np.multiply(v, 2, out=v)
    # + 2^23 - 2 m, then + is_fake: 2 * level + is_fake + 2^23, every step an integer below 2^24 (exact)
    np.add(v, (_MAGIC - 2 * np.asarray(offset, dtype=np.float64)).astype(np.float32).reshape(shape), out=v)
    np.add(v, f, out=v)
    index = v.view(np.int32)
    np.subtract(index, _MAGIC_BITS, out=index)  # exact: every value is an integer below 2^23
    per_image = np.moveaxis(index, order.index(0), 0)  # [n, ...] view
    hist = np.empty((n, width), dtype=np.int64)
    for i in range(n):
        hist[i] = np.bincount(per_image[i].reshape(-1), minlength=width)
    return hist.reshape(n, LEVELS + 1, 2)


def to_common_grid(hist: np.ndarray, steps: np.ndarray, offsets: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """[n, LEVELS + 1, 2] counts on per-image grids (e_i, m_i) -> the same on the common grid (e, m), exactly:
    grids of powers of two nest (ceil(ceil(x) / 2^d) = ceil(x / 2^d)); values beyond it go to its end levels."""
    n = len(hist)
    e, m = grid
    if (steps < e).any():
        raise RuntimeError("an image's grid is coarser than the common grid (its range exceeds the bound)")
    fine = np.arange(LEVELS + 1)[None, :] + offsets[:, None].astype(np.float64)  # ceil(v 2^e_i) per level
    level = np.clip(np.ceil(fine / 2.0 ** (steps - e)[:, None]) - m, 0, LEVELS).astype(np.int64)
    index = (level + (np.arange(n) * (LEVELS + 1))[:, None]).ravel()
    out = np.empty((n, LEVELS + 1, 2), dtype=np.int64)
    for k in range(2):
        out[..., k] = np.bincount(index, weights=hist[..., k].ravel(), minlength=n * (LEVELS + 1)).reshape(n, -1)
    return out


def cuts(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[..., L + 1, 2] counts -> (tp, fp) [..., L + 2]: fake and real pixels at level >= j, j = 0 .. L + 1."""
    hist = np.asarray(hist)
    shape = hist.shape[:-2] + (hist.shape[-2] + 1,)
    tp, fp = np.zeros(shape), np.zeros(shape)
    np.cumsum(hist[..., ::-1, 1], axis=-1, dtype=np.float64, out=tp[..., -2::-1])
    np.cumsum(hist[..., ::-1, 0], axis=-1, dtype=np.float64, out=fp[..., -2::-1])
    return tp, fp


def _div(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    """num / den, ``empty`` where den is 0 (for per-row values: small arrays)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(num, den, dtype=np.float64)
    return np.where(np.asarray(den) > 0, out, empty) if np.any(np.asarray(den) <= 0) else out


def ranking(hist: np.ndarray, tp_fp: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """AP and ROC-AUC of the quantised map per row of [..., L + 1, 2] counts (scikit-learn's definitions, ties
    = one level), with bounds on their distance to the unquantised map's. NaN where a class is missing.
    ``tp_fp``: ``cuts(hist)`` when already computed."""
    hist = np.asarray(hist)
    neg, pos = hist[..., 0], hist[..., 1]
    tp, fp = tp_fp or cuts(hist)
    n_pos, n_neg = tp[..., 0], fp[..., 0]
    at = tp[..., :-1]  # fake pixels at level >= j
    # every fake pixel of level j counts with the precision of the cut "level >= j" (sklearn: one threshold per
    # tie); where nothing is at or above j, pos_j = 0 too: the max(., 1) only avoids 0 / 0
    precision = at / np.maximum(at + fp[..., :-1], 1)
    # Unquantised, whatever the order inside level j: its i-th fake pixel has a precision of at most
    # hi = tp_j / (tp_j + fp_(j+1)) (all the level's fakes first) and at least (A + i) / (A + B + i), A = tp_(j+1),
    # B = fp_j (all its reals first), whose sum over i is p - B * sum_i 1 / (A + B + i) >= p - B log(1 + p / (A + B)).
    hi = at / np.maximum(at + fp[..., 1:], 1)
    above, before = tp[..., 1:], fp[..., :-1]
    low_sum = pos - before * np.log1p(pos / np.maximum(above + before, 1))
    pairs = n_pos * n_neg
    nan = np.nan
    ap = _div((pos * precision).sum(-1), n_pos, nan)
    ap_low, ap_high = _div(low_sum.sum(-1), n_pos, nan), _div((pos * hi).sum(-1), n_pos, nan)
    return {"ap": ap, "auc": _div((neg * (above + 0.5 * pos)).sum(-1), pairs, nan),
            "ap_bound": np.maximum(ap - ap_low, ap_high - ap),
            "auc_bound": _div(0.5 * (pos * neg).sum(-1), pairs, nan)}


def cut_iou(tp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """IoU of every cut "level >= j" [n, L + 2] from ``cuts``; an empty prediction of an empty mask: 1."""
    n_pos = tp[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 only in rows without fake pixels: set below
        iou = tp / (n_pos + fp)
    empty = n_pos[:, 0] == 0
    if empty.any():
        iou[empty] = fp[empty] == 0
    return iou


def cut_curves(tp: np.ndarray, fp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """From ``cuts`` ([n, L + 2]): IoU and F1 of every cut "level >= j" [n, L + 2], and upper bounds on IoU / F1
    for a threshold inside each level [n, L + 1] (all of its fake pixels, none of its real ones). An empty
    prediction of an empty mask: 1."""
    n_pos = tp[:, :1]
    iou = cut_iou(tp, fp)
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 only in rows without fake pixels: set below
        f1 = 2 * tp / (n_pos + tp + fp)
        iou_up = tp[:, :-1] / (n_pos + fp[:, 1:])
        f1_up = 2 * tp[:, :-1] / (n_pos + tp[:, :-1] + fp[:, 1:])
    empty = n_pos[:, 0] == 0
    if empty.any():  # no fake pixel: 1 for predicting nothing, 0 otherwise; the grid holds that exact optimum
        f1[empty] = fp[empty] == 0
        iou_up[empty] = f1_up[empty] = 0.0
    return iou, f1, iou_up, f1_up


def cut_index(threshold: float, e: np.ndarray | int, m: np.ndarray | int, levels: int = LEVELS) -> np.ndarray:
    """The cut "level >= j" of the grid (e, m) equal to "v > threshold": exact where threshold * 2^e is an
    integer, and for values on the grid (the baseline maps) at any threshold."""
    j = np.floor(threshold * 2.0 ** np.asarray(e)) - np.asarray(m) + 1
    return np.clip(j, 0, levels + 1).astype(np.int64)


def _from_histograms(hist: np.ndarray, threshold: float, e: np.ndarray | int, m: np.ndarray | int,
                     thresholded: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per-image metrics of [n, L + 1, 2] counts on grids (e, m); ``thresholded``: (inter, n_pred) when not read
    off the counts (a threshold off an image's grid)."""
    tp, fp = cuts(hist)
    n = len(hist)
    n_true, n_pixels = tp[:, 0], tp[:, 0] + fp[:, 0]
    if thresholded is None:
        j = np.broadcast_to(cut_index(threshold, e, m, hist.shape[-2] - 1), (n,))
        rows = np.arange(n)
        thresholded = (tp[rows, j], tp[rows, j] + fp[rows, j])
    inter, n_pred = thresholded
    out = {"inter": inter, "n_pred": n_pred, "n_true": n_true, "n_pixels": n_pixels}
    out["iou_lg"], out["pbca_lg"] = counts_iou_pbca(inter, n_pred, n_true, n_pixels)
    out["f1_lg"] = _div(2 * inter, n_pred + n_true, 1.0)
    rank = ranking(hist, (tp, fp))
    out["ap_px"], out["auc_px"] = rank["ap"], rank["auc"]
    iou, f1, iou_up, f1_up = cut_curves(tp, fp)
    out["oracle_iou_lg"], out["oracle_f1_lg"] = iou.max(-1), f1.max(-1)
    out["bound_ap_px"], out["bound_auc_px"] = rank["ap_bound"], rank["auc_bound"]
    out["bound_oracle_iou_lg"] = np.maximum(iou_up.max(-1) - out["oracle_iou_lg"], 0)
    out["bound_oracle_f1_lg"] = np.maximum(f1_up.max(-1) - out["oracle_f1_lg"], 0)
    return out


def pixel_statistics(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], threshold: float = 0.5
                     ) -> PixelStats:
    """Every per-image pixel metric (DOLOS four included, equal to ``metrics.localization_scores``) in one pass."""
    n = len(maps)
    keys = DOLOS_KEYS + PIXEL_KEYS
    per = {k: np.zeros(n) for k in keys}
    bounds = {k: np.zeros(n) for k in BOUND_KEYS}
    counts = {k: np.zeros(n) for k in ("inter", "n_pred", "n_true", "n_pixels", "n_true_sm", "n_pixels_sm")}
    hist_sum = np.zeros((LEVELS + 1, 2), dtype=np.int64)
    coarse = np.zeros((n, COARSE + 1, 2), dtype=np.int32)
    curve = np.zeros(LEVELS + 2)
    steps = np.zeros(n, dtype=np.int64)
    grid = common_grid(maps, masks)  # also refuses NaN maps
    # masks stacked in the memory order of the resized maps: the histogram needs no transposed copy
    for idx, m, g in chunks(maps, masks, max_images=MAX_CHUNK_IMAGES, mask_axis=1):
        small = resize_masks_nearest(g, m.shape[1:])  # "sm" first: resize_maps may return m itself
        flat_pred, flat_true = (m > threshold).reshape(len(idx), -1), small.reshape(len(idx), -1)
        inter_sm = np.count_nonzero(flat_pred & flat_true, axis=1).astype(np.float64)
        counts["n_true_sm"][idx] = n_true_sm = np.count_nonzero(flat_true, axis=1)
        counts["n_pixels_sm"][idx] = flat_true.shape[1]
        per["iou_sm"][idx], per["pbca_sm"][idx] = counts_iou_pbca(
            inter_sm, np.count_nonzero(flat_pred, axis=1), n_true_sm, flat_true.shape[1])
        big = resize_maps(torch.from_numpy(m), g.shape[1:]).numpy()
        lo, hi = big.min(axis=(1, 2)), big.max(axis=(1, 2))
        e = grid_scale(lo, hi)
        scale = 2.0 ** e
        offset = np.ceil(lo.astype(np.float64) * scale)
        thresholded = None
        if not np.all(np.floor(threshold * scale) == threshold * scale):  # off an image's grid: compare directly,
            pred = big > threshold  # before the histogram overwrites the map
            thresholded = (np.count_nonzero(pred & g, axis=(1, 2)).astype(np.float64),
                           np.count_nonzero(pred, axis=(1, 2)))
        hist = level_histograms(big, g, scale, offset)
        part = _from_histograms(hist, threshold, e, offset, thresholded)
        for k in keys:
            if k not in ("iou_sm", "pbca_sm"):
                per[k][idx] = part[k]
        for k in BOUND_KEYS:
            bounds[k][idx] = part[f"bound_{k}"]
        for k in ("inter", "n_pred", "n_true", "n_pixels"):
            counts[k][idx] = part[k]
        common = to_common_grid(hist, e, offset, grid)
        hist_sum += common.sum(0)
        coarse[idx] = coarsen(common, COARSE)
        curve += cut_iou(*cuts(common)).sum(0)
        steps[idx] = e
    return PixelStats(per, bounds, counts, hist_sum, coarse, curve / max(n, 1), grid, steps)


def coarsen(hist: np.ndarray, levels: int) -> np.ndarray:
    """[..., L + 1, 2] -> [..., levels + 1, 2]: level 0 kept, then runs of L / levels adjacent levels merged
    (a coarser quantisation of the same map)."""
    group = (hist.shape[-2] - 1) // levels
    rest = hist[..., 1:, :].reshape(hist.shape[:-2] + (levels, group, 2)).sum(-2)
    return np.concatenate([hist[..., :1, :], rest], axis=-2)


def best_threshold(iou_curve: np.ndarray, grid: tuple[int, int]) -> tuple[float, float]:
    """(threshold, mean IoU) maximising mean IoU over the thresholds (k + m) / 2^e of the grid, k = 0 .. L - 1
    (the cut "level >= k + 1"). On a plateau of equal maxima: the middle of the first one."""
    e, m = grid
    curve = np.asarray(iou_curve)[1:-1]
    top = curve.max()
    best = np.flatnonzero(curve >= top - 1e-12)
    run = best[: int(np.argmax(np.diff(np.r_[best, best[-1] + 2]) > 1)) + 1]  # the first contiguous run
    k = int(run[len(run) // 2])
    return (k + m) / 2.0 ** e, float(curve[k])


def summarize_pixel(stats: PixelStats) -> dict:
    """Means over images and pooled (dataset-wide) values, x100, with the quantisation bounds."""
    per, c = stats.per_image, stats.counts
    pct = lambda v: float(v * 100) if np.isfinite(v) else float("nan")  # noqa: E731
    mean = lambda v: pct(np.nanmean(v)) if np.isfinite(v).any() else float("nan")  # noqa: E731
    out = {k: mean(per[k]) for k in PIXEL_KEYS}
    union = c["n_pred"] + c["n_true"] - c["inter"]
    out["iou_pooled"] = pct(c["inter"].sum() / union.sum()) if union.sum() else 100.0
    both = (c["n_pred"] + c["n_true"]).sum()
    out["f1_pooled"] = pct(2 * c["inter"].sum() / both) if both else 100.0
    pooled = ranking(stats.hist)
    out["ap_pooled"], out["auc_pooled"] = pct(pooled["ap"]), pct(pooled["auc"])
    if len(per["iou_lg"]):
        t, iou = best_threshold(stats.iou_curve, stats.grid)
        out["oracle_iou_lg_dataset"], out["oracle_threshold_dataset"] = pct(iou), t
    out["n_ap"] = int(np.isfinite(per["ap_px"]).sum())
    out["n_auc"] = int(np.isfinite(per["auc_px"]).sum())
    steps = stats.steps if stats.steps is not None and len(stats.steps) else np.array([stats.grid[0]])
    out["grid"] = {"levels": LEVELS, "common_step": 2.0 ** -stats.grid[0],
                   "image_steps": [2.0 ** -int(steps.max()), 2.0 ** -int(steps.min())]}
    bounds = {k: mean(v) for k, v in stats.bounds.items()}
    bounds.update({f"{k}_max": pct(np.nanmax(v)) if np.isfinite(v).any() else float("nan")
                   for k, v in stats.bounds.items()})
    bounds["ap_pooled"], bounds["auc_pooled"] = pct(pooled["ap_bound"]), pct(pooled["auc_bound"])
    out["error_bounds"] = bounds
    return out


def _uniform_levels(total: np.ndarray, levels: int, rng: np.random.Generator) -> np.ndarray:
    """[n] pixel counts -> [n, levels] counts of pixels drawn uniformly over ``levels`` bins (a power of two):
    binomial halving, the exact multinomial distribution without drawing every pixel."""
    counts = np.asarray(total, dtype=np.int64)[:, None]
    while counts.shape[1] < levels:
        left = rng.binomial(counts, 0.5)
        counts = np.stack([left, counts - left], axis=-1).reshape(len(counts), -1)
    return counts


def baseline_histograms(n_true: np.ndarray, n_pixels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """[n, BASELINE_LEVELS + 1, 2] counts of the trivial maps: all-fake (every pixel 1), all-real (every pixel 0),
    random (every pixel uniform on {1/64, ..., 1}, independently, seeded)."""
    n_true = np.asarray(n_true, dtype=np.int64)
    n_real = np.asarray(n_pixels, dtype=np.int64) - n_true
    n, top = len(n_true), BASELINE_LEVELS
    out = {}
    for name, level in (("all-fake", top), ("all-real", 0)):
        h = np.zeros((n, top + 1, 2), dtype=np.int64)
        h[:, level, 0], h[:, level, 1] = n_real, n_true
        out[name] = h
    rng = np.random.default_rng(seed)
    h = np.zeros((n, top + 1, 2), dtype=np.int64)
    h[:, 1:, 0], h[:, 1:, 1] = _uniform_levels(n_real, top, rng), _uniform_levels(n_true, top, rng)
    out["random"] = h
    return out


def localization_baselines(stats: PixelStats, threshold: float, seed: int) -> dict[str, dict]:
    """Every localization metric (x100) of the all-fake, all-real and random maps on the same images and masks."""
    c = stats.counts
    lg = baseline_histograms(c["n_true"], c["n_pixels"], seed)
    grid = (int(np.log2(BASELINE_LEVELS)), 0)  # level j holds the value j / 64
    # "sm" needs the counts at the threshold only: a pixel of the random map is above it with probability `above`
    above = (BASELINE_LEVELS + 1 - cut_index(threshold, *grid, BASELINE_LEVELS)) / BASELINE_LEVELS
    rng = np.random.default_rng(seed + 1)
    n_true_sm, n_real_sm = c["n_true_sm"].astype(np.int64), (c["n_pixels_sm"] - c["n_true_sm"]).astype(np.int64)
    sm_positive = {"all-fake": (n_true_sm, n_real_sm) if threshold < 1 else (0 * n_true_sm, 0 * n_real_sm),
                   "all-real": (n_true_sm, n_real_sm) if threshold < 0 else (0 * n_true_sm, 0 * n_real_sm),
                   "random": (rng.binomial(n_true_sm, min(max(above, 0), 1)),
                              rng.binomial(n_real_sm, min(max(above, 0), 1)))}
    out = {}
    for name in lg:
        part = _from_histograms(lg[name], threshold, *grid)
        tp, fp = sm_positive[name]
        part["iou_sm"], part["pbca_sm"] = counts_iou_pbca(tp.astype(np.float64), tp + fp, n_true_sm,
                                                          c["n_pixels_sm"])
        curve = cut_iou(*cuts(lg[name])).mean(0) if len(lg[name]) else np.zeros(BASELINE_LEVELS + 2)
        base = PixelStats({k: part[k] for k in DOLOS_KEYS + PIXEL_KEYS}, {k: part[f"bound_{k}"] for k in BOUND_KEYS},
                          {k: part[k] for k in ("inter", "n_pred", "n_true", "n_pixels")}, lg[name].sum(0),
                          np.zeros((0, 1, 2)), curve, grid)
        summary = {k: float(np.mean(part[k]) * 100) if len(part[k]) else float("nan") for k in DOLOS_KEYS}
        pixel = summarize_pixel(base)
        summary.update({k: v for k, v in pixel.items() if k not in ("error_bounds", "grid", "n_ap", "n_auc")})
        out[name] = summary
    return out


def iou_by_area(area: np.ndarray, per_image: dict[str, np.ndarray], baseline_iou: np.ndarray | None = None,
                edges: Sequence[float] = AREA_EDGES) -> list[dict]:
    """Rows per mask-area bin (``area`` as a fraction of the image; bins in %, (lo, hi], the first one [0, hi]):
    the count and the mean of each metric (x100); ``baseline_iou``: the all-fake map's IoU (= the mask's area)."""
    pct = np.asarray(area, dtype=np.float64) * 100
    bins = np.clip(np.searchsorted(np.asarray(edges[1:-1], dtype=np.float64), pct, side="left"), 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        members = bins == b
        row = {"area_lo": edges[b], "area_hi": edges[b + 1], "count": int(members.sum())}
        for key in ("iou_lg", "iou_sm", "f1_lg", "ap_px", "oracle_iou_lg"):
            values = per_image[key][members]
            row[key] = float(np.nanmean(values) * 100) if np.isfinite(values).any() else float("nan")
        if baseline_iou is not None:
            values = baseline_iou[members]
            row["all_fake_iou"] = float(values.mean() * 100) if len(values) else float("nan")
        rows.append(row)
    return rows
