"""Pictures of predictions: a heatmap overlay with a colour bar and the score, plus plain map/mask PNGs."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402



def overlay_png(image: Image.Image, heatmap: np.ndarray, score: float, threshold: float, title: str = "",
                cmap: str = "inferno", alpha: float = 0.5) -> bytes:
    """PNG bytes: the image with the heatmap blended over it, the mask outline at ``threshold``, a colour bar
    and the fake score in the title."""
    width, height = image.size
    scale = 6.0 / max(width, height)
    fig, ax = plt.subplots(figsize=(width * scale + 1.4, height * scale + 0.7), dpi=100)
    ax.imshow(np.asarray(image.convert("RGB")))
    shown = ax.imshow(heatmap, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
    if 0 < (heatmap > threshold).mean() < 1:
        ax.contour(heatmap > threshold, levels=[0.5], colors="cyan", linewidths=1.0)
    ax.set_axis_off()
    verdict = "fake" if score > threshold else "real"
    ax.set_title(f"fake score {score:.3f} ({verdict} at {threshold:g})" + (f" · {title}" if title else ""),
                 fontsize=9)
    bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("p(manipulated)", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def heatmap_png(heatmap: np.ndarray) -> Image.Image:
    """Grayscale PNG image of a map in [0, 1] (value / 255 = probability; `weakloc evaluate` reads these)."""
    return Image.fromarray(np.clip(heatmap * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")


def mask_image(mask: np.ndarray, polarity: str = "white-fake") -> Image.Image:
    """Binary mask as a 0/255 PNG image; ``black-fake`` writes the DOLOS convention."""
    white = mask if polarity == "white-fake" else ~mask
    return Image.fromarray(white.astype(np.uint8) * 255, mode="L")
