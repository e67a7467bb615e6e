"""Robustness: re-run a checkpoint on perturbed copies of the test images (data/perturb.py) and score each
perturbation and level like the clean test split; a table (JSON, CSV, Markdown) and a line plot (PNG).

The test images (reals and local fakes) are perturbed in memory as they are decoded, never on disk; with
``data.cache_dir`` set the perturbed decodes are cached under a key that names the perturbation. Masks follow
the image's size with NEAREST. Written to ``out_dir``: robustness.json / .csv / .md / .png, and per level a
folder (``jpeg-50/``...) with that level's metrics.json and per_image.csv.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from ..config import DataConfig, EvalConfig
from ..data.load import data_where
from ..data.perturb import Perturbation, parse_perturbations
from ..data.samples import Sample
from ..device import pick_device
from ..files import atomic_path, write_json, write_text
from ..predict.batch import predict_samples
from ..train.checkpoint import load_checkpoint
from .report import fmt, write_csv
from .scoring import evaluate_predictions, load_native_masks, resolve_threshold, test_sets

PLOT_METRICS = ("iou_lg", "pbca_lg", "ap", "auc")  # one line each, where the results have them
TABLE_COLUMNS = (("IoU lg", "iou_lg"), ("PBCA lg", "pbca_lg"), ("IoU sm", "iou_sm"), ("PBCA sm", "pbca_sm"),
                 ("F1 lg", "f1_lg"), ("pixel AP", "ap_px"), ("AP", "ap"), ("AUC", "auc"), ("acc", "acc"))
NOT_METRICS = {"ap_seed", "ap_sampling", "levels"}  # settings, not measurements


def _scalar(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def result_row(perturbation: Perturbation | None, result: dict) -> dict:
    """One table row: which perturbation, then every scalar localization and detection metric."""
    row: dict = {"perturbation": perturbation.kind if perturbation else "none",
                 "level": perturbation.level_text if perturbation else "",
                 "spec": perturbation.name if perturbation else "none", "n_local": result.get("n_local")}
    for section in ("localization", "detection", "pixel"):
        for key, value in (result.get(section) or {}).items():
            if _scalar(value) and key not in NOT_METRICS:
                row[key if key not in row else f"{section[:3]}_{key}"] = value
    return row


def evaluate_robustness(checkpoint: Path, data: DataConfig, samples: Sequence[Sample], cfg: EvalConfig,
                        out_dir: Path, perturbations: Sequence[Perturbation] | None = None, *,
                        clean: dict | None = None, progress: bool = True, device: str = "auto") -> dict:
    """Score ``checkpoint`` on the test split under each perturbation (default: ``cfg.perturb``); ``clean``: the
    unperturbed result when already computed (else it is computed here). Every level uses the clean run's pixel
    threshold (given, or chosen on the clean validation split). Returns {"rows": [...], ...}."""
    if perturbations is None:
        perturbations = parse_perturbations(cfg.perturb, "evaluate.perturb")
    where = data_where(data)
    model, card = load_checkpoint(checkpoint, pick_device(device))
    device_used = next(model.parameters()).device
    local, real = test_sets(samples, where)
    native = load_native_masks(local, data)  # read once; resized per perturbation

    def predict(chosen: list[Sample], perturbation: Perturbation | None = None):
        return predict_samples(model, card, chosen, batch_size=cfg.batch_size, device=device_used,
                               progress=progress, cache_dir=data.cache_dir, perturb=perturbation)

    source = (clean or {}).get("threshold_source") or resolve_threshold(cfg, samples, data, where, predict=predict)

    def run(perturbation: Perturbation | None) -> dict:
        masks = [perturbation.mask(m) for m in native] if perturbation else native
        return evaluate_predictions(predict(real + local, perturbation), samples, data, cfg, where, masks=masks,
                                    threshold_source=source)

    out_dir = Path(out_dir)
    rows = [result_row(None, clean if clean is not None else run(None))]
    for perturbation in perturbations:
        result = run(perturbation)
        level_dir = out_dir / perturbation.folder  # the level's numbers (the figures stay with the clean run)
        write_json(level_dir / "metrics.json", {k: v for k, v in result.items() if k != "per_image"})
        write_csv(level_dir / "per_image.csv", result["per_image"])
        rows.append(result_row(perturbation, result))
    summary = {"checkpoint": str(checkpoint), "threshold": float(source["threshold"]), "threshold_source": source,
               "n_local": len(local), "n_real": len(real),
               "definitions": {p.name: p.describe() for p in perturbations}, "rows": rows}
    write_robustness(summary, out_dir)
    return summary


def write_robustness(summary: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "robustness.json", summary)
    write_csv(out_dir / "robustness.csv", summary["rows"])
    write_text(out_dir / "robustness.md", robustness_markdown(summary))
    plot_robustness(summary["rows"], out_dir / "robustness.png")


def _columns(rows: list[dict]) -> list[tuple[str, str]]:
    return [(title, key) for title, key in TABLE_COLUMNS if any(key in row for row in rows)]


def robustness_markdown(summary: dict) -> str:
    """The table (main metrics; robustness.csv has all of them) and the exact definitions."""
    rows = summary["rows"]
    columns = _columns(rows)
    lines = ["| perturbation | level | " + " | ".join(t for t, _ in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for row in rows:
        lines.append(f"| {row['perturbation']} | {row['level'] or '–'} | "
                     + " | ".join(fmt(row.get(key)) for _, key in columns) + " |")
    origin = (summary.get("threshold_source") or {}).get("origin", "given")
    lines.append(f"\n{summary.get('n_local')} manipulated and {summary.get('n_real')} real test images, pixel "
                 f"threshold {fmt(summary.get('threshold'), 4)} ({origin}, the same at every level); every image "
                 "perturbed in memory, masks resized NEAREST.\n")
    lines += [f"- `{name}`: {text}" for name, text in summary.get("definitions", {}).items()]
    return "\n".join(lines) + "\n"


def runs_robustness_markdown(results: dict) -> str:
    """For an experiment report: IoU / PBCA / AP per run and perturbation ("" when no run has robustness rows)."""
    runs = {name: res["robustness"] for name, res in results.items() if res.get("robustness")}
    if not runs:
        return ""
    lines = ["| run | perturbation | IoU lg | PBCA lg | AP | AUC |", "|---|---|---|---|---|---|"]
    for name, rows in runs.items():
        lines += [f"| {name} | {row['spec']} | {fmt(row.get('iou_lg'))} | {fmt(row.get('pbca_lg'))} | "
                  f"{fmt(row.get('ap'))} | {fmt(row.get('auc'))} |" for row in rows]
    return "\n".join(lines) + "\n"


def plot_robustness(rows: list[dict], path: Path) -> None:
    """Metric vs level, one panel per perturbation kind (the clean "none" value first), one line per metric."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    clean = next((row for row in rows if row["perturbation"] == "none"), {})
    kinds = list(dict.fromkeys(row["perturbation"] for row in rows if row["perturbation"] != "none"))
    metrics = [m for m in PLOT_METRICS if any(_finite(row.get(m)) for row in rows)]
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(3.6 * max(1, len(kinds)), 3.4), dpi=100,
                             squeeze=False, sharey=True)
    for ax, kind in zip(axes[0], kinds or ["none"]):
        members = [clean] + [row for row in rows if row["perturbation"] == kind]
        labels = ["none"] + [row["level"] for row in members[1:]]
        for metric in metrics:
            values = [row.get(metric) if _finite(row.get(metric)) else math.nan for row in members]
            ax.plot(range(len(labels)), values, marker="o", label=metric)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_title(kind)
        ax.set_xlabel("level")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("metric (x100)")
    axes[0][0].set_ylim(0, 102)  # percentages: panels and runs read on one scale
    if metrics:
        axes[0][-1].legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _finite(value: object) -> bool:
    return _scalar(value) and math.isfinite(value)  # type: ignore[arg-type]
