"""The built-in offline benchmark: crops of photographs that installed packages ship (``photos``), made into a
small DOLOS-layout dataset (``build``). Loading data never builds it: the CLI and the experiment runner
call :func:`ensure_builtin` when a configuration names ``layout = "builtin"``."""

from __future__ import annotations

from ...config import DataConfig
from ...data.load import builtin_root
from .build import BuiltinSpec, build_builtin, spec_from


def ensure_builtin(data: DataConfig, progress: bool = True) -> DataConfig:
    """Build (or complete) the built-in dataset that ``data`` names, if it does; returns ``data`` unchanged."""
    if data.layout == "builtin":
        spec = spec_from(data.builtin_images, data.builtin_size, data.builtin_seed, data.builtin_preset)
        build_builtin(builtin_root(data), spec, progress=progress)
    return data


__all__ = ["BuiltinSpec", "build_builtin", "ensure_builtin", "spec_from"]
