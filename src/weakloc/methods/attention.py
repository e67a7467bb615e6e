"""Attention (after Dang et al.'s FFD, as modified by the paper): Xception with a learned map after block 7.

The map module is a separable 3x3 convolution 728 -> 1 (depthwise 3x3 + pointwise 1x1, no bias) and a
sigmoid: one 19x19 map at 299 input that multiplies the block-7 features (broadcast over channels) before
the rest of Xception.

- Weak (A/B): CE(logits, y) + lam * BCE(max of the map, y) (paper eq. 1; lam = 1 by default, the paper
  cross-validates it). The max is taken on the map's logits (max and sigmoid commute), which keeps the BCE
  numerically safe under bf16.
- Full (C): BCE(map, mask) only, the mask resized to the map with bilinear filtering then > 0.5. The exit
  flow (blocks 8-12, classifier) gets no gradient from this loss and affects neither the map nor the
  score, so setup C does not build it (and multi-process training has no unused parameters).

Stages carry their timm names, so a timm weights file initialises the backbone (``--init``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.xception import SeparableConv2d

from .base import (MASK_LOADER, Localizer, LocalizerOutput, MethodDefaults, Preprocessing, register_method,
                   resize_shares)
from .scores import CLASS_SCORES, MAP_SCORES, check_choice, image_score
from .xception import CHANNELS, adopt_stages, legacy_xception, run_stages, set_bn_momentum

MAP_AFTER = "block7"


def mask_target(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, H, W] {0,1} -> [B, h, w] float {0,1}: bilinear (antialiased, as PIL's resize of the official
    loader) then > 0.5. A float mask of fake shares (``data.mask_resize = "area"``) stays soft (area-averaged)."""
    if mask.is_floating_point():
        return resize_shares(mask, size)
    resized = F.interpolate(mask[:, None].float(), size=size, mode="bilinear", align_corners=False, antialias=True)
    return (resized[:, 0] > 0.5).float()


@register_method
class Attention(Localizer):
    name = "attention"
    short_name = "AT"
    legacy_keys = {"attention.": "head."}  # weakloc 0.1 named the map module "attention"
    mask_resize = "bilinear"  # the official loader: bilinear to the map, then > 0.5
    defaults = {
        "A": MethodDefaults(lr=1e-4, batch_size=16, epochs=15),
        "B": MethodDefaults(lr=1e-4, batch_size=16, epochs=15),
        "C": MethodDefaults(lr=3e-4, batch_size=16, epochs=15),
    }

    @classmethod
    def preprocessing(cls, setup: str) -> Preprocessing:
        """FFD's loader, which the official Attention scripts use in every setup: bilinear, no flip."""
        return MASK_LOADER

    def __init__(self, setup: str = "A", lam: float | None = None, score: str | None = None,
                 bn_momentum: float | None = None) -> None:
        """``lam``: weight of the map term of the weak loss (paper's lambda; None = 1; not used by setup C's
        mask-only loss, so setting it there is an error). ``score``: image score in [0, 1];
        A/B "logit" (default: sigmoid of the raw fake logit, the official ranking), "softmax" (p(fake)), "max"
        or "mean" of the map; C "max" (default: the weak loss's own reading of a map) or "mean".
        ``bn_momentum``: BatchNorm running-statistics momentum (None = PyTorch's 0.1; see set_bn_momentum)."""
        super().__init__(setup)
        if lam is not None and (self.fully_supervised or not lam >= 0):
            raise ValueError(f"lam={lam!r}: must be a number >= 0, and only in setups A/B (C's loss is BCE(map, mask))")
        check_choice("score", score, MAP_SCORES if self.fully_supervised else CLASS_SCORES + MAP_SCORES, setup)
        self.lam, self.score, self.bn_momentum = lam, score, bn_momentum
        network = legacy_xception(num_classes=2)
        self.trunk = adopt_stages(self, network, None, MAP_AFTER)
        self.head = SeparableConv2d(CHANNELS[MAP_AFTER], 1, kernel_size=3, padding=1)
        self.tail: tuple[str, ...] = () if self.fully_supervised else adopt_stages(self, network, "block8", "fc")
        set_bn_momentum(self, bn_momentum)

    def options(self) -> dict:
        return {"lam": self.lam, "score": self.score, "bn_momentum": self.bn_momentum}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = run_stages(self, self.trunk, images)
        map_logits = self.head(features)  # [B, 1, h, w]
        if self.fully_supervised:
            return {"map_logits": map_logits}
        attended = features * torch.sigmoid(map_logits)
        return {"map_logits": map_logits, "logits": run_stages(self, self.tail, attended)}

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        map_logits = outputs["map_logits"][:, 0].float()
        if self.fully_supervised:
            return F.binary_cross_entropy_with_logits(map_logits, mask_target(batch["mask"], map_logits.shape[-2:]))
        label = batch["label"]
        peak = map_logits.amax(dim=(1, 2))
        return (F.cross_entropy(outputs["logits"].float(), label)
                + (1.0 if self.lam is None else self.lam) * F.binary_cross_entropy_with_logits(peak, label.float()))

    def _score_kind(self) -> str:
        return self.score or ("max" if self.fully_supervised else "logit")

    def map_score_kind(self) -> str | None:
        kind = self._score_kind()
        return kind if kind in MAP_SCORES else None

    def localize(self, images: torch.Tensor) -> LocalizerOutput:
        outputs = self.forward(images)
        fake_map = torch.sigmoid(outputs["map_logits"][:, 0].float())
        kind = self._score_kind()
        return LocalizerOutput(score=image_score(kind, fake_map, outputs.get("logits")), map=fake_map)
