"""Tiny randomly initialised diffusers models and a pipeline-folder writer, for the generation tests.

Nothing is downloaded: the architectures are written out here (seeded random weights).
"""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_unet(sample_size: int = 16, in_channels: int = 3, channels: tuple[int, ...] = (8, 16), seed: int = 0,
              attention: bool = False) -> "torch.nn.Module":
    """A UNet2DModel of a few thousand parameters (seeded random init)."""
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    down = ("DownBlock2D",) * (len(channels) - 1) + ("AttnDownBlock2D" if attention else "DownBlock2D",)
    up = ("AttnUpBlock2D" if attention else "UpBlock2D",) + ("UpBlock2D",) * (len(channels) - 1)
    return UNet2DModel(sample_size=sample_size, in_channels=in_channels, out_channels=in_channels,
                       layers_per_block=1, block_out_channels=channels, down_block_types=down, up_block_types=up,
                       norm_num_groups=4, attention_head_dim=4).eval()


def tiny_vq(latent_channels: int = 3, seed: int = 0) -> "torch.nn.Module":
    """A VQModel with a 2x downsampling encoder (so 16 px images have an 8x8 latent grid)."""
    from diffusers import VQModel

    torch.manual_seed(seed)
    return VQModel(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                   up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                   latent_channels=latent_channels, num_vq_embeddings=32, norm_num_groups=4,
                   vq_embed_dim=latent_channels, scaling_factor=1.0).eval()


def tiny_kl(latent_channels: int = 4, seed: int = 0) -> "torch.nn.Module":
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                         latent_channels=latent_channels, norm_num_groups=4, sample_size=16).eval()


def save_pipeline(folder: str | Path, unet: "torch.nn.Module", *, autoencoder: "torch.nn.Module | None" = None,
                  scheduler: str = "ddpm", **scheduler_kwargs) -> Path:
    """Write a pipeline folder (model_index.json, unet/, scheduler/, vqvae/ or vae/) the way diffusers does."""
    import json

    from diffusers import DDIMScheduler, DDPMScheduler

    folder = Path(folder)
    unet.save_pretrained(folder / "unet")
    sched = (DDIMScheduler if scheduler == "ddim" else DDPMScheduler)(**scheduler_kwargs)
    sched.save_pretrained(folder / "scheduler")
    index = {"_class_name": "LDMPipeline" if autoencoder is not None else "DDPMPipeline",
             "unet": ["diffusers", "UNet2DModel"], "scheduler": ["diffusers", type(sched).__name__]}
    if autoencoder is not None:
        key = "vqvae" if type(autoencoder).__name__ == "VQModel" else "vae"
        autoencoder.save_pretrained(folder / key)
        index[key] = ["diffusers", type(autoencoder).__name__]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))
    return folder
