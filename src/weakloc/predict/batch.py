"""Running a localizer: one batch (the one place prediction runs a model), and every image of a cache."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import DataConfig
from ..data.cache import CachedImages
from ..data.perturb import Perturbation
from ..data.samples import Sample
from ..device import autocast, autocast_dtype
from ..methods import Localizer, LocalizerOutput
from .saved import Predictions


def localize_batch(model: Localizer, images: torch.Tensor, device: torch.device,
                   dtype: torch.dtype | None) -> LocalizerOutput:
    """One batch of normalised images through ``model.localize`` (with grad when the method needs it, e.g.
    Grad-CAM), results on the CPU. The one place prediction runs a model."""
    with torch.set_grad_enabled(model.needs_grad_to_localize), autocast(device, dtype):
        return model.localize(images).cpu()


def predict_cache(model: Localizer, cache: CachedImages, *, batch_size: int = 64, device: torch.device | str = "cpu",
                  precision: str = "fp32", progress: bool = True, desc: str = "predict") -> tuple[np.ndarray, np.ndarray]:
    """Scores [N] and maps [N, h, w] (float32) for every image of a cache, in batches."""
    device = torch.device(device)
    dtype = autocast_dtype(precision, device)
    model.eval()
    scores, maps = [], []
    for start in tqdm(range(0, len(cache), batch_size), desc=desc, disable=not progress, leave=False, unit="batch"):
        batch = cache.batch(np.arange(start, min(start + batch_size, len(cache))), device=device)
        out = localize_batch(model, batch["image"], device, dtype)
        scores.append(out.score.numpy())
        maps.append(out.map.numpy())
    if not scores:
        return np.zeros(0, np.float32), np.zeros((0, 1, 1), np.float32)
    return np.concatenate(scores), np.concatenate(maps)


def preprocessing_of(card: dict, cache_dir: str | None = None) -> DataConfig:
    """The preprocessing a checkpoint was trained with (so prediction matches it exactly)."""
    return DataConfig(input_size=card["input_size"], resize=card["resize"], mean=card["mean"], std=card["std"],
                      cache_dir=cache_dir, full=[], local=[])


def predict_samples(model: Localizer, card: dict, samples: Sequence[Sample], *, batch_size: int = 64,
                    device: torch.device | str = "cpu", precision: str = "fp32", progress: bool = True,
                    cache_dir: str | None = None, perturb: Perturbation | None = None) -> Predictions:
    """Scores and maps of ``samples``; ``perturb`` runs the model on perturbed copies (robustness evaluation)."""
    desc = "decode test" + (f" {perturb.name}" if perturb is not None else "")
    cache = CachedImages.build(samples, preprocessing_of(card, cache_dir), desc=desc, progress=progress,
                               perturb=perturb)
    scores, maps = predict_cache(model, cache, batch_size=batch_size, device=device, precision=precision,
                                 progress=progress)
    return Predictions([s.id for s in samples], scores.astype(np.float64), maps)
