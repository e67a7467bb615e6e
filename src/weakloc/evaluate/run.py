"""Scoring predictions against a dataset's test split (localization on local fakes, detection on real +
local fakes), written as JSON, a per-image CSV and a Markdown table."""

from __future__ import annotations

import csv
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import DataConfig, EvalConfig
from ..data.images import image_size, read_mask
from ..data.samples import Sample, require, require_masks, select
from ..io import atomic_path, write_json
from ..predictions import Predictions
from .metrics import detection_scores, localization_scores, summarize_localization


def load_native_masks(samples: Sequence[Sample], data: DataConfig) -> list[np.ndarray]:
    """Masks at their native size (checked against their image's size), read in parallel."""
    def one(s: Sample) -> np.ndarray:
        return read_mask(s.mask_path, polarity=data.mask_polarity, binarize=data.binarize_masks,
                         expected_size=image_size(s.path))

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, samples))


def test_sets(samples: Sequence[Sample], where: object) -> tuple[list[Sample], list[Sample]]:
    """(local fakes of the test split, with masks; real images of the test split, possibly empty)."""
    local = require_masks(require(select(samples, "test", ["local"]), "localization", where, split="test",
                                  kinds=["local"]), "localization metrics")
    return local, select(samples, "test", ["real"])


def evaluate_predictions(predictions: Predictions, samples: Sequence[Sample], data: DataConfig,
                         cfg: EvalConfig | None = None, where: object = "") -> dict:
    """Metrics (percentages) and per-image rows for the test split of ``samples``."""
    cfg = cfg or EvalConfig()
    local, real = test_sets(samples, where)
    local_scores, maps = predictions.align(local, where)
    masks = load_native_masks(local, data)
    per_image = localization_scores(maps, masks, cfg.threshold)
    result: dict = {"localization": summarize_localization(per_image), "n_local": len(local),
                    "threshold": cfg.threshold}
    if real and not np.isnan(local_scores).any():
        real_scores, _ = predictions.align(real, where)
        scores = np.concatenate([real_scores, local_scores])
        labels = np.concatenate([np.zeros(len(real)), np.ones(len(local))])
        result["detection"] = detection_scores(scores, labels, repeats=cfg.ap_repeats, seed=cfg.seed)
    rows = [{"id": s.id, **{k: float(v[i]) for k, v in per_image.items()}, "mask_area": float(masks[i].mean()),
             "score": float(local_scores[i])} for i, s in enumerate(local)]
    result["per_image"] = rows
    return result


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
    with atomic_path(out_dir / "metrics.md") as tmp:
        tmp.write_text(metrics_markdown(summary))
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
