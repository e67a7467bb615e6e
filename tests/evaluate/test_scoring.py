"""Scoring a test split: the threshold chosen on held-out data (never on the test split), the files written,
the report's tables; saved predictions and a (stand-in) checkpoint."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import make_dolos
from weakloc.cli import app
from weakloc.config import DataConfig, EvalConfig
from weakloc.data.images import read_mask
from weakloc.data.load import load_samples
from weakloc.errors import ConfigError, InputError
from weakloc.evaluate import scoring
from weakloc.evaluate.report import write_results
from weakloc.experiment.report import experiment_markdown, more_metrics_markdown
from weakloc.predict.saved import Predictions

# On valid, fakes are drawn at 0.3 and reals at 0.1: the best thresholds lie in [0.1, 0.3).
# On test, fakes are at 0.7 and reals at 0.5: the best ones lie in [0.5, 0.7), and 0.1-0.3 marks every pixel fake.
LEVELS = {"valid": (0.3, 0.1), "test": (0.7, 0.5)}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = make_dolos(tmp_path_factory.mktemp("score"), per_split=6, size=32)
    return load_samples(DataConfig(layout="dolos", root=str(root), dataset="mine", local=["repaint"]))


def split_predictions(samples, split) -> Predictions:
    """Maps at the masks' size (no resize): fake pixels at one value, real pixels at another."""
    fake_value, real_value = LEVELS[split]
    rng = np.random.default_rng(0)
    chosen = [s for s in samples if s.split == split and s.kind in ("real", "local")]
    maps, scores = [], []
    for s in chosen:
        mask = read_mask(s.mask_path) if s.mask_path else np.zeros((32, 32), bool)
        maps.append(np.where(mask, fake_value, real_value).astype(np.float32))
        scores.append(0.2 + 0.6 * (s.kind == "local") + 0.1 * rng.random())
    return Predictions([s.id for s in chosen], np.array(scores), np.stack(maps))


def test_threshold_from_saved_validation_predictions_is_never_chosen_on_test(dataset, tmp_path):
    data, samples = dataset
    split_predictions(samples, "valid").save_npz(tmp_path / "valid.npz")
    cfg = EvalConfig(threshold_from=str(tmp_path / "valid.npz"), bootstrap=200)
    result = scoring.evaluate_predictions(split_predictions(samples, "test"), samples, data, cfg)
    source = result["threshold_source"]
    assert source["origin"] == "valid" and source["n_images"] == 6 and source["predictions"].endswith("valid.npz")
    assert 0.1 <= result["threshold"] < 0.3  # the validation optimum; the test's would be in [0.5, 0.7)
    assert source["mean_iou_lg"] == pytest.approx(100.0)
    # applied to test: every pixel is above it, so IoU lg is the masks' area (the all-fake map's score)
    area = np.array([row["mask_area"] for row in result["per_image"]])
    assert result["localization"]["iou_lg"] == pytest.approx(100 * area.mean())
    assert result["localization"]["iou_lg"] == pytest.approx(result["baselines"]["localization"]["all-fake"]["iou_lg"])
    # what tuning on the test split would have reported: the oracle, labelled so
    assert result["pixel"]["oracle_iou_lg_dataset"] == pytest.approx(100.0)
    assert 0.5 <= result["pixel"]["oracle_threshold_dataset"] < 0.7
    given = scoring.evaluate_predictions(split_predictions(samples, "test"), samples, data, EvalConfig(bootstrap=0))
    assert given["threshold_source"] == {"origin": "given", "threshold": 0.5} and "intervals" not in given
    assert given["localization"]["iou_lg"] == pytest.approx(100.0)  # 0.5 happens to separate the test maps


def test_threshold_from_valid_with_a_checkpoint_predicts_only_the_validation_split(dataset, tmp_path, monkeypatch):
    data, samples = dataset
    calls = []

    def fake_predict(model, card, chosen, **kwargs):
        calls.append({s.split for s in chosen})
        split = next(iter(calls[-1])) if len(calls[-1]) == 1 else "test"
        by_id = split_predictions(samples, "valid" if split == "valid" else "test")
        order = [by_id.ids.index(s.id) for s in chosen]
        return Predictions([s.id for s in chosen], by_id.scores[order], by_id.maps[order])

    monkeypatch.setattr(scoring, "load_checkpoint", lambda path, device: (torch.nn.Linear(1, 1), {}))
    monkeypatch.setattr(scoring, "predict_samples", fake_predict)
    monkeypatch.setattr(scoring, "update_card", lambda path, **fields: fields)
    cfg = EvalConfig(threshold_from="valid", bootstrap=100)
    summary = scoring.evaluate_checkpoint(tmp_path / "x.safetensors", data, samples, cfg, tmp_path / "ev")
    assert calls[0] == {"valid"} and calls[1] == {"test"}  # the threshold is chosen before any test image is seen
    assert 0.1 <= summary["threshold"] < 0.3 and summary["threshold_source"]["predictions"] == "checkpoint"
    assert (tmp_path / "ev" / "predictions-valid.npz").is_file()
    md = (tmp_path / "ev" / "metrics.md").read_text()
    assert "chosen on the validation split" in md and "the test split did not choose it" in md


def test_threshold_from_refusals(dataset, tmp_path):
    data, samples = dataset
    test = split_predictions(samples, "test")
    with pytest.raises(ConfigError, match="--threshold-from valid predicts the validation split"):
        scoring.evaluate_predictions(test, samples, data, EvalConfig(threshold_from="valid"))
    with pytest.raises(InputError, match="no such file"):
        scoring.evaluate_predictions(test, samples, data, EvalConfig(threshold_from=str(tmp_path / "none.npz")))
    test.save_npz(tmp_path / "test.npz")  # the test split's own predictions cannot choose the threshold
    with pytest.raises(InputError, match="do not cover the validation split"):
        scoring.evaluate_predictions(test, samples, data, EvalConfig(threshold_from=str(tmp_path / "test.npz")))
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "test.npz"), "--root", data.root, "--layout",
                                      "dolos", "--local", "repaint", "--threshold-from", "valid",
                                      "--out", str(tmp_path / "ev")])
    assert result.exit_code == 2 and "--threshold-from valid predicts the validation split" in result.output
    assert not (tmp_path / "ev").exists()


def test_cli_writes_every_table_and_figure(dataset, tmp_path):
    data, samples = dataset
    split_predictions(samples, "valid").save_npz(tmp_path / "valid.npz")
    split_predictions(samples, "test").save_npz(tmp_path / "test.npz")
    out = tmp_path / "ev"
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "test.npz"), "--root", data.root, "--layout",
                                      "dolos", "--local", "repaint", "--threshold-from", str(tmp_path / "valid.npz"),
                                      "--set", "evaluate.bootstrap=200", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["threshold_source"]["origin"] == "valid" and metrics["intervals"]["resamples"] == 200
    for key in ("iou_lg", "pbca_lg", "iou_sm", "pbca_sm"):
        lo, hi = metrics["intervals"]["localization"][key]
        assert lo <= metrics["localization"][key] <= hi
    assert set(metrics["intervals"]["detection"]) == {"ap", "auc", "acc"}
    assert metrics["baselines"]["detection"]["all-fake"]["ap"] == 50.0  # chance AP on balanced subsamples
    header = (out / "per_image.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["id", "iou_lg", "pbca_lg", "iou_sm", "pbca_sm"] and "mask_area" in header
    assert {"f1_lg", "ap_px", "auc_px", "oracle_iou_lg", "oracle_f1_lg"} <= set(header)
    areas = (out / "iou_vs_area.csv").read_text().splitlines()
    assert areas[0].startswith("area_lo,area_hi,count,iou_lg") and len(areas) == 9
    assert sum(int(line.split(",")[2]) for line in areas[1:]) == 6
    assert (out / "iou_vs_area.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    baselines = (out / "baselines.csv").read_text().splitlines()
    assert len(baselines) == 7 and baselines[1].startswith("localization,all-fake,")
    md = (out / "metrics.md").read_text()
    assert "| iou_lg |" in md and "ORACLE" in md and " ± " in md and "all-fake map" in md
    assert "Threshold" in result.output and "| ap |" in result.output


def _run(threshold=0.5, iou=40.0, base=10.0):
    return {"method": "patches", "setup": "C", "threshold": threshold,
            "threshold_source": {"origin": "given" if threshold == 0.5 else "valid", "threshold": threshold},
            "localization": {"iou_lg": iou, "pbca_lg": 80.0, "iou_sm": iou, "pbca_sm": 80.0},
            "pixel": {"f1_lg": 50.0, "ap_px": 60.0, "auc_px": 90.0, "iou_pooled": 41.0, "oracle_iou_lg": 55.0,
                      "oracle_f1_lg": 65.0},
            "intervals": {"localization": {"iou_lg": [38.0, 42.0]}, "pixel": {"ap_px": [57.0, 63.0]}},
            "baselines": {"localization": {"all-fake": {"iou_lg": base}, "all-real": {"iou_lg": 0.0},
                                           "random": {"iou_lg": base - 1}}}}


def test_experiment_report_keeps_table2_and_adds_a_second_table():
    exp = SimpleNamespace(name="t", description="", table="table2", data={})
    results = {"patches-C": _run(), "patches-C2": _run(iou=45.0)}
    text = experiment_markdown(exp, results)
    assert "## Table 2 (IoU, PBCA at threshold 0.5," in text and "## All runs\n" in text
    assert "| C | mask | partial |" in text
    more = more_metrics_markdown(results)
    assert "| patches-C | 0.5 (given) | 40.0 ± 2.0 | 50.0 | 60.0 ± 3.0 |" in more
    assert more.count("| baseline: all-fake map |") == 1  # the runs share test set and threshold: printed once
    assert "| baseline: all-fake map | – | 10.0 |" in more
    different = more_metrics_markdown({"a": _run(), "b": _run(threshold=0.25, base=20.0)})
    assert "| baseline: all-fake map (for a) |" in different and "0.25 (valid)" in different
    assert "at each run's threshold" in experiment_markdown(exp, {"a": _run(), "b": _run(threshold=0.25)})
    assert more_metrics_markdown({"old": {k: v for k, v in _run().items() if k != "pixel"}}) == ""
    sm_only = _run()  # methods with other map sizes differ only in the "sm" columns, which the table does not show
    sm_only["baselines"]["localization"]["all-fake"]["iou_sm"] = 14.8
    assert more_metrics_markdown({"a": _run(), "b": sm_only}).count("| baseline: all-fake map") == 1


def test_write_results_without_detection_or_intervals(tmp_path):
    result = {"localization": {"iou_lg": 50.0, "pbca_lg": 90.0, "iou_sm": 50.0, "pbca_sm": 90.0}, "n_local": 3,
              "threshold": 0.5, "per_image": [{"id": "a", "iou_lg": 0.5}]}
    write_results(result, tmp_path)
    md = (tmp_path / "metrics.md").read_text()
    assert "Threshold 0.5 (given)." in md and "| iou_lg |" in md and "±" not in md
    assert not (tmp_path / "iou_vs_area.png").exists()


def test_evaluating_a_checkpoint_uses_the_disk_cache_when_one_is_set(trained_checkpoint, tiny_data, tmp_path):
    import dataclasses

    from weakloc.config import EvalConfig
    from weakloc.evaluate.scoring import evaluate_checkpoint

    data, samples = tiny_data
    cached = dataclasses.replace(data, cache_dir=str(tmp_path / "cache"))
    first = evaluate_checkpoint(trained_checkpoint, cached, samples, EvalConfig(), tmp_path / "ev1", progress=False)
    assert any((tmp_path / "cache").rglob("*"))  # the decoded test images went to the disk cache
    again = evaluate_checkpoint(trained_checkpoint, cached, samples, EvalConfig(), tmp_path / "ev2", progress=False)
    assert again["localization"] == first["localization"]  # read back from the cache, same numbers


def test_a_checkpoint_with_a_calibrated_verdict_reports_its_accuracy_beside_the_one_at_0_5(trained_checkpoint,
                                                                                           tiny_data, tmp_path):
    import shutil

    from weakloc.evaluate.scoring import evaluate_checkpoint
    from weakloc.train.checkpoint import update_card

    data, samples = tiny_data
    path = tmp_path / "model.safetensors"
    shutil.copyfile(trained_checkpoint, path)
    update_card(path, verdict={"statistic": "score", "threshold": 0.0, "pixel_threshold": None,
                               "origin": "by the test: every image is called fake"})
    summary = evaluate_checkpoint(path, data, samples, EvalConfig(), tmp_path / "ev", progress=False)
    det = summary["detection"]
    # everything called fake: the accuracy is the share of fakes among the test images
    assert det["acc_verdict"] == pytest.approx(100 * det["n_fake"] / (det["n_fake"] + det["n_real"]))
    assert det["verdict"] == "score > 0"
    assert "own verdict (score > 0" in (tmp_path / "ev" / "metrics.md").read_text()

    with np.load(tmp_path / "ev" / "predictions.npz") as f:
        scores = f["scores"]
    middle = float(np.median(scores))
    update_card(path, verdict={"statistic": "score", "threshold": middle, "pixel_threshold": None, "origin": "test"})
    again = evaluate_checkpoint(path, data, samples, EvalConfig(), tmp_path / "ev2", progress=False)["detection"]
    labels = np.r_[np.zeros(det["n_real"]), np.ones(det["n_fake"])]  # reals first, as predicted
    assert again["acc_verdict"] == pytest.approx(100 * np.mean((scores > middle) == labels))
