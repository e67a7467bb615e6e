"""Verdict thresholds chosen on held-out data: the threshold rules on toy cases with known answers, and the
training loop writing the rule into the best checkpoint's card (setups B and C, with and without real images)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from conftest import tiny_train_config
from weakloc.data.cache import CachedImages
from weakloc.data.samples import select
from weakloc.predict.batch import predict_cache, preprocessing_of
from weakloc.train.calibrate import (VerdictRule, candidate_thresholds, choose_verdict, map_share, rates,
                                     threshold_balanced_accuracy, threshold_fakes_only, threshold_for_fpr)
from weakloc.train.checkpoint import load_checkpoint, read_card
from weakloc.train.loop import BEST_FILE, train


def _balanced_accuracy(values, labels, t):
    tpr, fpr = rates(values, labels, t)
    return (tpr + 1 - fpr) / 2


def test_balanced_accuracy_threshold_on_a_separable_toy_case_is_the_middle_of_the_gap():
    values = np.array([0.1, 0.2, 0.3, 0.35, 0.6, 0.7])
    labels = np.array([0, 0, 0, 1, 1, 1])
    t = threshold_balanced_accuracy(values, labels)
    assert t == pytest.approx(0.325)
    assert _balanced_accuracy(values, labels, t) == 1.0
    # the verdict is value > t: every real below, every fake above
    assert ((values > t) == labels.astype(bool)).all()


def test_balanced_accuracy_threshold_is_the_best_one_on_overlapping_random_scores():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n_real, n_fake = rng.integers(3, 40, size=2)
        values = np.concatenate([rng.normal(0.3, 0.15, n_real), rng.normal(0.5, 0.15, n_fake)])
        labels = np.concatenate([np.zeros(n_real), np.ones(n_fake)])
        t = threshold_balanced_accuracy(values, labels)
        # scikit-learn's ROC: the best balanced accuracy is (1 + max(TPR - FPR)) / 2
        fpr, tpr, _ = roc_curve(labels, values)
        assert _balanced_accuracy(values, labels, t) == pytest.approx((1 + (tpr - fpr).max()) / 2)
        # and no threshold on a dense grid does better
        grid = np.linspace(values.min() - 0.1, values.max() + 0.1, 2001)
        assert _balanced_accuracy(values, labels, t) >= _balanced_accuracy(values, labels, grid).max() - 1e-12


def test_target_fpr_threshold_is_the_lowest_one_meeting_the_target():
    reals = np.arange(20) * 0.05  # 0.00 ... 0.95
    fakes = np.array([0.5, 0.97, 0.99])
    values = np.concatenate([reals, fakes])
    labels = np.concatenate([np.zeros(20), np.ones(3)])
    t = threshold_for_fpr(values, labels, 0.1)  # at most 2 of the 20 reals above: between 0.85 and 0.90
    assert t == pytest.approx(0.875)
    tpr, fpr = rates(values, labels, t)
    assert fpr == pytest.approx(0.1) and tpr == pytest.approx(2 / 3)
    assert threshold_for_fpr(values, labels, 0.0) == pytest.approx(0.96)  # above every real
    assert threshold_for_fpr(values, labels, 0.5) == pytest.approx(0.475)  # 10 reals above, 0.5 still fake


def test_fakes_only_threshold_keeps_95_percent_of_the_fakes_and_never_goes_below_zero():
    fakes = np.linspace(0.05, 1.0, 20)
    t = threshold_fakes_only(fakes)
    assert t == pytest.approx(0.075) and (fakes > t).mean() == 0.95
    assert threshold_fakes_only(np.array([0.0] * 5 + [0.2] * 15)) == 0.0  # "any pixel marked", not "all fake"


def test_candidates_cover_all_fake_and_all_real():
    c = candidate_thresholds(np.array([0.2, 0.2, 0.4]))
    assert c[0] < 0.2 and c[1] == pytest.approx(0.3) and c[-1] == 0.4


def test_map_share_and_the_rule_of_a_card():
    maps = np.zeros((2, 4, 4), np.float32)
    maps[0, :2] = 0.9  # half the pixels
    maps[1, 0, 0] = 0.51
    assert map_share(maps).tolist() == [0.5, 1 / 16]
    rule = VerdictRule.from_card({"verdict": {"statistic": "map_share", "threshold": 0.1, "pixel_threshold": 0.5,
                                              "origin": "chosen by a test"}})
    assert rule.calibrated and rule.is_fake(rule.value(0.01, maps[0])) and not rule.is_fake(rule.value(0.9, maps[1]))
    assert "chosen by a test" in rule.describe() and "calibrated" in rule.describe()
    old = VerdictRule.from_card({})  # a card written before calibration existed
    assert not old.calibrated and old.statistic == "score" and old.threshold == 0.5
    assert old.is_fake(0.51) and not old.is_fake(0.49) and "uncalibrated" in old.describe()


def test_choose_verdict_records_the_rule_its_figures_and_the_fallback_without_reals():
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.45])
    shares = np.array([0.0, 0.0, 0.01, 0.2, 0.3, 0.4])
    labels = np.array([0, 0, 0, 1, 1, 1])
    v = choose_verdict(scores, shares, labels, statistic="map_share", data="somewhere")
    assert v["rule"] == "balanced_accuracy" and v["threshold"] == pytest.approx(0.105)
    assert v["balanced_accuracy"] == 1.0 and v["score_at_0.5"]["balanced_accuracy"] == 0.5  # 0.5 calls all real
    assert "valid split of somewhere (3 real, 3 fake images)" in v["origin"] and v["note"] is None
    v = choose_verdict(scores, shares, labels, statistic="score", target_fpr=0.0)
    assert v["rule"] == "fpr" and v["threshold"] == pytest.approx(0.325) and v["target_fpr"] == 0.0
    fakes = labels == 1
    v = choose_verdict(scores[fakes], shares[fakes], labels[fakes], statistic="map_share", target_fpr=0.05)
    assert v["rule"] == "fakes_only" and v["fpr"] is None and v["balanced_accuracy"] is None
    assert "no real images" in v["note"] and "0.05 needs real images" in v["note"]
    assert "false-positive rate is unknown" in v["origin"]


# ---------------------------------------------------------------- the training loop writes it


@pytest.mark.parametrize("setup", ["B", "C"])
def test_training_writes_the_verdict_chosen_on_the_validation_split(tiny_data, tmp_path, setup, one_thread):
    data, samples = tiny_data
    result = train(tmp_path / "run", data, tiny_train_config(setup=setup, epochs=2, iters_per_epoch=3, batch_size=8),
                   samples, progress=False)
    card = read_card(result.best_checkpoint)
    verdict = card["verdict"]
    assert verdict["statistic"] == ("score" if setup == "B" else "map_share")
    assert verdict["rule"] == "balanced_accuracy" and verdict["by"] == "training" and verdict["split"] == "valid"
    # setup C trains on fakes only, yet the split's real images are used to calibrate
    assert (verdict["n_real"], verdict["n_fake"]) == (4, 4) and verdict["history"] == []
    assert "photos-a (repaint)" in verdict["data"] and "end of training" in verdict["origin"]
    best_epoch = min(result.history, key=lambda h: h["val_loss"])["epoch"]
    assert read_card(tmp_path / "run" / f"epoch-{best_epoch:03d}.safetensors")["verdict"] == verdict

    # the same threshold from the prediction code path, on the best weights
    model, _ = load_checkpoint(result.best_checkpoint)
    valid = select(samples, "valid", ["real", "local"])
    scores, maps = predict_cache(model, CachedImages.build(valid, preprocessing_of(card), progress=False),
                                 progress=False)
    labels = np.array([s.label for s in valid])
    again = choose_verdict(scores, map_share(maps), labels, statistic=verdict["statistic"])
    assert again["threshold"] == pytest.approx(verdict["threshold"], abs=1e-6)
    assert again["balanced_accuracy"] == pytest.approx(verdict["balanced_accuracy"])


def test_setup_c_without_any_real_image_falls_back_to_the_fakes_only_rule(tiny_data, tmp_path, one_thread):
    data, samples = tiny_data
    fakes_only = [s for s in samples if s.kind != "real"]
    result = train(tmp_path / "run", data, tiny_train_config(setup="C", epochs=1, iters_per_epoch=2, batch_size=8),
                   fakes_only, progress=False)
    verdict = read_card(tmp_path / "run" / BEST_FILE)["verdict"]
    assert verdict["rule"] == "fakes_only" and verdict["n_real"] == 0 and verdict["fpr"] is None
    assert "no real images" in verdict["note"]
    assert verdict["threshold"] >= 0.0
