"""``weakloc demo`` (the main job) and ``weakloc experiment`` (any declarative experiment)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import Sets, app, guarded


@app.command()
def demo(out: Annotated[Path, typer.Option(help="report folder")] = Path("runs/demo"),
         data_root: Annotated[str, typer.Option(help="where the built-in dataset is made")] = "data",
         experiment: Annotated[str, typer.Option(help="built-in experiment to run (see `weakloc experiment --list`)")]
         = "builtin-table2",
         sets: Sets = None) -> None:
    """The main job: build the built-in benchmark, train GradCAM, Patches and Attention under setups A, B, C,
    evaluate, print the paper's Table 2 shape (about 18 minutes on 2 CPU cores, the benchmark's build included)."""
    def go():
        from ..experiment.run import run_experiment
        from ..experiment.spec import load_experiment

        exp = load_experiment(experiment, [f"data.root={data_root}"] + (sets or []))
        run_experiment(exp, out)
        typer.echo((out / "report.md").read_text())
        typer.echo(f"report: {out / 'report.md'}; checkpoints: {out}/*/best.safetensors")
    guarded(go)


@app.command()
def experiment(name: Annotated[str, typer.Argument(help="experiment file, or a built-in name (see --list)")] = "",
               out: Annotated[Optional[Path], typer.Option(help="report folder (default runs/NAME)")] = None,
               sets: Sets = None,
               only: Annotated[Optional[list[str]], typer.Option(help="run only these run names")] = None,
               overwrite: Annotated[bool, typer.Option(help="delete a different earlier run in the same folder")] = False,
               list_: Annotated[bool, typer.Option("--list", help="list the built-in experiments")] = False) -> None:
    """Run a declarative experiment (train every run, evaluate, write report.md and results.json)."""
    def go():
        from ..experiment.run import run_experiment
        from ..experiment.spec import builtin_experiments, load_experiment

        if list_ or not name:
            for key, path in sorted(builtin_experiments().items()):
                typer.echo(f"{key}\t{path}")
            return
        exp = load_experiment(name, sets)
        folder = out or Path("runs") / exp.name
        run_experiment(exp, folder, overwrite=overwrite, only=only)
        report = folder / "report.md"
        if report.exists():
            typer.echo(report.read_text())
    guarded(go)
