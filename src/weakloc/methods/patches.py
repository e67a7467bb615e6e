"""Patches (local scores; Chai et al.'s patch-forensics as used in the paper): Xception through block 2 plus
a 1x1 convolution to 2 classes. ~191k parameters, a 37x37 map at 299 input, receptive field 43 px."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Localizer, LocalizerOutput, MethodDefaults, mask_classes, register_method
from .xception import CHANNELS, STEM, adopt_stages, init_weights, legacy_xception, reset_layers, run_stages

MAP_AFTER = "block2"
INITS = ("xavier", "pytorch", "timm")
INIT_ALIASES = {"default": "timm"}  # weakloc <= 0.2 called timm's init "default"


@register_method
class Patches(Localizer):
    name = "patches"
    short_name = "PT"
    # weakloc 0.1 kept the trunk as one nn.Sequential named "features" (positions of timm's stages)
    legacy_keys = {f"features.{i}.": f"{stage}." for i, stage in enumerate(STEM + ("block1", "block2"))}
    defaults = {
        "A": MethodDefaults(lr=1e-3, batch_size=64, epochs=100),
        "B": MethodDefaults(lr=1e-3, batch_size=64, epochs=100),
        "C": MethodDefaults(lr=1e-3, batch_size=16, epochs=50),
    }

    def __init__(self, setup: str = "A", init: str | None = None) -> None:
        """``init``: "xavier" (patch-forensics: Xavier-normal, gain 0.02), "pytorch" (each layer's own
        ``reset_parameters``, as the official setup-C network is built) or "timm" (timm's legacy_xception init:
        Kaiming-normal convolutions; "default" is its old name); None = the official choice, xavier for the
        weak setups A/B and pytorch for C."""
        super().__init__(setup)
        init = INIT_ALIASES.get(init, init)
        if init not in (None, *INITS):
            raise ValueError(f"patches init must be one of {', '.join(INITS)}, not {init!r}")
        self.init = init
        self.trunk = adopt_stages(self, legacy_xception(), None, MAP_AFTER)
        self.head = nn.Conv2d(CHANNELS[MAP_AFTER], 2, kernel_size=1)
        chosen = init or ("pytorch" if self.fully_supervised else "xavier")
        if chosen == "xavier":
            init_weights(self, gain=0.02)
        elif chosen == "pytorch":
            reset_layers(self)
        # "timm": the weights timm's constructor gave (the head is a plain Conv2d: PyTorch's init either way)

    def options(self) -> dict:
        return {"init": self.init}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"map_logits": self.head(run_stages(self, self.trunk, images))}

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = outputs["map_logits"].float()
        if self.fully_supervised:
            target = mask_classes(batch["mask"], logits.shape[-2:])
        else:  # the image label on every patch
            target = batch["label"][:, None, None].expand(-1, *logits.shape[-2:])
        return F.cross_entropy(logits, target)

    def map_score_kind(self) -> str | None:
        return "mean"

    def localize(self, images: torch.Tensor) -> LocalizerOutput:
        fake = self.forward(images)["map_logits"].float().softmax(dim=1)[:, 1]
        return LocalizerOutput(score=fake.mean(dim=(1, 2)), map=fake)
