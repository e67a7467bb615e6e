"""Real photographs that installed registry packages carry inside themselves (no download), and the two
sources of the built-in benchmark made from them.

Only freely licensed pictures are used; licences as stated by the packages' own documentation:
- scikit-image ``skimage.data``: astronaut (NASA, public domain), camera (CC0), coffee (CC0, R. Michetti),
  chelsea (CC0, S. van der Walt), rocket (SpaceX, public domain/CC0), hubble_deep_field (NASA, public
  domain), immunohistochemistry (public domain), retina (public domain, M. Häggström), coins (public domain,
  Walters Art Museum), moon (public domain), brick, grass, gravel (CC0), clock (CC0, S. van der Walt);
- scikit-learn ``load_sample_images``: china.jpg, flower.jpg (CC-BY 2.0).
Grayscale pictures are stacked to RGB (the same conversion every loader applies).

The two sources differ the way CelebA-HQ and FFHQ do in the paper: different pictures and different
processing. ``photos-a`` keeps its crops lossless (PNG, like FFHQ); ``photos-b`` has other pictures and its
crops went through JPEG at quality 80 (CelebA-HQ was made from JPEG originals). Crops are resized bicubic
(with antialiasing, PIL), as the paper resized its sources (§4).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

SKIMAGE_PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "retina", "coins", "moon", "brick", "grass", "gravel", "clock")
SKLEARN_PHOTOS = ("china", "flower")
BUILTIN_PHOTOS = SKIMAGE_PHOTOS + SKLEARN_PHOTOS
# Every picture is cut into a GRID x GRID set of tiles and each tile belongs to one split, so every split
# sees every kind of content while no test crop overlaps a training crop.
GRID = 4
TILE_SPLITS = ("train",) * 11 + ("valid",) * 2 + ("test",) * 3


@dataclass(frozen=True)
class PhotoSource:
    """One source of the built-in benchmark: its pictures and how its crops are processed."""

    name: str
    pictures: tuple[str, ...]
    jpeg_quality: int | None  # None: lossless
    description: str

    def process(self, crop: np.ndarray) -> np.ndarray:
        if self.jpeg_quality is None:
            return crop
        buffer = io.BytesIO()
        Image.fromarray(crop).save(buffer, format="JPEG", quality=self.jpeg_quality)
        return np.asarray(Image.open(buffer).convert("RGB"))


SOURCES = {
    "photos-a": PhotoSource("photos-a", ("astronaut", "coffee", "chelsea", "rocket", "china", "camera", "brick",
                                         "grass"), None,
                            "8 pictures (5 colour, 3 grayscale), lossless crops"),
    "photos-b": PhotoSource("photos-b", ("flower", "retina", "immunohistochemistry", "hubble_deep_field", "coins",
                                         "moon", "gravel", "clock"), 80,
                            "8 other pictures (4 colour, 4 grayscale), crops JPEG-compressed at quality 80"),
}


def photo_source(name: str) -> PhotoSource:
    if name not in SOURCES:
        raise KeyError(f"unknown built-in source {name!r}; known: {', '.join(SOURCES)}")
    return SOURCES[name]


def tiles_of(split: str, pictures: tuple[str, ...] = BUILTIN_PHOTOS) -> list[tuple[str, int, int]]:
    """(picture, tile row, tile column) of one split; the same fixed assignment on every machine."""
    rng = np.random.default_rng(20231)
    chosen = []
    for name in BUILTIN_PHOTOS:  # every picture draws its permutation, so a subset keeps the same tiles
        order = rng.permutation(len(TILE_SPLITS))
        if name not in pictures:
            continue
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


def tile(name: str, row: int, col: int) -> np.ndarray:
    photo = load_photo(name)
    th, tw = photo.shape[0] // GRID, photo.shape[1] // GRID
    return photo[row * th:(row + 1) * th, col * tw:(col + 1) * tw]


def resize_bicubic(image: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BICUBIC))


def random_crop(photo: np.ndarray, size: int, rng: np.random.Generator,
                scale: tuple[float, float] = (0.6, 1.0)) -> np.ndarray:
    """A square crop covering a random fraction ``scale`` of the shorter side, flipped at random, resized to
    ``size`` (bicubic)."""
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(*scale))
    side = max(side, min(size, h, w))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    crop = photo[y:y + side, x:x + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return resize_bicubic(np.ascontiguousarray(crop), size, size)


# A benchmark crop covers 30-50% of a tile's shorter side, so a 32-px crop shows its content at the scale of a
# 32-px training crop of a tile resized to TRAINING_SIDE (80 px, 32 / 80 = 40%): the shipped generators see
# textures at the scale they learned them.
CROP_FRACTION = (0.3, 0.5)
TRAINING_SIDE = 80


def detail(image: np.ndarray) -> float:
    """Mean absolute difference between neighbouring pixels (grey levels, 0-255): ~0 on sky or a wall,
    5-20 on textures and edges."""
    grey = image.astype(np.float32).mean(axis=2)
    return float((np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()) / 2)


DETAIL_TRIES = 50


def source_crop(source: PhotoSource, split: str, size: int, rng: np.random.Generator,
                min_detail: float = 0.0) -> np.ndarray:
    """A processed crop of one of the source's tiles of ``split``; with ``min_detail``, crops flatter than that
    (see :func:`detail`) are drawn again (up to DETAIL_TRIES times, then the most detailed one is kept), so that
    the inpainted regions have texture to get wrong, as faces do."""
    tiles = tiles_of(split, source.pictures)
    best, best_detail = None, -1.0
    for _ in range(DETAIL_TRIES if min_detail > 0 else 1):
        crop = source.process(random_crop(tile(*tiles[rng.integers(len(tiles))]), size, rng, scale=CROP_FRACTION))
        value = detail(crop) if min_detail > 0 else 0.0
        if value >= min_detail:
            return crop
        if value > best_detail:
            best, best_detail = crop, value
    return best


def write_training_images(source: PhotoSource, out: str | Path, *, side: int = TRAINING_SIDE,
                          split: str = "train") -> list[Path]:
    """The source's ``split`` tiles, resized (bicubic) so that the shorter side is ``side`` and processed, as PNG
    files in ``out``: what the source's generators are trained on (never its valid/test tiles); see CROP_FRACTION."""
    from ...files import save_image

    out = Path(out)
    written = []
    for name, row, col in tiles_of(split, source.pictures):
        image = tile(name, row, col)
        h, w = image.shape[:2]
        scale = side / min(h, w)
        image = source.process(resize_bicubic(image, max(side, round(w * scale)), max(side, round(h * scale))))
        path = out / f"{name}-{row}{col}.png"
        save_image(path, image)
        written.append(path)
    return written
