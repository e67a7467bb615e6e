"""Classical inpainters that run offline, local and full-image variants.

Each inpainter maps (HxWx3 uint8 image, HxW bool mask with True = regenerate, seed) to an image whose
pixels outside the mask are exactly the input's:

- ``telea``: OpenCV's fast marching method (Telea 2004);
- ``ns``: OpenCV's Navier-Stokes method (Bertalmio et al. 2001);
- ``biharmonic``: scikit-image's biharmonic equation fill;
- ``patchmatch``: PatchMatch (Barnes et al. 2009) from the optional extra ``patchmatch`` (patchmatch-cython).

``ClassicalInpainter`` and ``ClassicalFull`` put them behind the generators' batch interface. The full-image
variant (:func:`full_regenerate`) regenerates every pixel with the same inpainter. PatchMatch
has none: it copies patches of known pixels, and a full regeneration leaves no known pixel to copy from
(with large checkerboard cells it produces a collage of blocks, not an image).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from ...errors import ConfigError
from ..extras import require
from . import InpaintSettings, register_inpainter


def telea_inpaint(image: np.ndarray, mask: np.ndarray, radius: int = 5) -> np.ndarray:
    """Fill ``mask`` (True = regenerate) of an HxWx3 uint8 image; pixels outside the mask are unchanged."""
    filled = cv2.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)
    return np.where(mask[..., None], filled, image)


def navier_stokes_inpaint(image: np.ndarray, mask: np.ndarray, radius: int = 5) -> np.ndarray:
    filled = cv2.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8) * 255, radius, cv2.INPAINT_NS)
    return np.where(mask[..., None], filled, image)


def biharmonic_inpaint(image: np.ndarray, mask: np.ndarray, radius: int = 0) -> np.ndarray:
    """``radius`` is unused (kept for the common signature)."""
    from skimage.restoration import inpaint_biharmonic

    if not mask.any():
        return image.copy()
    filled = inpaint_biharmonic(image.astype(np.float64) / 255.0, mask, channel_axis=-1)
    filled = np.clip(np.round(filled * 255.0), 0, 255).astype(np.uint8)
    return np.where(mask[..., None], filled, image)


def patchmatch_inpaint(image: np.ndarray, mask: np.ndarray, radius: int = 0, *, seed: int = 0,
                       patch_size: int = 5) -> np.ndarray:
    """PatchMatch fill, seeded (its randomised search takes the per-image seed)."""
    patchmatch = require("patchmatch")
    if not mask.any():
        return image.copy()
    filled = patchmatch.inpaint_pyramid(np.ascontiguousarray(image), mask.astype(bool), patch_size=patch_size,
                                        seed=int(seed) % (2 ** 32))
    return np.where(mask[..., None], np.asarray(filled, dtype=np.uint8), image)


def checkerboard_mask(height: int, width: int, cell: int, rng: np.random.Generator) -> np.ndarray:
    """Cells of ``cell`` px alternating True/False, with a random phase."""
    dy, dx = rng.integers(0, cell, size=2)
    yy = (np.arange(height)[:, None] + dy) // cell
    xx = (np.arange(width)[None, :] + dx) // cell
    return ((yy + xx) % 2).astype(bool)


def full_regenerate(image: np.ndarray, rng: np.random.Generator, *, cell: int = 3, radius: int = 3,
                    inpaint=telea_inpaint) -> np.ndarray:
    """Regenerate every pixel with an inpainter: fill one half of a checkerboard from the original pixels,
    then fill the other half from the generated one, so no original pixel survives."""
    first = checkerboard_mask(image.shape[0], image.shape[1], cell, rng)
    half = inpaint(image, first, radius)
    return inpaint(half, ~first, radius)


@dataclass(frozen=True)
class Classical:
    """A named classical inpainter with its settings; ``cell`` is the checkerboard cell of its full variant."""

    name: str
    radius: int = 5
    cell: int = 3
    patch_size: int = 5

    def inpaint(self, image: np.ndarray, mask: np.ndarray, seed: int) -> np.ndarray:
        if self.name == "patchmatch":
            return patchmatch_inpaint(image, mask, seed=seed, patch_size=self.patch_size)
        return CLASSICAL[self.name](image, mask, self.radius)

    def full(self, image: np.ndarray, seed: int) -> np.ndarray:
        if self.name not in FULL_VARIANTS:
            raise ValueError(f"{self.name} has no full-image variant; use one of {', '.join(FULL_VARIANTS)}")
        rng = np.random.default_rng(seed)
        return full_regenerate(image, rng, cell=self.cell, radius=self.radius,
                               inpaint=lambda im, m, _r: self.inpaint(im, m, seed))

    def settings(self) -> dict:
        if self.name == "patchmatch":
            return {"inpainter": self.name, "patch_size": self.patch_size}
        if self.name == "biharmonic":
            return {"inpainter": self.name, "full_cell": self.cell}
        return {"inpainter": self.name, "radius": self.radius, "full_cell": self.cell}


CLASSICAL: dict[str, Callable[..., np.ndarray]] = {
    "telea": telea_inpaint,
    "ns": navier_stokes_inpaint,
    "biharmonic": biharmonic_inpaint,
    "patchmatch": patchmatch_inpaint,
}
FULL_VARIANTS = ("telea", "ns", "biharmonic")


def classical(name: str, *, radius: int = 5, cell: int = 3, patch_size: int = 5) -> Classical:
    if name not in CLASSICAL:
        raise ValueError(f"classical inpainter must be one of {', '.join(CLASSICAL)}, not {name!r}")
    if name == "patchmatch":
        require("patchmatch")  # fail before any work starts
    return Classical(name, radius, cell, patch_size)


@dataclass
class ClassicalInpainter:
    spec: Classical
    name: str = "classical"
    max_batch: int | None = 1  # single-image algorithms

    def settings(self) -> dict:
        return self.spec.settings()

    def check_size(self, size: int) -> None:
        pass

    def inpaint(self, images: np.ndarray, masks: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        out = np.stack([self.spec.inpaint(im, m, s) for im, m, s in zip(images, masks, seeds, strict=True)])
        return out, masks


@dataclass
class ClassicalFull:
    """Every pixel of a source regenerated by a classical inpainter (checkerboard halves, classical.py)."""

    spec: Classical
    name: str = "classical-full"

    def __post_init__(self) -> None:
        if self.spec.name not in FULL_VARIANTS:
            raise ConfigError(f"{self.spec.name} has no full-image variant (see classical.py); "
                              f"use one of {', '.join(FULL_VARIANTS)}")

    def settings(self) -> dict:
        return {**self.spec.settings(), "variant": "full"}

    def generate(self, seeds: Sequence[int], sources: np.ndarray | None = None) -> np.ndarray:
        if sources is None:
            raise ValueError("the classical full-image variant regenerates source images: pass them")
        return np.stack([self.spec.full(im, s) for im, s in zip(sources, seeds, strict=True)])


def _register(name: str) -> None:
    @register_inpainter(name)
    def build(settings: InpaintSettings) -> ClassicalInpainter:
        return ClassicalInpainter(classical(name, radius=settings.radius, patch_size=settings.patch_size))


for _name in CLASSICAL:
    _register(_name)
