"""Maps to another size exactly as PIL's bicubic filter would, for a whole batch at once.

PIL's resize is separable and linear, so it is two matrix products with PIL's own weights
(:func:`resize_matrix`), which agree with per-image PIL ``resize`` to ~1e-7. Prediction uses it to bring maps
to the image's resolution, evaluation to bring them to the mask's.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image


@lru_cache(maxsize=64)
def resize_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """[n_out, n_in] weights of PIL's 1-D bicubic resize, read off PIL itself by resizing unit impulses."""
    weights = np.zeros((n_out, n_in), dtype=np.float32)
    for j in range(n_in):
        impulse = np.zeros((1, n_in), dtype=np.float32)
        impulse[0, j] = 1.0
        weights[:, j] = np.asarray(Image.fromarray(impulse, mode="F").resize((n_out, 1), Image.BICUBIC))[0]
    return torch.from_numpy(weights)


def resize_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[N, h, w] float maps -> [N, H, W], PIL bicubic ("F" mode) as two batched matrix products."""
    maps = maps.float()
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    n, h, w = maps.shape
    rows = resize_matrix(h, size[0])  # [H, h]
    cols = resize_matrix(w, size[1])  # [W, w]
    # two large GEMMs instead of N small ones: [N*h, w] @ [w, W], then [H, h] @ [h, N*W]
    wide = (maps.reshape(n * h, w) @ cols.T).reshape(n, h, size[1])
    tall = rows @ wide.permute(1, 0, 2).reshape(h, n * size[1])
    return tall.reshape(size[0], n, size[1]).permute(1, 0, 2)
