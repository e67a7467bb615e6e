"""RePaint (Lugmayr et al.): the loop on tensors, and the pixel-space and latent-space inpainters around it.

The loop works on NCHW tensors in [-1, 1] with ``fake`` masks N1HW, 1 = regenerate (diffusers'
RePaintScheduler takes the opposite, 1 = keep; only :func:`repaint` converts). Noise comes from one CPU
generator per image, so an image's result does not depend on the rest of its batch's random draws.

RePaint-LDM and its two policies: the autoencoder's decoder changes every pixel a little, also outside the
mask. ``paste`` (default) puts the original pixels back outside the mask, so the image differs from the source
only inside the mask and the truth mask is the inpainting mask. ``decoded`` keeps the decoder's image as it
is: every pixel was produced by the decoder, so the truth mask is the whole image (the region that was
actually re-sampled is recorded in the manifest as ``inpainted_mask``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ...errors import ConfigError
from ..seeds import torch_generators
from . import InpaintSettings, register_inpainter
from .tensors import (StepHook, decode, encode, epsilon, filtered_config, latent_factor, latent_mask, mask_tensor,
                      to_tensor, to_uint8, unet_factor, unet_grid, upsample_mask, weights_dtype)

LDM_POLICIES = ("paste", "decoded")


def repaint_scheduler(config: dict, *, eta: float = 1.0, clip_sample: bool | None = None):
    from diffusers import RePaintScheduler

    return RePaintScheduler(**filtered_config(RePaintScheduler, config, eta=eta, clip_sample=clip_sample))


def repaint_timesteps(config: dict, steps: int, jump_length: int, jump_n_sample: int) -> torch.Tensor:
    scheduler = repaint_scheduler(config)
    scheduler.set_timesteps(steps, jump_length, jump_n_sample)
    return scheduler.timesteps


def repaint_unet_calls(steps: int, jump_length: int, jump_n_sample: int, num_train_timesteps: int = 1000) -> int:
    """UNet evaluations per RePaint run (every backward step of the jump schedule)."""
    timesteps = repaint_timesteps({"num_train_timesteps": num_train_timesteps}, steps, jump_length, jump_n_sample)
    values = [int(timesteps[0]) + 1] + timesteps.tolist()
    return sum(1 for previous, t in zip(values, values[1:], strict=False) if t < previous)



def undo_keep(scheduler, t_last: int) -> float:
    """Signal kept when re-noising after the step at ``t_last``: that step left the sample at level
    ``t_last - n`` (clean below 0), the next step expects level ``t_last``, so keep = ᾱ[t_last] / ᾱ[t_last - n].

    This is RePaint's own undo (one step of the respaced schedule). diffusers' ``undo_step`` multiplies
    betas[t_last : t_last + n] instead, a window n - 1 training steps too late (slightly too much noise; far
    too much with few inference steps)."""
    n = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    before = scheduler.alphas_cumprod[t_last - n].item() if t_last - n >= 0 else 1.0
    return scheduler.alphas_cumprod[t_last].item() / before


def _undo(scheduler, x: torch.Tensor, t_last: int, generators: list[torch.Generator]) -> torch.Tensor:
    """Forward-noise by one inference step in one Gaussian draw (per image, from its own generator)."""
    from diffusers.utils.torch_utils import randn_tensor

    keep = undo_keep(scheduler, t_last)
    noise = randn_tensor(x.shape, generator=generators, device=x.device, dtype=x.dtype)
    return keep ** 0.5 * x + (1.0 - keep) ** 0.5 * noise


@torch.inference_mode()
def repaint(unet: torch.nn.Module, scheduler_config: dict, known: torch.Tensor, fake: torch.Tensor,
            generators: Sequence[torch.Generator], *, steps: int = 250, jump_length: int = 10,
            jump_n_sample: int = 10, eta: float = 1.0, clip_sample: bool | None = None,
            on_step: StepHook | None = None) -> torch.Tensor:
    """RePaint (Lugmayr et al. 2022; eq. 3 of the paper): at each step, the sample outside the mask is replaced
    by the known image noised to that step; with ``jump_n_sample`` > 1 the schedule goes back ``jump_length``
    steps and re-denoises (resampling) to harmonise the two regions. ``eta`` = 1 is DDPM sampling (RePaint's)."""
    from diffusers.utils.torch_utils import randn_tensor

    scheduler = repaint_scheduler(scheduler_config, eta=eta, clip_sample=clip_sample)
    scheduler.set_timesteps(steps, jump_length, jump_n_sample, device=known.device)
    generators = list(generators)
    keep = 1.0 - fake  # diffusers' RePaint mask: 1 = keep the known pixel
    x = randn_tensor(known.shape, generator=generators, device=known.device, dtype=torch.float32)
    t_last = scheduler.timesteps[0] + 1
    for t in scheduler.timesteps:
        if t < t_last:  # a denoising step
            eps = epsilon(unet, x, t)
            x = scheduler.step(eps, int(t), x, known, keep, generator=generators).prev_sample
            if on_step:
                on_step(1)
        else:  # a jump back in time: re-noise (resampling)
            x = _undo(scheduler, x, int(t_last), generators)
        t_last = t
    return x



def _check_multiple(size: int, factor: int, what: str) -> None:
    if size % factor:
        raise ConfigError(f"image size {size} is not a multiple of {factor}, which {what} needs; "
                          f"make the mask plan with --size a multiple of {factor}")


def _warn_size(unet: torch.nn.Module, grid: int, what: str) -> None:
    trained = unet_grid(unet)
    if trained and trained != grid:
        warnings.warn(f"{what} was trained at {trained} px and runs here at {grid} px: expect poorer images",
                      stacklevel=3)


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
    max_batch: int | None = None

    def settings(self) -> dict:
        return {"model": self.model, "steps": self.steps, "jump_length": self.jump_length,
                "jump_n_sample": self.jump_n_sample, "eta": self.eta,
                "dtype": weights_dtype(self.unet),
                "unet_calls": repaint_unet_calls(self.steps, self.jump_length, self.jump_n_sample,
                                                   self.scheduler_config.get("num_train_timesteps", 1000))}

    def check_size(self, size: int) -> None:
        _check_multiple(size, unet_factor(self.unet), "the UNet")
        _warn_size(self.unet, size, self.model)

    def inpaint(self, images: np.ndarray, masks: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        known = to_tensor(images, self.device)
        fake = mask_tensor(masks, self.device)
        x = repaint(self.unet, self.scheduler_config, known, fake, torch_generators(seeds), steps=self.steps,
                      jump_length=self.jump_length, jump_n_sample=self.jump_n_sample, eta=self.eta)
        return np.where(masks[..., None], to_uint8(x), images), masks


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
    max_batch: int | None = None

    def __post_init__(self) -> None:
        if self.policy not in LDM_POLICIES:
            raise ConfigError(f"latent policy must be one of {', '.join(LDM_POLICIES)}, not {self.policy!r}")

    def settings(self) -> dict:
        return {"model": self.model, "policy": self.policy, "steps": self.steps, "jump_length": self.jump_length,
                "jump_n_sample": self.jump_n_sample, "eta": self.eta, "clip_sample": self.clip_sample,
                "autoencoder": type(self.autoencoder).__name__, "latent_factor": latent_factor(self.autoencoder),
                "dtype": weights_dtype(self.unet),
                "unet_calls": repaint_unet_calls(self.steps, self.jump_length, self.jump_n_sample,
                                                   self.scheduler_config.get("num_train_timesteps", 1000))}

    def check_size(self, size: int) -> None:
        factor = latent_factor(self.autoencoder)
        _check_multiple(size, factor * unet_factor(self.unet), "the autoencoder and latent UNet")
        _warn_size(self.unet, size // factor, f"{self.model} (latent grid)")

    def inpaint(self, images: np.ndarray, masks: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        z = encode(self.autoencoder, to_tensor(images, self.device))
        fake = latent_mask(mask_tensor(masks, self.device), latent_factor(self.autoencoder))
        z = repaint(self.unet, self.scheduler_config, z, fake, torch_generators(seeds), steps=self.steps,
                      jump_length=self.jump_length, jump_n_sample=self.jump_n_sample, eta=self.eta,
                      clip_sample=self.clip_sample)
        decoded = to_uint8(decode(self.autoencoder, z))
        if self.policy == "paste":
            return np.where(masks[..., None], decoded, images), masks
        return decoded, np.ones_like(masks, dtype=bool)

    def inpainted_region(self, masks: np.ndarray) -> np.ndarray:
        """The pixels whose latent cells were re-sampled (the pixel mask grown to whole cells)."""
        factor = latent_factor(self.autoencoder)
        grid = latent_mask(mask_tensor(masks), factor)
        return upsample_mask(grid, factor)[:, 0].numpy() > 0.5



@register_inpainter("repaint")
def build_repaint(settings: InpaintSettings) -> RePaintInpainter:
    from .loading import load_diffusion

    unet, config, _, device = load_diffusion(settings.model, None, settings.device, settings.dtype, latent=False)
    return RePaintInpainter(unet, config, settings.model, steps=settings.steps, jump_length=settings.jump_length,
                            jump_n_sample=settings.jump_n_sample, eta=settings.eta, device=device)


@register_inpainter("repaint-ldm")
def build_latent_repaint(settings: InpaintSettings) -> LatentRePaintInpainter:
    from .loading import load_diffusion

    if settings.policy not in LDM_POLICIES:
        raise ConfigError(f"--policy must be one of {', '.join(LDM_POLICIES)}, not {settings.policy!r}")
    unet, config, autoencoder, device = load_diffusion(settings.model, settings.vae, settings.device,
                                                       settings.dtype, latent=True)
    return LatentRePaintInpainter(unet, config, autoencoder, settings.model, policy=settings.policy,
                                  steps=settings.steps, jump_length=settings.jump_length,
                                  jump_n_sample=settings.jump_n_sample, eta=settings.eta, device=device)
