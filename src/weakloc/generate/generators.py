"""Generator families behind one interface, on numpy batches.

- inpainters: ``inpaint(images NHWC uint8, masks NHW bool (True = regenerate), seeds) -> (images, truth masks)``
  where the truth mask is what a localizer should find (the mask written next to the image);
- full-image generators: ``generate(seeds, sources=None) -> images``.

RePaint-LDM and its two policies: the autoencoder's decoder changes every pixel a little, also outside the
mask. ``paste`` (default) puts the original pixels back outside the mask, so the image differs from the source
only inside the mask and the truth mask is the inpainting mask. ``decoded`` keeps the decoder's image as it
is: every pixel was produced by the decoder, so the truth mask is the whole image (the region that was
actually re-sampled is recorded in the manifest as ``inpainted_mask``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np
import torch

from ..errors import ConfigError
from . import diffusion as D
from .classical import FULL_VARIANTS, Classical
from .seeds import torch_generators

LDM_POLICIES = ("paste", "decoded")


class Inpainter(Protocol):
    name: str

    def settings(self) -> dict: ...

    def check_size(self, size: int) -> None: ...

    def inpaint(self, images: np.ndarray, masks: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]: ...


def _unet_factor(unet: torch.nn.Module) -> int:
    return 2 ** (len(unet.config.block_out_channels) - 1)


def _check_multiple(size: int, factor: int, what: str) -> None:
    if size % factor:
        raise ConfigError(f"image size {size} is not a multiple of {factor}, which {what} needs; "
                          f"make the mask plan with --size a multiple of {factor}")


def _warn_size(unet: torch.nn.Module, grid: int, what: str) -> None:
    trained = unet.config.sample_size
    trained = trained[0] if isinstance(trained, (list, tuple)) else trained
    if trained and trained != grid:
        warnings.warn(f"{what} was trained at {trained} px and runs here at {grid} px: expect poorer images",
                      stacklevel=3)


@dataclass
class ClassicalInpainter:
    spec: Classical
    name: str = "classical"

    def settings(self) -> dict:
        return self.spec.settings()

    def check_size(self, size: int) -> None:
        pass

    def inpaint(self, images: np.ndarray, masks: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        out = np.stack([self.spec.inpaint(im, m, s) for im, m, s in zip(images, masks, seeds, strict=True)])
        return out, masks


@dataclass
class RePaintInpainter:
    """RePaint on a pixel-space UNet2DModel; the known region is pasted back, so every pixel outside the
    mask is exactly the input's."""

    unet: torch.nn.Module
    scheduler_config: dict
    model: str
    steps: int = 250
    jump_length: int = 10
    jump_n_sample: int = 10
    eta: float = 1.0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    name: str = "repaint"

    def settings(self) -> dict:
        return {"model": self.model, "steps": self.steps, "jump_length": self.jump_length,
                "jump_n_sample": self.jump_n_sample, "eta": self.eta,
                "dtype": str(next(self.unet.parameters()).dtype).removeprefix("torch."),
                "unet_calls": D.repaint_unet_calls(self.steps, self.jump_length, self.jump_n_sample,
                                                   self.scheduler_config.get("num_train_timesteps", 1000))}

    def check_size(self, size: int) -> None:
        _check_multiple(size, _unet_factor(self.unet), "the UNet")
        _warn_size(self.unet, size, self.model)

    def inpaint(self, images: np.ndarray, masks: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        known = D.to_tensor(images, self.device)
        fake = D.mask_tensor(masks, self.device)
        x = D.repaint(self.unet, self.scheduler_config, known, fake, torch_generators(seeds), steps=self.steps,
                      jump_length=self.jump_length, jump_n_sample=self.jump_n_sample, eta=self.eta)
        return np.where(masks[..., None], D.to_uint8(x), images), masks


@dataclass
class LatentRePaintInpainter:
    """RePaint run on the latent code of a VQModel/AutoencoderKL, mask max-pooled to the latent grid, then
    decoded; ``policy`` decides what happens outside the mask (module doc)."""

    unet: torch.nn.Module
    scheduler_config: dict
    autoencoder: torch.nn.Module
    model: str
    policy: str = "paste"
    steps: int = 250
    jump_length: int = 10
    jump_n_sample: int = 10
    eta: float = 1.0
    clip_sample: bool = False  # latents are not bounded to [-1, 1] (diffusers' LDM configs turn clipping off)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    name: str = "repaint-ldm"

    def __post_init__(self) -> None:
        if self.policy not in LDM_POLICIES:
            raise ConfigError(f"latent policy must be one of {', '.join(LDM_POLICIES)}, not {self.policy!r}")

    def settings(self) -> dict:
        return {"model": self.model, "policy": self.policy, "steps": self.steps, "jump_length": self.jump_length,
                "jump_n_sample": self.jump_n_sample, "eta": self.eta, "clip_sample": self.clip_sample,
                "autoencoder": type(self.autoencoder).__name__, "latent_factor": D.latent_factor(self.autoencoder),
                "dtype": str(next(self.unet.parameters()).dtype).removeprefix("torch."),
                "unet_calls": D.repaint_unet_calls(self.steps, self.jump_length, self.jump_n_sample,
                                                   self.scheduler_config.get("num_train_timesteps", 1000))}

    def check_size(self, size: int) -> None:
        factor = D.latent_factor(self.autoencoder)
        _check_multiple(size, factor * _unet_factor(self.unet), "the autoencoder and latent UNet")
        _warn_size(self.unet, size // factor, f"{self.model} (latent grid)")

    def inpaint(self, images: np.ndarray, masks: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        z = D.encode(self.autoencoder, D.to_tensor(images, self.device))
        fake = D.latent_mask(D.mask_tensor(masks, self.device), D.latent_factor(self.autoencoder))
        z = D.repaint(self.unet, self.scheduler_config, z, fake, torch_generators(seeds), steps=self.steps,
                      jump_length=self.jump_length, jump_n_sample=self.jump_n_sample, eta=self.eta,
                      clip_sample=self.clip_sample)
        decoded = D.to_uint8(D.decode(self.autoencoder, z))
        if self.policy == "paste":
            return np.where(masks[..., None], decoded, images), masks
        return decoded, np.ones_like(masks, dtype=bool)

    def inpainted_region(self, masks: np.ndarray) -> np.ndarray:
        """The pixels whose latent cells were re-sampled (the pixel mask grown to whole cells)."""
        factor = D.latent_factor(self.autoencoder)
        grid = D.latent_mask(D.mask_tensor(masks), factor)
        return D.upsample_mask(grid, factor)[:, 0].numpy() > 0.5


# ---------------------------------------------------------------- full images


@dataclass
class DiffusionSampler:
    """Full-image synthesis (the paper's P2 role): DDPM or DDIM sampling from noise; with an autoencoder, in its
    latent space and decoded."""

    unet: torch.nn.Module
    scheduler_config: dict
    model: str
    sampler: str = "ddim"
    steps: int = 50
    eta: float = 0.0
    autoencoder: torch.nn.Module | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    name: str = "sample"

    def __post_init__(self) -> None:
        if self.sampler not in ("ddpm", "ddim"):
            raise ConfigError(f"sampler must be ddpm or ddim, not {self.sampler!r}")

    @property
    def size(self) -> int:
        grid = self.unet.config.sample_size
        grid = grid[0] if isinstance(grid, (list, tuple)) else grid
        return grid * (D.latent_factor(self.autoencoder) if self.autoencoder is not None else 1)

    def settings(self) -> dict:
        out = {"model": self.model, "sampler": self.sampler, "steps": self.steps, "size": self.size,
               "dtype": str(next(self.unet.parameters()).dtype).removeprefix("torch.")}
        if self.sampler == "ddim":
            out["eta"] = self.eta
        if self.autoencoder is not None:
            out["autoencoder"] = type(self.autoencoder).__name__
        return out

    def generate(self, seeds: Sequence[int], sources: np.ndarray | None = None) -> np.ndarray:
        grid = self.unet.config.sample_size
        grid = grid[0] if isinstance(grid, (list, tuple)) else grid
        shape = (len(seeds), self.unet.config.in_channels, grid, grid)
        clip = False if self.autoencoder is not None else None
        x = D.sample(self.unet, self.scheduler_config, shape, torch_generators(seeds), sampler=self.sampler,
                     steps=self.steps, eta=self.eta, clip_sample=clip, device=self.device)
        if self.autoencoder is not None:
            x = D.decode(self.autoencoder, x)
        return D.to_uint8(x)


@dataclass
class ClassicalFull:
    """Every pixel of a source regenerated by a classical inpainter (checkerboard halves, classical.py)."""

    spec: Classical
    name: str = "classical-full"

    def __post_init__(self) -> None:
        if self.spec.name not in FULL_VARIANTS:
            raise ConfigError(f"{self.spec.name} has no full-image variant (see classical.py); "
                              f"use one of {', '.join(FULL_VARIANTS)}")

    def settings(self) -> dict:
        return {**self.spec.settings(), "variant": "full"}

    def generate(self, seeds: Sequence[int], sources: np.ndarray | None = None) -> np.ndarray:
        if sources is None:
            raise ValueError("the classical full-image variant regenerates source images: pass them")
        return np.stack([self.spec.full(im, s) for im, s in zip(sources, seeds, strict=True)])
