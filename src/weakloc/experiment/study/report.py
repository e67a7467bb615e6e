"""The study report (``table = "study"``): what was run on what data with what budget, Tables 2 and 3 beside the
paper's numbers with 95% intervals and the trivial maps, Figures 3-7, the robustness table, and the paper's
findings checked one by one (findings.py). Written as report.md with its PNGs and as one self-contained
report.html (html.py). Every number comes from ``results`` (results.json) and the benchmark's own files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ...config import DataConfig
from ...evaluate.report import fmt
from ...evaluate.robustness import runs_robustness_markdown
from ...files import write_json, write_text
from ...methods import METHODS
from . import paper
from .figures import write_figures
from .findings import Study, check_findings
from .html import write_html

if TYPE_CHECKING:
    from ..spec import Experiment

NOTE = ("**A test bed, not a claim about real deepfakes.** The built-in benchmark is made offline on two CPU cores: "
        "32-pixel crops of photographs that scikit-image and scikit-learn ship, inpainted by small diffusion models "
        "that weakloc trained itself and by classical inpainters, and detectors trained for minutes instead of the "
        "paper's 50,000 steps on 256-pixel faces. It shows whether the system reproduces the *shape* of the paper's "
        "results; its numbers are not comparable with the paper's, which are printed beside them for orientation.")


def _cell(value: float | None, interval: list | None = None, paper_value: float | None = None) -> str:
    text = fmt(value)
    if value is not None and interval and all(np.isfinite(interval)):
        text += f" ±{(interval[1] - interval[0]) / 2:.1f}"
    if paper_value is not None:
        text += f" ({paper_value:.1f})"
    return text


def _metric(res: dict | None, key: str) -> tuple[float | None, list | None]:
    """(value, 95% interval) of iou_lg / pbca_lg / ap in a run's results."""
    if not res:
        return None, None
    intervals = res.get("intervals") or {}
    if key == "ap":
        det = res.get("detection") or {}
        return det.get("ap"), (intervals.get("detection") or {}).get("ap")
    return res["localization"].get(key), (intervals.get("localization") or {}).get(key)


KEYS = (("IoU", "iou_lg", 0), ("PBCA", "pbca_lg", 1), ("AP", "ap", 2))


def table2(study: Study) -> str:
    methods = [m for m in ("gradcam", "patches", "attention") if any(study.table2(m, s) for s in "ABC")]
    lines = ["| setup | sup. | generator | " + " | ".join(f"{name} {METHODS[m].short_name}" for name, _, _ in KEYS
                                                          for m in methods) + " |",
             "|---|---|---|" + "---|" * (3 * len(methods))]
    for setup, sup, gen in (("A", "label", "full"), ("B", "label", "partial"), ("C", "mask", "partial")):
        cells = []
        for _, key, k in KEYS:
            for m in methods:
                value, interval = _metric(study.table2(m, setup), key) if not (key == "ap" and setup == "C") \
                    else (None, None)
                cells.append(_cell(value, interval, paper.TABLE2[setup][m][k]))
        lines.append(f"| {setup} | {sup} | {gen} | " + " | ".join(cells) + " |")
    lines += _baseline_rows(study.any_result(), 3, len(methods))
    return "\n".join(lines) + "\n"


def _baseline_rows(res: dict | None, lead: int, repeat: int, by_metric: bool = True) -> list[str]:
    """Rows of the all-fake / all-real maps (their 95% intervals) and chance AP, under a table's columns:
    IoU, PBCA, AP each ``repeat`` times (``by_metric``, Table 2's columns) or the three ``repeat`` times (Table 3)."""
    if not res:
        return []
    rows = []
    base, intervals = res.get("baselines", {}), (res.get("intervals") or {}).get("baselines", {})
    for kind in ("all-fake", "all-real"):
        loc = base.get("localization", {}).get(kind, {})
        cells = [_cell(loc.get(key), intervals.get(kind, {}).get(key)) for key in ("iou_lg", "pbca_lg")]
        cells.append("50.0")
        lead_cells = [f"{kind} map"] + ["–"] * (lead - 1)
        repeated = [c for c in cells for _ in range(repeat)] if by_metric else cells * repeat
        rows.append("| " + " | ".join(lead_cells + repeated) + " |")
    return rows


def table3(study: Study) -> str:
    sources = study.sources()
    lines = [f"| setup | sup. | generator | IoU same ({sources['same']}) | PBCA same | AP same | "
             f"IoU other ({sources['other']}) | PBCA other | AP other |", "|---|---|---|---|---|---|---|---|---|"]
    for setup, sup, gen in (("A", "label", "full"), ("B", "label", "partial"), ("C", "mask", "partial")):
        cells = []
        for which, res in (("same", study.table2("patches", setup)), ("other", study.table3(setup))):
            for _, key, k in KEYS:
                value, interval = _metric(res, key) if not (key == "ap" and setup == "C") else (None, None)
                cells.append(_cell(value, interval, paper.TABLE3[setup][which][k]))
        lines.append(f"| {setup} | {sup} | {gen} | " + " | ".join(cells) + " |")
    lines += _baseline_rows(study.table2("patches", "A") or study.any_result(), 3, 2, by_metric=False)
    return "\n".join(lines) + "\n"


def figure6_markdown(study: Study) -> str:
    matrix = study.figure6()
    if not matrix:
        return ""
    cols, rows = matrix["columns"], matrix["rows"]
    lines = ["| tested on \\ trained on | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for i, row in enumerate(rows):
        cells = []
        for j, col in enumerate(cols):
            paper_value = paper.FIGURE6.get(study.paper_name(col), {}).get(study.paper_name(row))
            cells.append(_cell(matrix["values"][i][j], None, paper_value))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def budget_markdown(exp: "Experiment", results: dict) -> str:
    from ...train.loop import resolve

    lines = ["| run | part | trained on | tested on | steps × batch | input | lr | init | epochs | best val loss |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for run in exp.runs:
        res = results.get(run.name)
        if not res:
            continue
        cfg, data = resolve(exp.train_config(run)), exp.data_config(run)
        trained, tested = res.get("trained_on", {}), res.get("tested_on") or {}
        if not tested and res.get("cross"):
            tested = {"dataset": trained.get("dataset"), "local": list(res["cross"])}
        best = min((h["val_loss"] for h in res.get("history", [])), default=None)
        init = cfg.options.get("init", "method default") if cfg.options else "method default"
        if run.init_from:
            source = next(r for r in exp.runs if r.name == run.init_from)
            init = (f"{run.init_from}'s weights" if source.method == run.method
                    else f"{run.init_from}'s shared layers; the rest {init}")
        lines.append(f"| {run.name} | {run.part or '–'} | {trained.get('dataset')}: "
                     f"{', '.join(trained.get('full') or []) if run.setup == 'A' else ', '.join(trained.get('local') or [])}"
                     f" | {tested.get('dataset', '–')}: {', '.join(tested.get('local') or [])} | "
                     f"{cfg.epochs * cfg.iters_per_epoch} × {cfg.batch_size} | {data.input_size} | {cfg.lr:g} | "
                     f"{init} | {cfg.epochs} | {fmt(best, 4)} |")
    return "\n".join(lines) + "\n"


def timings_markdown(timings: dict, benchmark_seconds: dict | None) -> str:
    lines = ["| stage | seconds | |", "|---|---|---|"]
    total = 0.0
    for name, entry in timings.items():
        total += entry["seconds"]
        lines.append(f"| {name} | {entry['seconds']:.1f} | {'reused from an earlier run' if entry['reused'] else ''} |")
    lines.append(f"| **total** | **{total:.1f}** ({total / 60:.1f} min) | |")
    if benchmark_seconds:
        lines += ["", "Benchmark build, per source and generator (s): " + ", ".join(
            f"{k} {v}" for k, v in benchmark_seconds.items())]
    return "\n".join(lines) + "\n"


def contents_markdown(contents: dict) -> str:
    lines = []
    for source, table in contents.get("counts", {}).items():
        lines += [f"**{source}**", "", "| generator | train | valid | test |", "|---|---|---|---|"]
        lines += [f"| {gen} | {per['train']} | {per['valid']} | {per['test']} |" for gen, per in table.items()]
        stats = contents.get("mask_areas", {}).get(source)
        if stats:
            lines += ["", f"Mask area (fraction of the image): mean {stats['mean']}, median {stats['median']}, "
                          f"range {stats['min']}–{stats['max']}."]
        lines.append("")
    return "\n".join(lines)


def _benchmark_folder(exp: "Experiment") -> Path | None:
    from ...data.load import builtin_root

    data = DataConfig(**{k: v for k, v in exp.data.items() if k in DataConfig.__dataclass_fields__})
    if data.layout != "builtin":
        return None
    folder = builtin_root(data) / "builtin"
    return folder if (folder / "builtin.json").is_file() else None


def study_markdown(exp: "Experiment", results: dict, out_dir: Path, checkpoints: dict[str, Path],
                   timings: dict) -> str:
    study = Study(exp, results)
    figures = write_figures(study, out_dir, checkpoints)
    findings = check_findings(study)
    write_json(out_dir / "findings.json", findings)
    bench = _benchmark_folder(exp)
    parts = [f"# {exp.name}: the paper's study on {'the built-in benchmark' if bench else 'this data'}\n",
             f"{exp.description}\n" if exp.description else ""]
    if bench:
        parts.append(NOTE + "\n")
    parts += ["## Findings, checked\n", findings["markdown"]]
    parts += ["## Table 2: method × supervision\n",
              "IoU / PBCA (%, threshold 0.5, maps resized to the mask) on the main source's RePaint test fakes; AP (%) "
              "on its real vs RePaint test images (balanced subsamples, mean of 5). Each cell: ours ± half the 95% "
              "bootstrap interval (the paper's value on Repaint-P2/CelebA-HQ). The last rows: the maps that call every "
              "pixel fake or real, on the same images.\n", table2(study)]
    if study.has_table3():
        parts += ["## Table 3: same vs other source (Patches)\n",
                  "Patches trained on the main source (same) or on the other source (other, its own generators' fakes "
                  "made the same way), both tested on the main source. Paper: CelebA-HQ (same) vs FFHQ (other).\n",
                  table3(study)]
    for key, title, text in figures["sections"]:
        parts += [f"## {title}\n", text]
    matrix = figure6_markdown(study)
    if matrix:
        parts += ["Figure 6 as numbers (IoU %, ours (paper's counterpart: " + ", ".join(
            f"{ours} ↔ {theirs}" for ours, theirs in study.counterparts().items()) + ")):\n", matrix]
    robustness = runs_robustness_markdown(results)
    if robustness:
        parts += ["## Robustness: the Patches models on perturbed test images\n", robustness]
    parts += ["## What was run\n", "### Data\n"]
    if bench:
        contents = json.loads((bench / "contents.json").read_text())
        spec = json.loads((bench / "builtin.json").read_text())["spec"]
        parts += [f"Built-in benchmark at `{bench}`; settings: " + ", ".join(f"{k}={v}" for k, v in spec.items())
                  + ".\n", contents_markdown(contents)]
        for source in contents.get("counts", {}):
            example = bench / f"examples-{source}.png"
            if example.exists():
                shutil.copyfile(example, out_dir / example.name)
                parts.append(f"![examples of {source}]({example.name})\n\n*{source}, test split: the crop, its mask "
                             "(white = inpainted), each local generator's image, a fully generated image.*\n")
    parts += ["### Training budget per run\n", budget_markdown(exp, results),
              "### Wall time per stage\n",
              timings_markdown(timings, json.loads((bench / "builtin.json").read_text()).get("seconds") if bench
                               else None)]
    from ..report import more_metrics_markdown, runs_markdown

    parts += ["## All runs\n", runs_markdown({k: v for k, v in results.items() if "localization" in v})]
    more = more_metrics_markdown(results)
    if more:
        parts += ["## All runs: more metrics, 95% intervals, baselines\n", more]
    return "\n".join(p for p in parts if p)


def write_study_report(exp: "Experiment", results: dict, out_dir: Path, checkpoints: dict[str, Path],
                       timings: dict) -> Path:
    path = out_dir / "report.md"
    write_text(path, study_markdown(exp, results, out_dir, checkpoints, timings))
    write_html(path, out_dir / "report.html", title=f"weakloc: {exp.name}")
    return path
