"""weakloc: weakly-supervised localization of manipulated regions in diffusion-generated images.

    import weakloc
    detector = weakloc.load("model.safetensors")
    result = detector.predict("image.png")   # .score, .map, .mask
"""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, device: str = "auto", precision: str = "auto", scale: str = "resize", max_pixels: int | None = None):
    """Load a trained localizer (see :mod:`weakloc.predict.detector`): ``precision`` auto|bf16|fp32, ``scale``
    resize|native (tiles at the image's own resolution), ``max_pixels`` (the largest image accepted)."""
    from .predict.detector import load as _load

    return _load(path, device=device, precision=precision, scale=scale, max_pixels=max_pixels)


__all__ = ["load", "__version__"]
