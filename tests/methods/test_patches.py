"""Patches: shapes, parameter count, losses, and the shared output contract."""

from __future__ import annotations

import pytest
import torch

from weakloc.errors import ConfigError
from weakloc.methods import build_model
from weakloc.methods.base import LocalizerOutput


def test_patches_size_and_parameters():
    model = build_model("patches", "A")
    assert sum(p.numel() for p in model.parameters()) == 191_330  # "about 191k" (REFERENCE.md)
    assert model.map_size(299) == 37 and model.map_size(256) == 32 and model.map_size(128) == 16
    out = model.eval().localize(torch.randn(2, 3, 299, 299))
    assert isinstance(out, LocalizerOutput)
    assert out.map.shape == (2, 37, 37) and out.score.shape == (2,)
    assert 0 <= out.map.min() and out.map.max() <= 1
    assert torch.allclose(out.score, out.map.mean(dim=(1, 2)))  # score = mean p(fake) over the map


def test_weak_init_is_xavier_small_gain_and_full_keeps_default():
    weak, full = build_model("patches", "A"), build_model("patches", "C")
    assert weak.head.weight.std() < 0.01 < full.head.weight.std()
    assert torch.all(weak.head.bias == 0)
    assert build_model("patches", "B", {"init": "default"}).head.weight.std() > 0.01


def test_weak_loss_puts_the_label_on_every_patch_and_full_uses_the_mask():
    torch.manual_seed(0)
    model = build_model("patches", "A")
    logits = torch.randn(2, 2, 5, 5)
    batch = {"label": torch.tensor([0, 1]), "mask": torch.zeros(2, 20, 20, dtype=torch.uint8)}
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])[:, None, None].expand(2, 5, 5))
    assert torch.allclose(model.loss({"map_logits": logits}, batch), expected)
    full = build_model("patches", "C")
    batch["mask"][:, :8, :] = 1  # top 8 of 20 rows fake -> top 2 of 5 map rows (nearest)
    target = torch.zeros(2, 5, 5, dtype=torch.long)
    target[:, :2] = 1
    assert torch.allclose(full.loss({"map_logits": logits}, batch), torch.nn.functional.cross_entropy(logits, target))


def test_loss_falls_when_overfitting_a_few_images():
    torch.manual_seed(0)
    model = build_model("patches", "C")
    images = torch.randn(4, 3, 48, 48)
    mask = torch.zeros(4, 48, 48, dtype=torch.uint8)
    mask[:, 10:30, 5:25] = 1
    batch = {"image": images, "label": torch.ones(4, dtype=torch.long), "mask": mask}
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    losses = []
    for _ in range(15):
        loss = model.loss(model(images), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown method 'patchez'"):
        build_model("patchez", "A")
