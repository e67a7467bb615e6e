"""Training a latent diffusion model (Rombach et al. 2022) in two stages: an autoencoder (diffusers
``AutoencoderKL`` with an L1 + KL loss, or ``VQModel`` with L1 + its codebook loss), then a DDPM on its
latents, scaled to unit variance the way diffusers' latent pipelines expect (``scaling_factor``)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ...device import autocast, autocast_dtype, pick_device
from ...errors import ConfigError
from ..generators.tensors import decode, encode
from ..seeds import derive_seed
from .config import LatentTrainConfig, as_dict, fill_defaults
from .crops import CropSource
from .ddpm import _groups, build_scheduler, build_unet, ema_copy, noise_loss, sample_grid, train_unet
from .export import claim_folder, parameter_count, save_component, save_grid, save_scheduler, write_card
from .loop import Stage, StageResult, run_stage

SCALE_BATCHES = 8  # batches of crops whose latent standard deviation sets the scaling factor


def build_autoencoder(config: LatentTrainConfig):
    from diffusers import AutoencoderKL, VQModel

    channels = tuple(config.ae_channels)
    common = dict(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * len(channels),
                  up_block_types=("UpDecoderBlock2D",) * len(channels), block_out_channels=channels,
                  layers_per_block=1, latent_channels=config.latent_channels, norm_num_groups=_groups(channels),
                  mid_block_add_attention=config.ae_attention)
    if config.autoencoder == "vq":
        return VQModel(**common, num_vq_embeddings=config.num_vq_embeddings, vq_embed_dim=config.latent_channels,
                       scaling_factor=1.0, sample_size=config.size)
    return AutoencoderKL(**common, sample_size=config.size, scaling_factor=1.0)


def autoencoder_loss(autoencoder, x: torch.Tensor, kl_weight: float, generator: torch.Generator,
                     amp: torch.dtype | None) -> torch.Tensor:
    with autocast(x.device, amp):
        if hasattr(autoencoder, "quantize"):  # VQModel: its forward returns the codebook/commitment loss
            out = autoencoder(x)
            reconstruction, extra = out.sample, out.commit_loss.float().mean()
        else:
            posterior = autoencoder.encode(x).latent_dist
            reconstruction = autoencoder.decode(posterior.sample(generator=generator)).sample
            extra = kl_weight * posterior.kl().float().mean() / x[0].numel()
    return F.l1_loss(reconstruction.float(), x) + extra


@torch.inference_mode()
def latent_scale(autoencoder, crops: CropSource, seed: int, batch_size: int, device) -> float:
    """1 / standard deviation of the (unscaled) latents of a few seeded batches."""
    autoencoder.register_to_config(scaling_factor=1.0)
    latents = [encode(autoencoder, crops.batch(derive_seed(seed, "scale"), i, batch_size).to(device))
               for i in range(SCALE_BATCHES)]
    return float(1.0 / torch.cat(latents).std())


@torch.inference_mode()
def reconstruction_error(autoencoder, crops: CropSource, seed: int, batch_size: int, device) -> float:
    """Mean absolute error of encode -> decode on a seeded batch, in 8-bit pixel levels."""
    x = crops.batch(derive_seed(seed, "reconstruction"), 0, batch_size).to(device)
    return float((decode(autoencoder, encode(autoencoder, x)).clamp(-1, 1) - x).abs().mean() * 127.5)


def train_latent(images: str | Path, out: str | Path, config: LatentTrainConfig | None = None, *,
                 overwrite: bool = False, progress: bool = True, on_step=None) -> Path:
    """Train an autoencoder, then a latent DDPM on random crops of ``images``; write the pipeline folder ``out``."""
    out = Path(out)
    device = pick_device((config or LatentTrainConfig()).device)
    config = fill_defaults(config or LatentTrainConfig(), device.type)
    factor = 2 ** (len(config.ae_channels) - 1)
    unet_factor = 2 ** (len(config.channels) - 1)
    if config.size % (factor * unet_factor):
        raise ConfigError(f"--size {config.size} must be a multiple of {factor * unet_factor}: the autoencoder "
                          f"downsamples {factor}x (--ae-channels) and the latent UNet {unet_factor}x (--channels)")
    amp = autocast_dtype(config.precision, device)
    crops = CropSource(images, config.size, config.resize)
    claim_folder(out, {"kind": "latent", "settings": as_dict(config), "data": crops.describe()}, overwrite=overwrite)
    key = "vqvae" if config.autoencoder == "vq" else "vae"
    torch.manual_seed(config.seed)
    autoencoder = build_autoencoder(config).to(device)
    unet = build_unet(config, in_channels=config.latent_channels, sample_size=config.size // factor)
    unet = unet.to(device)
    if amp is not None:  # channels_last pays off with bf16 kernels only
        unet = unet.to(memory_format=torch.channels_last)
    scheduler = build_scheduler(config, clip_sample=False)  # latents are not bounded to [-1, 1]
    ae_seed = derive_seed(config.seed, "autoencoder")
    card = {"kind": "latent", "data": crops.describe(), "settings": as_dict(config),
            "parameters": {key: parameter_count(autoencoder), "unet": parameter_count(unet)},
            "latent_factor": factor, "weights": "EMA (UNet); last step (autoencoder)",
            "device": str(device), "precision": "bf16 autocast" if amp is not None else "fp32"}

    def ae_loss(step: int) -> torch.Tensor:
        x = crops.batch(ae_seed, step, config.batch_size).to(device)
        generator = torch.Generator("cpu").manual_seed(derive_seed(ae_seed, "posterior", step))
        return autoencoder_loss(autoencoder, x, config.kl_weight, generator, amp)

    ae_stage = Stage(key, autoencoder, ae_loss, config.ae_steps, config.batch_size, config.ae_lr, config.warmup,
                     None, config.checkpoint_every, on_step=on_step)
    ae_result = run_stage(ae_stage, out / "checkpoint", progress=progress)
    autoencoder.eval().requires_grad_(False)
    autoencoder.register_to_config(scaling_factor=latent_scale(autoencoder, crops, config.seed, config.batch_size,
                                                               device))
    card.update(autoencoder_final_loss=ae_result.final_loss(), autoencoder_seconds=round(ae_result.seconds, 1),
                scaling_factor=autoencoder.config.scaling_factor,
                reconstruction_error=reconstruction_error(autoencoder, crops, config.seed, config.batch_size, device))
    save_component(autoencoder, out / key)

    def loss(step: int) -> torch.Tensor:
        with autocast(device, amp):
            z = encode(autoencoder, crops.batch(config.seed, step, config.batch_size).to(device)).clone()
        return noise_loss(unet, scheduler, z, config.seed, step, amp)

    def export(result: StageResult) -> None:
        model = ema_copy(unet, result.ema)
        save_component(model, out / "unet")
        save_scheduler(scheduler, out, autoencoder_key=key, autoencoder_class=type(autoencoder).__name__)
        grid = sample_grid(model, dict(scheduler.config), config.sample_steps, config.seed, device=device, amp=amp,
                           decoder=lambda z: decode(autoencoder, z))
        save_grid(out / "samples.png", grid, upscale=max(1, 128 // config.size))
        write_card(out, {**card, "step": result.step, "complete": result.step >= config.steps,
                         "final_loss": result.final_loss(), "train_seconds": round(result.seconds, 1)})

    return train_unet(unet, loss, export, config, out, on_step=on_step, progress=progress)
