"""The output contract every localizer shares, the interface the training loop relies on, and the registry.

A localizer takes a batch of normalised images [B, 3, S, S] and returns, through :meth:`Localizer.localize`,
a :class:`LocalizerOutput`: an image-level fake score [B] in [0, 1] and a fake-probability map [B, h, w] in
[0, 1] at the method's own resolution. Training uses :meth:`forward` (raw tensors) and :meth:`loss`.

Parts are named alike in every method: ``trunk`` (the Xception stages up to where the map is read), ``head``
(the module that turns trunk features into map logits, when there is one) and ``tail`` (the stages after the
trunk, up to the class logits, when there are any). Xception stages keep their timm names in the state dict.

Adding a method = one module in this package with a Localizer subclass decorated with ``@register_method``;
the package imports its modules itself, so nothing else needs editing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..data.images import nearest_indices
from ..errors import ConfigError


@dataclass
class LocalizerOutput:
    score: torch.Tensor  # [B] fake score in [0, 1]
    map: torch.Tensor  # [B, h, w] probability that each location is manipulated

    def cpu(self) -> "LocalizerOutput":
        return LocalizerOutput(self.score.detach().float().cpu(), self.map.detach().float().cpu())


@dataclass(frozen=True)
class Preprocessing:
    """How training images are resized to the input size, and whether they are flipped at random."""

    resize: str  # a PIL filter name (config.RESIZE_FILTERS)
    hflip: bool


# The official loaders (REFERENCE.md "Preprocessing"): the weak-setup loader of Patches and GradCAM resizes
# with LANCZOS and flips; the loader of setup C (every method) and of Attention resizes bilinearly, no flip.
WEAK_LOADER = Preprocessing(resize="lanczos", hflip=True)
MASK_LOADER = Preprocessing(resize="bilinear", hflip=False)


@dataclass(frozen=True)
class MethodDefaults:
    """Training defaults of a method under one setup (REFERENCE.md)."""

    lr: float
    batch_size: int
    epochs: int


class Localizer(nn.Module, ABC):
    """Base class. Subclasses set ``name``, ``short_name`` and ``defaults`` and implement forward/loss/localize."""

    name: ClassVar[str] = ""  # the method's name in configs, cards and the CLI (e.g. "patches")
    short_name: ClassVar[str] = ""  # its column in the paper's tables (e.g. "PT")
    defaults: ClassVar[dict[str, MethodDefaults]] = {}
    needs_grad_to_localize: ClassVar[bool] = False  # e.g. Grad-CAM
    legacy_keys: ClassVar[dict[str, str]] = {}  # state-dict key prefixes of older weakloc versions -> today's
    mask_resize: ClassVar[str] = "nearest"  # setup C: how masks go from native size to the map (data/cache.py)

    def __init__(self, setup: str = "A") -> None:
        super().__init__()
        if setup not in ("A", "B", "C"):
            raise ValueError(f"setup must be A, B or C, not {setup!r}")
        self.setup = setup

    @property
    def fully_supervised(self) -> bool:
        return self.setup == "C"

    @classmethod
    def preprocessing(cls, setup: str) -> Preprocessing:
        """The official preprocessing of this method under ``setup`` (data.resize / data.hflip override it)."""
        return MASK_LOADER if setup == "C" else WEAK_LOADER

    def options(self) -> dict:
        """Constructor options stored in the checkpoint card (so loading rebuilds the same model)."""
        return {}

    @abstractmethod
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw outputs for the loss (e.g. ``logits`` [B, 2], ``map_logits`` [B, C, h, w])."""

    @abstractmethod
    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of ``forward``'s outputs for a batch (``image``, ``label`` and, in setup C, ``mask``)."""

    @abstractmethod
    def localize(self, images: torch.Tensor) -> LocalizerOutput:
        """The contract: image scores and maps in [0, 1]."""

    def upgrade_state_dict(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Rename the keys of a state dict saved by an older weakloc (``legacy_keys``) to today's names."""
        if not self.legacy_keys:
            return state
        renamed = {}
        for key, value in state.items():
            old = next((p for p in self.legacy_keys if key.startswith(p)), None)
            renamed[self.legacy_keys[old] + key[len(old):] if old else key] = value
        return renamed

    def map_size(self, input_size: int) -> int:
        """Side of the map for a square input of ``input_size`` (computed by a dry run, then memoised)."""
        cache = self.__dict__.setdefault("_map_sizes", {})
        if input_size not in cache:
            was_training = self.training
            self.eval()
            param = next(self.parameters())
            with torch.no_grad():
                x = torch.zeros(1, 3, input_size, input_size, device=param.device, dtype=param.dtype)
                cache[input_size] = self._map_side(x)
            self.train(was_training)
        return cache[input_size]

    def _map_side(self, x: torch.Tensor) -> int:
        """The map's side for the dry-run input ``x`` (override when forward returns no ``map_logits``)."""
        return int(self.forward(x)["map_logits"].shape[-1])

    def map_stride(self) -> int:
        """Input pixels per map cell, from two dry runs (8 for Patches, 16 at block 7 / 11, 1 for a map at the
        input's size): tiles placed at multiples of it see the same cells as the whole image does."""
        small, large = self.map_size(256), self.map_size(512)
        return max(1, round(256 / max(1, large - small)))

    def map_score_kind(self) -> str | None:
        """"mean" / "max" when the image score is that statistic of the map (so it can be taken over a
        stitched map), None when it comes from a classifier (then tiles are combined by their max)."""
        return None


def mask_classes(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Setup C's per-cell cross-entropy targets: class indices [B, h, w] (long) from a {0,1} mask (exactly PIL's
    NEAREST, :func:`resize_mask`), or class probabilities [B, 2, h, w] from a float mask of fake shares
    (``data.mask_resize = "area"``; area-averaged if it is not at the map's size already)."""
    if not mask.is_floating_point():
        return resize_mask(mask, size)
    shares = resize_shares(mask, size)
    return torch.stack([1 - shares, shares], dim=1)


def resize_shares(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, H, W] float fake shares -> [B, h, w], area-averaged (unchanged when already at ``size``)."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask[:, None], size=size, mode="area")[:, 0]


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, H, W] {0,1} -> [B, h, w] long, exactly PIL's NEAREST (the official targets: PIL resizes the mask).

    Indexes with PIL's own index maps (:func:`weakloc.data.images.nearest_indices`); torch's 'nearest-exact'
    breaks ties the other way on scales such as 200 -> 37."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask.long()
    rows = torch.tensor(nearest_indices(mask.shape[-2], size[0]), device=mask.device)
    cols = torch.tensor(nearest_indices(mask.shape[-1], size[1]), device=mask.device)
    return mask.index_select(-2, rows).index_select(-1, cols).long()


# ---------------------------------------------------------------- registry

METHODS: dict[str, type[Localizer]] = {}
L = TypeVar("L", bound=type[Localizer])


def register_method(cls: L) -> L:
    """Class decorator: make ``cls`` available under ``cls.name`` (configs, cards, ``--method``)."""
    if not cls.name or not cls.short_name:
        raise TypeError(f"{cls.__name__} needs a name and a short_name to be registered")
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"method name {cls.name!r} is registered twice ({METHODS[cls.name].__name__}, {cls.__name__})")
    METHODS[cls.name] = cls
    return cls


def build_model(method: str, setup: str, options: dict[str, Any] | None = None) -> Localizer:
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; available: {', '.join(sorted(METHODS))}")
    try:
        return METHODS[method](setup=setup, **(options or {}))
    except (TypeError, ValueError) as exc:  # unknown option names, or values the method rejects
        raise ConfigError(f"method {method}: bad options {options} ({exc})") from None
