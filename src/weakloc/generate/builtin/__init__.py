"""The built-in offline benchmark: crops of photographs that installed packages ship (``photos``), made into a
small DOLOS-layout dataset (``build``). Loading data never builds it: the CLI and the experiment runner
call :func:`ensure_builtin` when a configuration names ``layout = "builtin"``."""

from __future__ import annotations

from ...config import DataConfig
from ...data.load import builtin_root
from .build import BuiltinSpec, build_builtin, is_built, spec_from


def _spec(data: DataConfig) -> BuiltinSpec:
    return spec_from(data.builtin_images, data.builtin_size, data.builtin_seed, data.builtin_preset)


def is_complete(data: DataConfig) -> bool:
    """Whether the built-in dataset that ``data`` names is already fully built (with its settings)."""
    return is_built(builtin_root(data) / "builtin", _spec(data))


def ensure_builtin(data: DataConfig, progress: bool = True, log=None) -> DataConfig:
    """Build (or complete) the built-in dataset that ``data`` names, if it does; returns ``data`` unchanged."""
    if data.layout == "builtin":
        build_builtin(builtin_root(data), _spec(data), progress=progress, log=log)
    return data


__all__ = ["BuiltinSpec", "build_builtin", "ensure_builtin", "is_complete", "spec_from"]
