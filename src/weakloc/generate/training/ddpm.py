"""Training a pixel-space DDPM (Ho et al. 2020): diffusers ``UNet2DModel`` predicting the noise, a linear-beta
``DDPMScheduler`` with 1000 steps, MSE loss, Adam, EMA weights exported."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F

from ...device import autocast, autocast_dtype, pick_device
from ...errors import ConfigError
from ..seeds import derive_seed, torch_generators
from ..generators.sampling import sample
from ..generators.tensors import to_uint8
from .config import DiffusionTrainConfig, as_dict, fill_defaults
from .crops import CropSource
from .export import claim_folder, parameter_count, save_component, save_grid, save_scheduler, write_card
from .loop import Stage, StageResult, run_stage

GRID_IMAGES = 32


def _groups(channels: tuple[int, ...]) -> int:
    for groups in (32, 16, 8, 4, 2, 1):
        if all(c % groups == 0 and c // groups >= 2 for c in channels) or groups == 1:
            return groups
    return 1


def build_unet(config: DiffusionTrainConfig, in_channels: int = 3, sample_size: int | None = None):
    """A UNet2DModel of the configured widths: ResNet blocks, self-attention at the lowest resolution."""
    from diffusers import UNet2DModel

    channels = tuple(config.channels)
    n = len(channels)
    last_down = "AttnDownBlock2D" if config.attention else "DownBlock2D"
    first_up = "AttnUpBlock2D" if config.attention else "UpBlock2D"
    head = 32 if channels[-1] % 32 == 0 else channels[-1]
    return UNet2DModel(sample_size=sample_size or config.size, in_channels=in_channels, out_channels=in_channels,
                       layers_per_block=config.layers_per_block, block_out_channels=channels,
                       down_block_types=("DownBlock2D",) * (n - 1) + (last_down,),
                       up_block_types=(first_up,) + ("UpBlock2D",) * (n - 1),
                       norm_num_groups=_groups(channels), attention_head_dim=head)


def build_scheduler(config: DiffusionTrainConfig, *, clip_sample: bool = True):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=config.timesteps, beta_schedule=config.beta_schedule,
                         beta_start=1e-4, beta_end=0.02, variance_type="fixed_small", clip_sample=clip_sample,
                         prediction_type="epsilon")


def noise_loss(unet: torch.nn.Module, scheduler, x0: torch.Tensor, seed: int, step: int,
               amp: torch.dtype | None) -> torch.Tensor:
    """The DDPM objective on one batch: || eps - eps_theta(sqrt(a) x0 + sqrt(1 - a) eps, t) ||^2, with t and eps
    drawn from (seed, step)."""
    generator = torch.Generator("cpu").manual_seed(derive_seed(seed, "noise", step))
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    t, noise = t.to(x0.device), noise.to(x0.device)
    noisy = scheduler.add_noise(x0, noise, t)
    if amp is not None:  # channels_last pays off with bf16 kernels only (slightly slower in fp32 on CPU)
        noisy = noisy.contiguous(memory_format=torch.channels_last)
    with autocast(x0.device, amp):
        predicted = unet(noisy, t).sample
    return F.mse_loss(predicted.float(), noise)


def ema_copy(unet: torch.nn.Module, ema) -> torch.nn.Module:
    """A copy of ``unet`` holding the EMA weights, contiguous, in eval mode."""
    out = copy.deepcopy(unet).to(memory_format=torch.contiguous_format)
    if ema is not None:
        ema.copy_to(out.parameters())
    return out.eval()


def sample_grid(unet: torch.nn.Module, scheduler_config: dict, steps: int, seed: int, *, decoder=None,
                count: int = GRID_IMAGES, device: torch.device | str = "cpu", amp: torch.dtype | None = None):
    """``count`` images by ancestral DDPM sampling (seeded), decoded by ``decoder`` for latent models."""
    size = unet.config.sample_size
    shape = (count, unet.config.in_channels, size, size)
    generators = torch_generators([derive_seed(seed, "grid", i) for i in range(count)])
    with autocast(torch.device(device), amp):
        x = sample(unet, scheduler_config, shape, generators, sampler="ddpm", steps=steps,
                   clip_sample=decoder is None, device=device)
        if decoder is not None:
            x = decoder(x)
    return to_uint8(x)


def _describe(device: torch.device, amp) -> dict:
    return {"device": str(device), "precision": "bf16 autocast" if amp is not None else "fp32"}


def train_ddpm(images: str | Path, out: str | Path, config: DiffusionTrainConfig | None = None, *,
               overwrite: bool = False, progress: bool = True, on_step=None) -> Path:
    """Train a pixel DDPM on random crops of the images in ``images``; write the pipeline folder ``out``."""
    out = Path(out)
    device = pick_device((config or DiffusionTrainConfig()).device)
    config = fill_defaults(config or DiffusionTrainConfig(), device.type)
    if len(config.channels) > 1 and config.size % 2 ** (len(config.channels) - 1):
        raise ConfigError(f"--size {config.size} must be a multiple of {2 ** (len(config.channels) - 1)} "
                          f"for a UNet with {len(config.channels)} levels (--channels)")
    amp = autocast_dtype(config.precision, device)
    crops = CropSource(images, config.size, config.resize)
    claim_folder(out, {"kind": "ddpm", "settings": as_dict(config), "data": crops.describe()}, overwrite=overwrite)
    torch.manual_seed(config.seed)
    unet = build_unet(config).to(device)
    if amp is not None:
        unet = unet.to(memory_format=torch.channels_last)
    scheduler = build_scheduler(config)

    def loss(step: int) -> torch.Tensor:
        return noise_loss(unet, scheduler, crops.batch(config.seed, step, config.batch_size).to(device),
                          config.seed, step, amp)

    def export(result: StageResult) -> None:
        model = ema_copy(unet, result.ema)
        save_component(model, out / "unet")
        save_scheduler(scheduler, out)
        grid = sample_grid(model, dict(scheduler.config), config.sample_steps, config.seed, device=device, amp=amp)
        save_grid(out / "samples.png", grid, upscale=max(1, 128 // config.size))
        write_card(out, {"kind": "ddpm", "data": crops.describe(), "settings": as_dict(config),
                         "step": result.step, "complete": result.step >= config.steps,
                         "final_loss": result.final_loss(), "train_seconds": round(result.seconds, 1),
                         "parameters": {"unet": parameter_count(unet)}, "weights": "EMA",
                         **_describe(device, amp)})

    return train_unet(unet, loss, export, config, out, on_step=on_step, progress=progress)


def train_unet(unet: torch.nn.Module, loss, export, config: DiffusionTrainConfig, out: Path, *, on_step=None,
               progress: bool = True) -> Path:
    """The DDPM stage of both model kinds: train ``unet`` on ``loss``, exporting at every checkpoint, and once
    more at the end unless ``out`` already holds the finished run's export."""
    stage = Stage("unet", unet, loss, config.steps, config.batch_size, config.lr, config.warmup, config.ema_decay,
                  config.checkpoint_every, on_checkpoint=export, on_step=on_step)
    result = run_stage(stage, out / "checkpoint", progress=progress)
    if not card_complete(out, config.steps):
        export(result)
    return out


def card_complete(out: Path, steps: int) -> bool:
    """Whether ``out`` already holds the exported model of a finished ``steps``-step run."""
    import json

    path = out / "card.json"
    if not path.exists():
        return False
    card = json.loads(path.read_text())
    return bool(card.get("complete")) and card.get("step") == steps
