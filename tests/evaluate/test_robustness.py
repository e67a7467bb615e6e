"""Robustness evaluation (evaluate/robustness.py, `weakloc evaluate --perturb`, experiment `[evaluate] perturb`)."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import TINY, make_dolos
from weakloc.cli import app
from weakloc.config import DataConfig, EvalConfig
from weakloc.data.images import read_mask, read_rgb, write_mask
from weakloc.data.load import load_samples
from weakloc.data.perturb import parse_perturbations
from weakloc.errors import ConfigError
from weakloc.evaluate.robustness import evaluate_robustness
from weakloc.evaluate import scoring
from weakloc.files import save_image
from weakloc.predict.batch import predict_samples
from weakloc.train.checkpoint import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models run fastest on one thread

SPECS = ["jpeg:95,75,50", "resize:0.75,0.5", "blur:1,2", "noise:3,7", "chain:social"]
LEVELS = [("none", ""), ("jpeg", "95"), ("jpeg", "75"), ("jpeg", "50"), ("resize", "0.75"), ("resize", "0.5"),
          ("blur", "1"), ("blur", "2"), ("noise", "3"), ("noise", "7"), ("chain", "social")]


@pytest.fixture()
def checkpoint(trained_checkpoint, tmp_path):
    """A private copy (evaluate writes the test metrics into the card)."""
    return shutil.copy(trained_checkpoint, tmp_path / "model.safetensors")


@pytest.fixture()
def dolos(tmp_path):
    return make_dolos(tmp_path / "data", "mine", local=("repaint",), per_split=4, size=32)


def data_args(root):
    return ["--layout", "dolos", "--root", str(root), "--dataset", "mine", "--local", "repaint"]


def file_states(root):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*")) if p.is_file()}


def test_cli_writes_a_table_and_a_plot_per_perturbation_and_level(checkpoint, dolos, tmp_path):
    before = file_states(dolos)
    out, cache = tmp_path / "ev", tmp_path / "cache"
    args = ["evaluate", str(checkpoint), "--out", str(out), *data_args(dolos), "--set", f"data.cache_dir={cache}"]
    for spec in SPECS:
        args += ["--perturb", spec]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "| perturbation | level |" in result.output
    # the clean metrics first, then the robustness table that compares against them
    assert result.output.index("results: ") < result.output.index("| perturbation | level |")

    folder = out / "robustness"
    with open(folder / "robustness.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["perturbation"], r["level"]) for r in rows] == LEVELS
    assert all(r["n_local"] == "4" and r["iou_lg"] and r["ap"] for r in rows)
    summary = json.loads((folder / "robustness.json").read_text())
    clean = json.loads((out / "metrics.json").read_text())
    assert summary["rows"][0]["iou_lg"] == pytest.approx(clean["localization"]["iou_lg"])
    assert summary["rows"][0]["ap"] == pytest.approx(clean["detection"]["ap"])
    assert set(summary["definitions"]) == {f"{k}:{v}" for k, v in LEVELS[1:]}
    md = (folder / "robustness.md").read_text()
    assert sum(line.startswith("| ") for line in md.splitlines()) == 1 + len(LEVELS)
    with Image.open(folder / "robustness.png") as png:
        assert png.format == "PNG" and png.size == (5 * 360, 340)  # one panel per kind

    # resize:0.5: the 32-px masks were resized NEAREST to 16 px with the images
    with open(folder / "resize-0.5" / "per_image.csv") as f:
        areas = {r["id"]: float(r["mask_area"]) for r in csv.DictReader(f)}
    for sample_id, area in areas.items():
        native = read_mask(dolos / sample_id.replace("/images/", "/masks/"))
        half = np.asarray(Image.fromarray(native).resize((16, 16), Image.NEAREST))
        assert area == pytest.approx(half.mean()) and half.shape == (16, 16)

    assert file_states(dolos) == before  # originals: same bytes, same modification times, no new files
    assert len(list(cache.glob("*.done"))) >= len(LEVELS) - 1  # each level decoded under its own key


def test_each_level_scores_as_a_copy_perturbed_on_disk_would(checkpoint, dolos, tmp_path):
    """The in-memory pipeline equals perturbing the files by hand (lossless PNG, masks NEAREST) and evaluating."""
    data, samples = load_samples(DataConfig(layout="dolos", root=str(dolos), dataset="mine", local=["repaint"]))
    perturbations = parse_perturbations(["resize:0.5", "noise:7", "jpeg:50"])
    summary = evaluate_robustness(checkpoint, data, samples, EvalConfig(), tmp_path / "rob", perturbations,
                                  progress=False, device="cpu")
    model, card = load_checkpoint(checkpoint)
    for perturbation, row in zip(perturbations, summary["rows"][1:], strict=True):
        copy = tmp_path / f"copy-{perturbation.folder}"
        shutil.copytree(dolos, copy)
        cdata, csamples = load_samples(DataConfig(layout="dolos", root=str(copy), dataset="mine", local=["repaint"]))
        local, real = scoring.test_sets(csamples, "")
        for s in real + local:
            save_image(s.path, perturbation(read_rgb(s.path), s.id))
            if s.mask_path:
                write_mask(s.mask_path, perturbation.mask(read_mask(s.mask_path)))
        expected = scoring.evaluate_predictions(predict_samples(model, card, real + local, progress=False), csamples, cdata)
        assert row["spec"] == perturbation.name
        for key, value in expected["localization"].items():
            assert row[key] == pytest.approx(value), key
        assert row["ap"] == pytest.approx(expected["detection"]["ap"])
        assert row["auc"] == pytest.approx(expected["detection"]["auc"])
    clean, noisy = summary["rows"][0], summary["rows"][2]  # the clean row is computed here (no clean result given)
    assert clean["perturbation"] == "none" and noisy["spec"] == "noise:7"
    local, real = scoring.test_sets(samples, "")
    expected = scoring.evaluate_predictions(predict_samples(model, card, real + local, progress=False), samples, data)
    assert clean["iou_lg"] == pytest.approx(expected["localization"]["iou_lg"])
    assert clean["ap"] == pytest.approx(expected["detection"]["ap"])
    moved = ("iou_lg", "pbca_lg", "iou_sm", "pbca_sm", "ap", "auc")
    assert [noisy[k] for k in moved] != pytest.approx([clean[k] for k in moved])  # noise 7 moves this model's maps


def test_a_threshold_chosen_on_valid_is_chosen_once_on_clean_images(checkpoint, dolos, tmp_path):
    out = tmp_path / "ev"
    result = CliRunner().invoke(app, ["evaluate", str(checkpoint), "--out", str(out), *data_args(dolos),
                                      "--threshold-from", "valid", "--perturb", "blur:2"])
    assert result.exit_code == 0, result.output
    clean = json.loads((out / "metrics.json").read_text())
    robust = json.loads((out / "robustness" / "robustness.json").read_text())
    assert clean["threshold_source"]["origin"] == "valid"
    assert robust["threshold_source"] == clean["threshold_source"] and robust["threshold"] == clean["threshold"]
    assert json.loads((out / "robustness" / "blur-2" / "metrics.json").read_text())["threshold"] == clean["threshold"]


@pytest.mark.parametrize("args, says", [(["--perturb", "jpeg:150"], "--perturb 'jpeg:150': jpeg level 150"),
                                        (["--perturb", "blur:x"], "--perturb 'blur:x'"),
                                        (["--perturb", "foo:1"], "unknown perturbation 'foo'"),
                                        (["--set", "evaluate.perturb=noise:0"], "evaluate.perturb 'noise:0'")])
def test_cli_rejects_bad_specs(checkpoint, tmp_path, args, says):
    result = CliRunner().invoke(app, ["evaluate", str(checkpoint), "--out", str(tmp_path / "ev"), *args])
    assert result.exit_code == 2
    assert says in result.output and "valid forms: jpeg:Q" in result.output
    assert not (tmp_path / "ev").exists()  # refused before anything ran


def test_saved_predictions_cannot_be_perturbed(tmp_path):
    np.savez(tmp_path / "p.npz", ids=np.array(["a"]), scores=np.zeros(1), maps=np.zeros((1, 2, 2)))
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "p.npz"), "--perturb", "jpeg:50"])
    assert result.exit_code == 2 and "--perturb needs a checkpoint" in result.output


def tiny_experiment(tiny_root, *extra):
    from weakloc.experiment.spec import load_experiment

    return load_experiment("builtin-table2-patches", [
        f"data.root={tiny_root}", f"data.builtin_images={TINY['n']}", f"data.builtin_size={TINY['size']}",
        f"data.builtin_seed={TINY['seed']}", "data.builtin_preset=quick", f"data.input_size={TINY['size']}",
        "train.epochs=1", "train.iters_per_epoch=1", "train.batch_size=4", "train.keep_best=1", *extra])


def test_experiment_files_ask_for_robustness(tiny_root, tmp_path):
    from weakloc.experiment.run import run_experiment

    with pytest.raises(ConfigError, match=r"\[evaluate\] perturb 'foo:1': unknown perturbation"):
        tiny_experiment(tiny_root, 'evaluate.perturb=["foo:1"]')
    exp = tiny_experiment(tiny_root, 'evaluate.perturb=["jpeg:50", "resize:0.5"]')
    results = run_experiment(exp, tmp_path / "runs", progress=False, only=["patches-C"])
    rows = results["patches-C"]["robustness"]
    assert [r["spec"] for r in rows] == ["none", "jpeg:50", "resize:0.5"]
    folder = tmp_path / "runs" / "patches-C" / "eval" / "robustness"
    assert (folder / "robustness.png").is_file() and (folder / "jpeg-50" / "metrics.json").is_file()
    report = (tmp_path / "runs" / "report.md").read_text()
    assert "## Robustness" in report
    section = report.split("## Robustness", 1)[1].splitlines()
    table = [line for line in section if line.startswith("| patches-C | ")]
    assert [line.split("|")[2].strip() for line in table] == ["none", "jpeg:50", "resize:0.5"]
    assert json.loads((tmp_path / "runs" / "results.json").read_text())["patches-C"]["robustness"] == rows
