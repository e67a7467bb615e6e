"""Declarative experiments: a TOML file names the data, the runs (method x setup, with overrides) and the
report; running it trains every run (resuming finished or interrupted ones), predicts the shared test
split, scores it, and writes one report folder.

File shape (see ``experiments/*.toml``)::

    name = "table2-builtin"
    table = "table2"            # report layout
    [data]   ...                # DataConfig fields, shared by every run
    [train]  ...                # TrainConfig fields, shared by every run
    [evaluate] ...              # EvalConfig fields
    [[runs]]
    method = "patches"
    setup = "A"
    train = { epochs = 3 }      # optional per-run overrides
    data = { local = ["ldm"] }  # optional per-run data overrides (cross-generator / cross-source)
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .checkpoint import load_checkpoint, update_card
from .config import DataConfig, EvalConfig, TrainConfig, apply_overrides, from_dict, parse_override, read_toml
from .data.samples import select
from .errors import ConfigError
from .evaluate.report import write_experiment_report
from .evaluate.run import evaluate_predictions, test_sets, write_results
from .io import write_json, write_text
from .pipeline import data_where, load_samples
from .predictions import predict_samples
from .runtime import ProcessGroup, pick_device
from .train import train

TOP_KEYS = {"name", "description", "table", "data", "train", "evaluate", "runs"}
RUN_KEYS = {"method", "setup", "name", "train", "data"}


@dataclass
class RunSpec:
    method: str
    setup: str
    name: str
    train: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Experiment:
    name: str
    description: str
    table: str
    data: dict[str, Any]
    train: dict[str, Any]
    evaluate: EvalConfig
    runs: list[RunSpec]
    source: str  # the TOML text, copied into the report folder

    def data_config(self, run: RunSpec) -> DataConfig:
        return from_dict(DataConfig, {**self.data, **run.data}, f"experiment {self.name}, run {run.name}: data")

    def train_config(self, run: RunSpec) -> TrainConfig:
        values = {**self.train, **run.train, "method": run.method, "setup": run.setup}
        return from_dict(TrainConfig, values, f"experiment {self.name}, run {run.name}: train")


def builtin_experiments() -> dict[str, Path]:
    folder = resources.files("weakloc") / "experiments"
    return {p.name.removesuffix(".toml"): Path(str(p)) for p in folder.iterdir() if p.name.endswith(".toml")}


def load_experiment(name_or_path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """An experiment from a file path or a built-in name; ``overrides`` like ``train.epochs=2``."""
    path = Path(name_or_path)
    if not path.exists():
        known = builtin_experiments()
        if str(name_or_path) not in known:
            raise ConfigError(f"{name_or_path}: no such experiment file or built-in experiment "
                              f"(built-in: {', '.join(sorted(known))})")
        path = known[str(name_or_path)]
    tree = apply_overrides(read_toml(path), overrides or [])
    unknown = set(tree) - TOP_KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(TOP_KEYS))}")
    runs = []
    for i, run in enumerate(tree.get("runs", [])):
        bad = set(run) - RUN_KEYS
        if bad or "method" not in run or "setup" not in run:
            raise ConfigError(f"{path}: runs[{i}] needs method and setup, and only {', '.join(sorted(RUN_KEYS))}")
        runs.append(RunSpec(run["method"], run["setup"], run.get("name", f"{run['method']}-{run['setup']}"),
                            run.get("train", {}), run.get("data", {})))
    if not runs:
        raise ConfigError(f"{path}: the experiment lists no [[runs]]")
    _override_runs(runs, overrides or [])
    exp = Experiment(tree.get("name", path.stem), tree.get("description", ""), tree.get("table", "runs"),
                     tree.get("data", {}), tree.get("train", {}),
                     from_dict(EvalConfig, tree.get("evaluate", {}), f"{path}: evaluate"), runs, path.read_text())
    for run in runs:  # validate every run's configuration before any training starts
        exp.data_config(run), exp.train_config(run)
    return exp


def _override_runs(runs: list[RunSpec], overrides: list[str]) -> None:
    """A command-line ``train.X=...`` / ``data.X=...`` wins over the file's per-run value of X too."""
    for text in overrides:
        keys, value = parse_override(text)
        if len(keys) == 2 and keys[0] in ("train", "data"):
            for run in runs:
                section = getattr(run, keys[0])
                if keys[1] in section:
                    section[keys[1]] = value


def run_experiment(exp: Experiment, out_dir: str | Path, *, progress: bool = True, overwrite: bool = False,
                   only: list[str] | None = None) -> dict:
    """Train, predict and score every run; returns {run name: metrics}. Finished runs are reused."""
    out_dir = Path(out_dir)
    group = ProcessGroup.from_env(pick_device("auto"))
    results: dict[str, dict] = {}
    if group.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text(out_dir / "experiment.toml", exp.source)
    for run in exp.runs:
        if only and run.name not in only:
            continue
        data, samples = load_samples(exp.data_config(run), progress=progress and group.is_main)
        cfg = exp.train_config(run)
        run_dir = out_dir / run.name
        trained = train(run_dir, data, cfg, samples, progress=progress, overwrite=overwrite)
        if not group.is_main:
            continue
        results[run.name] = evaluate_checkpoint(trained.best_checkpoint, data, samples, exp.evaluate,
                                                run_dir / "eval", progress=progress)
        results[run.name].update(method=run.method, setup=run.setup, history=trained.history)
    if group.is_main:
        write_json(out_dir / "results.json", results)
        write_experiment_report(exp, results, out_dir)
    group.close()  # the process group this function started under torchrun, if any
    return results


def evaluate_checkpoint(checkpoint: Path, data: DataConfig, samples: list, cfg: EvalConfig, out_dir: Path, *,
                        progress: bool = True, device: str = "auto") -> dict:
    """Predict the test split (local fakes + reals) with a checkpoint, score it, record the metrics in its card."""
    model, card = load_checkpoint(checkpoint, pick_device(device))
    local, real = test_sets(samples, data_where(data))
    predictions = predict_samples(model, card, real + local, batch_size=cfg.batch_size,
                                  device=next(model.parameters()).device, progress=progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    predictions.save_npz(out_dir / "predictions.npz")
    result = evaluate_predictions(predictions, samples, data, cfg, data_where(data))
    write_results(result, out_dir)
    summary = {k: v for k, v in result.items() if k != "per_image"}
    update_card(checkpoint, test_metrics=summary, test_data={"root": data.root, "dataset": data.dataset,
                                                             "local": data.local, "n_local": len(local),
                                                             "n_real": len(real)})
    return summary
