"""Test-only rebuilds of two networks weakloc reads weights from, laid out by their own names (not weakloc's):

- ``PatchNet``: the official DOLOS Patches network, patch-forensics' ``make_patch_xceptionnet("block2")``:
  ``conv1, bn1, relu1, conv2, bn2, relu2, block1, block2`` of Cadene's Xception, then ``convout``
  (REFERENCE.md; the blocks are timm's legacy_xception blocks, whose names and shapes are Cadene's).
- ``FFDXception``: FFD's Xception with its regression map (JStehouwer/FFD_CVPR2020 ``xception.py``, the
  network of ``xcp_reg.tar``): separable convolutions ``c`` + ``pointwise``, block skip BatchNorm
  ``skip_bn``, classifier ``last_linear``, map module ``map.c`` after block 7. Written here from those names.

Weights and BatchNorm statistics are randomised (:func:`randomize`) so that a wrong mapping shows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.xception import Block as TimmBlock
from torch import nn


def randomize(module: nn.Module, seed: int) -> nn.Module:
    """Random weights (each layer's own init under ``seed``), BN affine parameters and running statistics."""
    torch.manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.reset_parameters()
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(int(torch.randint(1, 10_000, ())))
    return module.eval()


class PatchNet(nn.Sequential):
    """The official Patches network (forward: 2-channel logits, class 1 = fake)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU(inplace=True)
        self.block1 = TimmBlock(64, 128, 2, 2, start_with_relu=False, grow_first=True)
        self.block2 = TimmBlock(128, 256, 2, 2, start_with_relu=True, grow_first=True)
        self.convout = nn.Conv2d(256, 2, 1)


class FFDSeparable(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.c = nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.c(x))


class FFDBlock(nn.Module):
    """Xception block, FFD's names: rep = [relu, sep, bn] x reps (first relu dropped if not start_with_relu)."""

    def __init__(self, c_in: int, c_out: int, reps: int, stride: int, start_with_relu: bool = True,
                 grow_first: bool = True) -> None:
        super().__init__()
        self.skip = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False) if c_in != c_out or stride != 1 else None
        self.skip_bn = nn.BatchNorm2d(c_out) if self.skip is not None else None
        if grow_first:
            widths = [(c_in, c_out)] + [(c_out, c_out)] * (reps - 1)
        else:
            widths = [(c_in, c_in)] * (reps - 1) + [(c_in, c_out)]
        rep: list[nn.Module] = []
        for a, b in widths:
            rep += [nn.ReLU(), FFDSeparable(a, b), nn.BatchNorm2d(b)]
        if not start_with_relu:
            rep = rep[1:]
        if stride != 1:
            rep.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*rep)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip_bn(self.skip(x)) if self.skip is not None else x
        return self.rep(x) + skip


class FFDRegressionMap(nn.Module):
    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.c = FFDSeparable(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.c(x))


class FFDXception(nn.Module):
    """FFD's Xception with the regression map (maptype 'reg'), 2 classes. forward -> (logits, map)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.block1 = FFDBlock(64, 128, 2, 2, start_with_relu=False)
        self.block2 = FFDBlock(128, 256, 2, 2)
        self.block3 = FFDBlock(256, 728, 2, 2)
        for i in range(4, 12):
            setattr(self, f"block{i}", FFDBlock(728, 728, 3, 1))
        self.block12 = FFDBlock(728, 1024, 2, 2, grow_first=False)
        self.conv3 = FFDSeparable(1024, 1536)
        self.bn3 = nn.BatchNorm2d(1536)
        self.conv4 = FFDSeparable(1536, 2048)
        self.bn4 = nn.BatchNorm2d(2048)
        self.last_linear = nn.Linear(2048, 2)
        self.map = FFDRegressionMap(728)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for i in range(1, 8):
            x = getattr(self, f"block{i}")(x)
        mask = self.map(x)
        x = x * mask
        for i in range(8, 13):
            x = getattr(self, f"block{i}")(x)
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.relu(self.bn4(self.conv4(x)))
        return self.last_linear(x.mean(dim=(2, 3))), mask
