"""Real-world files on the data layer: decompression bombs and huge images are refused from the header, the EXIF
orientation is applied (all 8), animated files give their first frame, each with a note."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from weakloc.data import images
from weakloc.data.images import image_size, is_image_file, read_mask, read_rgb
from weakloc.errors import InputError

from conftest import claim_size


def test_a_bomb_is_refused_from_its_header_with_the_file_and_the_fix(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("L", (16, 16)).save(bomb)
    claim_size(bomb, 60000, 60000)
    with pytest.raises(InputError) as err:
        read_rgb(bomb)
    text = str(err.value)
    assert "bomb.png" in text and "60000x60000" in text and "3600.0 megapixels" in text and "--max-pixels" in text
    assert Image.MAX_IMAGE_PIXELS is not None  # PIL's own guard is left as it was


def test_the_pixel_limit_is_a_setting(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 200), (10, 20, 30)).save(path)
    with pytest.raises(InputError, match="300x200"):
        read_rgb(path, max_pixels=50_000)
    assert read_rgb(path, max_pixels=60_000).size == (300, 200)
    assert images.MAX_PIXELS == 100_000_000


def reference(orientation: int, array: np.ndarray) -> np.ndarray:
    """What a viewer shows for each EXIF orientation (TIFF 6.0 / EXIF 2.3), written out by hand."""
    return {1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud,
            5: lambda a: np.transpose(a, (1, 0, 2)), 6: lambda a: np.rot90(a, -1),
            7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}[orientation](array)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_viewers_show_it(tmp_path, orientation):
    rng = np.random.default_rng(orientation)
    stored = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)  # 32x48 blocks
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"  # lossless, so the comparison is exact
    Image.fromarray(stored).save(path, exif=exif)
    notes: list[str] = []
    seen = np.asarray(read_rgb(path, notes))
    np.testing.assert_array_equal(seen, reference(orientation, stored))
    assert image_size(path) == (seen.shape[1], seen.shape[0])
    assert any("EXIF orientation" in n for n in notes) == (orientation != 1)


def test_masks_turn_with_their_exif_tag_too(tmp_path):
    mask = np.full((20, 30), 255, np.uint8)
    mask[:5, :5] = 0  # black = fake, top-left corner as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "m.png"
    Image.fromarray(mask).save(path, exif=exif)
    fake = read_mask(path)
    assert fake.shape == (30, 20) and fake[:5, -5:].all() and fake.sum() == 25  # now the top-right corner


def test_an_animated_gif_gives_its_first_frame_with_a_note(tmp_path):
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (12, 10), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert is_image_file(path)
    notes: list[str] = []
    rgb = np.asarray(read_rgb(path, notes))
    assert rgb.shape == (10, 12, 3) and tuple(rgb[5, 5]) == (255, 0, 0)
    assert any("2 frames" in n and "first frame" in n for n in notes)
