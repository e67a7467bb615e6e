"""Classical inpainters that run offline (OpenCV Telea), local and full-image variants."""

from __future__ import annotations

import cv2
import numpy as np


def telea_inpaint(image: np.ndarray, mask: np.ndarray, radius: int = 5) -> np.ndarray:
    """Fill ``mask`` (True = regenerate) of an HxWx3 uint8 image; pixels outside the mask are unchanged."""
    filled = cv2.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)
    return np.where(mask[..., None], filled, image)


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
