"""Xception backbone helpers around timm's ``legacy_xception`` (the exact network of the paper).

timm names the stages conv1, bn1, act1, conv2, bn2, act2, block1..block12, conv3.., fc. Spatial sizes at
299 input: block2 37x37 (256 ch), block3-11 19x19 (728 ch), block12 10x10 (REFERENCE.md).
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

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


def reset_layers(module: nn.Module) -> None:
    """PyTorch's own initialisation of every layer (``reset_parameters``), undoing timm's Kaiming-normal:
    what a network built from plain torch.nn layers, like the official Cadene-style Xception, starts from."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
            m.reset_parameters()


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


def load_timm_weights(network: nn.Module, path: str | Path, partial: bool = False) -> list[str]:
    """Load a local Xception weights file into ``network`` (see :func:`weakloc.methods.weights.load_init_weights`:
    refused unless it fills every tensor it should, or ``partial``). Returns the loaded keys, sorted."""
    from .weights import load_init_weights  # weights.py builds on this module's stage names

    return sorted(load_init_weights(network, path, partial).loaded)


def fold_batchnorm(model: nn.Module, example: torch.Tensor) -> int:
    """Fold every BatchNorm whose input is a convolution's output, and nothing else's, into that convolution
    (PyTorch's ``fuse_conv_bn_eval``), for inference: the network then reads and writes each of those
    activations once less (every BatchNorm of Xception follows a convolution). The pairs are found by running
    ``example`` through ``model`` once, in eval mode; the folded BatchNorms become ``nn.Identity``. Returns the
    number of pairs folded. Only for a model that will not be trained again."""
    model.eval()
    produced: dict[int, tuple[str, torch.Tensor]] = {}  # id(output) -> (conv name, output kept alive)
    consumers: dict[int, list[str]] = {}
    pairs: list[tuple[str, str, int]] = []  # (conv, batchnorm, id of the tensor between them)
    names = {module: name for name, module in model.named_modules()}
    hooks = []

    def after_conv(module: nn.Module, _args: tuple, output: torch.Tensor) -> None:
        produced[id(output)] = (names[module], output)

    def before_any(module: nn.Module, args: tuple) -> None:
        for arg in args:
            if isinstance(arg, torch.Tensor) and id(arg) in produced:
                consumers.setdefault(id(arg), []).append(names[module])
                if isinstance(module, nn.BatchNorm2d):
                    pairs.append((produced[id(arg)][0], names[module], id(arg)))

    for module in names:
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(after_conv))
        if not list(module.children()):
            hooks.append(module.register_forward_pre_hook(before_any))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    runs = [conv for conv, _, _ in pairs]
    folded = 0
    for conv_name, bn_name, tensor in pairs:
        if runs.count(conv_name) != 1 or consumers[tensor] != [bn_name]:  # shared, or its output used elsewhere
            continue
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        model.set_submodule(conv_name, fuse_conv_bn_eval(conv, bn))
        model.set_submodule(bn_name, nn.Identity())
        folded += 1
    return folded
