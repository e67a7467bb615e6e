"""Checkpoints: safetensors weights with a JSON model card in the file's metadata, plus the same card as a
sidecar ``.json`` for people and tools. Loading never unpickles anything.

The card records what is needed to use the model correctly (method, setup, options, input size and
preprocessing) and what it is (training data, seed, epoch, validation and test metrics).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .. import __version__
from ..errors import InputError
from ..files import atomic_path, weights_digest, write_json
from ..methods import Localizer, build_model

CARD_KEY = "weakloc_card"


def save_checkpoint(path: str | Path, model: Localizer, card: dict[str, Any]) -> Path:
    """Write ``model``'s weights and ``card`` atomically; returns the path."""
    path = Path(path)
    card = {"format": "weakloc-checkpoint/1", "weakloc_version": __version__, "method": model.name,
            "setup": model.setup, "options": model.options(), **card}
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={CARD_KEY: json.dumps(card, default=str)})
    write_json(path.with_suffix(".json"), card)
    return path


def _not_a_checkpoint(path: Path, why: str) -> InputError:
    return InputError(path, f"not a weakloc checkpoint ({why})",
                      "pass a .safetensors file written by `weakloc train` (e.g. RUN/best.safetensors); "
                      "pickled .pt/.pth files are never loaded, for safety")


def read_card(path: str | Path) -> dict[str, Any]:
    """The model card stored inside a checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint file does not exist", "check the path (e.g. RUN/best.safetensors)")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise _not_a_checkpoint(path, f"unreadable as safetensors: {exc}") from None
    if CARD_KEY not in metadata:
        raise _not_a_checkpoint(path, "safetensors file without a weakloc model card")
    return json.loads(metadata[CARD_KEY])


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[Localizer, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights; returns (model in eval mode, card)."""
    path = Path(path)
    card = read_card(path)
    model = build_model(card["method"], card["setup"], card.get("options"))
    state = model.upgrade_state_dict(load_file(str(path), device="cpu"))  # older key names, if any
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise _not_a_checkpoint(path, f"weights do not fit method {card['method']} "
                                      f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)")
    return model.to(device).eval(), card


def update_card(path: str | Path, **fields: Any) -> dict[str, Any]:
    """Add fields (e.g. test metrics) to a checkpoint's card, rewriting the file atomically."""
    path = Path(path)
    card = read_card(path)
    card.update(fields)
    state = load_file(str(path))
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={CARD_KEY: json.dumps(card, default=str)})
    write_json(path.with_suffix(".json"), card)
    return card


# card fields that evaluating a checkpoint writes into it: not part of what decides its predictions
EVALUATION_FIELDS = ("test_metrics", "test_data")


def model_digest(path: str | Path) -> str:
    """SHA-256 of what decides a checkpoint's predictions: its tensors (names, shapes, bytes) and its card without
    the fields an evaluation writes. Unlike the file's hash, it survives ``update_card`` after an evaluation."""
    path = Path(path)
    card = {k: v for k, v in read_card(path).items() if k not in EVALUATION_FIELDS}
    return weights_digest(path, json.dumps(card, sort_keys=True, default=str).encode())
