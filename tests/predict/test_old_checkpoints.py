"""Checkpoints written before the package renovation still load and predict exactly the same maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

import weakloc
from weakloc.methods import build_model
from weakloc.train.checkpoint import CARD_KEY, load_checkpoint, read_card, save_checkpoint

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "checkpoint-v0.1"


def test_a_0_1_checkpoint_predicts_exactly_what_it_did():
    path = FIXTURE / "patches-C.safetensors"
    assert any(k.startswith("features.") for k in load_file(str(path)))  # the old key names, really
    card = read_card(path)
    assert card["weakloc_version"] == "0.1.0" and card["method"] == "patches"  # the card names the method
    expected = np.load(FIXTURE / "expected.npz")
    names = [str(n) for n in expected["names"]]
    # exactly: the network as it was trained; the default folds BatchNorm into the convolutions (float rounding)
    files = [FIXTURE / n for n in names]
    exact = weakloc.load(path, device="cpu", precision="fp32", fold_batchnorm=False).predict(files)
    assert np.array_equal([p.score for p in exact], expected["scores"])
    for i, p in enumerate(exact):
        assert np.array_equal(p.map, expected[f"map_{i}"]), names[i]
        assert np.array_equal(p.model_map, expected[f"model_map_{i}"]), names[i]
    folded = weakloc.load(path, device="cpu", precision="fp32").predict(files)
    assert np.allclose([p.score for p in folded], expected["scores"], atol=1e-5)
    for i, p in enumerate(folded):
        assert np.allclose(p.map, expected[f"map_{i}"], atol=1e-4), names[i]


def test_old_attention_key_names_load_into_the_renamed_head(tmp_path):
    """weakloc 0.1 named Attention's map module "attention" (today: "head"); such files load the same weights."""
    torch.manual_seed(0)
    model = build_model("attention", "C")
    new = save_checkpoint(tmp_path / "new.safetensors", model, {"input_size": 64, "resize": "lanczos",
                                                                "mean": 0.5, "std": 0.5})
    state = load_file(str(new))
    assert any(k.startswith("head.") for k in state)
    old_state = {("attention." + k[len("head."):]) if k.startswith("head.") else k: v for k, v in state.items()}
    from safetensors import safe_open

    with safe_open(str(new), framework="pt") as f:
        metadata = f.metadata()
    save_file(old_state, str(tmp_path / "old.safetensors"), metadata={CARD_KEY: metadata[CARD_KEY]})
    loaded, _ = load_checkpoint(tmp_path / "old.safetensors")
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded.localize(x).map, model.eval().localize(x).map)
