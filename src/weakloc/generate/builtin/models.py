"""The diffusion models shipped with weakloc for the built-in benchmark (package data, safetensors).

Each folder is what ``weakloc generate train-ddpm`` / ``train-latent`` wrote (diffusers pipeline layout,
``card.json`` with the command that made it, ``samples.png``), minus the training checkpoint:
- ``ddpm-photos-a``, ``ddpm-photos-b``: a pixel DDPM per source (RePaint, full-image sampling);
- ``ldm-photos-a``: an AutoencoderKL + latent DDPM on the main source (RePaint-LDM).
docs/generate.md ("The shipped models") gives the commands that reproduce them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ...errors import InputError

SHIPPED = {"ddpm-photos-a": "pixel DDPM of photos-a", "ddpm-photos-b": "pixel DDPM of photos-b",
           "ldm-photos-a": "autoencoder + latent DDPM of photos-a"}


def models_folder() -> Path:
    return Path(str(resources.files("weakloc.generate.builtin") / "models"))


def shipped_model(name: str) -> Path:
    """The folder of a shipped model; an error naming the fix when it is missing."""
    if name not in SHIPPED:
        raise KeyError(f"unknown shipped model {name!r}; known: {', '.join(SHIPPED)}")
    folder = models_folder() / name
    if not (folder / "model_index.json").is_file():
        raise InputError(folder, "the shipped diffusion model is missing",
                         "reinstall weakloc, or retrain it with the command in docs/generate.md (The shipped models)")
    return folder
