"""RePaint (Lugmayr et al.): the loop on tensors, and the pixel-space and latent-space inpainters around it.

The loop works on NCHW tensors in [-1, 1] with ``fake`` masks N1HW, 1 = regenerate (diffusers'
RePaintScheduler takes the opposite, 1 = keep; only :func:`repaint` converts). Noise comes from one CPU
generator per image, so an image's result does not depend on the rest of its batch's random draws.

RePaint-LDM and its policies: the autoencoder's decoder changes every pixel a little, also outside the mask.
``decoded`` (default) is the paper's setting (§3.2: the inpainted latent is inverted by the decoder, dec(x^)):
the image is the decoder's output as it is, and the truth mask is the inpainting mask, so the only trace
outside the mask is the decoder's (small) change everywhere. ``paste`` puts the source's pixels back outside
the mask, so the image differs from the source only inside it; that leaves a seam at the mask's border, an
easier trace to find than the paper's. ``decoded-whole`` keeps the decoder's image and calls every pixel
manipulated (for studying autoencoder traces; the re-sampled region is in the manifest as ``inpainted_mask``).
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
from .tensors import (StepHook, channels_last, decode, encode, epsilon, filtered_config, forward_dtype, latent_factor,
                      latent_mask, learned_variance, mask_tensor, posterior_scheduler, precision_settings,
                      timestep_grid, to_tensor, to_uint8, unet_factor, unet_grid, upsample_mask, weights_dtype)

LDM_POLICIES = ("decoded", "paste", "decoded-whole")


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


def _undo(keep: float, x: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """Forward-noise by one inference step, keeping ``keep`` of the signal, in one Gaussian draw (per image,
    from its own generator)."""
    from diffusers.utils.torch_utils import randn_tensor

    noise = randn_tensor(x.shape, generator=generators, device=x.device, dtype=x.dtype)
    return keep ** 0.5 * x + (1.0 - keep) ** 0.5 * noise


def _level(scheduler, t: int) -> float:
    return scheduler.alphas_cumprod[t].item() if t >= 0 else 1.0


def posterior_step(scheduler, out: torch.Tensor, t: int, x: torch.Tensor, known: torch.Tensor, keep: torch.Tensor,
                   generators: list[torch.Generator]) -> torch.Tensor:
    """One RePaint step with the model's learned variance, as RePaint's code (guided-diffusion's ``p_sample``)
    takes it: the unknown region from the DDPM posterior (clipped x0, variance interpolated by the UNet's
    second half of channels, ``scheduler`` a :func:`posterior_scheduler`), the known region noised to the same
    level with its own draw. diffusers' RePaintScheduler has no learned variance: its step is DDIM with eta,
    whose variance is always the posterior's beta~."""
    from diffusers.utils.torch_utils import randn_tensor

    unknown = scheduler.step(out, t, x, generator=generators).prev_sample
    level = _level(scheduler, int(scheduler.previous_timestep(t)))
    noise = randn_tensor(known.shape, generator=generators, device=known.device, dtype=known.dtype)
    return keep * (level ** 0.5 * known + (1.0 - level) ** 0.5 * noise) + (1.0 - keep) * unknown


def uses_learned_variance(scheduler_config: dict, eta: float) -> bool:
    """RePaint takes the learned variance when the model has one and sampling is DDPM's (eta = 1); with
    eta < 1 (DDIM-like) the step is diffusers' and the variance channels are not used."""
    return learned_variance(scheduler_config) and eta == 1.0


def variance_settings(scheduler_config: dict, eta: float) -> dict:
    """What the generator settings record about the learned variance (nothing for other models, so folders made
    before it existed still match on resume)."""
    if not uses_learned_variance(scheduler_config, eta):
        return {}
    spacing = "linspace" if scheduler_config.get("timestep_spacing") == "linspace" else "uniform"
    return {"variance": str(scheduler_config["variance_type"]), "timestep_grid": spacing}


@torch.inference_mode()
def repaint(unet: torch.nn.Module, scheduler_config: dict, known: torch.Tensor, fake: torch.Tensor,
            generators: Sequence[torch.Generator], *, steps: int = 250, jump_length: int = 10,
            jump_n_sample: int = 10, eta: float = 1.0, clip_sample: bool | None = None,
            precision: str = "fp32", on_step: StepHook | None = None) -> torch.Tensor:
    """RePaint (Lugmayr et al. 2022; eq. 3 of the paper): at each step, the sample outside the mask is replaced
    by the known image noised to that step; with ``jump_n_sample`` > 1 the schedule goes back ``jump_length``
    steps and re-denoises (resampling) to harmonise the two regions. ``eta`` = 1 is DDPM sampling (RePaint's).

    A model with a learned variance (scheduler ``variance_type="learned_range"``: the P2 / RePaint
    guided-diffusion models) is stepped with it (:func:`posterior_step`) on its config's timestep grid
    (``timestep_spacing="linspace"``: guided-diffusion's respacing); other models take diffusers' RePaint step.

    ``precision`` (tensors.py): the UNet forward pass in fp32 (default), bf16 autocast, or "auto" (bf16 where
    native); the scheduler arithmetic is fp32 in every case. The whole batch goes through each UNet call."""
    from diffusers.utils.torch_utils import randn_tensor

    amp = forward_dtype(precision, known.device, unet)
    scheduler = repaint_scheduler(scheduler_config, eta=eta, clip_sample=clip_sample)
    scheduler.set_timesteps(steps, jump_length, jump_n_sample)
    schedule = scheduler.timesteps.tolist()  # Python ints: no per-step tensor comparisons (or GPU syncs)
    posterior = None
    if uses_learned_variance(scheduler_config, eta):
        posterior = posterior_scheduler(scheduler_config, steps, clip_sample=clip_sample)
        grid, stride = timestep_grid(scheduler_config, steps), scheduler.config.num_train_timesteps // steps
        schedule = [grid[t // stride] for t in schedule]  # the same jumps, on the model's own grid
    timesteps = torch.tensor(schedule, device=known.device)  # what the UNet is given, moved once
    generators = list(generators)
    keep = 1.0 - fake  # diffusers' RePaint mask: 1 = keep the known pixel
    x = randn_tensor(known.shape, generator=generators, device=known.device, dtype=torch.float32)
    t_last = schedule[0] + 1
    for i, t in enumerate(schedule):
        if t < t_last:  # a denoising step
            out = epsilon(unet, x, timesteps[i], keep_variance=posterior is not None, amp=amp)
            if posterior is not None:
                x = posterior_step(posterior, out, t, x, known, keep, generators)
            else:
                x = scheduler.step(out, t, x, known, keep, generator=generators).prev_sample
            if on_step:
                on_step(1)
        else:  # a jump back in time: re-noise (resampling) from the level the last step left to t_last's
            ratio = (_level(posterior, t_last) / _level(posterior, int(posterior.previous_timestep(t_last)))
                     if posterior is not None else undo_keep(scheduler, t_last))
            x = _undo(ratio, x, generators)
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
    mask is exactly the input's. ``precision`` as in tensors.py (with bf16, the UNet's weights are made
    channels_last here, once)."""

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
    precision: str = "auto"

    def __post_init__(self) -> None:
        if forward_dtype(self.precision, self.device, self.unet) is not None:
            channels_last(self.unet)

    def settings(self) -> dict:
        return {"model": self.model, "steps": self.steps, "jump_length": self.jump_length,
                "jump_n_sample": self.jump_n_sample, "eta": self.eta,
                "dtype": weights_dtype(self.unet),
                "unet_calls": repaint_unet_calls(self.steps, self.jump_length, self.jump_n_sample,
                                                   self.scheduler_config.get("num_train_timesteps", 1000)),
                **variance_settings(self.scheduler_config, self.eta),
                **precision_settings(forward_dtype(self.precision, self.device, self.unet))}

    def check_size(self, size: int) -> None:
        _check_multiple(size, unet_factor(self.unet), "the UNet")
        _warn_size(self.unet, size, self.model)

    def inpaint(self, images: np.ndarray, masks: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        known = to_tensor(images, self.device)
        fake = mask_tensor(masks, self.device)
        x = repaint(self.unet, self.scheduler_config, known, fake, torch_generators(seeds), steps=self.steps,
                    jump_length=self.jump_length, jump_n_sample=self.jump_n_sample, eta=self.eta,
                    precision=self.precision)
        return np.where(masks[..., None], to_uint8(x), images), masks


@dataclass
class LatentRePaintInpainter:
    """RePaint run on the latent code of a VQModel/AutoencoderKL, mask max-pooled to the latent grid, then
    decoded; ``policy`` decides what happens outside the mask (module doc). ``precision`` covers the UNet and
    the autoencoder (tensors.py)."""

    unet: torch.nn.Module
    scheduler_config: dict
    autoencoder: torch.nn.Module
    model: str
    policy: str = "decoded"
    steps: int = 250
    jump_length: int = 10
    jump_n_sample: int = 10
    eta: float = 1.0
    clip_sample: bool = False  # latents are not bounded to [-1, 1] (diffusers' LDM configs turn clipping off)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    name: str = "repaint-ldm"
    max_batch: int | None = None
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.policy not in LDM_POLICIES:
            raise ConfigError(f"latent policy must be one of {', '.join(LDM_POLICIES)}, not {self.policy!r}")
        if forward_dtype(self.precision, self.device, self.unet) is not None:
            channels_last(self.unet)
        if forward_dtype(self.precision, self.device, self.autoencoder) is not None:
            channels_last(self.autoencoder)

    def settings(self) -> dict:
        return {"model": self.model, "policy": self.policy, "steps": self.steps, "jump_length": self.jump_length,
                "jump_n_sample": self.jump_n_sample, "eta": self.eta, "clip_sample": self.clip_sample,
                "autoencoder": type(self.autoencoder).__name__, "latent_factor": latent_factor(self.autoencoder),
                "dtype": weights_dtype(self.unet),
                "unet_calls": repaint_unet_calls(self.steps, self.jump_length, self.jump_n_sample,
                                                   self.scheduler_config.get("num_train_timesteps", 1000)),
                **variance_settings(self.scheduler_config, self.eta),
                **precision_settings(forward_dtype(self.precision, self.device, self.unet))}

    def check_size(self, size: int) -> None:
        factor = latent_factor(self.autoencoder)
        _check_multiple(size, factor * unet_factor(self.unet), "the autoencoder and latent UNet")
        _warn_size(self.unet, size // factor, f"{self.model} (latent grid)")

    def inpaint(self, images: np.ndarray, masks: np.ndarray, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        amp = forward_dtype(self.precision, self.device, self.autoencoder)
        z = encode(self.autoencoder, to_tensor(images, self.device), amp=amp)
        fake = latent_mask(mask_tensor(masks, self.device), latent_factor(self.autoencoder))
        z = repaint(self.unet, self.scheduler_config, z, fake, torch_generators(seeds), steps=self.steps,
                    jump_length=self.jump_length, jump_n_sample=self.jump_n_sample, eta=self.eta,
                    clip_sample=self.clip_sample, precision=self.precision)
        decoded = to_uint8(decode(self.autoencoder, z, amp=amp))
        if self.policy == "paste":
            return np.where(masks[..., None], decoded, images), masks
        if self.policy == "decoded":
            return decoded, masks
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
                            jump_n_sample=settings.jump_n_sample, eta=settings.eta, device=device,
                            precision=settings.precision)


@register_inpainter("repaint-ldm")
def build_latent_repaint(settings: InpaintSettings) -> LatentRePaintInpainter:
    from .loading import load_diffusion

    if settings.policy not in LDM_POLICIES:
        raise ConfigError(f"--policy must be one of {', '.join(LDM_POLICIES)}, not {settings.policy!r}")
    unet, config, autoencoder, device = load_diffusion(settings.model, settings.vae, settings.device,
                                                       settings.dtype, latent=True)
    return LatentRePaintInpainter(unet, config, autoencoder, settings.model, policy=settings.policy,
                                  steps=settings.steps, jump_length=settings.jump_length,
                                  jump_n_sample=settings.jump_n_sample, eta=settings.eta, device=device,
                                  precision=settings.precision)
