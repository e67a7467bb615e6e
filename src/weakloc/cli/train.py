"""``weakloc train``: one localizer, one method and setup."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import DataOptions, app, guarded, load_data, with_data_options


@app.command()
@with_data_options
def train(data: DataOptions,
          out: Annotated[Path, typer.Option(help="run folder (checkpoints, history, resume state)")],
          method: Annotated[str, typer.Option(help="patches | gradcam | attention")] = "patches",
          setup: Annotated[str, typer.Option(help="A: real+full fakes; B: real+local fakes; C: local fakes+masks")] = "A",
          init: Annotated[Optional[Path], typer.Option(help="local Xception weights to initialise the backbone: "
                                                           "timm legacy_xception (e.g. ImageNet) or FFD's "
                                                           "xcp_reg.tar (docs/import.md)")] = None,
          init_partial: Annotated[bool, typer.Option(help="accept an --init file that fills only part of the "
                                                          "backbone (refused otherwise)")] = False,
          overwrite: Annotated[bool, typer.Option(help="delete a different earlier run in --out")] = False) -> None:
    """Train one localizer (resumes automatically when --out holds the same, unfinished run)."""
    def go():
        from ..config import TrainConfig, from_dict
        from ..train.loop import train as train_run

        tree = data.tree()
        values = {**tree.get("train", {}), "method": method, "setup": setup}
        if init:
            values["init"] = str(init)
        if init_partial:  # the flag only turns it on: a TOML train.init_partial = true stays
            values["init_partial"] = True
        cfg = from_dict(TrainConfig, values, "train")
        resolved, samples = load_data(tree, setup=setup)
        result = train_run(out, resolved, cfg, samples, overwrite=overwrite)
        typer.echo(f"best checkpoint: {result.best_checkpoint}")
    guarded(go)
