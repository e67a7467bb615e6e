"""The diffusion loops, on tensors: RePaint (pixel or latent space) and full-image DDPM/DDIM sampling.

Conventions: images are float tensors in [-1, 1], NCHW; ``fake`` masks are N1HW floats with 1 = regenerate.
(diffusers' RePaintScheduler takes the opposite, 1 = keep; only :func:`repaint` converts.) Noise comes from
one CPU generator per image, so an image's result does not depend on the rest of its batch's random draws.
"""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

StepHook = Callable[[int], None]  # called with the number of UNet evaluations just made


def _filtered(cls, config: dict, **overrides) -> dict:
    """Keep the keys ``cls`` accepts (a DDPM config carries keys RePaint does not know), then override."""
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    out = {k: v for k, v in config.items() if k in accepted}
    out.update({k: v for k, v in overrides.items() if v is not None})
    if out.get("trained_betas") is not None:
        out["trained_betas"] = np.asarray(out["trained_betas"], dtype=np.float32)
    return out


def repaint_scheduler(config: dict, *, eta: float = 1.0, clip_sample: bool | None = None):
    from diffusers import RePaintScheduler

    return RePaintScheduler(**_filtered(RePaintScheduler, config, eta=eta, clip_sample=clip_sample))


def repaint_timesteps(config: dict, steps: int, jump_length: int, jump_n_sample: int) -> torch.Tensor:
    scheduler = repaint_scheduler(config)
    scheduler.set_timesteps(steps, jump_length, jump_n_sample)
    return scheduler.timesteps


def repaint_unet_calls(steps: int, jump_length: int, jump_n_sample: int, num_train_timesteps: int = 1000) -> int:
    """UNet evaluations per RePaint run (every backward step of the jump schedule)."""
    timesteps = repaint_timesteps({"num_train_timesteps": num_train_timesteps}, steps, jump_length, jump_n_sample)
    values = [int(timesteps[0]) + 1] + timesteps.tolist()
    return sum(1 for previous, t in zip(values, values[1:], strict=False) if t < previous)


def _epsilon(unet: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, *, keep_variance: bool = False) -> torch.Tensor:
    """The UNet's noise prediction in float32 (the UNet may run in bf16/fp16)."""
    dtype = next(unet.parameters()).dtype
    out = unet(x.to(dtype), t.to(x.device)).sample.float()
    if out.shape[1] == 2 * x.shape[1] and not keep_variance:
        out = out[:, : x.shape[1]]  # learned-variance models (ADM, P2) also output a variance: drop it
    return out


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
            eps = _epsilon(unet, x, t)
            x = scheduler.step(eps, int(t), x, known, keep, generator=generators).prev_sample
            if on_step:
                on_step(1)
        else:  # a jump back in time: re-noise (resampling)
            x = _undo(scheduler, x, int(t_last), generators)
        t_last = t
    return x


@torch.inference_mode()
def sample(unet: torch.nn.Module, scheduler_config: dict, shape: Sequence[int], generators: Sequence[torch.Generator],
           *, sampler: str = "ddim", steps: int = 50, eta: float = 0.0, clip_sample: bool | None = None,
           device: torch.device | str = "cpu", on_step: StepHook | None = None) -> torch.Tensor:
    """Full-image synthesis from noise with DDPM (ancestral) or DDIM sampling."""
    from diffusers import DDIMScheduler, DDPMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    if sampler not in ("ddpm", "ddim"):
        raise ValueError(f"sampler must be ddpm or ddim, not {sampler!r}")
    cls = DDPMScheduler if sampler == "ddpm" else DDIMScheduler
    scheduler = cls(**_filtered(cls, scheduler_config, clip_sample=clip_sample))
    scheduler.set_timesteps(steps, device=device)
    generators = list(generators)
    x = randn_tensor(tuple(shape), generator=generators, device=torch.device(device), dtype=torch.float32)
    x = x * scheduler.init_noise_sigma
    learned = str(scheduler.config.get("variance_type", "")).startswith("learned")
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, t)
        if sampler == "ddpm":
            out = _epsilon(unet, model_input, t, keep_variance=learned)
            x = scheduler.step(out, t, x, generator=generators).prev_sample
        else:
            out = _epsilon(unet, model_input, t)
            x = scheduler.step(out, t, x, eta=eta, generator=generators).prev_sample
        if on_step:
            on_step(1)
    return x


# ---------------------------------------------------------------- pixels <-> tensors, latents


def to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """NHWC uint8 -> NCHW float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """NCHW in [-1, 1] -> NHWC uint8 (rounded, clipped)."""
    x = ((x.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def mask_tensor(masks: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """NHW bool (True = fake) -> N1HW float."""
    return torch.from_numpy(np.ascontiguousarray(masks)).to(device).float()[:, None]


def latent_factor(autoencoder: torch.nn.Module) -> int:
    """Pixels per latent cell along a side."""
    return 2 ** (len(autoencoder.config.block_out_channels) - 1)


def latent_scaling(autoencoder: torch.nn.Module) -> tuple[float, float]:
    """(scale, shift): the diffusion model sees (z - shift) * scale, as in diffusers' latent pipelines."""
    scale = autoencoder.config.get("scaling_factor", 1.0) or 1.0
    shift = autoencoder.config.get("shift_factor", 0.0) or 0.0
    return float(scale), float(shift)


@torch.inference_mode()
def encode(autoencoder: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Deterministic latent code: VQModel's pre-quantisation latents, AutoencoderKL's posterior mode."""
    scale, shift = latent_scaling(autoencoder)
    dtype = next(autoencoder.parameters()).dtype
    out = autoencoder.encode(x.to(dtype))
    z = out.latents if hasattr(out, "latents") else out.latent_dist.mode()
    return (z.float() - shift) * scale


@torch.inference_mode()
def decode(autoencoder: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    scale, shift = latent_scaling(autoencoder)
    dtype = next(autoencoder.parameters()).dtype
    return autoencoder.decode((z / scale + shift).to(dtype)).sample.float()


def latent_mask(fake: torch.Tensor, factor: int) -> torch.Tensor:
    """Pixel mask -> latent grid: a latent cell is regenerated if any of its pixels is (max-pooling), so the
    regenerated latent region covers the whole pixel mask."""
    return F.max_pool2d(fake, kernel_size=factor, stride=factor) if factor > 1 else fake


def upsample_mask(fake: torch.Tensor, factor: int) -> torch.Tensor:
    return F.interpolate(fake, scale_factor=factor, mode="nearest") if factor > 1 else fake
