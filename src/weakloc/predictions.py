"""Running a localizer over samples, and saved predictions (what `weakloc predict` writes and
`weakloc evaluate` scores, including maps from external localizers).

Saved forms:
- ``.npz`` with ``ids`` [N] (dataset ids, e.g. ``fake/repaint-p2/images/test/00001.png``, or bare file
  names), ``scores`` [N] and ``maps`` [N, h, w] float in [0, 1];
- a folder of grayscale heatmap PNGs named like the images (value / 255 = probability of manipulation);
  such a folder has no image scores, so only localization is scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .config import DataConfig
from .data.dataset import CachedImages
from .data.images import is_image_file
from .data.samples import Sample
from .errors import InputError
from .io import atomic_path
from .models import Localizer, LocalizerOutput
from .runtime import autocast, autocast_dtype


@dataclass
class Predictions:
    ids: list[str]
    scores: np.ndarray  # [N]; NaN where a source gives no score
    maps: np.ndarray | list[np.ndarray]  # [N, h, w] in [0, 1] (a list when sizes differ)

    def save_npz(self, path: str | Path) -> Path:
        path = Path(path)
        maps = np.stack(self.maps) if isinstance(self.maps, list) else self.maps
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, ids=np.array(self.ids), scores=self.scores.astype(np.float32),
                                    maps=maps.astype(np.float32))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Predictions":
        path = Path(path)
        if path.is_dir():
            return _load_heatmap_folder(path)
        if not path.is_file():
            raise InputError(path, "predictions file does not exist", "pass an .npz written by `weakloc predict` "
                             "or a folder of heatmap PNGs")
        try:
            with np.load(path, allow_pickle=False) as f:
                missing = [k for k in ("ids", "maps") if k not in f.files]
                if missing:
                    raise InputError(path, f"npz lacks array(s) {', '.join(missing)}",
                                     "save ids [N] (file names), scores [N] and maps [N,h,w]")
                ids = [str(i) for i in f["ids"]]
                maps = f["maps"].astype(np.float32)
                scores = f["scores"].astype(np.float64) if "scores" in f.files else np.full(len(ids), np.nan)
        except (ValueError, OSError) as exc:
            raise InputError(path, f"not a readable .npz file ({exc})", "re-save it with numpy.savez") from None
        if maps.ndim != 3 or len(maps) != len(ids) or len(scores) != len(ids):
            raise InputError(path, f"shapes disagree: ids {len(ids)}, scores {scores.shape}, maps {maps.shape}",
                             "maps must be [N, h, w] and scores [N] for N ids")
        if maps.size and (maps.min() < 0 or maps.max() > 1):
            raise InputError(path, f"map values span [{maps.min():.3g}, {maps.max():.3g}], not [0, 1]",
                             "save probabilities (e.g. apply a sigmoid/softmax or min-max scale first)")
        return cls(ids, scores, maps)

    def align(self, samples: Sequence[Sample], where: object) -> tuple[np.ndarray, list[np.ndarray]]:
        """Scores and maps in the order of ``samples``: by id, else by unique file name."""
        position = {id_: i for i, id_ in enumerate(self.ids)}
        by_name: dict[str, int] = {}  # file name -> position, or -1 when several predictions share the name
        for i, id_ in enumerate(self.ids):
            name = Path(id_).name
            by_name[name] = -1 if name in by_name else i
        order = []
        for s in samples:
            i = position.get(s.id, by_name.get(s.name, None))
            if i is None or i < 0:
                problem = "has no prediction" if i is None else "matches several predictions by file name"
                raise InputError(where, f"image {s.id} {problem}",
                                 "predict on the whole test split, or name predictions by dataset id")
            order.append(i)
        maps = [np.asarray(self.maps[i]) for i in order]
        return self.scores[order], maps


def _load_heatmap_folder(folder: Path) -> Predictions:
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise InputError(folder, "folder has no heatmap images", "write one grayscale PNG per test image")
    maps = []
    for p in files:
        try:
            with Image.open(p) as im:
                maps.append(np.asarray(im.convert("L"), dtype=np.float32) / 255.0)
        except OSError as exc:
            raise InputError(p, f"unreadable heatmap ({exc})", "re-save it as a grayscale PNG") from None
    return Predictions([p.name for p in files], np.full(len(files), np.nan), maps)


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
                    cache_dir: str | None = None) -> Predictions:
    cache = CachedImages.build(samples, preprocessing_of(card, cache_dir), with_masks=False, desc="decode test",
                               progress=progress)
    scores, maps = predict_cache(model, cache, batch_size=batch_size, device=device, precision=precision,
                                 progress=progress)
    return Predictions([s.id for s in samples], scores.astype(np.float64), maps)
