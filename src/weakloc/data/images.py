"""Reading images and masks safely: every failure names the file and what to do about it.

Conversions (documented in the README):
- grayscale (L, I;16, I, F), palette (P), CMYK images are converted to RGB;
- RGBA / LA images lose their alpha channel (the colour values are kept as they are, not composited),
  because manipulation traces live in the colour values;
- 16-bit images are scaled to 8 bits (value >> 8), the way PIL's own conversion would lose them otherwise.
Masks: a mask file is read as one channel; 1 (True) means manipulated. The DOLOS convention (black = fake,
white = real, RGB 0/255) is the default ``polarity="black-fake"``; ``"white-fake"`` reads the usual convention.
A mask with values other than 0 and 255 is rejected unless ``binarize=True`` (then > 127 is white).
Masks are resized NEAREST by :func:`nearest_indices`, PIL's own rule (training targets and "sm" metrics alike).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..files import save_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

MASK_POLARITIES = ("black-fake", "white-fake")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise InputError(path, "file does not exist", "check the path, or regenerate the dataset")
    try:
        image = Image.open(path)
        image.load()  # decode now, so truncated files fail here and not later inside a worker
    except UnidentifiedImageError:
        raise InputError(path, "not an image PIL can read",
                         f"remove it from the folder, or convert it to one of {', '.join(IMAGE_SUFFIXES)}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(path, f"unreadable or truncated image ({exc})",
                         "re-export or re-download the file, or remove it from the dataset") from None
    return image


def _to_8bit_array(image: Image.Image) -> np.ndarray:
    """Any PIL image -> HxW or HxWxC uint8 array, scaling 16/32-bit data down instead of clipping it."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return (np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)
    if image.mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        return np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(image)


def read_rgb(path: str | Path, notes: list[str] | None = None) -> Image.Image:
    """Read an image as 8-bit RGB, converting other modes (see module doc); errors name the file.
    A conversion is described in ``notes`` when a list is given."""
    path = Path(path)
    image = _open(path)
    if image.mode == "RGB":
        return image
    if notes is not None:
        notes.append(f"converted {image.mode} image to RGB" + (" (alpha dropped)" if "A" in image.mode else ""))
    if image.mode in ("RGBA", "RGBa", "LA", "La", "PA", "P", "CMYK", "YCbCr", "LAB", "HSV", "1", "L"):
        return image.convert("RGB")
    array = _to_8bit_array(image)
    if array.ndim == 2:
        return Image.fromarray(array, mode="L").convert("RGB")
    if array.ndim == 3 and array.shape[2] >= 3:
        return Image.fromarray(np.ascontiguousarray(array[..., :3]), mode="RGB")
    raise InputError(path, f"unsupported image mode {image.mode!r}", "convert it to 8-bit RGB PNG")


def read_mask(path: str | Path, *, polarity: str = "black-fake", binarize: bool = False,
              expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask file -> HxW bool array, True = manipulated.

    ``expected_size`` is the (width, height) of the image the mask belongs to: a mismatch is an error.
    """
    if polarity not in MASK_POLARITIES:
        raise ValueError(f"polarity must be one of {MASK_POLARITIES}, not {polarity!r}")
    path = Path(path)
    image = _open(path)
    if expected_size is not None and image.size != tuple(expected_size):
        raise InputError(path, f"mask is {image.size[0]}x{image.size[1]} but its image is "
                               f"{expected_size[0]}x{expected_size[1]}",
                         "masks must have their image's size: regenerate the mask, or resize it with NEAREST")
    array = _to_8bit_array(image)
    if image.mode == "1":
        array = array.astype(np.uint8) * 255
    if array.ndim == 3:
        # DOLOS masks are RGB 0/255; the official reader uses the red channel ("fake = 1 - (R == 255)")
        array = array[..., 0]
    values = np.unique(array)
    if not binarize and not np.all(np.isin(values, (0, 255))):
        shown = ", ".join(str(v) for v in values[:8]) + (" ..." if len(values) > 8 else "")
        raise InputError(path, f"mask is not binary (values {shown}; expected only 0 and 255)",
                         "re-save it without antialiasing or JPEG compression, or pass binarize masks "
                         "(`--binarize-masks`, data.binarize_masks = true) to threshold at 128")
    white = array > 127
    return ~white if polarity == "black-fake" else white


def write_mask(path: str | Path, mask: np.ndarray, *, polarity: str = "black-fake") -> None:
    """Write a bool mask (True = manipulated) as an RGB 0/255 PNG in the given convention, atomically."""
    mask = np.asarray(mask, dtype=bool)
    white = ~mask if polarity == "black-fake" else mask
    save_image(path, np.repeat((white.astype(np.uint8) * 255)[..., None], 3, axis=2))


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) without decoding the pixels."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise InputError(path, "file does not exist", "check the path") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(path, f"not a readable image ({exc})", "remove or re-export the file") from None


@lru_cache(maxsize=256)
def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each of ``n_out`` pixels when PIL resizes ``n_in`` pixels with ``Image.NEAREST``.

    Read off PIL itself (a 1-row int32 "I" image holding 0..n_in-1), so ties go PIL's way by construction:
    PIL steps the source position by n_in/n_out in floating point, and on non-dyadic scales (e.g. 200 -> 37)
    a tie lands one pixel lower than ``floor((i + 0.5) * n_in / n_out)``. PIL uses the same stepping for rows
    and columns. Read-only (memoised)."""
    ramp = Image.fromarray(np.arange(n_in, dtype=np.int32)[None])
    index = np.asarray(ramp.resize((n_out, 1), Image.NEAREST))[0].astype(np.int64)
    index.flags.writeable = False
    return index
