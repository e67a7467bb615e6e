"""``weakloc data builtin`` and ``weakloc data summary``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import DataOptions, data_app, guarded, load_data, with_data_options


@data_app.command("builtin")
def data_builtin(root: Annotated[Path, typer.Argument(help="folder to write ROOT/builtin into")] = Path("data"),
                 n: Annotated[int, typer.Option(help="crops per kind (real, local fake, full fake)")] = 360,
                 size: Annotated[int, typer.Option(help="crop size in pixels")] = 96,
                 seed: Annotated[int, typer.Option(help="random seed")] = 0) -> None:
    """Build the small built-in dataset (DOLOS layout) from photographs shipped inside installed packages."""
    def go():
        from ..generate.builtin import build_builtin

        typer.echo(f"built-in dataset: {build_builtin(root, n=n, size=size, seed=seed)}")
    guarded(go)


@data_app.command("summary")
@with_data_options
def data_summary(data: DataOptions) -> None:
    """Count the images of a dataset by split and kind (checks the layout without training)."""
    def go():
        from collections import Counter

        resolved, samples = load_data(data.tree())
        counts = Counter((s.split, s.kind) for s in samples)
        missing = sum(1 for s in samples if s.kind == "local" and s.mask_path is None)
        if resolved.layout == "dolos":
            typer.echo(f"dataset {Path(resolved.root) / (resolved.dataset or '')}: full "
                       f"{', '.join(resolved.full or []) or '-'}; local {', '.join(resolved.local or []) or '-'}")
        typer.echo("split\treal\tfull\tlocal")
        for split in ("train", "valid", "test"):
            typer.echo(f"{split}\t" + "\t".join(str(counts[(split, k)]) for k in ("real", "full", "local")))
        if missing:
            typer.echo(f"{missing} local fakes have no mask")
    guarded(go)
