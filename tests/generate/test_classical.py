"""Classical inpainters: the known region is untouched, the hole is filled, full variants regenerate everything."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from weakloc.generate.generators.classical import CLASSICAL, FULL_VARIANTS, classical
from weakloc.generate.extras import available
from weakloc.generate.generators.classical import ClassicalFull, ClassicalInpainter


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return np.asarray(Image.fromarray(data.astronaut()).resize((64, 64), Image.Resampling.LANCZOS))


def _hole() -> np.ndarray:
    mask = np.zeros((64, 64), bool)
    mask[20:40, 24:44] = True
    return mask


NAMES = [n for n in CLASSICAL if n != "patchmatch" or available("patchmatch")]


@pytest.mark.parametrize("name", NAMES)
def test_inpainters_fill_the_hole_and_keep_the_rest(photo, name):
    mask = _hole()
    holed = photo.copy()
    holed[mask] = 0  # what is inside the hole must not matter
    out = classical(name).inpaint(holed, mask, seed=5)
    assert out.dtype == np.uint8 and out.shape == photo.shape
    assert np.array_equal(out[~mask], photo[~mask])
    assert out[mask].mean() > 40  # filled from the surroundings, not left black
    assert np.array_equal(out, classical(name).inpaint(holed, mask, seed=5))  # seeded: reproducible
    empty = np.zeros_like(mask)
    assert np.array_equal(classical(name).inpaint(photo, empty, seed=5), photo)


@pytest.mark.parametrize("name", FULL_VARIANTS)
def test_full_variants_regenerate_every_pixel(photo, name):
    out = ClassicalFull(classical(name)).generate([1], photo[None])[0]
    changed = np.any(out != photo, axis=-1).mean()
    assert changed > 0.85  # pixels equal to their source by chance in flat areas are the only exceptions
    assert np.abs(out.astype(int) - photo).mean() < 40  # still the same picture
    assert not np.array_equal(out, ClassicalFull(classical(name)).generate([2], photo[None])[0])  # seed: phase


def test_patchmatch_has_no_full_variant_and_missing_extra_is_named(monkeypatch):
    from weakloc.errors import ConfigError
    from weakloc.generate.extras import MissingExtraError

    if available("patchmatch"):
        with pytest.raises(ConfigError, match="no full-image variant"):
            ClassicalFull(classical("patchmatch"))
    monkeypatch.setitem(sys.modules, "patchmatch_cython", None)
    with pytest.raises(MissingExtraError, match="'patchmatch'"):
        classical("patchmatch")


def test_classical_inpainter_batches_keep_their_masks(photo):
    masks = np.stack([_hole(), np.roll(_hole(), 10, axis=0)])
    images = np.stack([photo, photo])
    out, truth = ClassicalInpainter(classical("telea")).inpaint(images, masks, [0, 1])
    assert np.array_equal(truth, masks)
    for i in range(2):
        assert np.array_equal(out[i][~masks[i]], photo[~masks[i]])
    assert not np.array_equal(out[0], out[1])
