"""Face-attribute masks (paper §3.3): skin, hair, eyes, mouth, nose, glasses.

Parts come from CelebAMask-HQ annotation files (this module) or from face landmarks (``landmarks.py``).
For one identity several masks are drawn, each one attribute; the small parts (eyes, mouth, nose) are
dilated by an elliptic kernel of a random size of up to ``max_dilation`` px (15 in the paper, whose masks are
256 px). Plans scale that limit with their size (:func:`dilation_kernel`: 4 px at 64 px, 30 px at 512 px), so
a dilated part covers the same fraction of the face at every size.

CelebAMask-HQ layout: ``CelebAMask-HQ-mask-anno/{id // 2000}/{id:05d}_{part}.png`` (512x512, white = part),
for CelebA-HQ image ``{id}.jpg``; a part absent from a face (no glasses, hair under a hat) has no file.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np
from PIL import Image

from ...errors import InputError

ATTRIBUTES = ("skin", "hair", "eyes", "mouth", "nose", "glasses")
SMALL_PARTS = ("eyes", "mouth", "nose")
MAX_DILATION = 15
DILATION_SIZE = 256  # the mask size MAX_DILATION is given for (the paper's)

# attribute -> CelebAMask-HQ part files whose union it is
CELEBAMASK_PARTS: dict[str, tuple[str, ...]] = {
    "skin": ("skin",),
    "hair": ("hair",),
    "eyes": ("l_eye", "r_eye"),
    "mouth": ("mouth", "u_lip", "l_lip"),
    "nose": ("nose",),
    "glasses": ("eye_g",),
}
ANNOTATION_FOLDER = "CelebAMask-HQ-mask-anno"
ALL_PARTS = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth", "u_lip",
             "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")


def parse_attributes(text: str | Sequence[str] | None, default: Sequence[str] = ATTRIBUTES) -> tuple[str, ...]:
    """``"eyes,mouth"`` -> ("eyes", "mouth"), checked against ATTRIBUTES."""
    if text is None or text == "" or text == []:
        return tuple(default)
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    unknown = [n for n in names if n not in ATTRIBUTES]
    if unknown:
        raise ValueError(f"unknown face attribute(s) {', '.join(unknown)}; choose from {', '.join(ATTRIBUTES)}")
    return tuple(dict.fromkeys(names))


def annotation_root(path: str | Path) -> Path:
    """Accept the annotation folder itself or the CelebAMask-HQ folder that holds it."""
    path = Path(path)
    if (path / ANNOTATION_FOLDER).is_dir():
        return path / ANNOTATION_FOLDER
    if not path.is_dir():
        raise InputError(path, "CelebAMask-HQ annotation folder does not exist",
                         f"pass --annotations pointing to {ANNOTATION_FOLDER} (folders 0..14 of *_skin.png ...)")
    return path


def celebahq_id(path: str | Path) -> int:
    """CelebA-HQ index of an image file (``123.jpg`` -> 123; also ``00123.png``, ``img_123.png``)."""
    numbers = re.findall(r"\d+", Path(path).stem)
    if not numbers:
        raise InputError(path, "cannot tell the CelebA-HQ index of this image from its name",
                         "name images by their CelebA-HQ index (0.jpg ... 29999.jpg), or use --landmarks")
    return int(numbers[-1])


def part_file(root: Path, image_id: int, part: str) -> Path:
    return root / str(image_id // 2000) / f"{image_id:05d}_{part}.png"


def _read_part(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
    except OSError as exc:
        raise InputError(path, f"unreadable annotation file ({exc})", "re-extract CelebAMask-HQ") from None
    # area interpolation then >= 0.5: the downsized part keeps its area instead of NEAREST's aliasing
    return cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA) >= 0.5


def celebamask_attributes(root: str | Path, image_id: int, size: int,
                          attributes: Sequence[str] = ATTRIBUTES) -> dict[str, np.ndarray]:
    """Attribute masks (size x size, True = part) present for one CelebA-HQ identity.

    A missing part file means the face lacks that part; an identity with no file at all is an error."""
    root = annotation_root(root)
    if not any(part_file(root, image_id, part).is_file() for part in ALL_PARTS):
        raise InputError(part_file(root, image_id, "skin"),
                         f"no CelebAMask-HQ annotation for image {image_id}",
                         f"check that --annotations points to {ANNOTATION_FOLDER} and that image names are "
                         "CelebA-HQ indices; for images without annotations use --landmarks")
    found: dict[str, np.ndarray] = {}
    for attribute in attributes:
        files = [part_file(root, image_id, part) for part in CELEBAMASK_PARTS[attribute]]
        masks = [_read_part(path, size) for path in files if path.is_file()]
        if masks and np.logical_or.reduce(masks).any():
            found[attribute] = np.logical_or.reduce(masks)
    return found


def dilation_kernel(max_dilation: float, size: int) -> int:
    """The largest dilation kernel, px, at ``size`` px for ``max_dilation`` px at 256 px (rounded, at least 1)."""
    return max(1, math.floor(max_dilation * size / DILATION_SIZE + 0.5))


def dilate(mask: np.ndarray, kernel: int) -> np.ndarray:
    """Dilate with a ``kernel`` x ``kernel`` ellipse (1 = unchanged)."""
    if kernel <= 1:
        return mask.copy()
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
    return cv2.dilate(mask.astype(np.uint8), element).astype(bool)


def draw_attributes(available: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    """``count`` attributes: each available one once before any repeats (several masks per identity)."""
    if not available:
        return []
    order: list[str] = []
    while len(order) < count:
        order += [available[i] for i in rng.permutation(len(available))]
    return order[:count]


def face_part_mask(parts: Mapping[str, np.ndarray], attribute: str, rng: np.random.Generator,
                   max_dilation: int = MAX_DILATION) -> tuple[np.ndarray, int]:
    """One attribute's mask, small parts dilated by a random kernel in [1, max_dilation] -> (mask, kernel)."""
    kernel = int(rng.integers(1, max_dilation + 1)) if attribute in SMALL_PARTS and max_dilation > 1 else 1
    return dilate(parts[attribute], kernel), kernel
