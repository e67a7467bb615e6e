"""The overlay renderer (numpy + PIL): the image's size, the blend, the mask outline where the mask's border
is, the colour bar, the caption."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from weakloc.predict.render import OUTLINE_RGB, colormap_lut, outline, overlay_image, overlay_png


def picture(width: int = 300, height: int = 200) -> tuple[Image.Image, np.ndarray]:
    image = Image.new("RGB", (width, height), (40, 80, 120))
    heat = np.zeros((height, width), np.float32)
    heat[50:120, 60:180] = 0.9  # the "mask" at threshold 0.5
    return image, heat


def test_overlay_has_the_image_size_and_the_outline_on_the_mask_border():
    image, heat = picture()
    out = np.asarray(overlay_image(image, heat, 0.8, 0.5, "patches-C"))
    assert out.shape == (200, 300, 3)
    cyan = np.all(out == OUTLINE_RGB, axis=2)
    ring = np.zeros_like(cyan)
    ring[50:120, 60:180] = True
    ring[51:119, 61:179] = False  # 1 px thick at 300x200 (min side / 256, at least 1)
    np.testing.assert_array_equal(cyan, ring)  # exactly the mask's border, nothing else
    lut = colormap_lut()
    inside = np.round(np.array([40, 80, 120]) * 0.5 + lut[int(0.9 * 255 + 0.5)] * 0.5)
    np.testing.assert_allclose(out[85, 120], inside, atol=1)  # the alpha blend of image and colormap
    outside = np.round(np.array([40, 80, 120]) * 0.5 + lut[0] * 0.5)
    np.testing.assert_allclose(out[180, 100], outside, atol=1)


def test_colour_bar_on_the_right_runs_from_1_at_the_top_to_0_at_the_bottom():
    image, heat = picture()
    out = np.asarray(overlay_image(image, heat, 0.2, 0.5))
    lut = colormap_lut()
    column = out[:, 300 - 4]  # inside the bar (bar width = 300 // 40 = 7 px)
    np.testing.assert_array_equal(column[200 // 8], lut[255])
    np.testing.assert_array_equal(column[200 - 200 // 8 - 1], lut[0])


def test_caption_reports_score_and_verdict_and_small_images_still_render():
    image, heat = picture()
    plain = np.asarray(overlay_image(image, heat, 0.8, 0.5))
    assert (plain[:8, :100] != np.asarray(overlay_image(image, heat, 0.8, 0.5, verdict="real"))[:8, :100]).any()
    tiny = overlay_png(Image.new("RGB", (20, 12)), np.zeros((12, 20), np.float32), 0.1, 0.5)
    assert Image.open(io.BytesIO(tiny)).size == (20, 12)


def test_outline_thickness():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    assert outline(mask, 1).sum() == 100 - 64 and outline(mask, 2).sum() == 100 - 36
    full = np.ones((8, 8), bool)
    assert not outline(full).any()  # the image border is not an edge
