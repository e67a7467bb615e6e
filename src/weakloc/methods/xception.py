"""Xception backbone helpers around timm's ``legacy_xception`` (the exact network of the paper).

timm names the stages conv1, bn1, act1, conv2, bn2, act2, block1..block12, conv3.., fc. Spatial sizes at
299 input: block2 37x37 (256 ch), block3-11 19x19 (728 ch), block12 10x10 (REFERENCE.md).
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from ..errors import ConfigError

STEM = ("conv1", "bn1", "act1", "conv2", "bn2", "act2")
BLOCKS = tuple(f"block{i}" for i in range(1, 13))
TAIL = ("conv3", "bn3", "act3", "conv4", "bn4", "act4")
CHANNELS = {"block1": 128, "block2": 256, **{f"block{i}": 728 for i in range(3, 12)}, "block12": 1024}


def legacy_xception(num_classes: int = 2) -> nn.Module:
    """A randomly initialised timm legacy_xception (never downloads: pretrained=False)."""
    return timm.create_model("legacy_xception", pretrained=False, num_classes=num_classes)


def adopt_stages(owner: nn.Module, network: nn.Module, start: str | None, end: str) -> tuple[str, ...]:
    """Register the consecutive stages of ``network`` from ``start`` (None = first) through ``end`` on ``owner``
    under their timm names (so ``owner``'s state-dict keys are timm's: 'block1.rep.1.conv1.weight', ...);
    returns the names in order (empty when ``start`` comes after ``end``)."""
    children = dict(network.named_children())
    names = list(children)
    first = 0 if start is None else names.index(start)
    chosen = tuple(names[first:names.index(end) + 1])
    for name in chosen:
        owner.add_module(name, children[name])
    return chosen


def run_stages(owner: nn.Module, names: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
    for name in names:
        x = getattr(owner, name)(x)
    return x


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """patch-forensics' 'xavier' init: conv/linear weights Xavier-normal(gain), BN weight N(1, gain), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)


def set_bn_momentum(module: nn.Module, momentum: float | None) -> None:
    """Set every BatchNorm's running-statistics momentum (None keeps PyTorch's 0.1). Short schedules need a
    larger one: over a few dozen steps the running statistics lag the fast-changing weights of a deep
    network, and eval mode then predicts one class for every image (docs/methods.md)."""
    if momentum is None:
        return
    if not 0 < momentum <= 1:
        raise ValueError(f"bn_momentum must be in (0, 1], not {momentum!r}")
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = momentum


def load_timm_weights(network: nn.Module, path: str | Path) -> list[str]:
    """Load a local timm-format legacy_xception state dict (safetensors or weights-only torch file) into
    ``network`` (a full Xception or any prefix of it); the classifier is skipped. Returns the loaded keys."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: initialisation weights file does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = network.state_dict()  # stages carry their timm names (adopt_stages), so keys match directly
    matched = {key: state[key] for key in own if key in state and own[key].shape == state[key].shape
               and not key.startswith("fc.")}
    if not matched:
        raise ConfigError(f"{path}: no tensor matches the Xception layers; expected a timm legacy_xception state dict")
    network.load_state_dict(matched, strict=False)
    return sorted(matched)
