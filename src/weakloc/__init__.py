"""weakloc: weakly-supervised localization of manipulated regions in diffusion-generated images.

    import weakloc
    detector = weakloc.load("model.safetensors")
    result = detector.predict("image.png")   # .score, .map, .mask
"""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, device: str = "auto", precision: str = "fp32"):
    """Load a trained localizer (see :mod:`weakloc.predict.detector`)."""
    from .predict.detector import load as _load

    return _load(path, device=device, precision=precision)


__all__ = ["load", "__version__"]
