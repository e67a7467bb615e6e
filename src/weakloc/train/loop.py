"""ONE training loop for every method and setup (the official code had six near-copies).

- setup A: real + fully generated fakes, image labels; B: real + locally inpainted fakes, image labels;
  C: inpainted fakes with masks, no reals. The method's ``loss`` decides how labels or masks are used.
- An epoch is a fixed number of iterations; the batches of epoch ``e`` depend only on (seed, e), so a run
  killed at any point and resumed from its last epoch state ends in exactly the same weights.
- Validation loss over the whole valid split after every epoch; the best ``keep_best`` epochs are kept as
  safetensors checkpoints with a JSON card, and ``best.safetensors`` is the best of them.
- At the end, one pass of the best weights over the validation split chooses the image verdict's threshold
  (train/calibrate.py), written into the best checkpoint's card.
- Under ``torchrun --nproc_per_node N`` the model is wrapped in DistributedDataParallel and each process
  takes its share of every global batch (gloo on CPU, NCCL on GPUs).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import DataConfig, TrainConfig, changed_settings, changes_block, to_dict
from ..data.cache import CachedImages, MaskTarget
from ..data.images import image_size
from ..data.samples import SETUPS, Sample, select, training_selection
from ..device import ProcessGroup, autocast, autocast_dtype, pick_device
from ..errors import ConfigError
from ..files import atomic_path, weights_digest, write_json
from ..methods import METHODS, Localizer, build_model, training_preprocessing
from ..methods.weights import InitReport, load_init_weights
from .calibrate import VerdictRule, calibrate_model, data_name, record_verdict
from .checkpoint import load_checkpoint, read_card, save_checkpoint

STATE_FILE = "state.pt"
CONFIG_FILE = "config.json"
BEST_FILE = "best.safetensors"


@dataclass
class RunResult:
    run_dir: Path
    best_checkpoint: Path
    history: list[dict]
    resumed_from_epoch: int  # 0 for a fresh run
    model: Localizer  # the final weights (in every process)
    init: InitReport | None = None  # what --init loaded (None without an init file)


def resolve(cfg: TrainConfig) -> TrainConfig:
    """Fill the settings left to the method (``None``) with its defaults for this setup."""
    if cfg.method not in METHODS:
        raise ConfigError(f"unknown method {cfg.method!r}; available: {', '.join(sorted(METHODS))}")
    defaults = METHODS[cfg.method].defaults[cfg.setup]
    return dataclasses.replace(cfg, lr=cfg.lr if cfg.lr is not None else defaults.lr,
                               batch_size=cfg.batch_size or defaults.batch_size,
                               epochs=cfg.epochs if cfg.epochs is not None else defaults.epochs)


def resolve_preprocessing(data: DataConfig, cfg: TrainConfig) -> DataConfig:
    """Fill ``data.resize`` / ``data.hflip`` left unset with the method's official choice for the setup."""
    official = training_preprocessing(cfg.method, cfg.setup)
    return dataclasses.replace(data, resize=data.resize or official.resize,
                               hflip=official.hflip if data.hflip is None else data.hflip)


def epoch_indices(n: int, count: int, seed: int, epoch: int) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """``count`` sample indices (a stream of shuffles of range(n)), ``count`` hflip draws and ``count`` quarter-turn
    draws (0-3) for one epoch; the turns are drawn last, so the indices and flips do not depend on them."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    rounds = math.ceil(count / n)
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(rounds)])[:count]
    flips = torch.rand(count, generator=generator) < 0.5
    turns = torch.randint(0, 4, (count,), generator=generator)
    return order.numpy(), flips, turns


def _run_config(data: DataConfig, cfg: TrainConfig) -> dict:
    """What makes the run: its settings, and the tensors of its init file (the same path holding other weights,
    e.g. another run's retrained checkpoint, is another run)."""
    config = {"data": to_dict(data), "train": to_dict(cfg)}
    if cfg.init:  # _build has loaded it: the file exists
        config["init_digest"] = weights_digest(cfg.init)
    return config


# settings that do not make a different run: more epochs continue it; the cache is not the run
# init_partial only allows a load; it changes no weights (and runs made before it existed lack the key)
NOT_THE_RUN = ("train.epochs", "data.cache_dir", "train.init_partial")
PATH_SETTINGS = ("data.root", "data.real", "data.masks", "data.manifest", "train.init")


def _check_run_dir(run_dir: Path, config: dict, overwrite: bool) -> None:
    """Refuse to mix two different runs in one folder; resuming the same run is the normal case."""
    path = run_dir / CONFIG_FILE
    if not path.exists():
        return
    old = json.loads(path.read_text())
    # a setting added to weakloc after the run was made reads as its default there: new settings default to
    # what weakloc did before them. The init file's digest, too, is recorded only since it existed.
    for key, kind in (("data", DataConfig), ("train", TrainConfig)):
        old[key] = {**to_dict(kind()), **old.get(key, {})}  # every setting has a default: kind() is them all
    old.setdefault("init_digest", config.get("init_digest"))
    folder_paths = ("data.full", "data.local") if config["data"].get("layout") == "folder" else ()
    changed = changed_settings({k: old.get(k, {}) for k in config}, config, ignore=NOT_THE_RUN,
                               paths=PATH_SETTINGS + folder_paths)
    if not changed:
        return
    if overwrite:
        for item in run_dir.iterdir():
            shutil.rmtree(item) if item.is_dir() else item.unlink()
        return
    raise ConfigError(f"{run_dir} holds a different run; changed settings {changes_block(changed)}"
                      "\n  fix: choose another output folder, or pass --overwrite to delete it")


def training_scale(train: Sequence[Sample], input_size: int, sample: int = 256) -> dict:
    """How the training images met the model: their native sizes (median and range over up to ``sample`` of
    them, read from the headers) resized to ``input_size``. `predict --scale native` helps when a photo is much
    larger than these (docs: README "Using a trained localizer")."""
    step = max(1, len(train) // sample)
    sizes = np.array([image_size(s.path) for s in list(train)[::step][:sample]]) if train else np.zeros((0, 2))
    if not len(sizes):
        return {"mode": "resize", "input_size": input_size}
    return {"mode": "resize", "input_size": input_size, "native_median": [int(v) for v in np.median(sizes, axis=0)],
            "native_min": [int(v) for v in sizes.min(axis=0)], "native_max": [int(v) for v in sizes.max(axis=0)],
            "sampled": int(len(sizes))}


def _card(data: DataConfig, cfg: TrainConfig, model: Localizer, train: Sequence[Sample], valid: Sequence[Sample],
          epoch: int, val_loss: float, init: InitReport | None = None, scale: dict | None = None) -> dict:
    return {
        "input_size": data.input_size, "resize": data.resize, "hflip": data.hflip, "rot90": data.rot90,
        "mask_resize": data.mask_resize,
        "mean": data.mean, "std": data.std,
        "train_scale": scale,
        "official_preprocessing": (
            dataclasses.asdict(training_preprocessing(cfg.method, cfg.setup)) == {"resize": data.resize, "hflip": data.hflip}
            and not data.rot90 and data.mask_resize in (None, model.mask_resize)),
        "map_size": model.map_size(data.input_size),
        "data": {"layout": data.layout, "root": data.root, "dataset": data.dataset, "real": data.real,
                 "full": data.full, "local": data.local, "train_local": data.train_local, "manifest": data.manifest, "masks": data.masks,
                 "mask_polarity": data.mask_polarity, "binarize_masks": data.binarize_masks,
                 "split_ratios": data.split_ratios, "n_train": len(train), "n_valid": len(valid)},
        "train": {**{k: v for k, v in to_dict(cfg).items() if k not in ("device",)},
                  "init_loaded": init.card() if init else None},
        "seed": cfg.seed, "epoch": epoch, "metrics": {"val_loss": val_loss},
    }


def _validate(model: Localizer, cache: CachedImages, cfg: TrainConfig, device: torch.device,
              dtype: torch.dtype | None, group: ProcessGroup) -> float:
    model.eval()
    total, count = 0.0, 0
    mine = np.arange(group.rank, len(cache), group.world_size)
    with torch.no_grad():
        for start in range(0, len(mine), cfg.val_batch_size):
            index = mine[start:start + cfg.val_batch_size]
            batch = cache.batch(index, device=device)
            images = batch["image"].contiguous(memory_format=torch.channels_last) if cfg.channels_last else batch["image"]
            with autocast(device, dtype):
                loss = model.loss(model(images), batch)
            total += float(loss) * len(index)
            count += len(index)
    total, count = group.sum([total, float(count)])
    model.train()
    return total / max(count, 1)


def train(run_dir: str | Path, data: DataConfig, cfg: TrainConfig, samples: Sequence[Sample], *,
          progress: bool = True, overwrite: bool = False) -> RunResult:
    """Train (or resume, or return the finished) run in ``run_dir``."""
    run_dir = Path(run_dir)
    cfg = resolve(cfg)
    data = resolve_preprocessing(data, cfg)
    device = pick_device(cfg.device)
    group = ProcessGroup.from_env(device)
    try:
        return _train(run_dir, data, cfg, samples, device, group, progress and group.is_main, overwrite)
    finally:
        group.close()


def _train(run_dir: Path, data: DataConfig, cfg: TrainConfig, samples: Sequence[Sample], device: torch.device,
           group: ProcessGroup, progress: bool, overwrite: bool) -> RunResult:
    if cfg.batch_size % group.world_size:
        raise ConfigError(f"train.batch_size {cfg.batch_size} must be divisible by the {group.world_size} processes")
    # first: a refused --init file fails before anything is written or decoded
    model, init = _build(cfg, device, progress)
    config = _run_config(data, cfg)
    if group.is_main:
        _check_run_dir(run_dir, config, overwrite)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / CONFIG_FILE, config)
    group.barrier()
    done = _finished(run_dir, model, cfg, device)
    if done is not None:  # nothing to train: return without decoding the images (a re-run study takes seconds)
        return done

    where = data.root or data.manifest or data.local
    train_set = training_selection(samples, cfg.setup, "train", where)
    valid_set = training_selection(samples, cfg.setup, "valid", where)
    scale = training_scale(train_set, data.input_size)
    # setup C: masks go from their native size straight to the map, as the official loaders resize them
    masks = (MaskTarget(model.map_size(data.input_size), data.mask_resize or model.mask_resize)
             if cfg.setup == "C" else None)
    train_cache = CachedImages.build(train_set, data, masks=masks, desc="decode train", progress=progress)
    valid_cache = CachedImages.build(valid_set, data, masks=masks, desc="decode valid", progress=progress)

    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    dtype = autocast_dtype(cfg.precision, device)
    state_path = run_dir / STATE_FILE
    start_epoch, history, best = _resume(state_path, model, optimizer, cfg, device, progress)
    net = model
    if group.world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    model.train()
    for epoch in range(start_epoch, cfg.epochs):
        started = time.perf_counter()
        loss_sum = _epoch(net, model, optimizer, train_cache, data, cfg, epoch, device, dtype, group, progress)
        seconds = time.perf_counter() - started
        group.average_buffers(model)
        val_loss = _validate(model, valid_cache, cfg, device, dtype, group)
        train_loss = group.sum([loss_sum / cfg.iters_per_epoch])[0] / group.world_size
        record = {"epoch": epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "seconds": seconds,
                  "images_per_s": cfg.iters_per_epoch * cfg.batch_size / seconds}
        history.append(record)
        if group.is_main:
            best = _keep_best(run_dir, model, best, data, cfg, train_set, valid_set, epoch + 1, val_loss, init,
                              scale)
            _save_state(state_path, model, optimizer, epoch + 1, history, best)
            write_json(run_dir / "history.json", history)
            if progress:
                tqdm.write(f"{cfg.method}/{cfg.setup} epoch {epoch + 1}/{cfg.epochs}: train loss {train_loss:.4f}, "
                           f"val loss {val_loss:.4f}, {record['images_per_s']:.1f} img/s")
        group.barrier()
    if not history:
        raise ConfigError(f"{run_dir}: no epoch was trained (train.epochs = {cfg.epochs})")
    if group.is_main and start_epoch < cfg.epochs:
        # finished: the optimizer state (2x the model for Adam) is only needed to resume a killed run
        _save_state(state_path, model, None, cfg.epochs, history, best)
    if group.is_main and "verdict" not in read_card(run_dir / BEST_FILE):  # also a run killed while calibrating
        _calibrate(run_dir, best, data, cfg, samples, valid_cache, device, dtype, progress)
    group.barrier()  # the other processes return once the best checkpoint's card is complete
    return RunResult(run_dir, run_dir / BEST_FILE, history, start_epoch, model, init)


def _finished(run_dir: Path, model: Localizer, cfg: TrainConfig, device: torch.device) -> RunResult | None:
    """The finished run in ``run_dir`` (all epochs done, best checkpoint calibrated), or None."""
    state_path, best = run_dir / STATE_FILE, run_dir / BEST_FILE
    if not (state_path.exists() and best.exists()):
        return None
    state = torch.load(state_path, map_location=device, weights_only=True)
    if state["epoch"] < cfg.epochs or "verdict" not in read_card(best):
        return None
    model.load_state_dict(state["model"])
    return RunResult(run_dir, best, state["history"], state["epoch"], model, None)


def _calibrate(run_dir: Path, best: list, data: DataConfig, cfg: TrainConfig, samples: Sequence[Sample],
               valid_cache: CachedImages, device: torch.device, dtype: torch.dtype | None, progress: bool) -> None:
    """The verdict threshold of the best checkpoint, chosen on the validation split (train/calibrate.py) and
    written into its card and its epoch file's: one pass of the best weights over the validation images, plus
    the split's real images in setup C (which trains on fakes only; without any, the fakes-only rule)."""
    model, _ = load_checkpoint(run_dir / BEST_FILE, device)
    caches = [valid_cache]
    reals = select(samples, "valid", ["real"]) if "real" not in SETUPS[cfg.setup] else []
    if reals:
        caches.append(CachedImages.build(reals, data, desc="decode valid reals", progress=progress))
    verdict = calibrate_model(model, caches, device, dtype=dtype, batch_size=cfg.val_batch_size, split="valid",
                              data=data_name(data, cfg.setup))
    for path in (run_dir / BEST_FILE, run_dir / best[0][2]):
        if path.exists():
            record_verdict(path, verdict)
    if progress:
        rule = VerdictRule.from_card({"verdict": verdict})
        figures = (f"balanced accuracy {verdict['balanced_accuracy']:.3f} on valid (score > 0.5: "
                   f"{verdict['score_at_0.5']['balanced_accuracy']:.3f})" if verdict["n_real"] else verdict["note"])
        tqdm.write(f"verdict: {rule.condition()}; {figures}")


def _build(cfg: TrainConfig, device: torch.device, progress: bool) -> tuple[Localizer, InitReport | None]:
    """The run's model, seeded, optionally initialised from a local weights file (whole, or in part only with
    ``init_partial``), on its device; and what that file filled."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.method, cfg.setup, cfg.options)
    init = load_init_weights(model, cfg.init, partial=cfg.init_partial) if cfg.init else None
    if init and progress:
        tqdm.write(init.summary())
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    return model, init


def _resume(state_path: Path, model: Localizer, optimizer: torch.optim.Optimizer, cfg: TrainConfig,
            device: torch.device, progress: bool) -> tuple[int, list[dict], list[tuple[float, int, str]]]:
    """Load the last epoch's state when there is one: (epochs done, history, best checkpoints)."""
    if not state_path.exists():
        return 0, [], []
    state = torch.load(state_path, map_location=device, weights_only=True)
    model.load_state_dict(state["model"])
    if state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    elif state["epoch"] < cfg.epochs and progress:
        tqdm.write("note: the finished run kept no optimizer state; Adam restarts for the added epochs")
    if progress:
        tqdm.write(f"resuming {state_path.parent} after epoch {state['epoch']}")
    return state["epoch"], state["history"], [tuple(b) for b in state["best"]]


def step_lr(cfg: TrainConfig, step: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based) of a run of ``cfg.epochs * cfg.iters_per_epoch``."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    return cfg.lr * (1 + math.cos(math.pi * step / (cfg.epochs * cfg.iters_per_epoch))) / 2


def _epoch(net: torch.nn.Module, model: Localizer, optimizer: torch.optim.Optimizer, cache: CachedImages,
           data: DataConfig, cfg: TrainConfig, epoch: int, device: torch.device, dtype: torch.dtype | None,
           group: ProcessGroup, progress: bool) -> float:
    """One epoch of ``cfg.iters_per_epoch`` optimizer steps; returns the sum of this process's batch losses."""
    order, flips, turns = epoch_indices(len(cache), cfg.iters_per_epoch * cfg.batch_size, cfg.seed, epoch)
    loss_sum = 0.0
    # a bar updated by hand: iterating a tqdm keeps its count local until it prints, so set_postfix
    # would redraw a stale "0/N" for the whole epoch
    bar = tqdm(total=cfg.iters_per_epoch, desc=f"{cfg.method}/{cfg.setup} epoch {epoch + 1}/{cfg.epochs}",
               disable=None if progress else True, leave=False, unit="it")  # None: no bar in a log file
    for it in range(cfg.iters_per_epoch):
        for group_ in optimizer.param_groups:  # a function of the step alone, so a resumed run continues it exactly
            group_["lr"] = step_lr(cfg, epoch * cfg.iters_per_epoch + it)
        window = slice(it * cfg.batch_size, (it + 1) * cfg.batch_size)
        mine = slice(group.rank, None, group.world_size)  # this process's share of the global batch
        batch = cache.batch(order[window][mine], device=device, flip=flips[window][mine] if data.hflip else None,
                            turns=turns[window][mine] if data.rot90 else None)
        images = batch["image"].contiguous(memory_format=torch.channels_last) if cfg.channels_last else batch["image"]
        with autocast(device, dtype):
            loss = model.loss(net(images), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += float(loss.detach())
        if it % 5 == 0 or it == cfg.iters_per_epoch - 1:
            bar.set_postfix(loss=f"{loss_sum / (it + 1):.4f}", refresh=False)
        bar.update(1)
    bar.close()
    return loss_sum


def _keep_best(run_dir: Path, model: Localizer, best: list, data: DataConfig, cfg: TrainConfig,
               train_set: Sequence[Sample], valid_set: Sequence[Sample], epoch: int, val_loss: float,
               init: InitReport | None = None, scale: dict | None = None) -> list:
    name = f"epoch-{epoch:03d}.safetensors"
    candidates = sorted(best + [(val_loss, epoch, name)])
    kept, dropped = candidates[:cfg.keep_best], candidates[cfg.keep_best:]
    if (val_loss, epoch, name) in kept:
        save_checkpoint(run_dir / name, model, _card(data, cfg, model, train_set, valid_set, epoch, val_loss, init,
                                                   scale))
    for _, _, old in dropped:
        for path in (run_dir / old, (run_dir / old).with_suffix(".json")):
            path.unlink(missing_ok=True)
    top = run_dir / kept[0][2]
    if top.exists():
        for suffix in (".safetensors", ".json"):
            with atomic_path(run_dir / BEST_FILE.replace(".safetensors", suffix)) as tmp:
                shutil.copyfile(top.with_suffix(suffix), tmp)
    return kept


def _save_state(path: Path, model: Localizer, optimizer: torch.optim.Optimizer | None, epoch: int, history: list,
                best: list) -> None:
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict() if optimizer else None,
                    "epoch": epoch,
                    "history": history, "best": [list(b) for b in best]}, tmp)
