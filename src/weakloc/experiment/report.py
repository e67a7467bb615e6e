"""Experiment reports: Markdown tables shaped like the paper's, a per-run table of the DOLOS metrics, and a
second table with the further pixel metrics, 95% intervals and the trivial maps' values (baselines)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..evaluate.report import BASELINES, ORACLE_NOTE, fmt, with_interval
from ..evaluate.robustness import runs_robustness_markdown
from ..files import write_text
from ..methods import METHODS

if TYPE_CHECKING:
    from .spec import Experiment

SETUP_ROWS = (("A", "label", "full"), ("B", "label", "partial"), ("C", "mask", "partial"))
NOTE = ("Built-in benchmark: a small offline test bed for the system (crops of packaged photographs, classical "
        "inpainters and small generators), not a claim about real deepfakes.")


def _cell(results: dict, method: str, setup: str, metric: str) -> float | None:
    for res in results.values():
        if res.get("method") == method and res.get("setup") == setup:
            if metric == "ap":
                return None if setup == "C" else res.get("detection", {}).get("ap")
            return res["localization"].get(metric)
    return None


def method_columns(results: dict) -> list[str]:
    """The methods of the results, in the order the experiment's runs first name them (the built-in
    experiment lists GradCAM, Patches, Attention: the paper's GC, PT, AT)."""
    return list(dict.fromkeys(res["method"] for res in results.values() if res.get("method") in METHODS))


def table2_markdown(results: dict) -> str:
    """The paper's Table 2 shape: IoU / PBCA / AP (x100) per method (GC, PT, AT) under setups A, B, C."""
    methods = method_columns(results)
    header = "| setup | sup. | generator | " + " | ".join(
        f"{metric} {METHODS[method].short_name}" for metric in ("IoU", "PBCA", "AP") for method in methods) + " |"
    lines = [header, "|" + "---|" * (3 + 3 * len(methods))]
    for setup, sup, gen in SETUP_ROWS:
        cells = [fmt(_cell(results, method, setup, key)) for key in ("iou_lg", "pbca_lg", "ap")
                 for method in methods]
        lines.append(f"| {setup} | {sup} | {gen} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def runs_markdown(results: dict) -> str:
    lines = ["| run | IoU lg | PBCA lg | IoU sm | PBCA sm | AP | ± 2std | AUC | best epoch val loss |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        loc, det = res["localization"], res.get("detection", {})
        val = min((h["val_loss"] for h in res.get("history", [])), default=None)
        lines.append(f"| {name} | {fmt(loc['iou_lg'])} | {fmt(loc['pbca_lg'])} | {fmt(loc['iou_sm'])} | "
                     f"{fmt(loc['pbca_sm'])} | {fmt(det.get('ap'))} | {fmt(det.get('ap_2std'))} | "
                     f"{fmt(det.get('auc'))} | {fmt(val, 4)} |")
    return "\n".join(lines) + "\n"


# (title, section, key) of the second table; AP / AUC are detection's
MORE_COLUMNS = (("IoU lg", "localization", "iou_lg"), ("F1 lg", "pixel", "f1_lg"), ("pixel AP", "pixel", "ap_px"),
                ("pixel AUC", "pixel", "auc_px"), ("IoU pooled", "pixel", "iou_pooled"),
                ("ORACLE IoU lg", "pixel", "oracle_iou_lg"), ("ORACLE F1 lg", "pixel", "oracle_f1_lg"),
                ("AP", "detection", "ap"), ("AUC", "detection", "auc"))


def _threshold_cell(res: dict) -> str:
    source = res.get("threshold_source") or {}
    t = res.get("threshold")
    return "–" if t is None else f"{t:.4g} ({source.get('origin', 'given')})"


def more_metrics_markdown(results: dict) -> str:
    """Per run: the threshold and its origin, further pixel metrics and AP / AUC with ± half the 95% bootstrap
    interval; then the all-fake / all-real / random maps on the same test images ("" for results without them)."""
    runs = {name: res for name, res in results.items() if res.get("pixel")}
    if not runs:
        return ""
    lines = ["| run | threshold | " + " | ".join(t for t, _, _ in MORE_COLUMNS) + " |",
             "|---|---|" + "---|" * len(MORE_COLUMNS)]
    for name, res in runs.items():
        intervals = res.get("intervals") or {}
        cells = [with_interval((res.get(sec) or {}).get(key), intervals.get(sec, {}).get(key))
                 for _, sec, key in MORE_COLUMNS]
        lines.append(f"| {name} | {_threshold_cell(res)} | " + " | ".join(cells) + " |")
    # runs scored on the same test images show the same baseline cells (they differ only in columns not shown,
    # e.g. the "sm" metrics at each method's map size): print each distinct set of rows once
    distinct: list[tuple[str, list[list[str]]]] = []
    for name, res in runs.items():
        base = res.get("baselines")
        if not base:
            continue
        rows = [[fmt((base.get("detection" if sec == "detection" else "localization") or {}).get(kind, {}).get(key))
                 for _, sec, key in MORE_COLUMNS] for kind in BASELINES]
        if all(rows != seen for _, seen in distinct):
            distinct.append((name, rows))
    for name, rows in distinct:
        suffix = f" (for {name})" if len(distinct) > 1 else ""
        for kind, cells in zip(BASELINES, rows):
            lines.append(f"| baseline: {kind} map{suffix} | – | " + " | ".join(cells) + " |")
    lines += ["", "± = half the 95% bootstrap interval over test images (metrics.json has [lo, hi]). Baselines: "
              "every pixel (image score) 1, 0, or uniform at random (seeded), scored on the same test images; "
              "chance AP is 50. " + ORACLE_NOTE]
    return "\n".join(lines) + "\n"


def experiment_markdown(exp: "Experiment", results: dict) -> str:
    parts = [f"# {exp.name}\n", f"{exp.description}\n" if exp.description else ""]
    if exp.table == "table2":
        given = all(res.get("threshold", 0.5) == 0.5 for res in results.values())
        at = "at threshold 0.5" if given else "at each run's threshold (second table)"
        parts += [f"## Table 2 (IoU, PBCA {at}, maps resized to the mask size; AP on balanced "
                  "subsamples, mean of 5)\n", table2_markdown(results)]
    parts += ["## All runs\n", runs_markdown(results)]
    more = more_metrics_markdown(results)
    if more:
        parts += ["## All runs: more metrics, 95% intervals, baselines\n", more]
    robustness = runs_robustness_markdown(results)  # only when [evaluate] perturb is set
    if robustness:
        parts += ["## Robustness (test images perturbed; eval/robustness/ of each run)\n", robustness]
    if exp.data.get("layout") == "builtin":
        parts.append(f"\n{NOTE}\n")
    return "\n".join(p for p in parts if p)


def write_experiment_report(exp: "Experiment", results: dict, out_dir: Path, *,
                            checkpoints: dict[str, Path] | None = None, timings: dict | None = None) -> Path:
    """report.md (and for a study, its figures and report.html) in ``out_dir``."""
    if exp.table == "study":
        from .study import write_study_report

        return write_study_report(exp, results, out_dir, checkpoints or {}, timings or {})
    path = out_dir / "report.md"
    write_text(path, experiment_markdown(exp, results))
    return path
