"""``weakloc data builtin`` and ``weakloc data summary``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import DataOptions, data_app, guarded, load_data, with_data_options


@data_app.command("builtin")
def data_builtin(root: Annotated[Path, typer.Argument(help="folder to write ROOT/builtin into")] = Path("data"),
                 size_preset: Annotated[str, typer.Option("--preset", help="default (1000 crops per source, "
                                                          "minutes) | quick (20 per source, seconds; for tests)")]
                 = "default",
                 n: Annotated[Optional[int], typer.Option(help="crops per source (split 70/10/20)  "
                                                                "[default: the preset's]")] = None,
                 size: Annotated[Optional[int], typer.Option(help="image side, px (multiple of 16)  "
                                                                  "[default: 32, the shipped generators' size]")]
                 = None,
                 seed: Annotated[int, typer.Option(help="random seed")] = 0,
                 quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False) -> None:
    """Build the built-in benchmark (DOLOS layout): crops of photographs shipped inside installed packages,
    inpainted by RePaint / RePaint-LDM on weakloc's shipped diffusion models and by classical inpainters."""
    def go():
        from ..generate.builtin import build_builtin
        from ..generate.builtin.build import spec_from

        base = build_builtin(root, spec_from(n, size, seed, size_preset), progress=not quiet)
        typer.echo(f"built-in benchmark: {base} (contents: {base / 'contents.md'})")
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
