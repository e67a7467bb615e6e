"""Training the diffusion models that the generators run on: a pixel-space DDPM (``train_ddpm``) and an
autoencoder + latent DDPM (``train_latent``), from a folder of images.

What comes out is a diffusers ``save_pretrained`` pipeline folder (``unet/``, ``scheduler/``, and ``vae/`` or
``vqvae/`` for latent models, ``model_index.json``), so ``weakloc generate inpaint/sample --model DIR`` loads it
like any other, plus ``card.json`` and ``samples.png``. Runs are seeded, checkpointed and resumable: each
step's crops, timesteps and noise depend only on (seed, step), so a resumed run ends in the same state as an
uninterrupted one. The command line is ``weakloc generate train-ddpm`` / ``train-latent`` (docs/generate.md).
"""

from .config import DiffusionTrainConfig, LatentTrainConfig
from .ddpm import train_ddpm
from .latent import train_latent

__all__ = ["DiffusionTrainConfig", "LatentTrainConfig", "train_ddpm", "train_latent"]
