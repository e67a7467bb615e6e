"""Running an experiment: train every run (resuming finished or interrupted ones), predict the shared test
split, score it, and write one report folder (report.md, results.json, the experiment file)."""

from __future__ import annotations

from pathlib import Path

from ..data.load import load_samples
from ..device import ProcessGroup, pick_device
from ..evaluate.robustness import evaluate_robustness
from ..evaluate.scoring import evaluate_checkpoint
from ..files import write_json, write_text
from ..generate.builtin import ensure_builtin
from ..train.loop import train
from .report import write_experiment_report
from .spec import Experiment


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
        data = exp.data_config(run)
        if group.is_main:
            ensure_builtin(data, progress=progress)
        group.barrier()
        notes: list[str] = []
        data, samples = load_samples(data, notes, run.setup)
        if progress and group.is_main:
            for note in notes:
                print(note, flush=True)
        cfg = exp.train_config(run)
        run_dir = out_dir / run.name
        trained = train(run_dir, data, cfg, samples, progress=progress, overwrite=overwrite)
        if not group.is_main:
            continue
        results[run.name] = evaluate_checkpoint(trained.best_checkpoint, data, samples, exp.evaluate,
                                                run_dir / "eval", progress=progress)
        if exp.evaluate.perturb:  # [evaluate] perturb: the same checkpoint on perturbed test images
            robust = evaluate_robustness(trained.best_checkpoint, data, samples, exp.evaluate,
                                         run_dir / "eval" / "robustness", clean=results[run.name], progress=progress)
            results[run.name]["robustness"] = robust["rows"]
        results[run.name].update(method=run.method, setup=run.setup, history=trained.history)
    if group.is_main:
        write_json(out_dir / "results.json", results)
        write_experiment_report(exp, results, out_dir)
    group.close()  # the process group this function started under torchrun, if any
    return results
