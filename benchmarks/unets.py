"""Randomly initialised diffusers UNets of real shapes, for timing (benchmarks/bench_generate.py).

Nothing is downloaded: ``celebahq_unet`` has the configuration of ``google/ddpm-celebahq-256`` (113.7M
parameters), ``p2_unet`` the P2 models' (guided-diffusion, 93.6M parameters, 6 output channels, as
``weakloc generate import-adm --config p2-celebahq`` writes it); their weights are random.
"""

from __future__ import annotations

import torch

CELEBAHQ_256_UNET = dict(
    sample_size=256, in_channels=3, out_channels=3, layers_per_block=2,
    block_out_channels=(128, 128, 256, 256, 512, 512),
    down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4,
    downsample_padding=0, flip_sin_to_cos=False, freq_shift=1, norm_eps=1e-6, norm_num_groups=32,
    attention_head_dim=None, mid_block_scale_factor=1, act_fn="silu", center_input_sample=False,
)


def small_unet(sample_size: int = 64, seed: int = 0) -> "torch.nn.Module":
    """A small but real-shaped pixel UNet (attention at the third level), for CPU benchmarks."""
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    return UNet2DModel(sample_size=sample_size, in_channels=3, out_channels=3, layers_per_block=1,
                       block_out_channels=(32, 64, 128, 128),
                       down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
                       norm_num_groups=32).eval()


def celebahq_unet(seed: int = 0) -> "torch.nn.Module":
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    return UNet2DModel(**CELEBAHQ_256_UNET).eval()


def p2_unet(seed: int = 0) -> "torch.nn.Module":
    from diffusers import UNet2DModel

    from weakloc.generate.generators.adm import P2, unet_kwargs

    torch.manual_seed(seed)
    return UNet2DModel(**unet_kwargs(P2)).eval()
