"""One optimisation loop for every stage (a pixel DDPM, an autoencoder, a latent DDPM): Adam with a linear
warmup then a constant rate, optional EMA of the weights, bf16 autocast where native, a progress bar with
loss and images/s, and atomic checkpoints that a rerun resumes from.

Exactness of resume: each step's random draws come from (seed, step) (the stage's ``loss`` function draws
them), and the checkpoint holds the weights, the EMA, Adam's moments and the loss history, so stopping
after a checkpoint and resuming gives the same end state as never stopping."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from ...files import atomic_path

LossFn = Callable[[int], torch.Tensor]  # step -> scalar loss on that step's batch
Hook = Callable[[int], None]


@dataclass
class Stage:
    """What one loop optimises."""

    name: str  # also the checkpoint's file name
    model: torch.nn.Module
    loss: LossFn
    steps: int
    batch_size: int
    lr: float
    warmup: int = 0
    ema_decay: float | None = None  # None: no EMA
    checkpoint_every: int = 500
    on_checkpoint: "Callable[[StageResult], None] | None" = None  # after each checkpoint (export, samples)
    on_step: Hook | None = None  # called after each finished step (tests use it to interrupt)


@dataclass
class StageResult:
    step: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0  # training time summed over all sessions of the stage
    ema: object | None = None  # diffusers EMAModel, when the stage has one

    def final_loss(self, last: int = 100) -> float | None:
        tail = self.losses[-last:]
        return sum(tail) / len(tail) if tail else None


def _ema(model: torch.nn.Module, decay: float):
    from diffusers.training_utils import EMAModel

    # the decay warms up as 1 - (1 + step)^-3/4 (diffusers' schedule for short runs), capped at ``decay``
    return EMAModel(model.parameters(), decay=decay, use_ema_warmup=True, inv_gamma=1.0, power=0.75)


def checkpoint_path(folder: Path, stage: Stage) -> Path:
    return folder / f"{stage.name}.pt"


def _save(path: Path, stage: Stage, optimizer, result: StageResult) -> None:
    state = {"model": stage.model.state_dict(), "optimizer": optimizer.state_dict(), "step": result.step,
             "losses": torch.tensor(result.losses, dtype=torch.float64), "seconds": result.seconds}
    if result.ema is not None:
        state["ema"] = result.ema.state_dict()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    """A stage checkpoint, read safely (tensors and plain containers only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def _resume(path: Path, stage: Stage, optimizer, result: StageResult) -> None:
    if not path.exists():
        return
    state = load_checkpoint(path)
    stage.model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    result.step, result.seconds = int(state["step"]), float(state["seconds"])
    result.losses = state["losses"].tolist()
    if result.ema is not None and "ema" in state:
        result.ema.load_state_dict(state["ema"])


def run_stage(stage: Stage, folder: Path, *, progress: bool = True) -> StageResult:
    """Train ``stage`` up to ``stage.steps`` steps, resuming from ``folder/NAME.pt`` when it exists."""
    folder.mkdir(parents=True, exist_ok=True)
    optimizer = torch.optim.Adam(stage.model.parameters(), lr=stage.lr)
    result = StageResult(step=0, ema=_ema(stage.model, stage.ema_decay) if stage.ema_decay is not None else None)
    path = checkpoint_path(folder, stage)
    _resume(path, stage, optimizer, result)
    if result.step >= stage.steps:
        return result
    stage.model.train()
    bar = tqdm(total=stage.steps, initial=result.step, desc=stage.name, unit="step", disable=not progress,
               dynamic_ncols=True)
    started, done_here = time.perf_counter(), 0
    try:
        while result.step < stage.steps:
            for group in optimizer.param_groups:
                group["lr"] = stage.lr * min(1.0, (result.step + 1) / stage.warmup) if stage.warmup else stage.lr
            loss = stage.loss(result.step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(stage.model.parameters(), 1.0)
            optimizer.step()
            if result.ema is not None:
                result.ema.step(stage.model.parameters())
            result.step += 1
            done_here += 1
            result.losses.append(float(loss.detach()))
            elapsed = time.perf_counter() - started
            bar.update(1)
            bar.set_postfix(loss=f"{result.final_loss(50):.4f}",
                            img_s=f"{done_here * stage.batch_size / max(elapsed, 1e-9):.1f}", refresh=False)
            if result.step % stage.checkpoint_every == 0 or result.step == stage.steps:
                result.seconds += time.perf_counter() - started
                started, done_here = time.perf_counter(), 0
                _save(path, stage, optimizer, result)
                if stage.on_checkpoint:
                    stage.on_checkpoint(result)
            if stage.on_step:
                stage.on_step(result.step)
    finally:
        bar.close()
    stage.model.eval()
    return result
