"""Atomic file writes: a kill never leaves a half-written file behind, and nothing is overwritten silently.
Reading a weights file someone else made (:func:`load_torch_weights`) never runs code from it."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results should get the usual permissions
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_image(path: str | Path, image: np.ndarray | Image.Image | bytes) -> None:
    """Write an image atomically: a uint8 HxW / HxWx3 array or a PIL image (format from the suffix), or bytes
    already encoded (written as they are). The one image writer of the package."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if isinstance(image, bytes):
            tmp.write_bytes(image)
            return
        if not isinstance(image, Image.Image):
            image = Image.fromarray(np.ascontiguousarray(image))
        image.save(tmp, format=Image.registered_extensions()[path.suffix.lower()])


def write_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def load_torch_weights(path: Path, fix: str, pickle_hint: str = "") -> object:
    """``torch.load(weights_only=True)`` of a weights file made elsewhere: the restricted unpickler rebuilds
    tensors and plain containers only, so nothing in the file runs. Anything else is one :class:`InputError`
    naming the file: the object the pickle wanted (``pickle_hint`` added to ``fix``), or unreadable bytes."""
    import pickle
    import re

    import torch

    from .errors import InputError

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # the restricted unpickler refused before building anything
        needs = re.search(r"GLOBAL (\S+) was not", str(exc))
        what = f"the Python object {needs.group(1)}" if needs else "pickle instructions beyond plain data"
        raise InputError(path, f"not a plain dict of tensors: loading it needs {what}, and weakloc never runs code "
                               "from a weights file (nothing was loaded)", fix + pickle_hint) from None
    except Exception as exc:  # noqa: BLE001 - torch raises KeyError, RuntimeError, EOFError ... on foreign bytes
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise InputError(path, f"not a readable torch file, truncated or of another format "
                               f"({type(exc).__name__}: {first})",
                         "download it again (compare its size with the published file's), or " + fix) from None


def file_sha256(path: str | Path, prefix: bytes = b"") -> str:
    """The SHA-256 of ``prefix`` and then a file's bytes (read in 1 MiB chunks)."""
    digest = hashlib.sha256(prefix)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_digest(path: str | Path, prefix: bytes = b"") -> str:
    """SHA-256 of ``prefix`` and a weights file's tensors. A safetensors file is hashed without its
    ``__metadata__`` (tensor names, shapes, dtypes, offsets, then the data), so rewriting a weakloc model card
    (``update_card`` after an evaluation) leaves it unchanged; any other file is hashed whole."""
    path = Path(path)
    if path.suffix != ".safetensors":
        return file_sha256(path, prefix)
    digest = hashlib.sha256(prefix)
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        header.pop("__metadata__", None)
        digest.update(json.dumps(header, sort_keys=True).encode())
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
