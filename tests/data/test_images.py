"""Image and mask reading: conversions and every bad input named with its file and a fix."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from weakloc.data.images import read_mask, read_rgb, write_mask
from weakloc.errors import InputError


def test_rgb_passthrough_and_mode_conversions(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert np.array_equal(np.asarray(read_rgb(tmp_path / "rgb.png")), rgb)

    gray = rgb[..., 0]
    Image.fromarray(gray).save(tmp_path / "gray.png")
    out = np.asarray(read_rgb(tmp_path / "gray.png"))
    assert out.shape == (10, 12, 3) and np.array_equal(out[..., 1], gray)

    rgba = np.dstack([rgb, np.full((10, 12), 7, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(np.asarray(read_rgb(tmp_path / "rgba.png")), rgb)  # alpha dropped, colours kept

    deep = (gray.astype(np.uint16) << 8) | 0xFF
    Image.fromarray(deep).save(tmp_path / "deep.png")  # 16-bit grayscale
    out = np.asarray(read_rgb(tmp_path / "deep.png"))
    assert np.array_equal(out[..., 0], gray)  # scaled down by 8 bits, not clipped


def test_unreadable_truncated_and_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("this is text")
    with pytest.raises(InputError, match="notes.png: not a readable image"):
        read_rgb(tmp_path / "notes.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.jpg: unreadable or truncated"):
        read_rgb(tmp_path / "cut.jpg")
    with pytest.raises(InputError, match="missing.png: file does not exist"):
        read_rgb(tmp_path / "missing.png")


def test_mask_polarity_roundtrip(tmp_path):
    mask = np.zeros((8, 9), bool)
    mask[2:5, 3:7] = True
    write_mask(tmp_path / "m.png", mask)  # DOLOS convention: black = fake
    stored = np.asarray(Image.open(tmp_path / "m.png"))
    assert stored.shape == (8, 9, 3) and (stored[mask] == 0).all() and (stored[~mask] == 255).all()
    assert np.array_equal(read_mask(tmp_path / "m.png"), mask)
    assert np.array_equal(read_mask(tmp_path / "m.png", polarity="white-fake"), ~mask)


def test_mask_size_mismatch_and_non_binary(tmp_path):
    write_mask(tmp_path / "m.png", np.zeros((8, 8), bool))
    with pytest.raises(InputError, match=r"m.png: mask is 8x8 but its image is 10x8"):
        read_mask(tmp_path / "m.png", expected_size=(10, 8))
    soft = np.tile(np.arange(0, 256, 32, dtype=np.uint8), (8, 1))
    Image.fromarray(soft).save(tmp_path / "soft.png")
    with pytest.raises(InputError, match="soft.png: mask is not binary") as err:
        read_mask(tmp_path / "soft.png")
    assert "binarize" in str(err.value)
    assert read_mask(tmp_path / "soft.png", binarize=True).sum() == 8 * 4  # values <= 127 are black = fake
