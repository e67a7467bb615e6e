"""weakloc: weakly-supervised localization of manipulated regions in diffusion-generated images."""

__version__ = "0.1.0"
