"""What RePaint and the samplers share: the UNet call, scheduler configs, pixels <-> tensors, latents, precision.

Conventions: images are float tensors in [-1, 1], NCHW; ``fake`` masks are N1HW floats with 1 = regenerate.

Precision (``precision`` of the generators): ``fp32`` runs every forward pass as before, bit for bit; ``bf16``
runs the UNet and autoencoder forward passes under bf16 autocast on channels_last inputs; ``auto`` is bf16 where
the hardware runs it natively (GPUs with bf16, CPUs whose oneDNN has bf16 kernels) and fp32 elsewhere (bf16 is
emulated, several times slower, on CPUs without bf16 units). Scheduler arithmetic and noise stay in fp32 in
every case: only the network runs in bf16, and its output comes back as contiguous fp32.
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ...device import autocast, autocast_dtype
from ...errors import ConfigError

StepHook = Callable[[int], None]  # called with the number of UNet evaluations just made
PRECISIONS = ("auto", "bf16", "fp32")


def forward_dtype(precision: str, device: torch.device | str,
                  module: torch.nn.Module | None = None) -> torch.dtype | None:
    """The autocast dtype of the forward passes for ``precision`` on ``device`` (None: as the weights are). A
    ``module`` whose weights are already half precision (``--dtype float16/bfloat16``) runs as it is."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if module is not None and next(module.parameters()).dtype != torch.float32:
        return None
    return autocast_dtype(precision, torch.device(device))


def precision_settings(amp: torch.dtype | None) -> dict:
    """What a generator's settings record about precision: nothing in fp32 (the output is the one fp32 runs have
    always made, so folders made before precision existed still match), ``precision: bf16`` otherwise."""
    return {} if amp is None else {"precision": "bf16"}


def channels_last(*modules: torch.nn.Module | None) -> None:
    """Give the 4-D weights of ``modules`` the channels_last layout (for the bf16 kernels; slower in fp32 on
    CPUs, so only done with autocast). Values are unchanged."""
    for module in modules:
        if module is not None:
            module.to(memory_format=torch.channels_last)


def _forward_input(x: torch.Tensor, dtype: torch.dtype, amp: torch.dtype | None) -> torch.Tensor:
    x = x.to(dtype)
    return x if amp is None else x.contiguous(memory_format=torch.channels_last)


def _fp32(out: torch.Tensor, amp: torch.dtype | None) -> torch.Tensor:
    """A network's output as fp32 (contiguous again after a channels_last forward pass)."""
    return out.float() if amp is None else out.to(torch.float32, memory_format=torch.contiguous_format)


def filtered_config(cls, config: dict, **overrides) -> dict:
    """Keep the keys ``cls`` accepts (a DDPM config carries keys RePaint does not know), then override."""
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    out = {k: v for k, v in config.items() if k in accepted}
    out.update({k: v for k, v in overrides.items() if v is not None})
    if out.get("trained_betas") is not None:
        out["trained_betas"] = np.asarray(out["trained_betas"], dtype=np.float32)
    return out



def learned_variance(config: dict) -> bool:
    """Whether the schedule takes the UNet's second half of channels as its variance (guided-diffusion's
    LEARNED_RANGE, diffusers' ``variance_type="learned_range"``: the P2 and RePaint models)."""
    return str(config.get("variance_type") or "").startswith("learned")


def timestep_grid(config: dict, steps: int) -> list[int]:
    """The training timestep of each of ``steps`` inference steps, ascending: guided-diffusion's respacing
    (``--timestep_respacing 250``: round(i * (T - 1) / (steps - 1)), diffusers' "linspace") when the config says
    ``timestep_spacing="linspace"``, else the uniform grid i * (T // steps) of diffusers' RePaint."""
    levels = int(config.get("num_train_timesteps", 1000))
    if config.get("timestep_spacing") == "linspace":
        return np.linspace(0, levels - 1, steps).round().astype(int).tolist()
    return [i * (levels // steps) for i in range(steps)]


def posterior_scheduler(config: dict, steps: int, *, clip_sample: bool | None = None):
    """A DDPMScheduler stepping through :func:`timestep_grid` (each step's previous level is the grid's, not a
    fixed stride): the DDPM posterior with clipped x0 and the config's variance, as guided-diffusion samples."""
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(**filtered_config(DDPMScheduler, config, clip_sample=clip_sample))
    scheduler.set_timesteps(timesteps=timestep_grid(config, steps)[::-1])
    return scheduler


def epsilon(unet: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, *, keep_variance: bool = False,
            amp: torch.dtype | None = None) -> torch.Tensor:
    """The UNet's noise prediction in float32 (the UNet may run in bf16/fp16, or under ``amp`` autocast)."""
    dtype = next(unet.parameters()).dtype
    with autocast(x.device, amp):
        out = unet(_forward_input(x, dtype, amp), t.to(x.device)).sample
    out = _fp32(out, amp)
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
def encode(autoencoder: torch.nn.Module, x: torch.Tensor, *, amp: torch.dtype | None = None) -> torch.Tensor:
    """Deterministic latent code: VQModel's pre-quantisation latents, AutoencoderKL's posterior mode."""
    scale, shift = latent_scaling(autoencoder)
    dtype = next(autoencoder.parameters()).dtype
    with autocast(x.device, amp):
        out = autoencoder.encode(_forward_input(x, dtype, amp))
        z = out.latents if hasattr(out, "latents") else out.latent_dist.mode()
    return (_fp32(z, amp) - shift) * scale


@torch.inference_mode()
def decode(autoencoder: torch.nn.Module, z: torch.Tensor, *, amp: torch.dtype | None = None) -> torch.Tensor:
    scale, shift = latent_scaling(autoencoder)
    dtype = next(autoencoder.parameters()).dtype
    with autocast(z.device, amp):
        out = autoencoder.decode(_forward_input(z / scale + shift, dtype, amp)).sample
    return _fp32(out, amp)


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
