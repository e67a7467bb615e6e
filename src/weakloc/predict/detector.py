"""The Python API for using a trained localizer::

    import weakloc
    detector = weakloc.load("runs/demo/patches-C/best.safetensors")
    result = detector.predict("photo.jpg")          # or a PIL image, an HxWx3 uint8 array, or a list of them
    result.score, result.map, result.mask           # float; HxW float32 in [0, 1]; HxW bool (map > threshold)
    result.verdict, result.verdict_rule.describe()  # "fake" / "real"; the rule and where its threshold came from

Maps come back at the input image's own resolution (the model's map resized with PIL's bicubic filter,
clipped to [0, 1]). Preprocessing is the one recorded in the checkpoint's card. The verdict uses the card's
calibrated threshold (train/calibrate.py); a card without one keeps score > threshold, "uncalibrated".
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..data.cache import normalize, preprocess_image
from ..data.images import check_pixel_limit, read_rgb
from ..device import autocast_dtype, pick_device
from ..errors import InputError
from ..methods import Localizer
from ..methods.xception import fold_batchnorm
from ..train.calibrate import VerdictRule
from ..train.checkpoint import load_checkpoint
from .batch import localize_batch
from .maps import resize_maps
from .tiles import localize_tiled

SCALES = ("resize", "native")

ImageLike = Union[str, Path, Image.Image, np.ndarray]


@dataclass
class Prediction:
    score: float  # image-level fake score in [0, 1]
    map: np.ndarray  # [H, W] float32 probability of manipulation, at the input's resolution
    threshold: float
    source: str = ""  # file path, or "" for in-memory images
    model_map: np.ndarray | None = None  # [h, w] the model's own map (what `weakloc evaluate` scores)
    notes: list[str] = field(default_factory=list)  # e.g. mode conversions
    image: Image.Image | None = field(default=None, repr=False)  # the decoded RGB input (predict_paths(keep_images=True))
    rule: VerdictRule | None = None  # the verdict's rule (the card's calibrated one); None: score > threshold

    @property
    def mask(self) -> np.ndarray:
        """[H, W] bool, True where the map exceeds the threshold."""
        return self.map > self.threshold

    @property
    def verdict_rule(self) -> VerdictRule:
        return self.rule or VerdictRule.from_card({}, self.threshold)

    @property
    def verdict_value(self) -> float:
        """What the verdict thresholds: the score, or the share of the model's map above the rule's pixel threshold."""
        return self.verdict_rule.value(self.score, self.map if self.model_map is None else self.model_map)

    @property
    def is_fake(self) -> bool:
        return bool(self.verdict_rule.is_fake(self.verdict_value))

    @property
    def verdict(self) -> str:
        return "fake" if self.is_fake else "real"


def _as_rgb(item: ImageLike, notes: list[str], max_pixels: int | None = None) -> Image.Image:
    if isinstance(item, (str, Path)):
        return read_rgb(item, notes, max_pixels)
    size = item.size if isinstance(item, Image.Image) else np.shape(item)[1::-1]
    if len(size) == 2:
        check_pixel_limit("<image>", *size, max_pixels)
    if isinstance(item, Image.Image):
        if item.mode != "RGB":
            notes.append(f"converted {item.mode} image to RGB")
        return item.convert("RGB")
    array = np.asarray(item)
    if array.dtype != np.uint8:
        raise InputError("<array>", f"array of dtype {array.dtype}", "pass uint8 HxWx3 (or HxW) pixel values")
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4)):
        if array.ndim == 3 and array.shape[2] != 3:
            notes.append(f"converted {array.shape[2]}-channel array to RGB")
            array = array[..., :3] if array.shape[2] == 4 else array[..., 0]
        return Image.fromarray(array).convert("RGB")
    raise InputError("<array>", f"array of shape {array.shape}", "pass an HxWx3 uint8 image")


class Detector:
    """A loaded localizer with its preprocessing; ``predict`` takes images of any size.

    ``scale``: "resize" (default: every image resized to the model's input, as in training) or "native" (the
    image at its own resolution in overlapping tiles, predict/tiles.py; images smaller than a tile are resized).
    ``precision``: "auto" (bf16 autocast where the hardware runs it natively, else fp32), "bf16" or "fp32".
    ``max_pixels``: the largest image accepted (data/images.py MAX_PIXELS by default).
    ``fold_batchnorm``: run a copy of ``model`` with every BatchNorm folded into the convolution before it
    (methods/xception.py; the same maps to float rounding, fewer passes over memory); ``model`` itself is
    left as it was."""

    def __init__(self, model: Localizer, card: dict, device: torch.device, precision: str = "auto",
                 scale: str = "resize", max_pixels: int | None = None, channels_last: bool = True,
                 fold_batchnorm: bool = True) -> None:
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(SCALES)}, not {scale!r}")
        self.card, self.device = card, device
        self.model = _folded(model, card["input_size"], device) if fold_batchnorm else model.eval()
        self.dtype = autocast_dtype(precision, device)
        self.scale, self.max_pixels = scale, max_pixels
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)  # as in training: faster convolutions on CPU and GPU

    @property
    def name(self) -> str:
        return f"{self.card['method']} (setup {self.card['setup']})"

    def verdict_rule(self, threshold: float = 0.5) -> VerdictRule:
        """The card's calibrated verdict rule; for a card without one, score > ``threshold`` (uncalibrated)."""
        return VerdictRule.from_card(self.card, threshold)

    def _prepare(self, item: ImageLike, scale: str | None = None) -> tuple[np.ndarray | None, Image.Image, list[str]]:
        """(the resized [3, S, S] input, or None when the image goes in native tiles; the RGB image; notes)."""
        notes: list[str] = []
        image = _as_rgb(item, notes, self.max_pixels)
        size = self.card["input_size"]
        if (scale or self.scale) == "native":
            if min(image.size) >= size:
                return None, image, notes
            notes.append(f"smaller than one {size}-px tile: resized, as in training")
        return preprocess_image(image, size, self.card["resize"]), image, notes

    def _run(self, arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        images = normalize(torch.from_numpy(np.stack(arrays)).to(self.device), self.card["mean"], self.card["std"])
        out = localize_batch(self.model, images.contiguous(memory_format=self.memory_format), self.device, self.dtype)
        return out.score.numpy(), out.map.numpy()

    def _run_prepared(self, prepared: list[tuple[np.ndarray | None, Image.Image, list[str]]],
                      batch_size: int) -> list[tuple[float, np.ndarray]]:
        """(score, model map) per prepared image: resized ones in one batch, native ones tile batch by tile batch."""
        out: list[tuple[float, np.ndarray] | None] = [None] * len(prepared)
        resized = [i for i, (array, _, _) in enumerate(prepared) if array is not None]
        if resized:
            scores, maps = self._run([prepared[i][0] for i in resized])
            for k, i in enumerate(resized):
                out[i] = (float(scores[k]), maps[k])
        for i, (array, image, notes) in enumerate(prepared):
            if array is None:
                tiled = localize_tiled(self.model, image, input_size=self.card["input_size"], mean=self.card["mean"],
                                       std=self.card["std"], device=self.device, dtype=self.dtype,
                                       tile_batch=batch_size, memory_format=self.memory_format)
                notes.append(f"native resolution: {tiled.tiles} tiles of {self.card['input_size']} px")
                out[i] = (tiled.score, tiled.map)
        return out  # type: ignore[return-value]

    def _finish(self, score: float, small: np.ndarray, image: Image.Image, threshold: float, source: str,
                notes: list[str], keep_image: bool = False) -> Prediction:
        width, height = image.size
        full = resize_maps(torch.from_numpy(small)[None], (height, width))[0].clamp_(0, 1).numpy()
        return Prediction(float(score), full, threshold, source, small, notes, image if keep_image else None,
                          self.verdict_rule(threshold))

    def predict(self, images: ImageLike | Sequence[ImageLike], threshold: float = 0.5,
                batch_size: int = 16, scale: str | None = None) -> Prediction | list[Prediction]:
        """One image -> one Prediction; a list -> a list. Errors raise :class:`InputError`. ``scale``: resize |
        native for this call (the detector's own otherwise)."""
        if scale is not None and scale not in SCALES:
            raise InputError("scale", f"unknown scale {scale!r}", f"use one of {', '.join(SCALES)}")
        single = isinstance(images, (str, Path, Image.Image)) or (isinstance(images, np.ndarray) and images.ndim <= 3)
        items = [images] if single else list(images)
        results = []
        for start in range(0, len(items), batch_size):
            chunk = [self._prepare(item, scale) for item in items[start:start + batch_size]]
            for i, ((score, small), (_, image, notes)) in enumerate(zip(self._run_prepared(chunk, batch_size), chunk)):
                item = items[start + i]
                source = str(item) if isinstance(item, (str, Path)) else ""
                results.append(self._finish(score, small, image, threshold, source, notes))
        return results[0] if single else results

    def predict_paths(self, paths: Iterable[str | Path], *, threshold: float = 0.5, batch_size: int = 16,
                      progress: bool = True, keep_images: bool = False) -> Iterator[tuple[str, Prediction | InputError]]:
        """Predict many files; a file that cannot be read yields its error and the others go on.
        ``keep_images``: each Prediction carries its decoded RGB image (so an overlay needs no second read)."""
        paths = [str(p) for p in paths]

        def load(path: str):
            try:
                return self._prepare(path)
            except InputError as exc:
                return exc

        with ThreadPoolExecutor(4) as pool, tqdm(total=len(paths), desc="predict", unit="img",
                                                  disable=not progress) as bar:
            for start in range(0, len(paths), batch_size):
                chunk = paths[start:start + batch_size]
                loaded = list(pool.map(load, chunk))
                good = [i for i, item in enumerate(loaded) if not isinstance(item, InputError)]
                outputs = self._run_prepared([loaded[i] for i in good], batch_size) if good else []
                by_index = {i: k for k, i in enumerate(good)}
                for i, path in enumerate(chunk):
                    item = loaded[i]
                    if isinstance(item, InputError):
                        yield path, item
                    else:
                        score, small = outputs[by_index[i]]
                        yield path, self._finish(score, small, item[1], threshold, path, item[2], keep_images)
                bar.update(len(chunk))


def _folded(model: Localizer, input_size: int, device: torch.device) -> Localizer:
    copy = deepcopy(model)
    fold_batchnorm(copy, torch.zeros(1, 3, input_size, input_size, device=device))
    return copy


def load(path: str | Path, device: str = "auto", precision: str = "auto", scale: str = "resize",
         max_pixels: int | None = None, fold_batchnorm: bool = True) -> Detector:
    """Load a checkpoint written by `weakloc train` (safetensors + model card) for prediction (see
    :class:`Detector` for ``precision``, ``scale``, ``max_pixels`` and ``fold_batchnorm``).
    Errors (a missing file, a file that is not a weakloc checkpoint) raise :class:`InputError`."""
    device_ = pick_device(device)
    model, card = load_checkpoint(path, device_)
    return Detector(model, card, device_, precision, scale, max_pixels, fold_batchnorm=fold_batchnorm)
