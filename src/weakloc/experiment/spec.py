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
    test = { dataset = "a" }    # optional: data overrides for the evaluation only (train on one source, test on another)
    cross = ["ldm", "lama"]     # optional: also test on each of these local generators' test split (Figure 6;
                                # a run with part = "figure6" is scored on these only)
    part = "table3"             # optional: the report part the run belongs to (table2, table3, figure6; study report)
    robustness = true           # optional: which runs [evaluate] perturb applies to (default: every run)
    init_from = "patches-A"     # optional: an earlier run whose best weights initialise the layers both networks
                                # share (train.init = its best.safetensors, init_partial = true)
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
RUN_KEYS = {"method", "setup", "name", "train", "data", "test", "cross", "part", "robustness", "init_from"}


@dataclass
class RunSpec:
    method: str
    setup: str
    name: str
    train: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)
    cross: list[str] = field(default_factory=list)
    part: str = ""
    robustness: bool | None = None
    init_from: str = ""


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

    def test_config(self, run: RunSpec) -> DataConfig:
        """The data a run is evaluated on: its own, with ``test`` overrides (training-only choices dropped)."""
        if not run.test:
            return self.data_config(run)
        values = {**self.data, **run.data, **run.test}
        if "train_local" not in run.test:
            values.pop("train_local", None)
        return from_dict(DataConfig, values, f"experiment {self.name}, run {run.name}: test")

    def cross_config(self, run: RunSpec, generator: str) -> DataConfig:
        """The run's test data with the local fakes of one generator (``cross``)."""
        values = {**self.data, **run.data, **run.test, "local": [generator]}
        values.pop("train_local", None)
        return from_dict(DataConfig, values, f"experiment {self.name}, run {run.name}: cross {generator}")

    def robustness_runs(self) -> list[RunSpec]:
        """The runs ``[evaluate] perturb`` applies to: those marked ``robustness = true``, or all when none is."""
        if not self.evaluate.perturb:
            return []
        marked = [run for run in self.runs if run.robustness]
        return marked or [run for run in self.runs if run.robustness is None]

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
                            run.get("train", {}), run.get("data", {}), run.get("test", {}),
                            [str(g) for g in run.get("cross", [])], str(run.get("part", "")), run.get("robustness"),
                            str(run.get("init_from", ""))))
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        raise ConfigError(f"{path}: run names must differ (two runs would share a folder): "
                          f"{', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    if not runs:
        raise ConfigError(f"{path}: the experiment lists no [[runs]]")
    _check_init_from(path, runs)
    _override_runs(runs, overrides or [])
    exp = Experiment(tree.get("name", path.stem), tree.get("description", ""), tree.get("table", "runs"),
                     tree.get("data", {}), tree.get("train", {}),
                     from_dict(EvalConfig, tree.get("evaluate", {}), f"{path}: evaluate"), runs, path.read_text())
    for run in runs:  # validate every run's configuration before any training starts
        exp.data_config(run), exp.train_config(run), exp.test_config(run)
        for generator in run.cross:
            exp.cross_config(run, generator)
    parse_perturbations(exp.evaluate.perturb, f"{path}: [evaluate] perturb")  # robustness specs, checked early
    return exp


def _check_init_from(path: Path, runs: list[RunSpec]) -> None:
    """``init_from`` names a run listed before (runs train in order) and replaces an init file."""
    for i, run in enumerate(runs):
        if not run.init_from:
            continue
        earlier = [r.name for r in runs[:i]]
        if run.init_from not in earlier:
            where = "is listed after it" if any(r.name == run.init_from for r in runs) else "is not in the experiment"
            raise ConfigError(f"{path}: run {run.name}: init_from = {run.init_from!r} {where}; fix: name a run "
                              f"listed before it ({', '.join(earlier) or 'none is'})")
        if run.train.get("init"):
            raise ConfigError(f"{path}: run {run.name}: both init_from and train.init; fix: keep one of them")


def _override_runs(runs: list[RunSpec], overrides: list[str]) -> None:
    """A command-line ``train.X=...`` / ``data.X=...`` wins over the file's per-run value of X too."""
    for text in overrides:
        keys, value = parse_override(text)
        if len(keys) == 2 and keys[0] in ("train", "data"):
            for run in runs:
                section = getattr(run, keys[0])
                if keys[1] in section:
                    section[keys[1]] = value
