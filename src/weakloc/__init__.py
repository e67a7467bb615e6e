"""weakloc: weakly-supervised localization of manipulated regions in diffusion-generated images.

    import weakloc
    detector = weakloc.load("model.safetensors")
    result = detector.predict("image.png")   # .score, .map, .mask
"""

from __future__ import annotations

__version__ = "0.1.0"


def load(path, device: str = "auto", precision: str = "auto", scale: str = "resize", max_pixels: int | None = None,
         fold_batchnorm: bool = True):
    """Load a trained localizer (see :mod:`weakloc.predict.detector`): ``precision`` auto|bf16|fp32, ``scale``
    resize|native (tiles at the image's own resolution), ``max_pixels`` (the largest image accepted),
    ``fold_batchnorm`` (BatchNorm folded into the convolutions for speed; False runs the network as trained)."""
    from .predict.detector import load as _load

    return _load(path, device=device, precision=precision, scale=scale, max_pixels=max_pixels,
                 fold_batchnorm=fold_batchnorm)


__all__ = ["load", "__version__"]
