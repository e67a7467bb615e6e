"""What a training run writes: the run folder's guard (a folder holding another run is never reused
silently), the diffusers pipeline folder, the card and the sample grid."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ...config import changed_settings, changes_block
from ...errors import ConfigError
from ...files import save_image, write_json

RUN_FILE = "checkpoint/run.json"
CONTINUABLE = ("steps",)  # raising these continues a run (constant learning rate after warmup)


def claim_folder(out: Path, run: dict, *, overwrite: bool) -> None:
    """Start or resume the run ``run`` (settings + data) in ``out``; refuse a folder that holds something else."""
    run_file = out / RUN_FILE
    if overwrite and out.exists():
        shutil.rmtree(out)
    if run_file.exists():
        old = json.loads(run_file.read_text())
        changed = changed_settings(old, run, ignore=tuple(f"settings.{k}" for k in CONTINUABLE),
                                   paths=("data.folder",))
        if changed:
            raise ConfigError(f"{out} holds a training run with other settings " + changes_block(changed)
                              + "\n  fix: rerun with the same settings to resume, choose another --out, "
                                "or pass --overwrite to start again")
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not a weakloc diffusion training folder; choose another --out "
                          "(nothing there is overwritten)")
    write_json(run_file, run)


def save_component(model: torch.nn.Module, folder: Path) -> None:
    """``model.save_pretrained(folder)`` (safetensors), swapped in whole: a kill leaves the old or the new."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    old = folder.with_name(f".{folder.name}.old")
    for path in (tmp, old):
        if path.exists():
            shutil.rmtree(path)
    model.save_pretrained(tmp, safe_serialization=True)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    if old.exists():
        shutil.rmtree(old)


def save_scheduler(scheduler, out: Path, *, autoencoder_key: str | None = None, autoencoder_class: str = "") -> None:
    scheduler.save_pretrained(out / "scheduler")
    index = {"_class_name": "LDMPipeline" if autoencoder_key else "DDPMPipeline",
             "unet": ["diffusers", "UNet2DModel"], "scheduler": ["diffusers", type(scheduler).__name__]}
    if autoencoder_key:
        index[autoencoder_key] = ["diffusers", autoencoder_class]
    write_json(out / "model_index.json", index)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def write_card(out: Path, card: dict) -> None:
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])  # "weakloc generate ...", not the venv path
    write_json(out / "card.json", {"command": command, "written": time.strftime("%Y-%m-%d %H:%M:%S"),
                                   **card})


def image_grid(images: np.ndarray, columns: int = 8, pad: int = 2) -> np.ndarray:
    """NHWC uint8 -> one grid image (white padding)."""
    n, h, w, c = images.shape
    rows = -(-n // columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, k = divmod(i, columns)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = image
    return grid


def save_grid(path: Path, images: np.ndarray, columns: int = 8, upscale: int = 1) -> None:
    grid = image_grid(images, columns)
    if upscale > 1:
        grid = grid.repeat(upscale, axis=0).repeat(upscale, axis=1)  # small crops: nearest, to see pixels
    save_image(path, grid)
