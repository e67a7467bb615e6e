"""The command line end to end on the built-in dataset, as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import TINY
from weakloc.cli import app

runner = CliRunner()
DATA = ["--layout", "builtin", "--set", f"data.builtin_images={TINY['n']}", "--set", f"data.builtin_size={TINY['size']}",
        "--set", f"data.builtin_seed={TINY['seed']}", "--set", "data.builtin_preset=quick", "--set", "data.input_size=48"]


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result


@pytest.fixture(scope="module")
def trained(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = invoke("train", "--out", out, "--setup", "C", "--root", tiny_root, *DATA, "--set", "train.epochs=2",
                    "--set", "train.iters_per_epoch=4", "--set", "train.batch_size=8", "--set", "train.precision=fp32")
    assert result.exit_code == 0, result.output
    return out / "best.safetensors"


def test_train_predict_evaluate_info(trained, tiny_root, tmp_path):
    result = invoke("info", trained)
    card = json.loads(result.output)
    assert result.exit_code == 0 and card["method"] == "patches" and card["setup"] == "C"

    result = invoke("predict", trained, "--out", tmp_path / "pred", "--root", tiny_root, *DATA)
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "pred" / "predictions.npz") as f:
        ids, scores, maps = list(f["ids"]), f["scores"], f["maps"]
    assert len(ids) == 24 and maps.shape == (24, 6, 6) and ((scores >= 0) & (scores <= 1)).all()  # 8 x 3 kinds

    result = invoke("evaluate", trained, "--out", tmp_path / "ev_ckpt", "--root", tiny_root, *DATA)
    assert result.exit_code == 0, result.output
    from_ckpt = json.loads((tmp_path / "ev_ckpt" / "metrics.json").read_text())
    result = invoke("evaluate", tmp_path / "pred" / "predictions.npz", "--out", tmp_path / "ev_npz", "--root",
                    tiny_root, *DATA)
    assert result.exit_code == 0, result.output
    from_npz = json.loads((tmp_path / "ev_npz" / "metrics.json").read_text())
    assert from_npz["localization"] == pytest.approx(from_ckpt["localization"])
    assert from_npz["detection"]["ap"] == pytest.approx(from_ckpt["detection"]["ap"])
    assert from_ckpt["n_local"] == 8 and "| iou_lg |" in result.output
    rows = (tmp_path / "ev_npz" / "per_image.csv").read_text().splitlines()
    assert len(rows) == 9 and rows[0].startswith("id,iou_lg,pbca_lg,iou_sm,pbca_sm")
    card = json.loads(invoke("info", trained).output)
    assert card["test_metrics"]["localization"] == pytest.approx(from_ckpt["localization"])


def test_evaluate_a_folder_of_heatmaps_from_an_external_localizer(tiny_root, tmp_path):
    masks = sorted((tiny_root / "builtin/photos-a/fake/repaint/masks/test").iterdir())
    (tmp_path / "heat").mkdir()
    for m in masks:  # a perfect external localizer: the mask itself, white = fake
        fake = np.asarray(Image.open(m).convert("L")) < 128
        Image.fromarray((fake * 255).astype(np.uint8)).save(tmp_path / "heat" / m.name)
    result = invoke("evaluate", tmp_path / "heat", "--out", tmp_path / "ev", "--root", tiny_root, *DATA)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["localization"]["iou_lg"] == pytest.approx(100.0)
    assert "detection" not in metrics  # heatmaps carry no image scores


def test_predict_on_image_files_and_bad_input(trained, tmp_path):
    Image.fromarray(np.full((30, 40), 128, np.uint8)).save(tmp_path / "gray.png")
    Image.fromarray(np.zeros((20, 20, 4), np.uint8)).save(tmp_path / "rgba.png")
    result = invoke("predict", trained, tmp_path / "gray.png", str(tmp_path / "*.png"), "--out", tmp_path / "p")
    assert result.exit_code == 0, result.output
    assert "3 images" in result.output  # one file, plus a glob matching both
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    result = invoke("predict", trained, tmp_path / "broken.png", "--out", tmp_path / "p2")
    assert result.exit_code == 2 and "broken.png" in result.output and "Traceback" not in result.output
    (tmp_path / "model.pt").write_bytes(b"\x80\x04pickle")
    result = invoke("predict", tmp_path / "model.pt", tmp_path / "gray.png")
    assert result.exit_code == 2 and "not a weakloc checkpoint" in result.output


def test_bad_data_options_are_one_clear_error(tmp_path):
    result = invoke("train", "--out", tmp_path / "r", "--root", tmp_path / "nothing")
    assert result.exit_code == 2 and "DOLOS dataset folder does not exist" in result.output
    result = invoke("train", "--out", tmp_path / "r", "--root", tmp_path, "--set", "train.lr_typo=1")
    assert result.exit_code == 2 and "unknown key(s) lr_typo" in result.output


@pytest.mark.slow
def test_demo_runs_another_builtin_experiment(tiny_root, tmp_path):
    """`weakloc demo --experiment NAME` (the main job's study is tests/experiment/test_study.py): the command-line
    overrides win over the file's per-run values."""
    cmd = [sys.executable, "-m", "weakloc.cli", "demo", "--experiment", "builtin-table2-patches", "--out",
           str(tmp_path / "demo"), "--data-root", str(tiny_root)]
    for key, value in (("data.builtin_images", TINY["n"]), ("data.builtin_size", TINY["size"]),
                       ("data.builtin_seed", TINY["seed"]), ("data.builtin_preset", "quick"), ("data.input_size", 48),
                       ("train.epochs", 1), ("train.iters_per_epoch", 2), ("train.batch_size", 8)):
        cmd += ["--set", f"{key}={value}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith("| A | label | full |")]
    assert table and "–" not in table[0]  # row A (PT x IoU, PBCA, AP) is filled
    assert "| C | mask | partial |" in proc.stdout
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert sorted(results) == ["patches-A", "patches-B", "patches-C"]
    for res in results.values():
        assert 0 <= res["localization"]["iou_lg"] <= 100 and res["n_local"] == 8
        assert len(res["history"]) == 1  # --set train.epochs=1 won over the file's epochs


def test_demo_paper_preset_asks_for_the_dataset():
    result = invoke("demo", "--preset", "paper")
    assert result.exit_code == 2 and "--data-root" in result.output
    result = invoke("demo", "--preset", "huge")
    assert result.exit_code == 2 and "default, quick, paper" in result.output