"""Pixel metrics beside the DOLOS pair: hand-made values, scikit-learn on random cases, the quantisation bounds,
oracle against brute force, threshold choice, baselines and area bins."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score, jaccard_score, roc_auc_score

from weakloc.evaluate.metrics import localization_scores
from weakloc.evaluate.pixel import (AREA_EDGES, LEVELS, best_threshold, grid_scale, iou_by_area, level_histograms,
                                    localization_baselines, pixel_statistics, ranking, summarize_pixel,
                                    to_common_grid)
from weakloc.predict.maps import resize_maps


def lg_map(m, shape):
    return resize_maps(torch.from_numpy(np.asarray(m, np.float32))[None], shape)[0].numpy()


def quantised(v, grid=None):
    """The levels of ``v`` on the image's own grid (its range in at most 1024 steps of 2^-e), or on ``grid``."""
    v = np.asarray(v, np.float32).astype(np.float64)
    if grid is None:
        e = int(grid_scale(v.min(), v.max()))
        return np.ceil(v * 2.0 ** e) - np.ceil(v.min() * 2.0 ** e)
    return np.clip(np.ceil(v * 2.0 ** grid[0]) - grid[1], 0, LEVELS)


def random_case(rng, n=24):
    """Maps of several sizes against masks of several native sizes; an empty and a full mask; tied values."""
    maps, masks = [], []
    for i in range(n):
        h = (37, 19, 8)[i % 3]
        mh, mw = ((64, 64), (40, 52), (19, 19))[i % 3]
        m = rng.random((h, h)).astype(np.float32)
        if i % 4 == 1:
            m = np.round(m * 4) / 4  # few distinct values: ties
        g = np.zeros((mh, mw), bool)
        y, x = rng.integers(0, mh // 2), rng.integers(0, mw // 2)
        g[y:y + rng.integers(2, mh // 2), x:x + rng.integers(2, mw // 2)] = True
        m = np.clip(m * 0.6 + 0.4 * lg_map(g.astype(np.float32), (h, h)), 0, 1)  # informative, not perfect
        maps.append(m)
        masks.append(g)
    masks[5][:] = False  # no manipulated pixel: no AP / AUC
    masks[7][:] = True  # no real pixel: AP defined, no AUC
    return maps, masks


def test_hand_made_values():
    mask = np.zeros((8, 8), bool)
    mask[:4] = True
    perfect = mask.astype(np.float32) * 0.9 + 0.05
    inverted = 1 - perfect
    constant = np.full((8, 8), 0.3, np.float32)
    half = np.where(mask, 0.2, 0.1).astype(np.float32)  # ranks perfectly, but below 0.5
    st = pixel_statistics([perfect, inverted, constant, half], [mask] * 4, 0.5)
    p = st.per_image
    assert p["ap_px"].tolist() == [1.0, 0.5, 0.5, 1.0]  # inverted: fake pixels last, precision 1/2 throughout
    assert p["auc_px"].tolist() == [1.0, 0.0, 0.5, 1.0]
    assert p["f1_lg"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert p["iou_lg"].tolist() == [1.0, 0.0, 0.0, 0.0]
    # oracle: the best threshold of each image; the constant map's best is "everything fake" (IoU 1/2)
    assert p["oracle_iou_lg"].tolist() == [1.0, 0.5, 0.5, 1.0]
    assert p["oracle_f1_lg"].tolist() == pytest.approx([1.0, 2 / 3, 2 / 3, 1.0])
    # fakes above reals, each class in one level: exact; a constant map could rank anyhow unquantised
    assert all(st.bounds[k][[0, 3]].max() == 0 for k in st.bounds)
    assert st.bounds["auc_px"][2] == 0.5


def test_agrees_with_sklearn_and_with_the_dolos_metrics():
    rng = np.random.default_rng(0)
    maps, masks = random_case(rng)
    bigs = [lg_map(m, g.shape).ravel() for m, g in zip(maps, masks)]
    for threshold in (0.5, 0.37):  # on the level grid and off it
        st = pixel_statistics(maps, masks, threshold)
        dolos = localization_scores(maps, masks, threshold)
        for key in dolos:
            assert np.array_equal(st.per_image[key], dolos[key]), key  # the same numbers, bit for bit
        for i, (big, g) in enumerate(zip(bigs, masks)):
            y, pred = g.ravel(), big > threshold
            assert st.per_image["f1_lg"][i] == pytest.approx(f1_score(y, pred, zero_division=1.0), abs=1e-12)
            assert st.per_image["iou_lg"][i] == pytest.approx(jaccard_score(y, pred, zero_division=1.0), abs=1e-12)
    for i, (big, g) in enumerate(zip(bigs, masks)):
        y, q = g.ravel(), quantised(big)
        if not y.any():
            assert np.isnan(st.per_image["ap_px"][i]) and np.isnan(st.per_image["auc_px"][i])
            continue
        # exact on the quantised map (ties are one level); on the raw map within the reported bound
        assert st.per_image["ap_px"][i] == pytest.approx(average_precision_score(y, q), abs=1e-12)
        assert abs(st.per_image["ap_px"][i] - average_precision_score(y, big)) <= st.bounds["ap_px"][i] + 1e-12
        if y.all():
            assert np.isnan(st.per_image["auc_px"][i])
            continue
        assert st.per_image["auc_px"][i] == pytest.approx(roc_auc_score(y, q), abs=1e-12)
        assert abs(st.per_image["auc_px"][i] - roc_auc_score(y, big)) <= st.bounds["auc_px"][i] + 1e-12
    y, q = np.concatenate([g.ravel() for g in masks]), quantised(np.concatenate(bigs), st.grid)
    summary = summarize_pixel(st)
    assert summary["ap_pooled"] == pytest.approx(100 * average_precision_score(y, q), abs=1e-9)
    assert summary["auc_pooled"] == pytest.approx(100 * roc_auc_score(y, q), abs=1e-9)
    assert summary["n_ap"] == len(maps) - 1 and summary["n_auc"] == len(maps) - 2
    assert summary["ap_px"] == pytest.approx(100 * np.nanmean(st.per_image["ap_px"]))


def test_bounds_hold_where_quantisation_hurts_most():
    """Two pixels at 0 and 1 stretch the image's grid to steps of 2^-10; all others sit inside one level."""
    g = np.zeros((32, 32), bool)
    g[:, :10] = True
    m = np.where(g, 0.5003, 0.5001).astype(np.float32)  # both in the level (512/1024, 513/1024]
    m[0, 0], m[31, 31] = 1.0, 0.0  # a fake pixel at 1, a real one at 0
    st = pixel_statistics([m], [g])
    ap, auc = st.per_image["ap_px"][0], st.per_image["auc_px"][0]
    assert st.steps[0] == 10
    assert auc == pytest.approx(0.5, abs=0.01) and ap < 0.4  # what the quantised map can tell: almost nothing
    assert roc_auc_score(g.ravel(), m.ravel()) == 1.0 and average_precision_score(g.ravel(), m.ravel()) == 1.0
    assert roc_auc_score(g.ravel(), m.ravel()) - auc <= st.bounds["auc_px"][0] + 1e-12
    assert average_precision_score(g.ravel(), m.ravel()) - ap <= st.bounds["ap_px"][0] + 1e-12
    assert 1.0 - st.per_image["oracle_iou_lg"][0] <= st.bounds["oracle_iou_lg"][0] + 1e-12  # 0.5002 separates
    # without the two outliers the image's own grid separates the values: exact
    m[0, 0], m[31, 31] = 0.5003, 0.5001
    st = pixel_statistics([m], [g])
    assert st.per_image["auc_px"][0] == 1.0 and st.per_image["ap_px"][0] == 1.0 and st.bounds["ap_px"][0] == 0


def test_a_narrow_map_gets_a_fine_grid():
    """A weak model's soft map spans 0.34-0.36: its own grid has steps of 2^-15, so AP and AUC are as exact as on
    the raw values, and the threshold chosen on such maps can fall between them."""
    rng = np.random.default_rng(5)
    g = np.zeros((48, 48), bool)
    g[10:30, 5:25] = True
    m = (0.35 + 0.01 * (rng.random((48, 48)) - 0.5) + 0.004 * g).astype(np.float32)
    st = pixel_statistics([m], [g])
    assert st.steps[0] >= 15
    assert st.per_image["auc_px"][0] == pytest.approx(roc_auc_score(g.ravel(), m.ravel()), abs=1e-4)
    assert st.per_image["ap_px"][0] == pytest.approx(average_precision_score(g.ravel(), m.ravel()), abs=1e-3)
    assert st.bounds["auc_px"][0] < 1e-3
    t, iou = best_threshold(st.iou_curve, st.grid)
    assert 0.345 < t < 0.356 and iou == pytest.approx(st.per_image["oracle_iou_lg"][0], abs=0.02)


def test_oracle_against_brute_force():
    rng = np.random.default_rng(1)
    maps, masks = random_case(rng, n=12)
    st = pixel_statistics(maps, masks)
    for i, (m, g) in enumerate(zip(maps, masks)):
        big = lg_map(m, g.shape).ravel()
        y = g.ravel()

        def best(values, cuts):
            ious, f1s = [], []
            for c in cuts:
                pred = values > c
                inter, union, both = (pred & y).sum(), (pred | y).sum(), pred.sum() + y.sum()
                ious.append(inter / union if union else 1.0)
                f1s.append(2 * inter / both if both else 1.0)
            return max(ious), max(f1s)

        q = quantised(big)
        grid = best(q, np.arange(-1, LEVELS + 1))  # every cut of the quantised map
        assert st.per_image["oracle_iou_lg"][i] == pytest.approx(grid[0], abs=1e-12)
        assert st.per_image["oracle_f1_lg"][i] == pytest.approx(grid[1], abs=1e-12)
        exact = best(big, np.r_[-1.0, np.unique(big)])  # every threshold of the raw map
        assert grid[0] <= exact[0] + 1e-12 <= grid[0] + st.bounds["oracle_iou_lg"][i] + 2e-12
        assert grid[1] <= exact[1] + 1e-12 <= grid[1] + st.bounds["oracle_f1_lg"][i] + 2e-12


def test_level_histograms_in_any_memory_order():
    rng = np.random.default_rng(2)
    values = (rng.random((5, 9, 7)) * 1.2 - 0.1).astype(np.float32)  # beyond [0, 1] as bicubic overshoots
    fake = rng.random((5, 9, 7)) < 0.3
    e = grid_scale(values.min(axis=(1, 2)), values.max(axis=(1, 2)))
    offset = np.ceil(values.min(axis=(1, 2)).astype(np.float64) * 2.0 ** e)
    expected = np.zeros((5, LEVELS + 1, 2), int)
    for i in range(5):
        q = (np.ceil(values[i].astype(np.float64) * 2.0 ** e[i]) - offset[i]).astype(int)
        np.add.at(expected[i], (q.ravel(), fake[i].ravel().astype(int)), 1)
    contiguous = level_histograms(values.copy(), fake, 2.0 ** e, offset)
    strided = level_histograms(np.ascontiguousarray(values.transpose(1, 0, 2)).transpose(1, 0, 2),
                               np.ascontiguousarray(fake.transpose(1, 0, 2)).transpose(1, 0, 2), 2.0 ** e, offset)
    assert np.array_equal(contiguous, expected) and np.array_equal(strided, expected)
    assert (e == 9).all()  # a range of 1.2 needs steps of 2^-9 to fit 1024 levels
    # moved to a common coarser grid: the counts of ceil(v * 2^8) - m', exactly
    common = to_common_grid(expected, e, offset, (8, -26))
    for i in range(5):
        q = (np.ceil(values[i].astype(np.float64) * 2.0 ** 8) + 26).astype(int)
        direct = np.zeros((LEVELS + 1, 2), int)
        np.add.at(direct, (q.ravel(), fake[i].ravel().astype(int)), 1)
        assert np.array_equal(common[i], direct)


def test_best_threshold_takes_the_middle_of_the_first_plateau():
    curve = np.zeros(LEVELS + 2)
    curve[101:201] = 0.9  # cuts 101..200 = thresholds 100/1024 .. 199/1024
    curve[500:510] = 0.9  # a later plateau of the same height
    t, iou = best_threshold(curve, (10, 0))
    assert iou == 0.9 and t == pytest.approx(150 / LEVELS)
    assert best_threshold(curve, (12, 400))[0] == pytest.approx((150 + 400) / 4096)  # another grid


def test_ranking_on_pooled_counts_matches_sklearn_with_weights():
    rng = np.random.default_rng(3)
    hist = rng.integers(0, 5, (LEVELS + 1, 2))
    scores = np.repeat(np.arange(LEVELS + 1), hist.sum(1))
    labels = np.concatenate([[0] * a + [1] * b for a, b in hist])
    out = ranking(hist[None])
    assert out["ap"][0] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert out["auc"][0] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_baselines():
    rng = np.random.default_rng(4)
    maps, masks = random_case(rng, n=30)
    st = pixel_statistics(maps, masks)
    area = np.array([g.mean() for g in masks])
    base = localization_baselines(st, 0.5, seed=0)
    fake, real, rand = base["all-fake"], base["all-real"], base["random"]
    assert fake["iou_lg"] == pytest.approx(100 * area.mean()) and fake["pbca_lg"] == pytest.approx(100 * area.mean())
    empty = np.array([not g.any() for g in masks])
    assert real["iou_lg"] == pytest.approx(100 * empty.mean())  # empty prediction of an empty mask: IoU 1
    assert real["pbca_lg"] == pytest.approx(100 * (1 - area).mean())
    defined = area > 0
    assert fake["ap_px"] == pytest.approx(100 * area[defined].mean())  # a constant map's AP is the prevalence
    assert fake["auc_px"] == real["auc_px"] == 50.0
    # random: each pixel above 0.5 with probability 1/2, so PBCA is about 50 and the AUC about 50
    assert abs(rand["pbca_lg"] - 50) < 2 and abs(rand["auc_px"] - 50) < 2
    assert abs(rand["ap_pooled"] - fake["ap_pooled"]) < 2
    assert localization_baselines(st, 0.5, seed=0) == base  # seeded
    assert localization_baselines(st, 0.5, seed=1)["random"] != rand


def test_iou_by_area_bins():
    area = np.array([0.0, 0.01, 0.011, 0.03, 0.5, 0.64, 0.65, 1.0])
    per = {k: np.arange(8) / 10 for k in ("iou_lg", "iou_sm", "f1_lg", "ap_px", "oracle_iou_lg")}
    rows = iou_by_area(area, per, area)
    counts = {(r["area_lo"], r["area_hi"]): r["count"] for r in rows}
    assert [(r["area_lo"], r["area_hi"]) for r in rows] == list(zip(AREA_EDGES[:-1], AREA_EDGES[1:]))
    assert counts[(0, 1)] == 2 and counts[(1, 2)] == 1 and counts[(2, 4)] == 1 and counts[(32, 64)] == 2
    assert counts[(64, 100)] == 2 and sum(counts.values()) == 8
    assert rows[0]["iou_lg"] == pytest.approx(5.0) and np.isnan(rows[3]["iou_lg"])  # (0 + 0.1) / 2 x 100; empty bin
    assert rows[-1]["all_fake_iou"] == pytest.approx(82.5)


def test_nan_maps_are_refused():
    m = np.full((4, 4), np.nan, np.float32)
    with pytest.raises(ValueError, match="NaN"):
        pixel_statistics([m], [np.zeros((4, 4), bool)])


def test_edge_thresholds_equal_the_dolos_metrics():
    """0 and 1 are on the level grid's edges (bicubic overshoots beyond them) and -0.1 is off it."""
    g = np.zeros((40, 40), bool)
    g[5:25, 10:30] = True
    m = np.zeros((10, 10), np.float32)
    m[1:6, 2:8] = 1.0  # a sharp step: bicubic overshoots above 1 and below 0 near it
    assert lg_map(m, g.shape).max() > 1 and lg_map(m, g.shape).min() < 0
    for threshold in (0.0, 1.0, -0.1):
        st = pixel_statistics([m], [g], threshold)
        dolos = localization_scores([m], [g], threshold)
        for key in dolos:
            assert np.array_equal(st.per_image[key], dolos[key]), (threshold, key)
