"""Saved predictions: what `weakloc predict` writes and `weakloc evaluate` scores, including maps from
external localizers.

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
from PIL import Image

from ..data.images import is_image_file
from ..data.samples import Sample
from ..errors import InputError
from ..files import atomic_path


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
