"""Settings of diffusion-model training, with defaults for a small CPU run and for a GPU run.

Unset values (None) are filled by :func:`fill_defaults` from the preset of the device the run uses, so
``weakloc generate train-ddpm IMAGES --out DIR`` does something sensible on a laptop and on a GPU server."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ...errors import ConfigError

# A 2-core CPU trains a ~1M-parameter UNet at 32-64 px at a few steps a second; a GPU trains the classic
# DDPM-CIFAR-sized UNet (35M) at 64 px. Both keep the DDPM paper's optimiser (Adam, 2e-4, constant after warmup).
PRESETS = {
    "cpu": {"size": 64, "channels": (32, 64, 128), "layers_per_block": 1, "steps": 20_000, "batch_size": 32,
            "lr": 2e-4},
    "cuda": {"size": 64, "channels": (128, 256, 256, 256), "layers_per_block": 2, "steps": 100_000,
             "batch_size": 128, "lr": 2e-4},
}
LATENT_PRESETS = {
    "cpu": {"ae_channels": (32, 64, 64), "ae_steps": 3_000, "latent_channels": 4},
    "cuda": {"ae_channels": (64, 128, 256), "ae_steps": 30_000, "latent_channels": 4},
}


@dataclass
class DiffusionTrainConfig:
    """A DDPM (UNet2DModel + linear-beta DDPMScheduler, epsilon prediction) trained on random crops."""

    size: int | None = None  # crop side in pixels (the model's sample size; latent models: before encoding)
    resize: int | None = None  # resize each image so its shorter side is this first (bicubic); None = as is
    channels: tuple[int, ...] | None = None  # UNet block widths; the UNet downsamples 2**(len - 1) times
    layers_per_block: int | None = None
    attention: bool = True  # self-attention in the lowest-resolution block
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    warmup: int = 200  # linear learning-rate warmup, then constant (so raising ``steps`` continues exactly)
    ema_decay: float = 0.999  # EMA of the weights (with diffusers' warmup of the decay); the EMA is exported
    timesteps: int = 1000
    beta_schedule: str = "linear"
    checkpoint_every: int = 500
    sample_steps: int = 100  # ancestral DDPM steps for the sample grid
    seed: int = 0
    precision: str = "auto"  # auto (bf16 autocast where native) | bf16 | fp32
    device: str = "auto"

    def validate(self) -> None:
        positive = ("size", "steps", "batch_size", "layers_per_block", "timesteps", "checkpoint_every",
                    "sample_steps")
        for name in positive:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
        if self.resize is not None and self.resize < 1:
            raise ConfigError(f"--resize must be at least 1, not {self.resize}")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"--lr must be positive, not {self.lr}")
        if self.warmup < 0:
            raise ConfigError(f"--warmup must be 0 or more, not {self.warmup}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"--ema-decay must be in [0, 1), not {self.ema_decay}")
        if self.channels is not None and (not self.channels or min(self.channels) < 1):
            raise ConfigError(f"--channels must be positive widths such as 32,64,128, not {self.channels}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"--precision must be auto, bf16 or fp32, not {self.precision!r}")
        if self.beta_schedule not in ("linear", "scaled_linear", "squaredcos_cap_v2"):
            raise ConfigError(f"--beta-schedule must be linear, scaled_linear or squaredcos_cap_v2, "
                              f"not {self.beta_schedule!r}")
        if self.sample_steps > self.timesteps:
            raise ConfigError(f"--sample-steps ({self.sample_steps}) cannot exceed the {self.timesteps} timesteps")


@dataclass
class LatentTrainConfig(DiffusionTrainConfig):
    """An autoencoder (stage 1) and a DDPM on its latents (stage 2); ``channels``/``size`` are the latent
    UNet's widths and the pixel crop size (the latent grid is ``size / 2**(len(ae_channels) - 1)``)."""

    autoencoder: str = "kl"  # kl (AutoencoderKL) | vq (VQModel)
    ae_channels: tuple[int, ...] | None = None
    ae_steps: int | None = None
    ae_lr: float = 1e-3
    # self-attention in the autoencoder's middle block: off by default, so that the decoder is local and a
    # latent edit changes pixels only near the edited cells (RePaint-LDM's decoded fakes stay local)
    ae_attention: bool = False
    latent_channels: int | None = None
    kl_weight: float = 1e-6  # weight of the KL term (kl); the codebook/commitment loss is used as is (vq)
    num_vq_embeddings: int = 256

    def validate(self) -> None:
        super().validate()
        if self.autoencoder not in ("kl", "vq"):
            raise ConfigError(f"--autoencoder must be kl or vq, not {self.autoencoder!r}")
        for name in ("ae_steps", "latent_channels"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, not {value}")
        if self.ae_channels is not None and len(self.ae_channels) < 2:
            raise ConfigError("--ae-channels needs at least two widths (the first downsampling is the second)")


def fill_defaults(config: DiffusionTrainConfig, device_type: str) -> DiffusionTrainConfig:
    """Unset settings from the preset of ``device_type`` (cuda, else cpu)."""
    preset = dict(PRESETS["cuda" if device_type == "cuda" else "cpu"])
    if isinstance(config, LatentTrainConfig):
        preset.update(LATENT_PRESETS["cuda" if device_type == "cuda" else "cpu"])
        preset["channels"] = preset["channels"][:3]
    filled = {k: v for k, v in preset.items() if getattr(config, k) is None}
    out = replace(config, **filled)
    out.validate()
    return out


def as_dict(config: DiffusionTrainConfig) -> dict:
    """The settings as JSON values (tuples become lists), minus the device, which does not change the model."""
    out = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
    out.pop("device")
    return out


def parse_widths(text: str | None, option: str) -> tuple[int, ...] | None:
    """'32,64,128' -> (32, 64, 128), with an error naming the option."""
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated integers such as 32,64,128, not {text!r}") from None
