"""The local web page: upload an image, see its score, heatmap overlay and mask (``weakloc serve``)."""

from .app import make_server, serve

__all__ = ["make_server", "serve"]
