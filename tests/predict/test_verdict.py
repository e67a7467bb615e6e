"""The calibrated verdict where users see it: the Python API, `weakloc predict`, the web server's answer and
`weakloc calibrate`; a card without a calibrated threshold behaves as before (score > 0.5, "uncalibrated")."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import weakloc
from conftest import TINY
from weakloc.cli import app
from weakloc.serve.app import predict_bytes
from weakloc.train.checkpoint import read_card, update_card

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoint-v0.1"


@pytest.fixture
def checkpoint(trained_checkpoint, tmp_path) -> Path:
    """A copy of the tiny setup-C model (its card is rewritten by the tests)."""
    path = tmp_path / "model.safetensors"
    shutil.copyfile(trained_checkpoint, path)
    return path


def _image(tiny_root: Path) -> Path:
    return tiny_root / "builtin/photos-a/fake/repaint/images/test/test-00002.png"


def _set_score_threshold(path: Path, threshold: float) -> None:
    update_card(path, verdict={"statistic": "score", "threshold": threshold, "pixel_threshold": None,
                               "rule": "balanced_accuracy", "origin": "chosen by the test on its own images"})


def _lowest_scoring(checkpoint: Path, tiny_root: Path) -> Path:
    """The test image (real or RePaint fake) this model scores lowest: a score under 0.5 to calibrate below."""
    test = tiny_root / "builtin/photos-a"
    paths = sorted(test.glob("real/images/test/*.png")) + sorted(test.glob("fake/repaint/images/test/*.png"))
    results = weakloc.load(checkpoint, device="cpu").predict(paths)
    return min(zip(paths, results), key=lambda pair: pair[1].score)[0]


def test_a_score_below_0_5_but_above_the_calibrated_threshold_is_called_fake(checkpoint, tiny_root, tmp_path):
    image = _lowest_scoring(checkpoint, tiny_root)
    score = weakloc.load(checkpoint, device="cpu").predict(image).score
    assert score < 0.5  # setup C: the mean of the map
    _set_score_threshold(checkpoint, score - 1e-4)
    result = weakloc.load(checkpoint, device="cpu").predict(image)
    assert result.score == score  # the paper's score is unchanged
    assert result.is_fake and result.verdict == "fake" and result.verdict_value == pytest.approx(score)
    assert result.verdict_rule.calibrated and "chosen by the test on its own images" in result.verdict_rule.describe()

    # `weakloc predict`: summary.json names the rule, summary.csv carries the verdict and the rule on each row
    out = tmp_path / "out"
    run = CliRunner().invoke(app, ["predict", str(checkpoint), str(image), "--out", str(out),
                                   "--device", "cpu"])
    assert run.exit_code == 0, run.output
    assert "FAKE" in run.output and "verdict: fake when score > " in run.output and "chosen by the test" in run.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict_rule"]["calibrated"] and "chosen by the test" in summary["verdict_rule"]["text"]
    assert summary["images"][0]["verdict"] == "fake" and summary["images"][0]["fake"] is True
    with open(out / "summary.csv") as f:
        row = next(csv.DictReader(f))
    assert row["verdict"] == "fake" and "chosen by the test" in row["verdict_rule"]

    # the web server's answer says the same, and which rule made it
    answer = predict_bytes(weakloc.load(checkpoint, device="cpu"), image.read_bytes())
    assert answer["verdict"] == "fake" and answer["is_fake"] and answer["score"] == pytest.approx(score)
    assert answer["verdict_rule"]["calibrated"] and "chosen by the test" in answer["verdict_rule"]["text"]

    _set_score_threshold(checkpoint, score + 1e-4)
    assert weakloc.load(checkpoint, device="cpu").predict(image).verdict == "real"


def test_a_map_share_rule_counts_the_models_map(checkpoint, tiny_root):
    detector = weakloc.load(checkpoint, device="cpu")
    result = detector.predict(_image(tiny_root))
    share = float((result.model_map > 0.5).mean())
    for threshold, verdict in ((share - 1e-6, "fake"), (share, "real")):
        update_card(checkpoint, verdict={"statistic": "map_share", "threshold": threshold, "pixel_threshold": 0.5,
                                         "origin": "by hand"})
        again = weakloc.load(checkpoint, device="cpu").predict(_image(tiny_root))
        assert again.verdict_value == pytest.approx(share) and again.verdict == verdict
        assert again.score == result.score and "share of map pixels above 0.5" in again.verdict_rule.describe()


def test_an_old_card_without_a_verdict_behaves_as_before():
    detector = weakloc.load(FIXTURE / "patches-C.safetensors", device="cpu")
    assert "verdict" not in detector.card
    results = detector.predict([FIXTURE / "rgb-80x60.png", FIXTURE / "photo-70x90.jpg"])
    for r in results:
        assert r.is_fake == (r.score > 0.5) and not r.verdict_rule.calibrated
        assert "uncalibrated" in r.verdict_rule.describe()
    low = detector.predict(FIXTURE / "rgb-80x60.png", threshold=0.0)  # today's rule: score > the threshold given
    assert low.is_fake == (low.score > 0.0)
    answer = predict_bytes(detector, (FIXTURE / "rgb-80x60.png").read_bytes())
    assert answer["verdict_rule"]["calibrated"] is False and "uncalibrated" in answer["verdict_rule"]["text"]


def _data_options(tiny_root: Path) -> list[str]:
    return ["--layout", "builtin", "--root", str(tiny_root), "--set", f"data.builtin_images={TINY['n']}",
            "--set", f"data.builtin_size={TINY['size']}", "--set", f"data.builtin_seed={TINY['seed']}",
            "--set", "data.builtin_preset=quick"]


def test_calibrate_command_updates_the_card_and_reports_old_to_new(checkpoint, tiny_root):
    trained = read_card(checkpoint)["verdict"]
    assert trained["by"] == "training" and trained["statistic"] == "map_share"
    run = CliRunner().invoke(app, ["calibrate", str(checkpoint), "--fpr", "0.25", "--split", "test", "--device", "cpu",
                                   *_data_options(tiny_root)])
    assert run.exit_code == 0, run.output
    card = read_card(checkpoint)
    verdict = card["verdict"]
    assert verdict["rule"] == "fpr" and verdict["target_fpr"] == 0.25 and verdict["split"] == "test"
    assert verdict["fpr"] <= 0.25 and (verdict["n_real"], verdict["n_fake"]) == (8, 8)
    assert verdict["by"] == "weakloc calibrate" and "test split" in verdict["origin"]
    assert f"verdict threshold {trained['threshold']:.4g} (map_share) -> {verdict['threshold']:.4g} (map_share)" \
        in run.output
    assert "old: " in run.output and "new: " in run.output and "optimistic" in run.output  # the test-split warning
    # the previous value is kept, not lost
    assert verdict["history"] == [{k: v for k, v in trained.items() if k != "history"}]
    assert json.loads(checkpoint.with_suffix(".json").read_text())["verdict"] == verdict  # the sidecar card too
    assert weakloc.load(checkpoint, device="cpu").verdict_rule().threshold == verdict["threshold"]

    # the score statistic on request; the history grows
    run = CliRunner().invoke(app, ["calibrate", str(checkpoint), "--statistic", "score", "--device", "cpu",
                                   *_data_options(tiny_root)])
    assert run.exit_code == 0, run.output
    verdict = read_card(checkpoint)["verdict"]
    assert verdict["statistic"] == "score" and verdict["rule"] == "balanced_accuracy"
    assert [h["rule"] for h in verdict["history"]] == ["balanced_accuracy", "fpr"]


def test_calibrate_an_old_card_and_bad_options(tiny_root, tmp_path):
    path = tmp_path / "old.safetensors"
    shutil.copyfile(FIXTURE / "patches-C.safetensors", path)
    run = CliRunner().invoke(app, ["calibrate", str(path), "--device", "cpu", *_data_options(tiny_root)])
    assert run.exit_code == 0, run.output
    assert "verdict threshold none (uncalibrated: score > 0.5) -> " in run.output
    assert read_card(path)["verdict"]["history"] == []
    for bad, message in ((["--fpr", "1.5"], "false-positive rate must be in [0, 1)"),
                         (["--statistic", "median"], "verdict statistic must be one of score, map_share"),
                         (["--split", "nope"], "no local fakes in split 'nope'")):
        run = CliRunner().invoke(app, ["calibrate", str(path), "--device", "cpu", *_data_options(tiny_root), *bad])
        assert run.exit_code == 2 and message in run.output, run.output
