"""Generic manipulation masks (True = region to regenerate), seeded and reproducible.

- free-form strokes (random thick polylines, as in free-form inpainting benchmarks),
- ellipses,
- their union with a target area fraction drawn from ``area`` (min, max).
"""

from __future__ import annotations

import cv2
import numpy as np


def free_form_mask(height: int, width: int, rng: np.random.Generator, *, strokes: tuple[int, int] = (1, 4),
                   vertices: tuple[int, int] = (3, 8), thickness: tuple[float, float] = (0.05, 0.15)) -> np.ndarray:
    """Random brush strokes; stroke width is a fraction of the image's shorter side."""
    mask = np.zeros((height, width), dtype=np.uint8)
    short = min(height, width)
    for _ in range(rng.integers(strokes[0], strokes[1] + 1)):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        width_px = max(2, int(rng.uniform(*thickness) * short))
        for _ in range(rng.integers(vertices[0], vertices[1] + 1)):
            angle = rng.uniform(0, 2 * np.pi)
            length = rng.uniform(0.1, 0.35) * short
            nx = float(np.clip(x + length * np.cos(angle), 0, width - 1))
            ny = float(np.clip(y + length * np.sin(angle), 0, height - 1))
            cv2.line(mask, (int(x), int(y)), (int(nx), int(ny)), 1, width_px)
            cv2.circle(mask, (int(nx), int(ny)), width_px // 2, 1, -1)
            x, y = nx, ny
    return mask.astype(bool)


def ellipse_mask(height: int, width: int, rng: np.random.Generator, *,
                 axes: tuple[float, float] = (0.1, 0.35)) -> np.ndarray:
    """One filled ellipse with random centre, axes (fractions of the size) and angle."""
    mask = np.zeros((height, width), dtype=np.uint8)
    center = (int(rng.uniform(0.2, 0.8) * width), int(rng.uniform(0.2, 0.8) * height))
    half_axes = (max(2, int(rng.uniform(*axes) * width)), max(2, int(rng.uniform(*axes) * height)))
    cv2.ellipse(mask, center, half_axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask.astype(bool)


def random_mask(height: int, width: int, rng: np.random.Generator, *,
                area: tuple[float, float] = (0.05, 0.4), max_tries: int = 20) -> np.ndarray:
    """Strokes or an ellipse, redrawn until the masked fraction falls inside ``area``."""
    best = None
    for _ in range(max_tries):
        mask = free_form_mask(height, width, rng) if rng.random() < 0.6 else ellipse_mask(height, width, rng)
        fraction = mask.mean()
        if area[0] <= fraction <= area[1]:
            return mask
        if best is None or abs(fraction - np.mean(area)) < abs(best.mean() - np.mean(area)):
            best = mask
    return best
