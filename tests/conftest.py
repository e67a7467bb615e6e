"""Shared fixtures: a tiny built-in dataset (DOLOS layout) made once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))

TINY = {"n": 40, "size": 32, "seed": 3}  # the built-in benchmark's "quick" preset with 40 crops per source


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread (the 2-core test machine may be shared with other work)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """ROOT with ROOT/builtin in the DOLOS layout: per source 28 train, 4 valid, 8 test images of each kind, 32 px."""
    from weakloc.generate.builtin import build_builtin, spec_from

    root = tmp_path_factory.mktemp("tiny")
    build_builtin(root, spec_from(TINY["n"], TINY["size"], TINY["seed"], "quick"), progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_data(tiny_root):
    from weakloc.config import DataConfig
    from weakloc.data.load import load_samples

    data = DataConfig(layout="builtin", root=str(tiny_root), builtin_images=TINY["n"], builtin_size=TINY["size"],
                      builtin_seed=TINY["seed"], builtin_preset="quick", input_size=48)
    return load_samples(data)


def tiny_train_config(**overrides):
    from weakloc.config import TrainConfig

    values = dict(method="patches", setup="A", epochs=2, iters_per_epoch=3, batch_size=4, val_batch_size=8,
                  keep_best=2, seed=0, precision="fp32", options={"init": "default"})
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="session")
def trained_checkpoint(tiny_data, tmp_path_factory) -> Path:
    """A small Patches setup-C model trained on the tiny dataset (for inference tests)."""
    from weakloc.train.loop import train

    data, samples = tiny_data
    result = train(tmp_path_factory.mktemp("ckpt") / "run", data,
                   tiny_train_config(setup="C", epochs=1, iters_per_epoch=4, batch_size=8), samples, progress=False)
    return result.best_checkpoint


def make_dolos(root: Path, dataset: str = "mine", *, local: tuple[str, ...] = ("repaint",),
               full: tuple[str, ...] = (), per_split: int = 4, size: int = 32) -> Path:
    """A small DOLOS-layout dataset under ROOT/DATASET, as `weakloc generate` writes it (real + the given
    generators; random pictures, a square mask per local fake); returns ROOT."""
    import numpy as np

    from weakloc.data.images import write_mask
    from weakloc.files import save_image

    rng = np.random.default_rng(0)
    base = root / dataset
    for split in ("train", "valid", "test"):
        for i in range(per_split):
            name = f"{split}-{i:03d}.png"
            save_image(base / "real" / split / name, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            for gen in full:
                save_image(base / "fake" / gen / split / name, rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            for gen in local:
                save_image(base / "fake" / gen / "images" / split / name,
                           rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
                mask = np.zeros((size, size), bool)
                mask[size // 4: size // 2 + i, size // 4: size // 2] = True
                write_mask(base / "fake" / gen / "masks" / split / name, mask)
    return root


def claim_size(png: Path, width: int, height: int) -> None:
    """Rewrite a PNG's IHDR to claim another size (with a valid CRC): a decompression bomb's header."""
    import struct
    import zlib

    data = bytearray(png.read_bytes())
    start = data.index(b"IHDR")
    data[start + 4:start + 12] = struct.pack(">II", width, height)
    data[start + 17:start + 21] = struct.pack(">I", zlib.crc32(bytes(data[start:start + 17])) & 0xFFFFFFFF)
    png.write_bytes(bytes(data))


class WritesAFile:
    """A pickle payload: unpickling it would create ``target`` (pickle calls open(target, "w")); tests save it in
    a weights file and check that reading the file refuses it without the file appearing."""

    def __init__(self, target) -> None:
        self.target = str(target)

    def __reduce__(self):
        import builtins

        return (builtins.open, (self.target, "w"))
