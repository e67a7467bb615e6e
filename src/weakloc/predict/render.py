"""Pictures of predictions: a heatmap overlay with the mask outline, a colour bar and the score, plus plain
map/mask PNGs.

The overlay is drawn with numpy and PIL at the image's own size (no matplotlib figure: that cost about 0.25 s
an image and dominated ``weakloc predict --overlays``): a 256-entry colormap lookup, an alpha blend, the outline
of ``map > threshold`` (the pixels of the mask that touch its outside, thickened with the image), a colour bar on
the right edge and the score in a caption band at the top, both scaled to the image.
"""

from __future__ import annotations

import io
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

OUTLINE_RGB = (0, 255, 255)  # cyan: visible over inferno's whole range


@lru_cache(maxsize=8)
def colormap_lut(name: str = "inferno") -> np.ndarray:
    """[256, 3] uint8 lookup table of a matplotlib colormap (matplotlib is used only to read its colours)."""
    from matplotlib import colormaps

    return np.round(colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def outline(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """Bool [H, W]: the mask's pixels within ``thickness`` of a non-mask pixel (image borders do not count)."""
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    kernel = np.ones((2 * thickness + 1, 2 * thickness + 1), np.uint8)
    inner = cv2.erode(mask, kernel, borderType=cv2.BORDER_REPLICATE)
    return (mask > 0) & (inner == 0)


def overlay_image(image: Image.Image, heatmap: np.ndarray, score: float, threshold: float, title: str = "",
                  cmap: str = "inferno", alpha: float = 0.5, verdict: str | None = None) -> Image.Image:
    """The image (its own size) with the heatmap blended over it, the outline of ``heatmap > threshold``, a
    colour bar (0 at the bottom, 1 at the top) and a caption with the fake score and the verdict (given, or
    ``score > threshold``)."""
    rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[:2]
    if heatmap.shape != (height, width):
        raise ValueError(f"heatmap is {heatmap.shape[1]}x{heatmap.shape[0]}, image {width}x{height}")
    lut = colormap_lut(cmap)
    levels = np.clip(heatmap * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = (rgb * (1.0 - alpha) + lut[levels] * alpha + 0.5).astype(np.uint8)
    out[outline(heatmap > threshold, max(1, round(min(width, height) / 256)))] = OUTLINE_RGB
    bar_w = max(3, width // 40)
    if width >= 4 * bar_w and height >= 16:  # a colour bar on the right edge, framed in black
        top, bottom = height // 8, height - height // 8
        ramp = np.linspace(255, 0, bottom - top).round().astype(np.uint8)
        out[top:bottom, width - bar_w - 1:width - 1] = lut[ramp][:, None]
        out[[top - 1, bottom], width - bar_w - 2:width] = 0
        out[top - 1:bottom + 1, [width - bar_w - 2, width - 1]] = 0
    picture = Image.fromarray(out)
    verdict = verdict or ("fake" if score > threshold else "real")
    _caption(picture, [f"fake score {score:.3f} ({verdict})" + (f" · {title}" if title else ""),
                       f"{score:.2f} {verdict}"])
    return picture


def _caption(picture: Image.Image, texts: list[str]) -> None:
    """The first text that fits the width, on a translucent dark band at the top; nothing if none fits."""
    size = int(np.clip(picture.height / 20, 8, 28))
    font = _font(size)
    draw = ImageDraw.Draw(picture, "RGBA")
    for text in texts:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left + 2 * (size // 3) <= picture.width:
            pad = size // 3
            draw.rectangle((0, 0, right - left + 2 * pad, bottom + 2 * pad), fill=(0, 0, 0, 160))
            draw.text((pad - left, pad), text, font=font, fill=(255, 255, 255, 255))
            return


def overlay_png(image: Image.Image, heatmap: np.ndarray, score: float, threshold: float, title: str = "",
                cmap: str = "inferno", alpha: float = 0.5, verdict: str | None = None) -> bytes:
    """PNG bytes of :func:`overlay_image` (fast zlib level: overlays are for looking at)."""
    buffer = io.BytesIO()
    overlay_image(image, heatmap, score, threshold, title, cmap, alpha, verdict).save(buffer, format="PNG",
                                                                                      compress_level=1)
    return buffer.getvalue()


def heatmap_png(heatmap: np.ndarray) -> Image.Image:
    """Grayscale PNG image of a map in [0, 1] (value / 255 = probability; `weakloc evaluate` reads these)."""
    return Image.fromarray(np.clip(heatmap * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")


def mask_image(mask: np.ndarray, polarity: str = "white-fake") -> Image.Image:
    """Binary mask as a 0/255 PNG image; ``black-fake`` writes the DOLOS convention."""
    white = mask if polarity == "white-fake" else ~mask
    return Image.fromarray(white.astype(np.uint8) * 255, mode="L")
