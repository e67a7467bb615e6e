"""Per-item seeds: every random choice depends only on (run seed, item id, purpose).

So an image comes out the same whatever batch, shard or order it was made in, and a resumed run
reproduces exactly what an uninterrupted one would have written. Python's ``hash()`` is salted per
process, so seeds come from SHA-256 instead.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed from the run seed and any keys (item id, purpose...); stable across machines."""
    text = "\x1f".join(str(k) for k in (int(seed), *keys))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def numpy_rng(seed: int, *keys: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, *keys))


def torch_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per item: noise is drawn per item (diffusers' ``randn_tensor`` accepts the list),
    so a batch gives each image the same noise it would get alone, on any device."""
    return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
