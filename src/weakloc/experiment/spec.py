"""Declarative experiments: a TOML file names the data, the runs (method x setup, with overrides) and the
report (``run.py`` runs it, ``report.py`` writes its tables).

File shape (see ``presets/*.toml``, the built-in experiments)::

    name = "table2-builtin"
    table = "table2"            # report layout
    [data]   ...                # DataConfig fields, shared by every run
    [train]  ...                # TrainConfig fields, shared by every run
    [evaluate] ...              # EvalConfig fields; perturb = ["jpeg:95,50", "chain:social"] adds robustness
    [[runs]]
    method = "patches"
    setup = "A"
    train = { epochs = 3 }      # optional per-run overrides
    data = { local = ["ldm"] }  # optional per-run data overrides (cross-generator / cross-source)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import DataConfig, EvalConfig, TrainConfig, apply_overrides, from_dict, parse_override, read_toml
from ..data.perturb import parse_perturbations
from ..errors import ConfigError

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
    folder = resources.files("weakloc.experiment") / "presets"
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
    parse_perturbations(exp.evaluate.perturb, f"{path}: [evaluate] perturb")  # robustness specs, checked early
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
