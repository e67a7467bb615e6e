"""Loading diffusion models: a local folder or a hub id, through diffusers' own ``from_pretrained``.

Accepted layouts (the same for a folder and a hub repository):
- a pipeline folder with ``model_index.json`` and ``unet/``, ``scheduler/`` and, for latent models,
  ``vqvae/`` or ``vae/`` subfolders (``CompVis/ldm-celebahq-256``, anything saved by ``pipeline.save_pretrained``);
- a flat model folder: ``config.json`` + weights (+ ``scheduler_config.json``), as ``google/ddpm-celebahq-256``
  or ``UNet2DModel.save_pretrained``.
Without a scheduler config the DDPM defaults (1000 steps, linear betas 1e-4..0.02) are used, with a warning.

A hub id is looked up in the local Hugging Face cache only (``HF_HOME`` / ``HF_HUB_CACHE``), offline: nothing is
downloaded while generating (GPU nodes often have no network, and torchrun would start one download per rank).
Download a model beforehand with ``hf download ID``, or pass a folder.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch

from ...device import pick_device
from ...errors import ConfigError, InputError

UNET_SUBFOLDERS = ("unet", None)
SCHEDULER_SUBFOLDERS = ("scheduler", None)
AUTOENCODER_SUBFOLDERS = ("vqvae", "vae", None)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CACHE_MARKERS = ("model_index.json", "config.json", "unet/config.json")


def resolve_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, not {name!r}")
    return DTYPES[name]


def _is_local(source: str) -> bool:
    if Path(source).exists():
        return True
    if HUB_ID.match(source) and not source.startswith((".", "/", "~")):
        return False
    raise InputError(source, "model folder does not exist",
                     "pass a folder written by save_pretrained, or a hub id such as google/ddpm-ema-celebahq-256")


def _download_hint(repo_id: str) -> str:
    return (f"download it beforehand on a machine with network: `hf download {repo_id}` (older huggingface_hub: "
            f"`huggingface-cli download {repo_id}`), then point HF_HOME at that cache (copy it here if this machine "
            "has no network); or pass a local folder saved with save_pretrained")


def resolve_model(source: str | Path) -> str:
    """A local folder for ``source``: the folder itself, or a hub id's snapshot in the local Hugging Face cache.

    Offline only: a hub id that is not in the cache fails at once, saying how to download it (rather than
    after minutes of connection retries)."""
    source = str(source)
    if _is_local(source):
        return source
    from huggingface_hub import constants, try_to_load_from_cache

    for marker in CACHE_MARKERS:  # a file every layout has one of; its snapshot folder is the model folder
        found = try_to_load_from_cache(source, marker)
        if isinstance(found, str):
            return str(Path(found).parents[marker.count("/")])
    raise InputError(source, f"no such folder here, and this hub model is not in the local Hugging Face cache "
                             f"({constants.HF_HUB_CACHE}); models are not downloaded while generating",
                     _download_hint(source))


def _candidates(folder: str, subfolders: tuple[str | None, ...], filename: str) -> list[str | None]:
    """Subfolders of a model folder to try, in order: those that hold ``filename``."""
    root = Path(folder)
    return [sub for sub in subfolders if (root / (sub or "") / filename).is_file()]


def _fail(source: str, what: str, errors: list[str]) -> InputError:
    detail = "; ".join(errors) if errors else "no config.json found in the folder or its unet/vqvae/vae subfolders"
    return InputError(source, f"cannot load the {what} ({detail})",
                      "pass a folder saved with save_pretrained (config.json + diffusion_pytorch_model.safetensors); "
                      "a hub model must be in the local cache whole (`hf download ID` fetches every file)")


def _load_kwargs(dtype: torch.dtype) -> dict:
    """Load in the target dtype (diffusers keeps its fp32-only modules); without accelerate, say so up front
    rather than let diffusers warn about it on every load."""
    import importlib.util

    return {"torch_dtype": dtype, "low_cpu_mem_usage": importlib.util.find_spec("accelerate") is not None}


def _from_pretrained(cls, source: str, subfolders: tuple[str | None, ...], what: str,
                     dtype: torch.dtype = torch.float32) -> tuple[Any, str | None]:
    errors = []
    for sub in _candidates(source, subfolders, "config.json"):
        try:
            kwargs = {"subfolder": sub} if sub else {}
            return cls.from_pretrained(source, **kwargs, **_load_kwargs(dtype)), sub
        except Exception as exc:  # noqa: BLE001 - diffusers and huggingface_hub raise many kinds; all are reported
            errors.append(f"{sub or '.'}: {str(exc).splitlines()[0]}")
    raise _fail(source, what, errors)


def load_scheduler_config(source: str) -> dict:
    """The model's noise schedule (a DDPM/DDIM scheduler config) as a plain dict."""
    from diffusers import DDPMScheduler

    folder = resolve_model(source)
    for sub in _candidates(folder, SCHEDULER_SUBFOLDERS, "scheduler_config.json"):
        try:
            return dict(DDPMScheduler.load_config(folder, **({"subfolder": sub} if sub else {})))
        except (OSError, ValueError):
            continue
    warnings.warn(f"{source}: no scheduler_config.json; using the DDPM defaults (1000 steps, linear betas)",
                  stacklevel=2)
    return dict(DDPMScheduler().config)


def load_unet(source: str | Path, *, device: torch.device | str = "cpu",
              dtype: torch.dtype = torch.float32) -> tuple["torch.nn.Module", dict]:
    """(UNet2DModel in eval mode, scheduler config). Only epsilon-predicting models are supported."""
    from diffusers import UNet2DModel

    source = str(source)
    folder = resolve_model(source)
    unet, _ = _from_pretrained(UNet2DModel, folder, UNET_SUBFOLDERS, "UNet2DModel", dtype)
    config = load_scheduler_config(folder)
    prediction = config.get("prediction_type", "epsilon")
    if prediction != "epsilon":
        raise InputError(source, f"the model predicts {prediction!r}; RePaint and the samplers here need 'epsilon'",
                         "use a noise-predicting DDPM (the google/ddpm-* and CompVis/ldm-* models are)")
    _check_variance(source, unet.config, config)
    return unet.to(device=device).eval(), config


def _check_variance(source: str, unet_config, scheduler_config: dict) -> None:
    """A learned variance needs its channels (2 x the input's: noise, then variance); a UNet that has them under a
    fixed-variance schedule runs with them dropped, which is said."""
    doubled = unet_config.out_channels == 2 * unet_config.in_channels
    kind = scheduler_config.get("variance_type")
    if str(kind or "").startswith("learned") and not doubled:
        raise InputError(source, f"its scheduler has variance_type {kind!r}, but its UNet outputs "
                                 f"{unet_config.out_channels} channels, not the {2 * unet_config.in_channels} "
                                 "(noise + variance) a learned variance needs",
                         "fix the scheduler config's variance_type (fixed_small for a noise-only UNet)")
    if doubled and not str(kind or "").startswith("learned"):
        warnings.warn(f"{source}: the UNet also predicts a variance, but its scheduler's variance_type is "
                      f"{kind or 'fixed_small'!r}: the variance channels are not used (set variance_type to "
                      "'learned_range' to sample as guided-diffusion does)", stacklevel=3)


def load_autoencoder(source: str | Path, *, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> "torch.nn.Module":
    """A VQModel or AutoencoderKL (the class is read from its config's ``_class_name``)."""
    from diffusers import AutoencoderKL, VQModel

    classes = {"VQModel": VQModel, "AutoencoderKL": AutoencoderKL}
    source = resolve_model(source)
    errors = []
    for sub in _candidates(source, AUTOENCODER_SUBFOLDERS, "config.json"):
        kwargs = {"subfolder": sub} if sub else {}
        try:
            name = VQModel.load_config(source, **kwargs).get("_class_name")
        except (OSError, ValueError) as exc:
            errors.append(f"{sub or '.'}: {str(exc).splitlines()[0]}")
            continue
        if name not in classes:
            errors.append(f"{sub or '.'}: holds a {name}, not a VQModel or AutoencoderKL")
            continue
        try:
            model = classes[name].from_pretrained(source, **kwargs, **_load_kwargs(dtype))
        except (OSError, ValueError, RuntimeError) as exc:
            errors.append(f"{sub or '.'}: {str(exc).splitlines()[0]}")
            continue
        return model.to(device=device).eval()
    raise _fail(source, "autoencoder (VQModel or AutoencoderKL)", errors)


def has_autoencoder(source: str | Path) -> bool:
    """Whether a pipeline folder / cached hub repository holds a latent model (a vqvae/ or vae/ component)."""
    import json

    folder = Path(resolve_model(source))
    index = folder / "model_index.json"
    keys = set(json.loads(index.read_text())) if index.is_file() else set()
    folders = any((folder / k / "config.json").is_file() for k in ("vqvae", "vae"))
    return bool(keys & {"vqvae", "vae"}) or folders


def check_steps(steps: int, scheduler_config: dict, model: str) -> None:
    """Refuse more inference steps than the model has noise levels (its ``num_train_timesteps``)."""
    levels = int(scheduler_config.get("num_train_timesteps", 1000))
    if steps > levels:
        raise ConfigError(f"--steps {steps} is more than the {levels} timesteps {model} was trained with "
                          f"(its scheduler's num_train_timesteps): use --steps {levels} or fewer")


def load_diffusion(model: str | None, vae: str | None, device: str, dtype: str, *,
                   latent: bool | None) -> tuple["torch.nn.Module", dict, "torch.nn.Module | None", torch.device]:
    """(UNet, scheduler config, autoencoder or None, device) for the generators. ``latent=None``: decided by
    the model (latent when it holds an autoencoder, or when ``vae`` is given)."""
    if not model:
        raise ConfigError("this generator needs --model (a local folder or a hub id)")
    inside = has_autoencoder(model)
    if latent is None:
        latent = inside or vae is not None
    elif latent is False and inside:
        raise ConfigError(f"{model} is a latent diffusion model (it has an autoencoder): "
                          "use --generator repaint-ldm")
    torch_device, torch_dtype = pick_device(device), resolve_dtype(dtype)
    unet, scheduler_config = load_unet(model, device=torch_device, dtype=torch_dtype)
    autoencoder = load_autoencoder(vae or model, device=torch_device, dtype=torch_dtype) if latent else None
    return unet, scheduler_config, autoencoder, torch_device
