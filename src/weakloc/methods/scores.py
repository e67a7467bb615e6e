"""Image scores in [0, 1] and option checks shared by the methods (the contract's ``score``)."""

from __future__ import annotations

import torch

CLASS_SCORES = ("softmax", "logit")  # from a 2-class classifier
MAP_SCORES = ("mean", "max")  # from the fake-probability map


def class_score(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """[B, 2] logits -> [B]: "softmax" p(fake), or "logit": the sigmoid of the raw fake logit, which ranks
    images exactly as the official raw-logit score (same AP/AUC) while staying in [0, 1]."""
    logits = logits.float()
    return logits.softmax(dim=1)[:, 1] if kind == "softmax" else torch.sigmoid(logits[:, 1])


def map_score(fake_map: torch.Tensor, kind: str) -> torch.Tensor:
    """[B, h, w] map in [0, 1] -> [B]: its "mean" or its "max"."""
    return fake_map.mean(dim=(1, 2)) if kind == "mean" else fake_map.amax(dim=(1, 2))


def image_score(kind: str, fake_map: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
    return map_score(fake_map, kind) if kind in MAP_SCORES else class_score(logits, kind)


def check_choice(option: str, value: str | None, allowed: tuple[str, ...], setup: str) -> None:
    """Reject an option value this setup cannot honour (rather than silently ignore it)."""
    if value is not None and value not in allowed:
        choices = ", ".join(allowed) if allowed else "none (leave it unset)"
        raise ValueError(f"{option}={value!r} is not available in setup {setup}; choose: {choices}")
