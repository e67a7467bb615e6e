"""The Python API for using a trained localizer::

    import weakloc
    detector = weakloc.load("runs/demo/patches-C/best.safetensors")
    result = detector.predict("photo.jpg")          # or a PIL image, an HxWx3 uint8 array, or a list of them
    result.score, result.map, result.mask           # float; HxW float32 in [0, 1]; HxW bool (map > threshold)

Maps come back at the input image's own resolution (the model's map resized with PIL's bicubic filter,
clipped to [0, 1]). Preprocessing is the one recorded in the checkpoint's card.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence, Union

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..data.cache import normalize, preprocess_image
from ..data.images import read_rgb
from ..device import autocast_dtype, pick_device
from ..errors import InputError
from ..methods import Localizer
from ..train.checkpoint import load_checkpoint
from .batch import localize_batch
from .maps import resize_maps

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

    @property
    def mask(self) -> np.ndarray:
        """[H, W] bool, True where the map exceeds the threshold."""
        return self.map > self.threshold

    @property
    def is_fake(self) -> bool:
        return self.score > self.threshold


def _as_rgb(item: ImageLike, notes: list[str]) -> Image.Image:
    if isinstance(item, (str, Path)):
        return read_rgb(item, notes)
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
    """A loaded localizer with its preprocessing; ``predict`` takes images of any size."""

    def __init__(self, model: Localizer, card: dict, device: torch.device, precision: str = "fp32") -> None:
        self.model, self.card, self.device = model.eval(), card, device
        self.dtype = autocast_dtype(precision, device)

    @property
    def name(self) -> str:
        return f"{self.card['method']} (setup {self.card['setup']})"

    def _prepare(self, item: ImageLike) -> tuple[np.ndarray, Image.Image, list[str]]:
        notes: list[str] = []
        image = _as_rgb(item, notes)
        return preprocess_image(image, self.card["input_size"], self.card["resize"]), image, notes

    def _run(self, arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        images = normalize(torch.from_numpy(np.stack(arrays)).to(self.device), self.card["mean"], self.card["std"])
        out = localize_batch(self.model, images, self.device, self.dtype)
        return out.score.numpy(), out.map.numpy()

    def _finish(self, score: float, small: np.ndarray, image: Image.Image, threshold: float, source: str,
                notes: list[str], keep_image: bool = False) -> Prediction:
        width, height = image.size
        full = resize_maps(torch.from_numpy(small)[None], (height, width))[0].clamp_(0, 1).numpy()
        return Prediction(float(score), full, threshold, source, small, notes, image if keep_image else None)

    def predict(self, images: ImageLike | Sequence[ImageLike], threshold: float = 0.5,
                batch_size: int = 16) -> Prediction | list[Prediction]:
        """One image -> one Prediction; a list -> a list. Errors raise :class:`InputError`."""
        single = isinstance(images, (str, Path, Image.Image)) or (isinstance(images, np.ndarray) and images.ndim <= 3)
        items = [images] if single else list(images)
        results = []
        for start in range(0, len(items), batch_size):
            chunk = [self._prepare(item) for item in items[start:start + batch_size]]
            scores, maps = self._run([c[0] for c in chunk])
            for i, (_, image, notes) in enumerate(chunk):
                item = items[start + i]
                source = str(item) if isinstance(item, (str, Path)) else ""
                results.append(self._finish(scores[i], maps[i], image, threshold, source, notes))
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
                scores, maps = self._run([loaded[i][0] for i in good]) if good else ([], [])
                by_index = {i: k for k, i in enumerate(good)}
                for i, path in enumerate(chunk):
                    item = loaded[i]
                    if isinstance(item, InputError):
                        yield path, item
                    else:
                        k = by_index[i]
                        yield path, self._finish(scores[k], maps[k], item[1], threshold, path, item[2], keep_images)
                bar.update(len(chunk))


def load(path: str | Path, device: str = "auto", precision: str = "fp32") -> Detector:
    """Load a checkpoint written by `weakloc train` (safetensors + model card) for prediction.
    Errors (a missing file, a file that is not a weakloc checkpoint) raise :class:`InputError`."""
    device_ = pick_device(device)
    model, card = load_checkpoint(path, device_)
    return Detector(model, card, device_, precision)
