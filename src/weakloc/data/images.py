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

Real-world files: the pixel count is checked from the header before anything is decoded (``max_pixels``,
default :data:`MAX_PIXELS`), so a decompression bomb is one clear error; the EXIF orientation tag is applied
(images and masks alike, so they stay aligned), as every viewer does; an animated file (GIF, APNG, WebP)
gives its first frame. Each of these is said in ``notes``.
"""

from __future__ import annotations

import io
import threading
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageTooLargeError, InputError
from ..files import save_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif")

# 100 megapixels: above any camera's photo (a 200 MP phone sensor bins to 50 MP by default), far below what
# would exhaust memory (100 MP of RGB = 300 MB decoded). PIL's own guard (89 MP warning, 179 MP error)
# is replaced by this one so that the limit is a setting and the error names the file and the fix.
MAX_PIXELS = 100_000_000
ROTATING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_PIL_GUARD = threading.Lock()

MASK_POLARITIES = ("black-fake", "white-fake")


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def check_pixel_limit(path: object, width: int, height: int, max_pixels: int | None = None) -> None:
    """Raise :class:`ImageTooLargeError` naming ``path`` when width x height exceeds the limit (default
    :data:`MAX_PIXELS`): the one check for files, uploads and in-memory images alike."""
    limit = max_pixels or MAX_PIXELS
    if width * height > limit:
        raise ImageTooLargeError(path, f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels, above the "
                                       f"limit of {limit / 1e6:g} (a decompression bomb, or a huge scan)",
                                 "downscale it first, or raise the limit (--max-pixels N; max_pixels=N in Python) "
                                 "if you trust the file")


def _open(path: Path, max_pixels: int | None = None, notes: list[str] | None = None,
          source: BinaryIO | None = None) -> Image.Image:
    """Open, check the size from the header, decode, apply EXIF orientation, take the first frame. ``source``:
    read these bytes instead of the file (an upload), ``path`` then only names it in errors."""
    if source is None and not path.exists():
        raise InputError(path, "file does not exist", "check the path, or regenerate the dataset")
    try:
        image = _open_header(path if source is None else source)
        try:
            check_pixel_limit(path, *image.size, max_pixels)
        except InputError:
            image.close()
            raise
        if getattr(image, "is_animated", False):
            if notes is not None:
                notes.append(f"animated image ({getattr(image, 'n_frames', '?')} frames): the first frame is used")
            image.seek(0)
        image.load()  # decode now, so truncated files fail here and not later inside a worker
    except UnidentifiedImageError:
        raise InputError(path, "not a readable image (PIL cannot identify its format)",
                         f"remove it from the folder, or convert it to one of {', '.join(IMAGE_SUFFIXES)}") from None
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(path, f"unreadable or truncated image ({exc})",
                         "re-export or re-download the file, or remove it from the dataset") from None
    orientation = _orientation(image)
    if orientation not in (0, 1):
        image = ImageOps.exif_transpose(image)
        if notes is not None:
            notes.append(f"rotated/flipped by its EXIF orientation tag ({orientation}), as viewers show it")
    return image


def _open_header(path: Path | BinaryIO) -> Image.Image:
    """``Image.open`` (reads the header only) with PIL's bomb guard off: weakloc's own limit replaces it. PIL
    checks only inside ``open``, and the guard is a global, so the swap is done under a lock."""
    with _PIL_GUARD:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(0x0112, 1) or 1)
    except Exception:  # a malformed EXIF block is not worth refusing the picture for
        return 1


def _to_8bit_array(image: Image.Image) -> np.ndarray:
    """Any PIL image -> HxW or HxWxC uint8 array, scaling 16/32-bit data down instead of clipping it."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return (np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)
    if image.mode in ("I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        return np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(image)


def read_rgb(path: str | Path, notes: list[str] | None = None, max_pixels: int | None = None) -> Image.Image:
    """Read an image as 8-bit RGB, upright per EXIF, converting other modes (see module doc); errors name the
    file. A conversion, rotation or frame choice is described in ``notes`` when a list is given."""
    path = Path(path)
    return _to_rgb(path, _open(path, max_pixels, notes), notes)


def _to_rgb(path: Path, image: Image.Image, notes: list[str] | None) -> Image.Image:
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


def decode_rgb(data: bytes, name: str = "upload", notes: list[str] | None = None,
               max_pixels: int | None = None) -> Image.Image:
    """:func:`read_rgb` for bytes already in memory (an upload); errors name ``name``."""
    return _to_rgb(Path(name), _open(Path(name), max_pixels, notes, io.BytesIO(data)), notes)


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
    """(width, height) as viewers show it (EXIF orientation applied), without decoding the pixels."""
    path = Path(path)
    try:
        with _open_header(path) as image:
            width, height = image.size
            return (height, width) if _orientation(image) in ROTATING_ORIENTATIONS else (width, height)
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
