"""Real-world processing applied to test images for the robustness evaluation (docs/evaluate.md, "Robustness").

Pure functions from a PIL RGB image to a new one (the input is never modified, nothing is written to disk):

- ``jpeg:Q``     re-encode with PIL's JPEG encoder at quality Q (1-100), 4:2:0 chroma subsampling, baseline;
- ``resize:F``   scale both sides by F (rounded half up, at least 1 px) with PIL's BICUBIC filter;
- ``blur:S``     Gaussian blur of standard deviation S pixels: OpenCV ``GaussianBlur``, kernel 2*ceil(3S)+1
                 square, reflected border (BORDER_REFLECT_101);
- ``noise:S``    add N(0, S^2) per pixel and channel in 8-bit levels, round to nearest, clip to 0..255; the
                 noise field is seeded by the image id (SHA-256 of the id), so an image gets the same noise on
                 every run and machine, and two images get different noise; levels share the field (scaled);
- ``chain:social`` what sharing platforms do: downscale to a 1080-px long side (only if larger; BICUBIC), then
                 JPEG quality 85 as above.

Masks follow the image's size with PIL's NEAREST, so they stay aligned and binary.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from ..errors import ConfigError
from .images import nearest_indices

RESIZE_FILTER = Image.BICUBIC
SOCIAL_LONG_SIDE = 1080
SOCIAL_QUALITY = 85
# kind -> (help text, lowest, highest, integer levels); "chain" takes names (CHAINS)
LEVELS = {"jpeg": ("JPEG quality, an integer 1-100", 1, 100, True),
          "resize": ("scale factor, 0 < F <= 4", 0, 4, False),
          "blur": ("Gaussian sigma in pixels, 0 < S <= 50", 0, 50, False),
          "noise": ("Gaussian sigma in 8-bit levels, 0 < S <= 255", 0, 255, False)}
CHAINS = {"social": f"downscale to a {SOCIAL_LONG_SIDE}-px long side if larger, then JPEG {SOCIAL_QUALITY}"}
VALID_FORMS = ("jpeg:Q[,Q...] (JPEG quality, integers 1-100), resize:F[,F...] (scale factor, 0 < F <= 4), "
               "blur:S[,S...] (Gaussian sigma in pixels, 0 < S <= 50), noise:S[,S...] (Gaussian sigma in 8-bit "
               "levels, 0 < S <= 255), chain:social (" + CHAINS["social"] + "); e.g. jpeg:95,75,50")


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    """Encode as JPEG at ``quality`` in memory and decode again (RGB)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=int(quality), subsampling=2, optimize=False)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def scaled_size(size: tuple[int, int], factor: float) -> tuple[int, int]:
    """(width, height) scaled by ``factor``, rounded half up, at least 1 px."""
    return tuple(max(1, int(math.floor(n * factor + 0.5))) for n in size)  # type: ignore[return-value]


def resize(image: Image.Image, factor: float) -> Image.Image:
    size = scaled_size(image.size, factor)
    return image if size == image.size else image.resize(size, RESIZE_FILTER)


def blur(image: Image.Image, sigma: float) -> Image.Image:
    k = 2 * math.ceil(3 * sigma) + 1  # +-3 sigma: the weights left out sum to < 0.3%
    array = cv2.GaussianBlur(np.asarray(image), (k, k), sigmaX=sigma, sigmaY=sigma,
                             borderType=cv2.BORDER_REFLECT_101)
    return Image.fromarray(array)


def seed_of(image_id: str) -> int:
    """A 64-bit seed from the image id (stable across runs, machines and Python's hash randomisation)."""
    return int.from_bytes(hashlib.sha256(image_id.encode()).digest()[:8], "little")


def noise(image: Image.Image, sigma: float, image_id: str) -> Image.Image:
    array = np.asarray(image).astype(np.float32)
    field = np.random.default_rng(seed_of(image_id)).standard_normal(array.shape, dtype=np.float32)
    array += np.float32(sigma) * field  # in place: large images stay cheap
    np.clip(np.rint(array, out=array), 0, 255, out=array)
    return Image.fromarray(array.astype(np.uint8))


def social_size(size: tuple[int, int]) -> tuple[int, int]:
    long_side = max(size)
    return size if long_side <= SOCIAL_LONG_SIDE else scaled_size(size, SOCIAL_LONG_SIDE / long_side)


def social(image: Image.Image) -> Image.Image:
    size = social_size(image.size)
    if size != image.size:
        image = image.resize(size, RESIZE_FILTER)
    return jpeg(image, SOCIAL_QUALITY)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H, W] mask -> (width, height) ``size`` exactly as PIL's NEAREST would (PIL's own index maps)."""
    h, w = mask.shape[:2]
    if (w, h) == tuple(size):
        return mask
    return mask[nearest_indices(h, size[1])][:, nearest_indices(w, size[0])]


@dataclass(frozen=True)
class Perturbation:
    """One perturbation at one level, e.g. ``Perturbation("jpeg", 50)`` or ``Perturbation("chain", "social")``."""

    kind: str
    level: float | str

    @property
    def level_text(self) -> str:
        return self.level if isinstance(self.level, str) else f"{self.level:g}"

    @property
    def name(self) -> str:
        """``kind:level``, the form ``--perturb`` takes; also its cache key and its folder name."""
        return f"{self.kind}:{self.level_text}"

    @property
    def folder(self) -> str:
        return f"{self.kind}-{self.level_text}"

    def describe(self) -> str:
        """The exact definition, for reports."""
        if self.kind == "jpeg":
            return f"PIL JPEG quality {self.level_text}, 4:2:0, decoded again"
        if self.kind == "resize":
            return f"both sides x{self.level_text} (rounded half up), PIL BICUBIC; masks NEAREST"
        if self.kind == "blur":
            k = 2 * math.ceil(3 * float(self.level)) + 1
            return f"OpenCV Gaussian blur, sigma {self.level_text} px, {k}x{k} kernel, reflected border"
        if self.kind == "noise":
            return f"Gaussian noise, sigma {self.level_text} of 255, seeded by image id, rounded and clipped"
        return f"{self.level_text}: {CHAINS[str(self.level)]} (BICUBIC; masks NEAREST)"

    def output_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The (width, height) an image of ``size`` has after this perturbation."""
        if self.kind == "resize":
            return scaled_size(size, float(self.level))
        if self.kind == "chain":
            return social_size(size)
        return size

    def __call__(self, image: Image.Image, image_id: str) -> Image.Image:
        """The perturbed copy of an RGB ``image``; ``image_id`` seeds the noise."""
        if self.kind == "jpeg":
            return jpeg(image, int(self.level))
        if self.kind == "resize":
            return resize(image, float(self.level))
        if self.kind == "blur":
            return blur(image, float(self.level))
        if self.kind == "noise":
            return noise(image, float(self.level), image_id)
        return social(image)

    def mask(self, mask: np.ndarray) -> np.ndarray:
        """The mask of the perturbed image: resized NEAREST when the image's size changes."""
        return resize_mask(mask, self.output_size((mask.shape[1], mask.shape[0])))


def _bad(option: str, spec: str, problem: str) -> ConfigError:
    return ConfigError(f"{option} {spec!r}: {problem}\n  valid forms: {VALID_FORMS}")


def _level(option: str, spec: str, kind: str, text: str) -> float | str:
    if kind == "chain":
        if text not in CHAINS:
            raise _bad(option, spec, f"unknown chain {text!r} (chains: {', '.join(CHAINS)})")
        return text
    what, low, high, integer = LEVELS[kind]
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise _bad(option, spec, f"{text!r} is not a valid {kind} level ({what})") from None
    in_range = (low <= value if integer else low < value) and value <= high  # float levels: 0 excluded
    if not in_range or not math.isfinite(value):
        raise _bad(option, spec, f"{kind} level {text} is out of range ({what})")
    return value


def parse_perturbation(spec: str, option: str = "--perturb") -> list[Perturbation]:
    """``kind:level[,level...]`` -> one Perturbation per level; errors name ``option`` and the valid forms."""
    kind, sep, levels = str(spec).strip().partition(":")
    kind = kind.strip().lower()
    if kind not in LEVELS and kind != "chain":
        raise _bad(option, spec, f"unknown perturbation {kind!r}")
    texts = [t.strip() for t in levels.split(",")] if sep else []
    if not texts or any(not t for t in texts):
        raise _bad(option, spec, "give at least one level after the colon, separated by commas")
    return [Perturbation(kind, _level(option, spec, kind, t)) for t in texts]


def parse_perturbations(specs: Sequence[str], option: str = "--perturb") -> list[Perturbation]:
    """Every level of every spec, in the order given, duplicates dropped."""
    if isinstance(specs, str):
        specs = [specs]
    out: list[Perturbation] = []
    for spec in specs:
        if not isinstance(spec, str):
            raise _bad(option, str(spec), "each perturbation must be a string")
        out += [p for p in parse_perturbation(spec, option) if p not in out]
    return out
