"""``weakloc demo`` (the main job) and ``weakloc experiment`` (any declarative experiment)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import Sets, app, guarded


PRESETS = {"default": "study", "quick": "study-quick", "paper": "study-paper"}


@app.command()
def demo(preset: Annotated[str, typer.Option(help="default: the whole study on the built-in benchmark (about 20 min "
                                                  "on 2 CPU cores); quick: every stage at toy size (a few minutes); "
                                                  "paper: the paper's runs on the released DOLOS data (GPUs; give "
                                                  "--data-root)")] = "default",
         out: Annotated[Optional[Path], typer.Option(help="report folder (default runs/demo, runs/demo-quick, "
                                                          "runs/demo-paper)")] = None,
         data_root: Annotated[Optional[str], typer.Option(help="where the built-in benchmark is made (default data), "
                                                               "or the DOLOS folder for --preset paper")] = None,
         experiment: Annotated[Optional[str], typer.Option(help="run this built-in experiment instead of a preset's "
                                                                "(see `weakloc experiment --list`)")] = None,
         sets: Sets = None) -> None:
    """The main job: the paper's study (Tables 2 and 3, Figures 3-7, robustness, the findings checked), from the
    benchmark's build to report.md / report.html. Every stage is kept: rerun the command to resume or re-report."""
    def go():
        from ..errors import ConfigError
        from ..experiment.run import run_experiment
        from ..experiment.spec import load_experiment

        if preset not in PRESETS:
            raise ConfigError(f"--preset must be one of {', '.join(PRESETS)}, not {preset!r}")
        if preset == "paper" and not data_root and not experiment:
            raise ConfigError("--preset paper runs on the released DOLOS data: give its folder with --data-root "
                              "(the one holding celebahq/ and ffhq/; README, 'The paper's study')")
        overrides = ([f"data.root={data_root}"] if data_root else []) + (sets or [])
        exp = load_experiment(experiment or PRESETS[preset], overrides)
        folder = out or Path("runs") / ("demo" if preset == "default" else f"demo-{preset}")
        run_experiment(exp, folder)
        typer.echo((folder / "report.md").read_text())
        extra = f"; page: {folder / 'report.html'}" if (folder / "report.html").exists() else ""
        typer.echo(f"report: {folder / 'report.md'}{extra}; checkpoints: {folder}/*/best.safetensors")
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
