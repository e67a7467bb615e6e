"""Localizers: one module per method, all sharing the contract of :mod:`weakloc.models.base`."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .attention import Attention
from .base import Localizer, LocalizerOutput, MethodDefaults
from .gradcam import GradCAM
from .patches import Patches

METHODS: dict[str, type[Localizer]] = {cls.name: cls for cls in (GradCAM, Patches, Attention)}


def build_model(method: str, setup: str, options: dict[str, Any] | None = None) -> Localizer:
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; available: {', '.join(sorted(METHODS))}")
    try:
        return METHODS[method](setup=setup, **(options or {}))
    except (TypeError, ValueError) as exc:  # unknown option names, or values the method rejects
        raise ConfigError(f"method {method}: bad options {options} ({exc})") from None


__all__ = ["Localizer", "LocalizerOutput", "MethodDefaults", "METHODS", "build_model"]
