"""Full-image synthesis (the paper's P2 role): DDPM or DDIM sampling from noise; with an autoencoder, in its
latent space and decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from ...errors import ConfigError
from ..seeds import torch_generators
from .tensors import (StepHook, channels_last, decode, epsilon, filtered_config, forward_dtype, latent_factor,
                      learned_variance, precision_settings, to_tensor, to_uint8, unet_grid, weights_dtype)

SAMPLERS = ("ddpm", "ddim")


@torch.inference_mode()
def sample(unet: torch.nn.Module, scheduler_config: dict, shape: Sequence[int], generators: Sequence[torch.Generator],
           *, sampler: str = "ddpm", steps: int = 50, eta: float = 0.0, clip_sample: bool | None = None,
           device: torch.device | str = "cpu", precision: str = "fp32",
           on_step: StepHook | None = None, init: torch.Tensor | None = None, strength: float = 1.0) -> torch.Tensor:
    """Full-image synthesis from noise with DDPM (ancestral) or DDIM sampling, the whole batch in each UNet call.
    ``precision`` as in tensors.py (the UNet forward pass only; the scheduler arithmetic stays fp32).
    With ``init`` (images in [-1, 1]) and ``strength`` < 1: SDEdit (Meng et al., ICLR 2022), the images noised to
    ``strength`` of the schedule and denoised from there: every pixel is the model's, the layout the image's."""
    from diffusers import DDIMScheduler, DDPMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be ddpm or ddim, not {sampler!r}")
    device = torch.device(device)
    amp = forward_dtype(precision, device, unet)
    cls = DDPMScheduler if sampler == "ddpm" else DDIMScheduler
    # DDIM steps back a fixed stride T // steps, which only a uniform grid has (the guided-diffusion imports say
    # "linspace", which DDPM follows step by step)
    spacing = "leading" if sampler == "ddim" and scheduler_config.get("timestep_spacing") == "linspace" else None
    scheduler = cls(**filtered_config(cls, scheduler_config, clip_sample=clip_sample, timestep_spacing=spacing))
    scheduler.set_timesteps(steps)  # kept on the CPU with the scheduler's tables: no GPU syncs in its steps
    schedule = scheduler.timesteps.tolist()
    timesteps = scheduler.timesteps.to(device)  # what the UNet is given, moved once
    generators = list(generators)
    x = randn_tensor(tuple(shape), generator=generators, device=device, dtype=torch.float32)
    x = x * scheduler.init_noise_sigma
    if init is not None and strength < 1:  # the tail of the schedule, from the noised images (diffusers' img2img)
        kept = max(1, min(steps, int(round(steps * strength))))
        schedule, timesteps = schedule[steps - kept:], timesteps[steps - kept:]
        x = scheduler.add_noise(init.to(device, torch.float32), x, timesteps[:1].repeat(len(x)))
    learned = learned_variance(scheduler.config)  # DDPM steps with it (variance_type learned_range); DDIM has none
    for i, t in enumerate(schedule):
        model_input = scheduler.scale_model_input(x, t)
        if sampler == "ddpm":
            out = epsilon(unet, model_input, timesteps[i], keep_variance=learned, amp=amp)
            x = scheduler.step(out, t, x, generator=generators).prev_sample
        else:
            out = epsilon(unet, model_input, timesteps[i], amp=amp)
            x = scheduler.step(out, t, x, eta=eta, generator=generators).prev_sample
        if on_step:
            on_step(1)
    return x


@dataclass
class DiffusionSampler:
    """Full-image synthesis (the paper's P2 role): DDPM or DDIM sampling from noise; with an autoencoder, in its
    latent space and decoded."""

    unet: torch.nn.Module
    scheduler_config: dict
    model: str
    sampler: str = "ddpm"
    steps: int = 50
    eta: float = 0.0
    autoencoder: torch.nn.Module | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    name: str = "sample"
    precision: str = "auto"  # tensors.py; with bf16, the weights are made channels_last here, once
    strength: float = 1.0  # < 1: SDEdit from the ``sources`` given to generate() (pixel models only)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler must be ddpm or ddim, not {self.sampler!r}")
        if not 0 < self.strength <= 1 or (self.strength < 1 and self.autoencoder is not None):
            raise ConfigError(f"strength must be in (0, 1] (below 1 for pixel models only), not {self.strength}")
        if forward_dtype(self.precision, self.device, self.unet) is not None:
            channels_last(self.unet)
        if self.autoencoder is not None and forward_dtype(self.precision, self.device, self.autoencoder) is not None:
            channels_last(self.autoencoder)

    @property
    def size(self) -> int:
        return unet_grid(self.unet) * (latent_factor(self.autoencoder) if self.autoencoder is not None else 1)

    def settings(self) -> dict:
        out = {"model": self.model, "sampler": self.sampler, "steps": self.steps, "size": self.size,
               "dtype": str(next(self.unet.parameters()).dtype).removeprefix("torch.")}
        if self.sampler == "ddim":
            out["eta"] = self.eta
        elif learned_variance(self.scheduler_config):  # recorded only where used: older folders still match
            out["variance"] = str(self.scheduler_config["variance_type"])
        if self.sampler == "ddpm" and self.scheduler_config.get("timestep_spacing") == "linspace":
            out["timestep_grid"] = "linspace"
        if self.autoencoder is not None:
            out["autoencoder"] = type(self.autoencoder).__name__
        if self.strength < 1:
            out["strength"] = self.strength
        return {**out, **precision_settings(forward_dtype(self.precision, self.device, self.unet))}

    def generate(self, seeds: Sequence[int], sources: np.ndarray | None = None) -> np.ndarray:
        grid = unet_grid(self.unet)
        shape = (len(seeds), self.unet.config.in_channels, grid, grid)
        clip = False if self.autoencoder is not None else None
        init = None
        if self.strength < 1:
            if sources is None or len(sources) != len(seeds):
                raise ConfigError("SDEdit sampling (strength < 1) needs one source image per seed")
            init = to_tensor(np.asarray(sources), self.device)
        x = sample(self.unet, self.scheduler_config, shape, torch_generators(seeds), sampler=self.sampler,
                   steps=self.steps, eta=self.eta, clip_sample=clip, device=self.device, precision=self.precision,
                   init=init, strength=self.strength)
        if self.autoencoder is not None:
            x = decode(self.autoencoder, x, amp=forward_dtype(self.precision, self.device, self.autoencoder))
        return to_uint8(x)

