"""Real photographs that installed registry packages carry inside themselves (no download).

Only freely licensed pictures are used; licences as stated by the packages' own documentation:
- scikit-image ``skimage.data``: astronaut (NASA, public domain), camera (CC0), coffee (CC0, R. Michetti),
  chelsea (CC0, S. van der Walt), rocket (SpaceX, public domain/CC0), hubble_deep_field (NASA, public
  domain), immunohistochemistry (public domain), retina (public domain, M. Häggström), coins (public domain,
  Walters Art Museum), moon (public domain), brick, grass, gravel (CC0), clock (CC0, S. van der Walt);
- scikit-learn ``load_sample_images``: china.jpg, flower.jpg (CC-BY 2.0).
Grayscale pictures are stacked to RGB (the same conversion every loader applies).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SKIMAGE_PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "retina", "coins", "moon", "brick", "grass", "gravel", "clock")
SKLEARN_PHOTOS = ("china", "flower")
BUILTIN_PHOTOS = SKIMAGE_PHOTOS + SKLEARN_PHOTOS
# Every picture is cut into a GRID x GRID set of tiles and each tile belongs to one split, so every split
# sees every kind of content while no test crop overlaps a training crop.
GRID = 4
TILE_SPLITS = ("train",) * 11 + ("valid",) * 2 + ("test",) * 3


def tiles_of(split: str) -> list[tuple[str, int, int]]:
    """(picture, tile row, tile column) of one split; the same fixed assignment on every machine."""
    rng = np.random.default_rng(20231)
    chosen = []
    for name in BUILTIN_PHOTOS:
        order = rng.permutation(len(TILE_SPLITS))
        for tile, where in enumerate(order):
            if TILE_SPLITS[where] == split:
                chosen.append((name, tile // GRID, tile % GRID))
    return chosen


def _as_rgb(array: np.ndarray) -> np.ndarray:
    if array.dtype != np.uint8:
        array = (np.clip(array, 0, 1) * 255 + 0.5).astype(np.uint8)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array[..., :3])


@lru_cache(maxsize=None)
def load_photo(name: str) -> np.ndarray:
    """One built-in photograph as an HxWx3 uint8 array."""
    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        return _as_rgb(load_sample_image(f"{name}.jpg"))
    if name in SKIMAGE_PHOTOS:
        import skimage.data

        return _as_rgb(getattr(skimage.data, name)())
    raise KeyError(f"unknown built-in photo {name!r}; known: {', '.join(SKIMAGE_PHOTOS + SKLEARN_PHOTOS)}")


def tile_crop(name: str, row: int, col: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop inside one tile of a built-in picture, resized to ``size``."""
    photo = load_photo(name)
    h, w = photo.shape[:2]
    th, tw = h // GRID, w // GRID
    return random_crop(photo[row * th:(row + 1) * th, col * tw:(col + 1) * tw], size, rng)


def random_crop(photo: np.ndarray, size: int, rng: np.random.Generator,
                scale: tuple[float, float] = (0.6, 1.0)) -> np.ndarray:
    """A square crop covering a random fraction ``scale`` of the shorter side, resized to ``size`` (area filter)."""
    import cv2

    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(*scale))
    side = max(side, min(size, h, w))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = photo[y:y + side, x:x + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
