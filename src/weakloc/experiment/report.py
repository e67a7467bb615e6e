"""Experiment reports: Markdown tables shaped like the paper's, plus a per-run table with every metric."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..evaluate.report import fmt
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


def experiment_markdown(exp: "Experiment", results: dict) -> str:
    parts = [f"# {exp.name}\n", f"{exp.description}\n" if exp.description else ""]
    if exp.table == "table2":
        parts += ["## Table 2 (IoU, PBCA at threshold 0.5, maps resized to the mask size; AP on balanced "
                  "subsamples, mean of 5)\n", table2_markdown(results)]
    parts += ["## All runs\n", runs_markdown(results)]
    if exp.data.get("layout") == "builtin":
        parts.append(f"\n{NOTE}\n")
    return "\n".join(p for p in parts if p)


def write_experiment_report(exp: "Experiment", results: dict, out_dir: Path) -> Path:
    path = out_dir / "report.md"
    write_text(path, experiment_markdown(exp, results))
    return path
