"""The one record every layout produces, and the selections each setup trains and tests on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputError

SPLITS = ("train", "valid", "test")
KINDS = ("real", "full", "local")  # real image; fully generated fake; locally manipulated fake (has a mask)
SETUPS = {
    # setup -> kinds used for training and validation (paper §5, REFERENCE.md)
    "A": ("real", "full"),   # image labels, fully generated fakes
    "B": ("real", "local"),  # image labels, locally inpainted fakes
    "C": ("local",),         # masks, inpainted images only (no reals)
}


@dataclass(frozen=True)
class Sample:
    """One image of a dataset. ``id`` is its path relative to the dataset root (unique, stable)."""

    id: str
    path: Path
    label: int  # 0 real, 1 fake
    kind: str  # one of KINDS
    split: str
    mask_path: Path | None = None
    generator: str = ""
    source: str = ""

    @property
    def name(self) -> str:
        return self.path.name


def select(samples: Iterable[Sample], split: str, kinds: Sequence[str]) -> list[Sample]:
    """Samples of one split and the given kinds, in a deterministic order (kind order, then id)."""
    order = {kind: i for i, kind in enumerate(kinds)}
    chosen = [s for s in samples if s.split == split and s.kind in order]
    return sorted(chosen, key=lambda s: (order[s.kind], s.id))


def require(samples: list[Sample], what: str, where: object, *, split: str, kinds: Sequence[str]) -> list[Sample]:
    """Fail clearly when a selection a run needs is empty (missing split, wrong generator name...)."""
    for kind in kinds:
        if not any(s.kind == kind for s in samples):
            raise InputError(where, f"no {kind} images in split '{split}' (needed for {what})",
                             f"add a '{split}' split with {kind} images, or check the data settings "
                             "(root, generator names, manifest 'split' column)")
    return samples


def require_masks(samples: list[Sample], what: str) -> list[Sample]:
    """Every local fake must have a mask file when masks are used (setup C, localization metrics)."""
    for s in samples:
        if s.kind == "local" and s.mask_path is None:
            raise InputError(s.path, f"fake image has no mask (masks are needed for {what})",
                             "add a mask with the same file name in the masks folder, or fill the manifest's "
                             "'mask' column")
    return samples


def training_selection(samples: Sequence[Sample], setup: str, split: str, where: object) -> list[Sample]:
    """What setup A/B/C trains (split='train') or validates (split='valid') on."""
    kinds = SETUPS[setup]
    chosen = require(select(samples, split, kinds), f"setup {setup}", where, split=split, kinds=kinds)
    if setup == "C":
        require_masks(chosen, "setup C (mask supervision)")
    return chosen
