"""Source images for generation: which files, which split, and the one way they are resized.

Every generator and the real-image export read sources through :func:`prepare`, so reals and fakes get
identical preprocessing (centre square crop, then a bicubic resize to the generation size, as the paper resized its sources).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..data.images import read_rgb
from ..data.layouts import folder_samples
from ..data.samples import SPLITS
from ..errors import InputError


@dataclass(frozen=True)
class Source:
    name: str  # file stem: unique within a plan, the base of every file made from this source
    path: Path
    split: str


def _read_split_file(path: Path) -> dict[str, str]:
    """Lines ``NAME SPLIT`` (split: train/valid/test or CelebA's 0/1/2, as in list_eval_partition.txt)."""
    codes = {"0": "train", "1": "valid", "2": "test", "val": "valid", "validation": "valid"}
    if not path.is_file():
        raise InputError(path, "split file does not exist", "pass a text file of 'NAME SPLIT' lines")
    table: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.replace(",", " ").split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < 2:
            raise InputError(f"{path} (line {number})", "expected 'NAME SPLIT'", "fix that line")
        split = codes.get(fields[1].lower(), fields[1].lower())
        if split not in SPLITS:
            raise InputError(f"{path} (line {number})", f"split {fields[1]!r} is not one of train/valid/test/0/1/2",
                             "fix that line")
        table[Path(fields[0]).stem] = split
    return table


def list_sources(images: str | Path, *, split: str | None = None, split_file: str | Path | None = None,
                 split_ratios: Sequence[float] = (0.8, 0.1, 0.1), limit: int | None = None) -> list[Source]:
    """Image files of a folder with their split, sorted by name.

    The split comes from ``split`` (all images in one split), else ``split_file``, else the folder's
    train/valid/test subfolders, else a stable hash of the file name (``split_ratios``)."""
    images = Path(images)
    if split is not None and split not in SPLITS:
        raise InputError(images, f"split {split!r} is not one of {', '.join(SPLITS)}", "use --split train|valid|test")
    if not images.is_dir():
        raise InputError(images, "source images folder does not exist", "pass the folder of real images")
    found = folder_samples(real=images, local=None, split_ratios=split_ratios)
    table = _read_split_file(Path(split_file)) if split_file else None
    sources = []
    for sample in found:
        chosen = split or sample.split
        if table is not None:
            if sample.path.stem not in table:
                continue  # split files list a subset on purpose (e.g. the 30k CelebA-HQ of 200k CelebA)
            chosen = table[sample.path.stem]
        sources.append(Source(sample.path.stem, sample.path, chosen))
    sources.sort(key=lambda s: (s.name, str(s.path)))
    names = [s.name for s in sources]
    duplicate = next((n for i, n in enumerate(names) if i and names[i - 1] == n), None)
    if duplicate is not None:
        paths = [str(s.path) for s in sources if s.name == duplicate]
        raise InputError(images, f"two source images share the name {duplicate!r} ({', '.join(paths)})",
                         "output files are named after the source: rename one of them")
    if not sources:
        raise InputError(images, "no source images found" + (" listed in the split file" if table else ""),
                         "put .png/.jpg images in the folder (or its train/valid/test subfolders)")
    return sources[:limit] if limit else sources


def prepare(path: str | Path, size: int) -> np.ndarray:
    """Read an image, crop its centre square, resize to ``size`` x ``size`` -> HxWx3 uint8. Bicubic, as the paper
    resized its sources (§4: CelebA-HQ / FFHQ to 256 px), so that every generator and the reals see the same pixels."""
    image = read_rgb(path)
    width, height = image.size
    side = min(width, height)
    if (width, height) != (side, side):
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if side != size:
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8).copy()
