"""The paper's study (`weakloc demo`): the quick preset end to end through the CLI, the report computed from its
inputs, the self-contained HTML page in a browser, stage caching, and kill-resume giving the same numbers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY
from weakloc.files import weights_digest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TINY_SETS = [f"data.builtin_images={TINY['n']}", f"data.builtin_size={TINY['size']}",
             f"data.builtin_seed={TINY['seed']}", "data.builtin_preset=quick"]
TABLE2_RUNS = {f"{m}-{s}" for m in ("gradcam", "patches", "attention") for s in "ABC"}


def _cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "weakloc.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def quick_study(tiny_root, tmp_path_factory) -> tuple[Path, str]:
    """`weakloc demo --preset quick` on the tests' built-in benchmark: (report folder, its output)."""
    out = tmp_path_factory.mktemp("study") / "quick"
    args = ["demo", "--preset", "quick", "--out", str(out), "--data-root", str(tiny_root)]
    for item in TINY_SETS:
        args += ["--set", item]
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return out, proc.stdout


@pytest.mark.slow
def test_quick_preset_runs_every_stage(quick_study):
    out, stdout = quick_study
    results = json.loads((out / "results.json").read_text())
    assert TABLE2_RUNS <= set(results) and len(results) == 19  # + 3 other-source + 7 more Figure 6 columns
    for setup in "ABC":
        other = results[f"patches-{setup}-other"]
        assert other["trained_on"]["dataset"] == "photos-b" and other["tested_on"]["dataset"] == "photos-a"
    cross = results["patches-C-telea"]["cross"]
    assert list(cross) == ["repaint", "repaint-ldm", "telea", "biharmonic"]
    assert all(0 <= c["localization"]["iou_lg"] <= 100 for c in cross.values())
    assert {r["spec"] for r in results["patches-B"]["robustness"]} >= {"jpeg:75", "resize:0.5"}
    # GradCAM A starts from Patches A's trained entry flow (init_from), and its run records those weights
    card = json.loads((out / "gradcam-A" / "best.json").read_text())
    assert card["train"]["init_loaded"]["loaded"] == 52 and card["train"]["init_partial"] is True
    config = json.loads((out / "gradcam-A" / "config.json").read_text())
    assert config["init_digest"] == weights_digest(out / "patches-A" / "best.safetensors")
    # Patches C starts from the whole of Patches B (same network: every tensor loads)
    card = json.loads((out / "patches-C" / "best.json").read_text())
    loaded = card["train"]["init_loaded"]
    assert loaded["complete"] is True and loaded["loaded"] == loaded["of"] > 52
    report = (out / "report.md").read_text()
    assert "| patches-C | table2 |" in report and "patches-B's weights" in report
    assert "patches-A's shared layers; the rest" in report
    for heading in ("## Findings, checked", "## Table 2", "## Table 3", "## Figure 3", "## Figure 4", "## Figure 5",
                    "## Figure 6", "## Figure 7", "## Robustness", "## What was run", "### Wall time per stage"):
        assert heading in report, heading
    for name in ("figure3.png", "figure4.png", "figure5.png", "figure6.png", "figure7.png", "report.html"):
        assert (out / name).stat().st_size > 1000, name
    findings = json.loads((out / "findings.json").read_text())
    assert [i["id"] for i in findings["items"]] == ["headline", "patches-best", "setup-b-detection",
                                                    "supervision-vs-shift", "latent-hardest"]
    assert "[study-quick 1/" in stdout and "benchmark" in stdout  # the overall progress lines
    assert "\r" not in stdout  # no progress bars when the output is not a terminal


@pytest.mark.slow
def test_finished_study_reruns_without_redoing_anything(quick_study, tiny_root):
    out, _ = quick_study
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/best.safetensors")}
    report = (out / "report.md").read_text()
    args = ["demo", "--preset", "quick", "--out", str(out), "--data-root", str(tiny_root)]
    for item in TINY_SETS:
        args += ["--set", item]
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stages = json.loads((out / "stages.json").read_text())
    assert all(entry["reused"] for name, entry in stages.items() if name != "report"), stages
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/best.safetensors")} == before
    assert (out / "report.md").read_text().split("## What was run")[0] == report.split("## What was run")[0]


def test_report_tables_and_findings_are_computed_from_the_results(quick_study, tiny_root, tmp_path):
    from weakloc.experiment.report import write_experiment_report
    from weakloc.experiment.spec import load_experiment

    out, _ = quick_study
    results = json.loads((out / "results.json").read_text())
    exp = load_experiment("study-quick", [f"data.root={tiny_root}", *TINY_SETS])
    results["patches-A"]["localization"]["iou_lg"] = 77.7
    for method in ("gradcam", "patches", "attention"):
        results[f"{method}-B"]["detection"]["ap"] = 96.5
    results["patches-C-repaint-ldm"]["cross"]["repaint-ldm"]["localization"]["iou_lg"] = 0.1
    shutil.copytree(out, tmp_path / "r", ignore=shutil.ignore_patterns("*.safetensors", "*.npz", "state.pt"))
    write_experiment_report(exp, results, tmp_path / "r")
    report = (tmp_path / "r" / "report.md").read_text()
    row_a = next(line for line in report.splitlines() if line.startswith("| A | label | full |"))
    assert "77.7" in row_a and "(64.9)" in row_a  # ours, and the paper's Patches A IoU beside it
    findings = {i["id"]: i for i in json.loads((tmp_path / "r" / "findings.json").read_text())["items"]}
    assert findings["setup-b-detection"]["holds"] is True
    assert "| repaint-ldm | " in report and "0.1 (18.1)" in report  # the Figure 6 cell, paper's ldm diagonal beside
    results["gradcam-B"]["detection"]["ap"] = 60.0
    write_experiment_report(exp, results, tmp_path / "r")
    findings = {i["id"]: i for i in json.loads((tmp_path / "r" / "findings.json").read_text())["items"]}
    assert findings["setup-b-detection"]["holds"] is False


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (`apt-get install chromium`; .ci/run does this)")
def test_html_report_renders_with_every_image_in_a_browser(quick_study):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[test]')")
    out, _ = quick_study
    page_file = out / "report.html"
    assert "src=\"figure" not in page_file.read_text()  # images are inlined, the page stands alone
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(page_file.as_uri())
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth])")
        headings = page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
        tables = page.eval_on_selector_all("table", "els => els.length")
        cells = page.eval_on_selector_all("table td", "els => els.map(e => e.textContent)")
        browser.close()
    assert len(images) >= 6 and all(done and width > 0 for done, width in images), images
    assert any(h.startswith("Table 2") for h in headings) and any(h.startswith("Figure 6") for h in headings)
    assert tables >= 5 and any("(64.9)" in c for c in cells)


MINI = """
name = "mini-study"
table = "study"
[data]
layout = "builtin"
root = "{root}"
builtin_preset = "quick"
builtin_images = {n}
builtin_size = {size}
builtin_seed = {seed}
input_size = 48
[train]
epochs = 3
iters_per_epoch = 3
batch_size = 8
val_batch_size = 32
keep_best = 1
seed = 0
options = {{ init = "timm" }}
[evaluate]
ap_repeats = 2
bootstrap = 50
[[runs]]
method = "patches"
setup = "A"
part = "table2"
[[runs]]
method = "patches"
setup = "C"
part = "table2"
cross = ["repaint", "telea"]
[[runs]]
name = "patches-C-telea"
method = "patches"
setup = "C"
part = "figure6"
data = {{ local = ["telea"] }}
cross = ["repaint", "telea"]
"""


def _numbers(results: dict) -> dict:
    keep = ("localization", "detection", "pixel", "cross", "trained_on", "tested_on")
    return {name: {k: res.get(k) for k in keep} for name, res in results.items()}


@pytest.mark.slow
def test_killed_study_resumes_to_the_same_numbers(tiny_root, tmp_path):
    from weakloc.experiment.run import run_experiment
    from weakloc.experiment.spec import load_experiment

    spec = tmp_path / "mini.toml"
    spec.write_text(MINI.format(root=tiny_root, **TINY))
    whole = run_experiment(load_experiment(spec), tmp_path / "whole", progress=False)
    # killed in the middle of the second run's training (after its stage line, before its epochs are done)
    proc = subprocess.Popen([sys.executable, "-m", "weakloc.cli", "experiment", str(spec), "--out",
                             str(tmp_path / "killed")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    for line in proc.stdout:
        if "] train patches-C ·" in line:
            break
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "results.json").exists()
    resumed = run_experiment(load_experiment(spec), tmp_path / "killed", progress=False)
    assert _numbers(resumed) == _numbers(whole)
    stages = json.loads((tmp_path / "killed" / "stages.json").read_text())
    assert stages["train patches-A"]["reused"] and stages["evaluate patches-A"]["reused"]
