"""Writing evaluation results: metrics.json, per_image.csv, metrics.md (tables with 95% intervals and the
baselines beside every number), baselines.csv, iou_vs_area.csv and iou_vs_area.png."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ..files import atomic_path, write_json, write_text

# (section of the summary, key, meaning) of the localization table's rows
LOCALIZATION_ROWS = (
    ("localization", "iou_lg", "IoU, map resized to the mask (DOLOS, the paper's)"),
    ("localization", "pbca_lg", "pixel accuracy, map resized to the mask (DOLOS)"),
    ("localization", "iou_sm", "IoU, mask resized to the map"), ("localization", "pbca_sm", "pixel accuracy, sm"),
    ("pixel", "f1_lg", "F1 (Dice) at the threshold"), ("pixel", "ap_px", "pixel AP, mean per image"),
    ("pixel", "auc_px", "pixel ROC-AUC, mean per image"), ("pixel", "iou_pooled", "IoU over all pixels pooled"),
    ("pixel", "f1_pooled", "F1 over all pixels pooled"), ("pixel", "ap_pooled", "pixel AP, all pixels pooled"),
    ("pixel", "auc_pooled", "pixel ROC-AUC, all pixels pooled"),
    ("pixel", "oracle_iou_lg", "ORACLE: IoU at each image's best threshold"),
    ("pixel", "oracle_f1_lg", "ORACLE: F1 at each image's best threshold"),
    ("pixel", "oracle_iou_lg_dataset", "ORACLE: mean IoU at the best single threshold on the test set"))
DETECTION_ROWS = (("ap", "AP, balanced subsamples"), ("auc", "ROC-AUC"), ("acc", "accuracy at 0.5"))
BASELINES = ("all-fake", "all-real", "random")
ORACLE_NOTE = ("Oracle rows choose the threshold with the test masks themselves: upper bounds on what a threshold "
               "can do, not results (Choe et al., CVPR 2020).")


def write_results(result: dict, out_dir: str | Path) -> Path:
    """metrics.json (without per-image rows), per_image.csv, metrics.md, baselines.csv, iou_vs_area.csv/png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in result.items() if k != "per_image"}
    write_json(out_dir / "metrics.json", summary)
    write_csv(out_dir / "per_image.csv", result.get("per_image", []))
    write_text(out_dir / "metrics.md", metrics_markdown(summary))
    write_csv(out_dir / "baselines.csv", baseline_rows(summary))
    areas = summary.get("iou_vs_area") or []
    if areas:
        write_csv(out_dir / "iou_vs_area.csv", areas)
        source = summary.get("threshold_source") or {}
        plot_iou_vs_area(areas, out_dir / "iou_vs_area.png",
                         f"threshold {summary.get('threshold', 0.5):.4g} ({source.get('origin', 'given')}), "
                         f"{summary.get('n_local')} images")
    return out_dir


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)), restval="")
        writer.writeheader()
        writer.writerows(rows)


def fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def with_interval(value: float | None, interval: list | None, digits: int = 1) -> str:
    """``45.3 ± 2.1``: ± half the width of the 95% interval (the interval itself is in metrics.json)."""
    if interval is None or value is None or any(not math.isfinite(v) for v in interval) or not math.isfinite(value):
        return fmt(value, digits)
    return f"{fmt(value, digits)} ± {fmt((interval[1] - interval[0]) / 2, digits)}"


def threshold_text(summary: dict) -> str:
    source = summary.get("threshold_source") or {"origin": "given"}
    t = summary.get("threshold", source.get("threshold"))
    if source.get("origin") == "valid":
        return (f"Threshold {t:.4g}, chosen on the validation split (best mean IoU lg, "
                f"{fmt(source.get('mean_iou_lg'))}, "
                f"on its {source.get('n_images')} local fakes; predictions: {source.get('predictions', '?')}); "
                f"the test split did not choose it.")
    return f"Threshold {t:.4g} (given)."


def metrics_markdown(summary: dict) -> str:
    """Localization and detection tables: value ± half the 95% interval, then the trivial maps' values."""
    intervals = summary.get("intervals") or {}
    base = summary.get("baselines") or {}
    lines = [threshold_text(summary), ""]
    resamples = f"; ± = half the 95% bootstrap interval ({intervals['resamples']} resamples)" if intervals else ""
    lines += [f"Localization: {summary['n_local']} manipulated test images{resamples}.", "",
              "| metric | what | value | all-fake map | all-real map | random map |", "|---|---|---|---|---|---|"]
    pixel = summary.get("pixel") or {}
    for section, key, label in LOCALIZATION_ROWS:
        value = (summary.get(section) or {}).get(key)
        if value is None:
            continue
        if key == "oracle_iou_lg_dataset":
            label += f" ({pixel.get('oracle_threshold_dataset', float('nan')):.4g})"
        cells = [fmt(base.get("localization", {}).get(b, {}).get(key)) for b in BASELINES]
        lines.append(f"| {key} | {label} | {with_interval(value, intervals.get(section, {}).get(key))} | "
                     + " | ".join(cells) + " |")
    if pixel:
        bounds = pixel.get("error_bounds", {})
        grid = pixel.get("grid") or {}
        lines += ["", ORACLE_NOTE,
                  f"Pixel AP / ROC-AUC: {pixel.get('n_ap')} images with manipulated pixels; each map quantised to at "
                  f"most {grid.get('levels')} levels over its own range (exact on the quantised map; the means are "
                  f"within {fmt(bounds.get('ap_px'), 2)} / {fmt(bounds.get('auc_px'), 2)} points of the unquantised "
                  f"values, the oracle means within {fmt(bounds.get('oracle_iou_lg'), 2)} / "
                  f"{fmt(bounds.get('oracle_f1_lg'), 2)}). Random map: every pixel uniform on {{1/64, ..., 1}}, "
                  "seeded."]
    det = summary.get("detection")
    if det:
        lines += ["", f"Detection: {det.get('n_real')} real and {det.get('n_fake')} manipulated test images.", "",
                  "| metric | what | value | all-fake score | all-real score | random score |",
                  "|---|---|---|---|---|---|"]
        for key, label in DETECTION_ROWS:
            cells = [fmt(base.get("detection", {}).get(b, {}).get(key)) for b in BASELINES]
            lines.append(f"| {key} | {label} | {with_interval(det[key], intervals.get('detection', {}).get(key))} | "
                         + " | ".join(cells) + " |")
        lines += ["", f"AP: mean over the balanced subsamples ({det.get('ap_sampling', 'official')} draw; their "
                      f"2 std: {fmt(det.get('ap_2std'))}); chance AP (a constant score) is 50. ROC-AUC and accuracy "
                      "use every image."]
        if det.get("acc_verdict") is not None:
            lines += [f"Accuracy at the checkpoint's own verdict ({det.get('verdict')}, the rule `weakloc predict` "
                      f"applies): {fmt(det['acc_verdict'])}."]
    areas = summary.get("iou_vs_area") or []
    if areas:
        lines += ["", "IoU lg by mask area (% of the image; iou_vs_area.csv / .png):", "",
                  "| area % | images | IoU lg | oracle IoU lg | all-fake map |", "|---|---|---|---|---|"]
        lines += [f"| {row['area_lo']}–{row['area_hi']} | {row['count']} | {fmt(row['iou_lg'])} | "
                  f"{fmt(row['oracle_iou_lg'])} | {fmt(row.get('all_fake_iou'))} |" for row in areas]
    return "\n".join(lines) + "\n"


def baseline_rows(summary: dict) -> list[dict]:
    """One row per task and trivial map: every metric it has."""
    rows = []
    for task in ("localization", "detection"):
        for name, values in ((summary.get("baselines") or {}).get(task) or {}).items():
            rows.append({"task": task, "baseline": name, **values})
    return rows


def plot_iou_vs_area(rows: list[dict], path: Path, title: str = "") -> None:
    """IoU lg (and its oracle, and the all-fake map's) against the mask-area bin; images per bin on the axis."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    x = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    for key, label, style in (("iou_lg", "IoU lg", "-o"), ("oracle_iou_lg", "oracle IoU lg (best threshold per "
                                                           "image)", "--s"),
                              ("all_fake_iou", "all-fake map (baseline)", ":^")):
        ax.plot(x, [row.get(key, math.nan) for row in rows], style, label=label)
    ax.set_xticks(x, [f"{row['area_lo']}–{row['area_hi']}\nn={row['count']}" for row in rows], fontsize="small")
    ax.set_xlabel("mask area (% of the image)")
    ax.set_ylabel("IoU (x100)")
    ax.set_ylim(0, 102)
    ax.set_title(f"IoU vs mask area{': ' + title if title else ''}", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
