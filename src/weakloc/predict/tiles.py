"""Native-resolution prediction: the image in overlapping tiles of the model's input size, the tile maps
stitched (blended on the overlaps) into one map for the whole image.

Tiles start at multiples of the method's map stride (``Localizer.map_stride``: 8 for Patches), so tile cell j
is global cell ``start / stride + j`` and a fully-convolutional method's stitched map equals its whole-image map
wherever every tile that contributes is farther than the receptive field from its own inner edges. Each tile
cell is weighted by a ramp along its tile's inner edges (edges on the image border keep weight 1): 0 on the
cells nearest the edge, whose receptive field reaches the tile's zero padding, then rising to 1 at half the
overlap, so seams are blended, not cut. Memory is bounded by the tile batch plus one
float map of the stitched grid (stride 8: 1/64 of the image's pixels).

Score: a method whose image score is a statistic of its map (Patches: the mean; the setup-C heads) takes it over
the stitched map, the paper's definition applied to the whole photo; a classifier's score (GradCAM and
Attention in A/B) is the maximum over tiles, because a photo is manipulated if any part of it is. GradCAM's
A/B map is min-max normalised per tile (as it is per image), so under tiling every tile has its own peak: its
map shows where each tile looks most fake, not a comparison across the photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..data.cache import normalize
from ..methods import Localizer
from .batch import localize_batch

DEFAULT_OVERLAP = 0.25  # of the tile side
PADDING_REACH = 24  # px: measured, Patches' cells 2 stride-8 cells from a tile edge already equal the whole image's


def tile_starts(length: int, tile: int, stride: int, overlap: int) -> list[int]:
    """Start offsets (multiples of ``stride``) of tiles covering ``length`` pixels with about ``overlap`` pixels
    shared between neighbours; the last tile ends within ``stride - 1`` pixels of the far edge."""
    if length <= tile:
        return [0]
    step = max(stride, (tile - overlap) // stride * stride)
    last = (length - tile) // stride * stride
    return sorted(set(range(0, last, step)) | {last})


def _ramp(cells: int, first: bool, last: bool, skip: int, ramp: float) -> np.ndarray:
    """Weights of a tile's cells along one axis: 0 for the ``skip`` cells next to the tile's inner edges (their
    receptive field reaches the tile's zero padding), then rising to 1 over ``ramp`` cells; edges on the
    image border keep weight 1 (no other tile covers them)."""
    index = np.arange(cells, dtype=np.float64)
    far = np.full(cells, np.inf)
    left = far if first else index
    right = far if last else cells - 1 - index
    return np.clip((np.minimum(left, right) - skip + 0.5) / ramp, 0.0, 1.0)


@dataclass
class TiledMap:
    score: float
    map: np.ndarray  # [gh, gw] float32 stitched map in the model's cells (resize it to the image's size)
    tiles: int
    stride: int


def localize_tiled(model: Localizer, image: Image.Image, *, input_size: int, mean: float, std: float,
                   device: torch.device, dtype: torch.dtype | None, tile_batch: int = 16,
                   overlap: float = DEFAULT_OVERLAP,
                   memory_format: torch.memory_format = torch.contiguous_format) -> TiledMap | None:
    """Score and stitched map of an RGB image at its own resolution; None when it is smaller than one tile in
    either direction (resize it instead)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    height, width = pixels.shape[:2]
    if height < input_size or width < input_size:
        return None
    stride, cells = model.map_stride(), model.map_size(input_size)
    shared = int(round(overlap * input_size))
    ys = tile_starts(height, input_size, stride, shared)
    xs = tile_starts(width, input_size, stride, shared)
    grid = (ys[-1] // stride + cells, xs[-1] // stride + cells)
    total, weight = np.zeros(grid, np.float64), np.zeros(grid, np.float64)
    shared_cells = shared // stride
    # cells within PADDING_REACH px of a tile's inner edge differ from the whole image's; skip them, but keep
    # every overlap cell weighted in one of its two tiles
    skip = max(0, min(-(-PADDING_REACH // stride), (shared_cells - 1) // 2))
    ramp = max(1.0, shared_cells / 2 - skip)
    wy = {y: _ramp(cells, y == ys[0], y == ys[-1], skip, ramp) for y in ys}
    wx = {x: _ramp(cells, x == xs[0], x == xs[-1], skip, ramp) for x in xs}
    places = [(y, x) for y in ys for x in xs]
    tile_scores = []
    for start in range(0, len(places), tile_batch):
        chunk = places[start:start + tile_batch]
        crops = np.stack([pixels[y:y + input_size, x:x + input_size].transpose(2, 0, 1) for y, x in chunk])
        batch = normalize(torch.from_numpy(crops).to(device), mean, std).contiguous(memory_format=memory_format)
        out = localize_batch(model, batch, device, dtype)
        tile_scores.append(out.score.numpy())
        for (y, x), tile_map in zip(chunk, out.map.numpy()):
            w = np.outer(wy[y], wx[x])
            gy, gx = y // stride, x // stride
            total[gy:gy + cells, gx:gx + cells] += w * tile_map
            weight[gy:gy + cells, gx:gx + cells] += w
    stitched = (total / weight).astype(np.float32)
    kind = model.map_score_kind()
    if kind is None:
        score = float(np.concatenate(tile_scores).max())
    else:
        score = float(stitched.mean() if kind == "mean" else stitched.max())
    return TiledMap(score, stitched, len(places), stride)
