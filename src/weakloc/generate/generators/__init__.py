"""Generators behind one interface, on numpy batches, and the registry of inpainters.

- inpainters: ``inpaint(images NHWC uint8, masks NHW bool (True = regenerate), seeds) -> (images, truth masks)``
  where the truth mask is what a localizer should find (the mask written next to the image);
- full-image generators: ``generate(seeds, sources=None) -> images``.

Each family's loop lives beside its adapter: ``repaint`` (RePaint, pixel and latent), ``sampling`` (DDPM/DDIM),
``classical`` (OpenCV / scikit-image / PatchMatch); ``loading`` reads diffusers models; ``tensors`` holds what
the diffusion loops share. An inpainter is registered where it is defined, with ``@register_inpainter(name)``
on a builder that takes the command's :class:`InpaintSettings`.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

from ...errors import ConfigError


class Inpainter(Protocol):
    name: str
    max_batch: int | None  # None: any batch size; 1 for single-image algorithms

    def settings(self) -> dict: ...

    def check_size(self, size: int) -> None: ...

    def inpaint(self, images: np.ndarray, masks: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]: ...


class FullGenerator(Protocol):
    name: str

    def settings(self) -> dict: ...

    def generate(self, seeds: Sequence[int], sources: np.ndarray | None = None) -> np.ndarray: ...


@dataclass(frozen=True)
class InpaintSettings:
    """Everything ``weakloc generate inpaint`` can set; each builder reads the fields its generator uses."""

    model: str | None = None  # diffusion models: a diffusers folder or a hub id
    vae: str | None = None  # latent models: the autoencoder, if not inside ``model``
    steps: int = 250
    jump_length: int = 10
    jump_n_sample: int = 10
    eta: float = 1.0
    policy: str = "decoded"  # repaint-ldm: decoded (the paper's dec(x^)) | paste | decoded-whole
    radius: int = 5  # telea / ns
    patch_size: int = 5  # patchmatch
    device: str = "auto"
    dtype: str = "float32"
    precision: str = "auto"  # diffusion models: auto (bf16 autocast where native) | bf16 | fp32


INPAINTERS: dict[str, Callable[[InpaintSettings], Inpainter]] = {}


def register_inpainter(name: str) -> Callable:
    """Decorator: register ``builder(settings) -> Inpainter`` under ``name`` (the ``--generator`` value)."""
    def add(builder: Callable[[InpaintSettings], Inpainter]) -> Callable[[InpaintSettings], Inpainter]:
        if name in INPAINTERS:
            raise ValueError(f"inpainter {name!r} is registered twice")
        INPAINTERS[name] = builder
        return builder
    return add


def build_inpainter(name: str, settings: InpaintSettings) -> Inpainter:
    if name not in INPAINTERS:
        raise ConfigError(f"--generator must be one of {', '.join(INPAINTERS)}, not {name!r}")
    return INPAINTERS[name](settings)


# the modules register their inpainters on import (heavy libraries load only when a builder runs)
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
