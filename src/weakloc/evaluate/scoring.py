"""Scoring predictions against a dataset's test split: localization on the local fakes, detection on the
reals + local fakes; from saved predictions, or from a checkpoint (predicting first)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import DataConfig, EvalConfig
from ..data.images import image_size, read_mask
from ..data.load import data_where
from ..data.samples import Sample, require, require_masks, select
from ..device import pick_device
from ..predict.batch import predict_samples
from ..predict.saved import Predictions
from ..train.checkpoint import load_checkpoint, update_card
from .metrics import detection_scores, localization_scores, summarize_localization
from .report import write_results


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
        result["detection"] = {**detection_scores(scores, labels, repeats=cfg.ap_repeats, seed=cfg.ap_seed,
                                                  sampling=cfg.ap_sampling),
                               "ap_sampling": cfg.ap_sampling, "ap_seed": cfg.ap_seed}
    rows = [{"id": s.id, **{k: float(v[i]) for k, v in per_image.items()}, "mask_area": float(masks[i].mean()),
             "score": float(local_scores[i])} for i, s in enumerate(local)]
    result["per_image"] = rows
    return result


def evaluate_checkpoint(checkpoint: Path, data: DataConfig, samples: list, cfg: EvalConfig, out_dir: Path, *,
                        progress: bool = True, device: str = "auto") -> dict:
    """Predict the test split (local fakes + reals) with a checkpoint, score it, record the metrics in its card."""
    model, card = load_checkpoint(checkpoint, pick_device(device))
    local, real = test_sets(samples, data_where(data))
    predictions = predict_samples(model, card, real + local, batch_size=cfg.batch_size,
                                  device=next(model.parameters()).device, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions.save_npz(out_dir / "predictions.npz")
    result = evaluate_predictions(predictions, samples, data, cfg, data_where(data))
    write_results(result, out_dir)
    summary = {k: v for k, v in result.items() if k != "per_image"}
    update_card(checkpoint, test_metrics=summary, test_data={"root": data.root, "dataset": data.dataset,
                                                             "local": data.local, "n_local": len(local),
                                                             "n_real": len(real)})
    return summary
