"""Identical preprocessing for real and fake images, decoded once into a uint8 tensor cache.

Every image goes through the same path: read as RGB (see images.py), resize to ``input_size`` with the
filter the run resolved (the method's official one unless data.resize is set), stored as uint8. Batches are then gathered by
index straight from the cache and normalised on the fly, so epochs after the first decode nothing.
The cache lives in memory, or in a memory-mapped file under ``cache_dir`` that later runs reuse
(its key covers the file list, modification times, preprocessing settings and any robustness
perturbation, data/perturb.py).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..config import DataConfig
from .images import read_mask, read_rgb
from .perturb import Perturbation
from .samples import Sample

PIL_FILTERS = {"lanczos": Image.LANCZOS, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
               "nearest": Image.NEAREST}


def preprocess_image(image: Image.Image, size: int, resize: str) -> np.ndarray:
    """PIL RGB image -> [3, size, size] uint8, the one resize every image goes through."""
    if image.size != (size, size):
        image = image.resize((size, size), PIL_FILTERS[resize])
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def normalize(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """uint8 [B,3,H,W] -> float in ((x/255) - mean) / std; [-1, 1] with the defaults."""
    return (images.float() / 255.0 - mean) / std


@dataclass(frozen=True)
class MaskTarget:
    """How setup C's masks are brought to the map a method predicts, straight from their native size (as the
    official loaders do): ``nearest`` (PIL NEAREST; Patches, GradCAM) or ``bilinear`` (PIL bilinear, then
    > 0.5; Attention); or ``area``, not an official choice: each map cell's share of fake pixels (PIL BOX),
    stored as 0-255 and given to the loss as a soft target in [0, 1]."""

    size: int
    resize: str = "nearest"

    @property
    def soft(self) -> bool:
        return self.resize == "area"

    def __call__(self, native: np.ndarray) -> np.ndarray:
        size = (self.size, self.size)
        if self.resize == "nearest":
            return np.asarray(Image.fromarray(native).resize(size, Image.NEAREST), dtype=np.uint8)
        if self.resize == "area":
            share = Image.fromarray(native.astype(np.float32)).resize(size, Image.BOX)
            return np.rint(np.asarray(share) * 255).astype(np.uint8)
        grey = Image.fromarray(native.astype(np.uint8) * 255).resize(size, Image.BILINEAR)
        return (np.asarray(grey) > 127.5).astype(np.uint8)


def _load_one(sample: Sample, data: DataConfig, target: MaskTarget | None,
              perturb: Perturbation | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    image = read_rgb(sample.path)
    native_size = image.size
    if perturb is not None:  # in memory only: the file on disk is never touched
        image = perturb(image, sample.id)
    array = preprocess_image(image, data.input_size, data.resize)
    if target is None:
        return array, None
    size = (target.size, target.size)
    if sample.kind == "real":
        mask = np.zeros(size, dtype=np.uint8)
    elif sample.kind == "full" or sample.mask_path is None:
        mask = np.full(size, 255 if target.soft else 1, dtype=np.uint8)
    else:
        native = read_mask(sample.mask_path, polarity=data.mask_polarity, binarize=data.binarize_masks,
                           expected_size=native_size)
        mask = target(perturb.mask(native) if perturb is not None else native)
    return array, mask


def _cache_key(samples: Sequence[Sample], data: DataConfig, target: MaskTarget | None,
               perturb: Perturbation | None = None) -> str:
    h = hashlib.sha1()
    with_masks = target is not None
    mask_key = [target.size, target.resize] if target else None
    settings = [data.input_size, data.resize, data.mask_polarity, data.binarize_masks, mask_key]
    if perturb is not None:  # a perturbed decode never mixes with a clean one (clean keys are unchanged)
        settings.append(["perturb", perturb.name])
    h.update(json.dumps(settings).encode())
    for s in samples:
        paths = [s.path] + ([s.mask_path] if with_masks and s.mask_path else [])
        stamp = [(str(p), os.stat(p).st_mtime_ns, os.stat(p).st_size) if p.exists() else (str(p), 0, 0)
                 for p in paths]
        h.update(json.dumps([s.id, s.kind, stamp]).encode())
    return h.hexdigest()[:20]


@dataclass
class CachedImages:
    """Preprocessed images (and masks at the method's map size, 1 = fake) of a list of samples."""

    samples: list[Sample]
    images: np.ndarray  # [N, 3, S, S] uint8
    masks: np.ndarray | None  # [N, m, m] uint8 in {0, 1}, or 0-255 (a cell's fake share) when soft_masks
    labels: np.ndarray  # [N] int64
    mean: float = 0.5
    std: float = 0.5
    soft_masks: bool = False  # batch() then gives masks as float shares in [0, 1]

    def __len__(self) -> int:
        return len(self.samples)

    @classmethod
    def build(cls, samples: Sequence[Sample], data: DataConfig, *, masks: MaskTarget | None = None,
              desc: str = "decode", progress: bool = True, workers: int | None = None,
              perturb: Perturbation | None = None) -> "CachedImages":
        """Decode ``samples`` (and, given ``masks``, their masks resized that way) once; ``perturb`` applies a
        robustness perturbation (data/perturb.py) to each decoded image, before the resize."""
        if data.resize is None:  # a programming error: training resolves it (train.loop.resolve_preprocessing)
            raise ValueError("data.resize is unset: resolve the method's official preprocessing first")
        samples = list(samples)
        target = masks
        n, size = len(samples), data.input_size
        labels = np.array([s.label for s in samples], dtype=np.int64)
        images, masks, done_marker = _allocate(samples, data, target, perturb)
        if done_marker is None or not done_marker.exists():
            workers = workers or min(8, os.cpu_count() or 1)
            with ThreadPoolExecutor(workers) as pool:
                results = pool.map(lambda s: _load_one(s, data, target, perturb), samples)
                for i, (array, mask) in enumerate(tqdm(results, total=n, desc=desc, disable=None if progress else True,
                                                       unit="img", leave=False)):
                    images[i] = array
                    if masks is not None:
                        masks[i] = mask
            if done_marker is not None:
                images.flush()
                if masks is not None:
                    masks.flush()
                done_marker.write_text(json.dumps({"n": n, "size": size}))
        return cls(samples, images, masks, labels, data.mean, data.std, soft_masks=bool(target and target.soft))

    def batch(self, index: np.ndarray | Sequence[int], *, device: torch.device | str = "cpu",
              flip: torch.Tensor | None = None, turns: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Gather and normalise the samples at ``index``; ``flip`` [B] bool mirrors images and masks together, then
        ``turns`` [B] (0-3) rotates each by that many quarter turns, counter-clockwise."""
        index = np.asarray(index)
        images = torch.from_numpy(np.ascontiguousarray(self.images[index])).to(device)
        batch = {"image": normalize(images, self.mean, self.std),
                 "label": torch.from_numpy(self.labels[index]).to(device)}
        if self.masks is not None:
            batch["mask"] = torch.from_numpy(np.ascontiguousarray(self.masks[index])).to(device)
            if self.soft_masks:
                batch["mask"] = batch["mask"].float() / 255
        if flip is not None:
            flip = flip.to(device)
            batch["image"] = torch.where(flip[:, None, None, None], batch["image"].flip(-1), batch["image"])
            if "mask" in batch:
                batch["mask"] = torch.where(flip[:, None, None], batch["mask"].flip(-1), batch["mask"])
        if turns is not None:
            for key in ("image", "mask"):
                if key in batch:
                    batch[key] = torch.stack([torch.rot90(item, int(k), dims=(-2, -1))
                                              for item, k in zip(batch[key], turns)])
        return batch


def _allocate(samples: list[Sample], data: DataConfig, target: MaskTarget | None,
              perturb: Perturbation | None = None):
    n, size = len(samples), data.input_size
    if not data.cache_dir:
        masks = np.zeros((n, target.size, target.size), dtype=np.uint8) if target else None
        return np.zeros((n, 3, size, size), dtype=np.uint8), masks, None
    folder = Path(data.cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    key = _cache_key(samples, data, target, perturb)
    done = folder / f"{key}.done"
    mode = "r+" if done.exists() else "w+"
    open_memmap = np.lib.format.open_memmap
    images = open_memmap(folder / f"{key}.images.npy", mode=mode, dtype=np.uint8, shape=(n, 3, size, size))
    masks = (open_memmap(folder / f"{key}.masks.npy", mode=mode, dtype=np.uint8, shape=(n, target.size, target.size))
             if target else None)
    return images, masks, done
