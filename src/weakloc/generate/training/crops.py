"""The training images: a folder read once, and each step's batch of random crops and flips drawn from a
generator seeded by (seed, step), so any step's batch can be redrawn exactly after a resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...data.images import is_image_file, read_rgb
from ...errors import InputError
from ..seeds import derive_seed


def image_files(folder: str | Path) -> list[Path]:
    """Every image under ``folder`` (recursively), sorted; an error when there is none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not a folder", "pass a folder of training images (PNG, JPEG, ...)")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))
    if not files:
        raise InputError(folder, "holds no image files", "put PNG/JPEG/WebP/TIFF/BMP images in it (subfolders too)")
    return files


def _prepare(path: Path, size: int, resize: int | None) -> np.ndarray:
    image = read_rgb(path)
    short = min(image.size)
    target = resize if resize is not None else max(short, size)
    target = max(target, size)  # a crop of ``size`` must fit
    if target != short:
        scale = target / short
        image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))),
                             Image.BICUBIC)
    return np.array(image, dtype=np.uint8)  # a writable copy (torch.from_numpy needs one)


class CropSource:
    """All images of a folder, decoded once (resized so the shorter side is ``resize``, or at least ``size``)."""

    def __init__(self, folder: str | Path, size: int, resize: int | None = None) -> None:
        self.folder = Path(folder)
        self.files = image_files(folder)
        self.size = size
        self.images = [torch.from_numpy(_prepare(p, size, resize)) for p in self.files]

    def __len__(self) -> int:
        return len(self.images)

    def describe(self) -> dict:
        return {"folder": str(self.folder), "images": len(self.images),
                "pixels": int(sum(im.shape[0] * im.shape[1] for im in self.images))}

    def batch(self, seed: int, step: int, batch_size: int) -> torch.Tensor:
        """NCHW float in [-1, 1]: random images (weighted by area, so big pictures give more crops), random
        ``size`` crops, random horizontal flips; the same for the same (seed, step)."""
        rng = np.random.default_rng(derive_seed(seed, "crops", step))
        areas = np.array([im.shape[0] * im.shape[1] for im in self.images], dtype=np.float64)
        picks = rng.choice(len(self.images), size=batch_size, p=areas / areas.sum())
        s = self.size
        out = torch.empty(batch_size, s, s, 3, dtype=torch.uint8)
        for i, k in enumerate(picks):
            image = self.images[k]
            y = rng.integers(0, image.shape[0] - s + 1)
            x = rng.integers(0, image.shape[1] - s + 1)
            crop = image[y:y + s, x:x + s]
            out[i] = crop.flip(1) if rng.random() < 0.5 else crop
        return out.permute(0, 3, 1, 2).float() / 127.5 - 1.0
