"""From a data configuration to samples: the layouts, plus the built-in dataset made on demand."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .config import DataConfig
from .data.layouts import dolos_samples, folder_samples, manifest_samples
from .data.samples import Sample
from .errors import ConfigError

BUILTIN_DATASET = "builtin"


def resolve_builtin(data: DataConfig, progress: bool = True) -> DataConfig:
    """``layout = "builtin"``: build the dataset under ``root`` if needed, then read it as a DOLOS layout."""
    if data.layout != "builtin":
        return data
    from .generate.builtin import build_builtin

    root = data.root or "data"
    build_builtin(root, n=data.builtin_images, size=data.builtin_size, seed=data.builtin_seed, progress=progress)
    return dataclasses.replace(data, layout="dolos", root=root, dataset=BUILTIN_DATASET, real="real",
                               full=["telea-full"], local=["telea"])


def load_samples(data: DataConfig, progress: bool = True) -> tuple[DataConfig, list[Sample]]:
    """(the resolved data config, its samples)."""
    data = resolve_builtin(data, progress)
    if data.layout == "dolos":
        if not data.root:
            raise ConfigError("data.root is required for the dolos layout (the folder holding celebahq/, ffhq/)")
        return data, dolos_samples(data.root, data.dataset, real=data.real, full=data.full, local=data.local)
    if data.layout == "folder":
        if len(data.full) > 1 or len(data.local) > 1:
            raise ConfigError("the folder layout takes one data.local folder and at most one data.full folder")
        return data, folder_samples(real=data.real, local=data.local[0] if data.local else None, masks=data.masks,
                                    full=data.full[0] if data.full else None, split_ratios=data.split_ratios)
    if data.layout == "manifest":
        if not data.manifest:
            raise ConfigError("data.manifest is required for the manifest layout")
        samples = manifest_samples(data.manifest)
        keep_full, keep_local = set(data.full), set(data.local)
        # generator filters apply only when the manifest names generators the filter mentions
        if keep_full and any(s.generator in keep_full for s in samples):
            samples = [s for s in samples if s.kind != "full" or s.generator in keep_full]
        if keep_local and any(s.generator in keep_local for s in samples):
            samples = [s for s in samples if s.kind != "local" or s.generator in keep_local]
        return data, samples
    raise ConfigError(f"unknown data.layout {data.layout!r}")


def data_where(data: DataConfig) -> str:
    """A path to name in error messages about this data."""
    return str(Path(data.root) / data.dataset) if data.layout == "dolos" else str(data.manifest or data.local or "")
