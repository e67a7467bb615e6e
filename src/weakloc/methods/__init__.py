"""Localizers: one module per method, all sharing the contract of :mod:`weakloc.methods.base`.

A method registers itself where it is defined (``@register_method``); importing this package imports every
module in it, so a new method is one new file here (plus its test).
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import METHODS, Localizer, LocalizerOutput, MethodDefaults, Preprocessing, build_model, register_method

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Localizer", "LocalizerOutput", "MethodDefaults", "METHODS", "Preprocessing", "build_model", "training_preprocessing",
           "register_method"]


def training_preprocessing(method: str, setup: str) -> Preprocessing:
    """The official preprocessing of ``method`` under ``setup`` (see :meth:`Localizer.preprocessing`)."""
    if method not in METHODS:
        from ..errors import ConfigError

        raise ConfigError(f"unknown method {method!r}; available: {', '.join(sorted(METHODS))}")
    return METHODS[method].preprocessing(setup)
