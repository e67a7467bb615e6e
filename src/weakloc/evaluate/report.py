"""Writing evaluation results: metrics.json, per_image.csv and a Markdown table."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ..files import atomic_path, write_json, write_text


def write_results(result: dict, out_dir: str | Path) -> Path:
    """metrics.json (without per-image rows), per_image.csv, metrics.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in result.items() if k != "per_image"}
    write_json(out_dir / "metrics.json", summary)
    rows = result.get("per_image", [])
    if rows:
        with atomic_path(out_dir / "per_image.csv") as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    write_text(out_dir / "metrics.md", metrics_markdown(summary))
    return out_dir


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def metrics_markdown(summary: dict) -> str:
    loc = summary["localization"]
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in loc.items()]
    det = summary.get("detection")
    if det:
        lines += [f"| AP | {fmt(det['ap'])} ± {fmt(det['ap_2std'])} |", f"| ROC-AUC | {fmt(det['auc'])} |",
                  f"| accuracy | {fmt(det['acc'])} |"]
    lines.append(f"\n{summary['n_local']} manipulated test images, threshold {summary['threshold']}.")
    return "\n".join(lines) + "\n"
