"""Generic manipulation masks (True = region to regenerate), seeded and reproducible.

- free-form strokes (random thick polylines, as in free-form inpainting benchmarks),
- ellipses,
- their union with a target area fraction drawn from ``area`` (min, max);
- area-controlled kinds (strokes, ellipse, superpixels) that aim at a target area drawn from an
  :class:`AreaSpec`, for datasets whose mask-area distribution is a setting.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def _stroke(mask: np.ndarray, rng: np.random.Generator, *, thickness: tuple[float, float],
            vertices: tuple[int, int], reach: tuple[float, float], goal: float | None = None) -> None:
    """Draw one brush stroke into ``mask`` (uint8, in place): a polyline of thick segments with round joints
    from a random start; with ``goal``, stop after the segment that brings the mask's area to it. The one
    stroke loop of the strokes masks (its random draws are what make a mask reproducible from its seed)."""
    height, width = mask.shape
    short = min(height, width)
    x, y = rng.uniform(0, width), rng.uniform(0, height)
    width_px = max(2, int(rng.uniform(*thickness) * short))
    for _ in range(rng.integers(vertices[0], vertices[1] + 1)):
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(*reach) * short
        nx = float(np.clip(x + length * np.cos(angle), 0, width - 1))
        ny = float(np.clip(y + length * np.sin(angle), 0, height - 1))
        cv2.line(mask, (int(x), int(y)), (int(nx), int(ny)), 1, width_px)
        cv2.circle(mask, (int(nx), int(ny)), width_px // 2, 1, -1)
        x, y = nx, ny
        if goal is not None and mask.sum() >= goal:  # stop mid-stroke: keeps the overshoot to one segment
            break


def free_form_mask(height: int, width: int, rng: np.random.Generator, *, strokes: tuple[int, int] = (1, 4),
                   vertices: tuple[int, int] = (3, 8), thickness: tuple[float, float] = (0.05, 0.15)) -> np.ndarray:
    """Random brush strokes; stroke width is a fraction of the image's shorter side."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for _ in range(rng.integers(strokes[0], strokes[1] + 1)):
        _stroke(mask, rng, thickness=thickness, vertices=vertices, reach=(0.1, 0.35))
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


# ---------------------------------------------------------------- area-controlled generic masks
# The masks above draw shapes and then accept or redraw; the kinds below aim at a target area drawn first,
# so that the area distribution of a dataset is a setting (IoU depends strongly on mask area, paper Fig. 5).

GENERIC_KINDS = ("strokes", "ellipse", "superpixels")
AREA_DISTRIBUTIONS = ("uniform", "loguniform")


@dataclass(frozen=True)
class AreaSpec:
    """Distribution of the masked fraction of the image: ``low:high`` uniform, or ``low:high:log`` log-uniform."""

    low: float = 0.05
    high: float = 0.4
    distribution: str = "uniform"

    def __post_init__(self) -> None:
        if not 0.0 < self.low <= self.high < 1.0:
            raise ValueError(f"area range must satisfy 0 < low <= high < 1, not {self.low}:{self.high}")
        if self.distribution not in AREA_DISTRIBUTIONS:
            raise ValueError(f"area distribution must be one of {AREA_DISTRIBUTIONS}, not {self.distribution!r}")

    @classmethod
    def parse(cls, text: str) -> "AreaSpec":
        """``"0.05:0.4"`` or ``"0.01:0.5:log"``."""
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"area must look like LOW:HIGH or LOW:HIGH:log, not {text!r}")
        name = parts[2] if len(parts) == 3 else "uniform"
        try:
            low, high = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"area must look like LOW:HIGH or LOW:HIGH:log with numbers, not {text!r}") from None
        return cls(low, high, {"log": "loguniform"}.get(name, name))

    def sample(self, rng: np.random.Generator) -> float:
        if self.distribution == "loguniform":
            return float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def __str__(self) -> str:
        return f"{self.low}:{self.high}" + (":log" if self.distribution == "loguniform" else "")


def strokes_mask(height: int, width: int, rng: np.random.Generator, target: float, *,
                 thickness: tuple[float, float] = (0.04, 0.12), max_strokes: int = 200) -> np.ndarray:
    """Free-form brush strokes added one segment chain at a time until ``target`` of the image is covered."""
    mask = np.zeros((height, width), dtype=np.uint8)
    goal = target * height * width
    for _ in range(max_strokes):
        if mask.sum() >= goal:
            break
        _stroke(mask, rng, thickness=thickness, vertices=(2, 5), reach=(0.1, 0.3), goal=goal)
    return mask.astype(bool)


def ellipse_area_mask(height: int, width: int, rng: np.random.Generator, target: float) -> np.ndarray:
    """One filled ellipse (random aspect, angle, centre) rescaled until it covers ``target`` of the image."""
    aspect = rng.uniform(0.45, 1.0)
    angle = float(rng.uniform(0, 180))
    center = (int(rng.uniform(0.3, 0.7) * width), int(rng.uniform(0.3, 0.7) * height))
    major = np.sqrt(target * height * width / (np.pi * aspect))
    mask = np.zeros((height, width), dtype=np.uint8)
    for _ in range(8):  # the image border cuts the ellipse: grow it until the visible part is right
        mask[:] = 0
        cv2.ellipse(mask, center, (max(1, int(round(major))), max(1, int(round(major * aspect)))), angle, 0, 360, 1, -1)
        fraction = mask.mean()
        if abs(fraction - target) <= 0.05 * target or fraction == 0:
            break
        major *= np.sqrt(target / fraction)
    return mask.astype(bool)


def superpixel_mask(image: np.ndarray, rng: np.random.Generator, target: float, *,
                    n_segments: int = 150, compactness: float = 10.0) -> np.ndarray:
    """A connected union of SLIC superpixels grown from a random one until it covers ``target``: the mask
    follows the picture's own edges (content-aligned), unlike strokes and ellipses."""
    from skimage.segmentation import slic

    labels = slic(image, n_segments=n_segments, compactness=compactness, start_label=0, channel_axis=-1)
    count = int(labels.max()) + 1
    areas = np.bincount(labels.ravel(), minlength=count)
    neighbours: list[set[int]] = [set() for _ in range(count)]
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1, :], labels[1:, :])):
        edge = a != b
        for u, v in set(zip(a[edge].tolist(), b[edge].tolist(), strict=True)):
            neighbours[u].add(v)
            neighbours[v].add(u)
    chosen = {int(rng.integers(count))}
    covered = int(areas[next(iter(chosen))])
    goal = target * labels.size
    while covered < goal:
        frontier = sorted(set().union(*(neighbours[c] for c in chosen)) - chosen)  # sorted: seeded choice
        if not frontier:
            break
        pick = int(frontier[rng.integers(len(frontier))])
        chosen.add(pick)
        covered += int(areas[pick])
    return np.isin(labels, sorted(chosen))


def generic_mask(kind: str, image: np.ndarray, rng: np.random.Generator,
                 area: AreaSpec = AreaSpec()) -> tuple[np.ndarray, str, float]:
    """A generic mask for an HxWx3 image -> (mask, kind drawn, target area). ``kind`` is one of
    GENERIC_KINDS, or ``"generic"`` to draw one of them at random."""
    if kind == "generic":
        kind = GENERIC_KINDS[int(rng.integers(len(GENERIC_KINDS)))]
    height, width = image.shape[:2]
    target = area.sample(rng)
    if kind == "strokes":
        return strokes_mask(height, width, rng, target), kind, target
    if kind == "ellipse":
        return ellipse_area_mask(height, width, rng, target), kind, target
    if kind == "superpixels":
        return superpixel_mask(image, rng, target), kind, target
    raise ValueError(f"mask kind must be one of {GENERIC_KINDS + ('generic',)}, not {kind!r}")
