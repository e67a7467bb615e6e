"""The output contract every localizer shares, and the interface the training loop relies on.

A localizer takes a batch of normalised images [B, 3, S, S] and returns, through :meth:`Localizer.localize`,
a :class:`LocalizerOutput`: an image-level fake score [B] in [0, 1] and a fake-probability map [B, h, w] in
[0, 1] at the method's own resolution. Training uses :meth:`forward` (raw tensors) and :meth:`loss`.
Adding a method = one module with a Localizer subclass, registered in ``models/__init__.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LocalizerOutput:
    score: torch.Tensor  # [B] fake score in [0, 1]
    map: torch.Tensor  # [B, h, w] probability that each location is manipulated

    def cpu(self) -> "LocalizerOutput":
        return LocalizerOutput(self.score.detach().float().cpu(), self.map.detach().float().cpu())


@dataclass(frozen=True)
class MethodDefaults:
    """Training defaults of a method under one setup (REFERENCE.md)."""

    lr: float
    batch_size: int
    epochs: int


class Localizer(nn.Module):
    """Base class. Subclasses set ``name`` and ``defaults`` and implement forward/loss/localize."""

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, MethodDefaults]] = {}
    needs_grad_to_localize: ClassVar[bool] = False  # e.g. Grad-CAM

    def __init__(self, setup: str = "A") -> None:
        super().__init__()
        if setup not in ("A", "B", "C"):
            raise ValueError(f"setup must be A, B or C, not {setup!r}")
        self.setup = setup

    @property
    def fully_supervised(self) -> bool:
        return self.setup == "C"

    def options(self) -> dict:
        """Constructor options stored in the checkpoint card (so loading rebuilds the same model)."""
        return {}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    def localize(self, images: torch.Tensor) -> LocalizerOutput:
        raise NotImplementedError  # pragma: no cover - abstract

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


def resize_mask(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, H, W] {0,1} -> [B, h, w] long, NEAREST with PIL's pixel-centre convention ('nearest-exact')."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask.long()
    return F.interpolate(mask[:, None].float(), size=size, mode="nearest-exact")[:, 0].long()
