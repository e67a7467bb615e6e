"""Folding BatchNorm into the convolution before it (prediction's default): every method's maps and scores stay
those of the unfolded network, a convolution whose output feeds something else is left alone, and the Detector
folds a copy, never the model it was given."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import weakloc
from weakloc.methods import build_model
from weakloc.methods.xception import fold_batchnorm
from weakloc.predict.detector import Detector


def _batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def _trained_looking(model: nn.Module) -> nn.Module:
    """Running statistics and affine parameters away from their identity init, so a wrong fold would show."""
    generator = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=generator) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=generator) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=generator) * 0.1)
    return model.eval()


@pytest.mark.parametrize("method,setup", [("patches", "A"), ("patches", "C"), ("gradcam", "A"), ("gradcam", "C"),
                                          ("attention", "A"), ("attention", "C")])
def test_folded_network_gives_the_same_maps_and_scores(method, setup, one_thread):
    torch.manual_seed(0)
    model = _trained_looking(build_model(method, setup, {"init": "timm"} if method == "patches" else None))
    folded = copy.deepcopy(model)
    before = _batchnorms(folded)
    count = fold_batchnorm(folded, torch.zeros(1, 3, 128, 128))
    assert before > 0 and count == before and _batchnorms(folded) == 0  # every Xception BatchNorm follows a conv
    images = torch.randn(2, 3, 128, 128)
    with torch.set_grad_enabled(model.needs_grad_to_localize):
        want, got = model.localize(images), folded.localize(images)
    assert torch.allclose(got.map, want.map, atol=1e-4), (got.map - want.map).abs().max()
    assert torch.allclose(got.score, want.score, atol=1e-4, rtol=1e-4)
    assert not torch.equal(want.map, torch.zeros_like(want.map))


class _SharedOutput(nn.Module):
    """conv's output feeds both bn and other: folding bn into conv would change what other sees."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.other = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.Conv2d(3, 3, 1)
        self.conv2, self.bn2 = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.bn2(self.conv2(self.bn(y) + self.other(y)))


def test_a_convolution_whose_output_is_used_elsewhere_is_not_folded():
    model = _trained_looking(_SharedOutput())
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
    assert fold_batchnorm(model, x) == 1  # conv2 -> bn2 only
    assert isinstance(model.bn, nn.BatchNorm2d) and isinstance(model.bn2, nn.Identity)
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-6)


def test_detector_folds_a_copy_and_predicts_what_the_unfolded_model_does(trained_checkpoint, tiny_root):
    folded = weakloc.load(trained_checkpoint, device="cpu", precision="fp32")
    plain = weakloc.load(trained_checkpoint, device="cpu", precision="fp32", fold_batchnorm=False)
    assert _batchnorms(folded.model) == 0 and _batchnorms(plain.model) > 0
    paths = sorted((tiny_root / "builtin/photos-a/fake/repaint/images/test").glob("*.png"))[:4]
    for a, b in zip(folded.predict(paths), plain.predict(paths)):
        assert abs(a.score - b.score) < 1e-5
        assert float(abs(a.map - b.map).max()) < 1e-4

    model = plain.model
    again = Detector(model, plain.card, torch.device("cpu"), precision="fp32")
    assert _batchnorms(again.model) == 0 and _batchnorms(model) > 0 and again.model is not model
