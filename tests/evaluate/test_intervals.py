"""Bootstrap intervals: the vectorised resampling against a plain loop, scikit-learn's AP / AUC with ties, and
coverage of a known mean at about the nominal rate."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from weakloc.evaluate.intervals import (bootstrap_means, detection_intervals, localization_intervals,
                                        percentile_interval, resample_weights, weighted_ap_auc)
from weakloc.evaluate.pixel import COARSE, pixel_statistics, ranking, summarize_pixel


def test_weighted_ap_auc_equals_sklearn_with_ties_and_weights():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(30), 1)  # many ties
    labels = rng.random(30) < 0.4
    weights = rng.integers(0, 4, (40, 30)).astype(float)  # how often each item was drawn
    weights[0] = 1.0
    weights[1] = labels * 2.0  # one class only: undefined
    ap, auc = weighted_ap_auc(scores, labels, weights)
    assert np.isnan(ap[1]) or ap[1] == 1.0
    assert np.isnan(auc[1])
    distinct = rng.random(30)  # no ties: the shortcut path
    ap2, auc2 = weighted_ap_auc(distinct, labels, weights)
    for i in [0] + list(range(2, 40)):
        w = weights[i]
        assert ap[i] == pytest.approx(average_precision_score(labels, scores, sample_weight=w), abs=1e-12)
        assert auc[i] == pytest.approx(roc_auc_score(labels, scores, sample_weight=w), abs=1e-12)
        assert ap2[i] == pytest.approx(average_precision_score(labels, distinct, sample_weight=w), abs=1e-12)
        assert auc2[i] == pytest.approx(roc_auc_score(labels, distinct, sample_weight=w), abs=1e-12)


def test_resample_weights_are_bootstrap_draws():
    w = resample_weights(7, 500, np.random.default_rng(0))
    assert w.shape == (500, 7) and (w.sum(1) == 7).all() and w.min() >= 0
    assert abs(w.mean() - 1) < 0.05  # each item drawn once per resample on average


def test_intervals_cover_a_known_mean_at_about_the_nominal_rate():
    """Per-image values from Beta(2, 5) (mean 2/7), 60 images, 200 seeds: a 95% interval should cover 2/7 in
    about 95% of the seeds (percentile bootstrap: a little under, for small samples)."""
    truth, covered, widths = 2 / 7, 0, []
    for seed in range(200):
        values = np.random.default_rng(10_000 + seed).beta(2, 5, size=60)
        lo, hi = bootstrap_means(values[:, None], 1000, seed)[0]
        covered += lo <= truth <= hi
        widths.append(hi - lo)
    assert 0.90 <= covered / 200 <= 0.99
    assert np.mean(widths) == pytest.approx(2 * 1.96 * np.sqrt(2 * 5 / (7 ** 2 * 8)) / np.sqrt(60), rel=0.1)


def test_nan_values_are_left_out_of_the_means():
    values = np.array([[0.2, np.nan], [0.4, 1.0], [0.6, 1.0]])
    found = bootstrap_means(values, 200, 0)
    assert 0.2 <= found[0, 0] <= found[0, 1] <= 0.6
    assert found[1].tolist() == [1.0, 1.0]


def _case(n=25, seed=0):
    rng = np.random.default_rng(seed)
    maps, masks = [], []
    for _ in range(n):
        g = np.zeros((24, 24), bool)
        y, x = rng.integers(0, 12, 2)
        g[y:y + rng.integers(2, 12), x:x + rng.integers(2, 12)] = True
        maps.append(np.clip(g * rng.random() + rng.random((24, 24)) * 0.6, 0, 1).astype(np.float32))
        masks.append(g)
    return maps, masks


def test_localization_intervals_equal_a_plain_resampling_loop():
    maps, masks = _case()
    st = pixel_statistics(maps, masks)
    found = localization_intervals(st, 300, seed=5)
    draws = np.random.default_rng(5).integers(0, len(maps), size=(300, len(maps)))  # the draws it makes
    per, c = st.per_image, st.counts
    plain = {"iou_lg": [], "ap_px": [], "iou_pooled": [], "ap_pooled": []}
    for idx in draws:
        plain["iou_lg"].append(per["iou_lg"][idx].mean() * 100)
        plain["ap_px"].append(np.nanmean(per["ap_px"][idx]) * 100)
        inter, n_pred, n_true = c["inter"][idx].sum(), c["n_pred"][idx].sum(), c["n_true"][idx].sum()
        plain["iou_pooled"].append(inter / (n_pred + n_true - inter) * 100)
        plain["ap_pooled"].append(ranking(st.coarse[idx].sum(0)[None])["ap"][0] * 100)
    for key, values in plain.items():
        section = "localization" if key == "iou_lg" else "pixel"
        assert found[section][key] == pytest.approx(percentile_interval(np.array(values)).tolist(), abs=1e-4), key
    point = summarize_pixel(st)
    for key in ("ap_px", "auc_px", "f1_lg", "iou_pooled", "auc_pooled", "oracle_iou_lg"):
        lo, hi = found["pixel"][key]
        assert lo <= point[key] + 0.5 and point[key] - 0.5 <= hi and lo < hi, key  # around the point estimate
    assert st.coarse.shape == (len(maps), COARSE + 1, 2)
    assert localization_intervals(st, 300, seed=5) == found  # seeded
    assert localization_intervals(st, 0, seed=5) == {}


def test_detection_intervals():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(80), np.ones(40)]
    scores = np.r_[rng.normal(0.4, 0.15, 80), rng.normal(0.6, 0.15, 40)]
    found = detection_intervals(scores, labels, 500, seed=0)
    auc = roc_auc_score(labels, scores) * 100
    acc = ((scores > 0.5) == labels).mean() * 100
    assert found["auc"][0] < auc < found["auc"][1] and found["acc"][0] < acc < found["acc"][1]
    assert 5 < found["auc"][1] - found["auc"][0] < 30
    assert 50 < found["ap"][0] < found["ap"][1] <= 100
    assert detection_intervals(scores, labels, 500, seed=0) == found
    assert detection_intervals(scores[:80], labels[:80], 500, seed=0) == {}  # no fakes: nothing to say
