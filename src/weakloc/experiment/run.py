"""Running an experiment: the benchmark (when built in), then per run its training, its evaluation (on its own
test split, or on the run's ``test`` data), its ``cross`` tests and its robustness table, then the report.

Every stage keeps its output, so a second run, or a rerun after a kill at any point, redoes nothing that is done
and ends with the same numbers: training resumes from its last epoch (train/loop.py), a finished run returns at
once, and an evaluation whose model (weights and card), data and settings are unchanged is read back (stages.cached)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from ..config import DataConfig
from ..data.load import load_samples
from ..device import ProcessGroup, pick_device
from ..evaluate.robustness import evaluate_robustness
from ..evaluate.scoring import evaluate_checkpoint
from ..files import write_json, write_text
from ..generate.builtin import ensure_builtin, is_complete
from ..train.checkpoint import model_digest
from ..train.loop import train
from .report import write_experiment_report
from .spec import Experiment, RunSpec
from .stages import StagePlan, cached

FORMAT = 1  # bump when an evaluation's stored result changes shape
# relative cost of one training image (full Xception vs Patches' first blocks), for the overall estimate only
IMAGE_COST = {"patches": 1.0}
XCEPTION_COST = 3.5


def _used(data: DataConfig) -> dict:
    """What a resolved data configuration used: source and generators."""
    return {"dataset": data.dataset, "local": data.train_local or data.local, "full": data.full}


class _Runner:
    """The stages of one experiment over shared state (results, each run's samples)."""

    def __init__(self, exp: Experiment, out_dir: Path, group: ProcessGroup, progress: bool, overwrite: bool) -> None:
        self.exp, self.out_dir, self.group, self.overwrite = exp, out_dir, group, overwrite
        self.bars = progress and sys.stderr.isatty()  # tqdm bars only on a terminal; stage lines always
        self.progress = progress
        self.results: dict[str, dict] = {}
        self.checkpoints: dict[str, Path] = {}

    def say(self, text: str) -> None:
        if self.progress:
            print(f"  {text}", flush=True)

    def samples(self, data: DataConfig, setup: str | None = None):
        notes: list[str] = []
        resolved, samples = load_samples(data, notes, setup)
        for note in notes:
            self.say(note)
        return resolved, samples

    def benchmark(self) -> bool:
        configs = [self.exp.data_config(r) for r in self.exp.runs] + [self.exp.test_config(r) for r in self.exp.runs]
        built = [c for c in configs if c.layout == "builtin"]
        computed = any(not is_complete(c) for c in built)
        for config in {(c.root, c.builtin_preset, c.builtin_images, c.builtin_size, c.builtin_seed): c
                       for c in built}.values():
            ensure_builtin(config, progress=self.bars, log=None if self.bars else self.say)
        self.group.barrier()  # the other processes (torchrun) wait for the data before training
        return computed

    def train(self, run: RunSpec) -> bool:
        data, samples = self.samples(self.exp.data_config(run), run.setup)
        cfg = self.exp.train_config(run)
        if run.init_from:  # trained before this run (spec.py checks the order; run_experiment adds it to --only)
            cfg = dataclasses.replace(cfg, init=str(self.checkpoints[run.init_from]), init_partial=True)
        trained = train(self.out_dir / run.name, data, cfg, samples, progress=self.progress, overwrite=self.overwrite)
        self.checkpoints[run.name] = trained.best_checkpoint
        last = trained.history[-1]
        best = min(trained.history, key=lambda h: h["val_loss"])
        self.say(f"{run.name}: {len(trained.history)} epochs, best val loss {best['val_loss']:.4f} (epoch "
                 f"{best['epoch']}), last train loss {last['train_loss']:.4f}, {last['images_per_s']:.0f} img/s")
        self.results[run.name] = {"method": run.method, "setup": run.setup, "part": run.part,
                                  "history": trained.history, "trained_on": _used(data)}
        return trained.resumed_from_epoch < len(trained.history)

    def _key(self, run: RunSpec, data: DataConfig) -> dict:
        """What decides an evaluation stage's result: the model (weights and card), the data, the settings."""
        return {"format": FORMAT, "checkpoint": model_digest(self.checkpoints[run.name]),
                "data": dataclasses.asdict(data), "evaluate": dataclasses.asdict(self.exp.evaluate)}

    def _evaluate(self, run: RunSpec, data: DataConfig, folder: Path) -> tuple[dict, bool]:
        checkpoint = self.checkpoints[run.name]
        key = self._key(run, data)

        def compute() -> dict:
            resolved, samples = self.samples(data)
            result = evaluate_checkpoint(checkpoint, resolved, samples, self.exp.evaluate, folder, progress=self.bars)
            return {**result, "tested_on": _used(resolved)}
        return cached(folder, key, compute)

    def evaluate(self, run: RunSpec) -> bool:
        result, computed = self._evaluate(run, self.exp.test_config(run), self.out_dir / run.name / "eval")
        self.results[run.name].update(result)
        loc, det = result["localization"], result.get("detection", {})
        ap = f", AP {det['ap']:.1f}" if "ap" in det else ""
        self.say(f"{run.name} on {result['tested_on']['dataset']} {','.join(result['tested_on']['local'])}: "
                 f"IoU {loc['iou_lg']:.1f}, PBCA {loc['pbca_lg']:.1f}{ap}")
        return computed

    def cross(self, run: RunSpec, generator: str) -> bool:
        folder = self.out_dir / run.name / f"eval-{generator}"
        result, computed = self._evaluate(run, self.exp.cross_config(run, generator), folder)
        keep = ("localization", "pixel", "n_local", "threshold", "tested_on", "baselines")
        self.results[run.name].setdefault("cross", {})[generator] = {k: result[k] for k in keep if k in result}
        self.say(f"{run.name} on {generator}: IoU {result['localization']['iou_lg']:.1f}")
        return computed

    def robustness(self, run: RunSpec) -> bool:
        data = self.exp.test_config(run)
        folder = self.out_dir / run.name / "eval" / "robustness"
        key = self._key(run, data)

        def compute() -> list:
            resolved, samples = self.samples(data)
            clean = {k: v for k, v in self.results[run.name].items() if k not in ("cross", "robustness")}
            return evaluate_robustness(self.checkpoints[run.name], resolved, samples, self.exp.evaluate, folder,
                                       clean=clean, progress=self.bars)["rows"]
        rows, computed = cached(folder, key, compute)
        self.results[run.name]["robustness"] = rows
        return computed


def _train_weight(exp: Experiment, run: RunSpec) -> float:
    cfg = exp.train_config(run)
    from ..train.loop import resolve

    cfg = resolve(cfg)
    return cfg.epochs * cfg.iters_per_epoch * cfg.batch_size * IMAGE_COST.get(run.method, XCEPTION_COST)


def _with_sources(runs: list[RunSpec], names: list[str]) -> set[str]:
    """``names`` and the runs they start from (``init_from``), transitively."""
    by_name = {run.name: run for run in runs}
    chosen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in chosen or name not in by_name:
            continue
        chosen.add(name)
        todo.append(by_name[name].init_from)
    return chosen


def run_experiment(exp: Experiment, out_dir: str | Path, *, progress: bool = True, overwrite: bool = False,
                   only: list[str] | None = None) -> dict:
    """Run every stage (reusing what is done); returns {run name: results}. Writes results.json, stages.json,
    the report, and a copy of the experiment file into ``out_dir``."""
    out_dir = Path(out_dir)
    group = ProcessGroup.from_env(pick_device("auto"))
    wanted = _with_sources(exp.runs, only) if only else {run.name for run in exp.runs}
    runs = [run for run in exp.runs if run.name in wanted]
    runner = _Runner(exp, out_dir, group, progress and group.is_main, overwrite)
    builtin = any(c.layout == "builtin" for c in (exp.data_config(r) for r in runs))
    if not group.is_main:  # under torchrun the other processes only train
        if builtin:
            group.barrier()  # while the main process builds the benchmark
        for run in runs:
            runner.train(run)
        group.close()
        return {}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "experiment.toml", exp.source)
    plan = StagePlan(exp.name, out_dir / "stages.json", progress=runner.progress)
    if builtin:
        plan.add("benchmark", 5000, runner.benchmark)
    robust = {run.name for run in exp.robustness_runs()}
    for run in runs:
        plan.add(f"train {run.name}", _train_weight(exp, run), lambda run=run: runner.train(run))
        if not (run.cross and run.part == "figure6"):  # Figure 6's runs are scored on their cross test sets only
            plan.add(f"evaluate {run.name}", 300, lambda run=run: runner.evaluate(run))
        for generator in run.cross:
            plan.add(f"evaluate {run.name} on {generator}", 300,
                     lambda run=run, generator=generator: runner.cross(run, generator))
        if run.name in robust:
            plan.add(f"robustness {run.name}", 300 * len(exp.evaluate.perturb) * 3,
                     lambda run=run: runner.robustness(run))
    plan.add("report", 200, lambda: _report(exp, runner.results, out_dir, runner.checkpoints, plan))
    plan.run()
    group.close()  # the process group this function started under torchrun, if any
    return runner.results


def _report(exp: Experiment, results: dict, out_dir: Path, checkpoints: dict[str, Path], plan: StagePlan) -> bool:
    write_json(out_dir / "results.json", results)
    write_experiment_report(exp, results, out_dir, checkpoints=checkpoints, timings=plan.timings)
    return True
