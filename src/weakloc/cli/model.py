"""Using one checkpoint: ``weakloc info`` (its card) and ``weakloc serve`` (the local web page)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import app, guarded


@app.command()
def info(checkpoint: Annotated[Path, typer.Argument(help="a .safetensors checkpoint")]) -> None:
    """Print a checkpoint's model card (method, setup, preprocessing, training data, metrics)."""
    def go():
        from ..train.checkpoint import read_card

        typer.echo(json.dumps(read_card(checkpoint), indent=2))
    guarded(go)


@app.command()
def serve(checkpoint: Annotated[Path, typer.Argument(help="a .safetensors checkpoint")],
          port: Annotated[int, typer.Option(help="port on localhost (0 = any free port)")] = 8765,
          host: Annotated[str, typer.Option(help="address to bind (keep 127.0.0.1 unless you mean it)")] = "127.0.0.1",
          device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto") -> None:
    """A local web page: drop an image, see its fake score, heatmap overlay and mask, move the threshold."""
    def go():
        from ..predict.detector import load
        from ..serve import serve as run_server

        run_server(load(checkpoint, device), host, port)
    guarded(go)
