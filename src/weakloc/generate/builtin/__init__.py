"""The built-in offline benchmark: crops of photographs that installed packages ship (``photos``), made into a
small DOLOS-layout dataset (``build``). Loading data never builds it: the CLI and the experiment runner
call :func:`ensure_builtin` when a configuration names ``layout = "builtin"``."""

from __future__ import annotations

from ...config import DataConfig
from ...data.load import builtin_root
from .build import build_builtin


def ensure_builtin(data: DataConfig, progress: bool = True) -> DataConfig:
    """Build (or complete) the built-in dataset that ``data`` names, if it does; returns ``data`` unchanged."""
    if data.layout == "builtin":
        build_builtin(builtin_root(data), n=data.builtin_images, size=data.builtin_size, seed=data.builtin_seed,
                      progress=progress)
    return data


__all__ = ["build_builtin", "ensure_builtin"]
