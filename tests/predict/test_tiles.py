"""Native-resolution prediction in tiles: a fully-convolutional method's stitched map equals its whole-image map
away from the image's far edges; tile placement and weights; the score over tiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from weakloc.data.cache import normalize
from weakloc.methods import build_model
from weakloc.predict.tiles import localize_tiled, tile_starts

CPU = torch.device("cpu")


def whole_map(model, pixels: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return model.localize(normalize(torch.from_numpy(pixels.transpose(2, 0, 1)[None].copy()), 0.5, 0.5))


@pytest.mark.parametrize(("method", "size", "sharpen", "atol"), [
    ("patches", (420, 300), 20.0, 2e-5),  # receptive field 43 px: exact beyond PADDING_REACH
    ("gradcam", (460, 260), 1.0, 2e-4),  # block 11's receptive field spans the tile: close (5e-5 of a 0.03 range)
])
def test_stitched_tiles_equal_the_whole_image_map_of_a_convolutional_method(method, size, sharpen, atol):
    torch.manual_seed(0)
    model = build_model(method, "C").eval()
    with torch.no_grad():  # sharpen the random head so the map varies (a flat map would hide a misplaced tile)
        for p in model.head.parameters():
            p.mul_(sharpen)
    pixels = np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    tiled = localize_tiled(model, Image.fromarray(pixels), input_size=128, mean=0.5, std=0.5, device=CPU,
                           dtype=None, tile_batch=3, overlap=0.5)
    whole = whole_map(model, pixels).map[0].numpy()
    assert tiled.tiles > 4 and whole.std() > (0.05 if sharpen > 1 else 1e-3)
    edge = 3  # the far (bottom/right) edges: the last tile starts at a multiple of the stride and stops short
    h, w = min(tiled.map.shape[0], whole.shape[0]) - edge, min(tiled.map.shape[1], whole.shape[1]) - edge
    np.testing.assert_allclose(tiled.map[:h, :w], whole[:h, :w], atol=atol)


def test_tile_starts_cover_the_image_at_stride_multiples_with_the_overlap():
    starts = tile_starts(1000, 299, 8, 75)
    assert starts[0] == 0 and all(s % 8 == 0 for s in starts)
    assert all(0 < b - a <= 299 - 75 for a, b in zip(starts, starts[1:]))  # neighbours overlap by >= 75 px
    assert 1000 - (starts[-1] + 299) < 8  # the last tile ends within a stride of the far edge
    assert tile_starts(299, 299, 8, 75) == [0]


def test_small_images_are_not_tiled_and_scores_follow_the_method():
    torch.manual_seed(0)
    patches = build_model("patches", "A").eval()
    assert localize_tiled(patches, Image.new("RGB", (100, 300)), input_size=128, mean=0.5, std=0.5, device=CPU,
                          dtype=None) is None
    pixels = np.random.default_rng(2).integers(0, 256, (300, 260, 3), dtype=np.uint8)
    tiled = localize_tiled(patches, Image.fromarray(pixels), input_size=128, mean=0.5, std=0.5, device=CPU,
                           dtype=None)
    assert tiled.score == pytest.approx(float(tiled.map.mean()), abs=1e-6)  # the paper's score: the map's mean
    gradcam = build_model("gradcam", "A").eval()  # a classifier: the most fake tile decides
    tiled = localize_tiled(gradcam, Image.fromarray(pixels), input_size=96, mean=0.5, std=0.5, device=CPU,
                           dtype=None)
    tiles = [whole_map(gradcam, pixels[y:y + 96, x:x + 96]).score.item()
             for y in tile_starts(300, 96, 1, 24) for x in tile_starts(260, 96, 1, 24)]
    assert tiled.tiles == len(tiles) and tiled.score == pytest.approx(max(tiles), abs=1e-5)
