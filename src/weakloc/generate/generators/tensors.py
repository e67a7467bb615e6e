"""What RePaint and the samplers share: the UNet call, scheduler configs, pixels <-> tensors, latents.

Conventions: images are float tensors in [-1, 1], NCHW; ``fake`` masks are N1HW floats with 1 = regenerate.
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

StepHook = Callable[[int], None]  # called with the number of UNet evaluations just made


def filtered_config(cls, config: dict, **overrides) -> dict:
    """Keep the keys ``cls`` accepts (a DDPM config carries keys RePaint does not know), then override."""
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    out = {k: v for k, v in config.items() if k in accepted}
    out.update({k: v for k, v in overrides.items() if v is not None})
    if out.get("trained_betas") is not None:
        out["trained_betas"] = np.asarray(out["trained_betas"], dtype=np.float32)
    return out



def epsilon(unet: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, *, keep_variance: bool = False) -> torch.Tensor:
    """The UNet's noise prediction in float32 (the UNet may run in bf16/fp16)."""
    dtype = next(unet.parameters()).dtype
    out = unet(x.to(dtype), t.to(x.device)).sample.float()
    if out.shape[1] == 2 * x.shape[1] and not keep_variance:
        out = out[:, : x.shape[1]]  # learned-variance models (ADM, P2) also output a variance: drop it
    return out



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


def unet_factor(unet: torch.nn.Module) -> int:
    """How much the UNet downsamples (image sides must be multiples of it)."""
    return 2 ** (len(unet.config.block_out_channels) - 1)


def unet_grid(unet: torch.nn.Module) -> int:
    """The side the UNet was trained at (its config's ``sample_size``)."""
    grid = unet.config.sample_size
    return grid[0] if isinstance(grid, (list, tuple)) else grid


def weights_dtype(module: torch.nn.Module) -> str:
    return str(next(module.parameters()).dtype).removeprefix("torch.")
