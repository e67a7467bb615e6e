"""``weakloc import``: models made elsewhere, converted into weakloc checkpoints (``import dolos-patches``)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .common import guarded, note

app = typer.Typer(no_args_is_help=True, help="Convert models made elsewhere into weakloc checkpoints.")


class Setup(str, Enum):
    A = "A"
    B = "B"
    C = "C"


class Dataset(str, Enum):
    celebahq = "celebahq"
    ffhq = "ffhq"


# paragraphs as single strings: the help renderer keeps a docstring's line breaks
HELP = ("Convert the authors' released Patches model into a weakloc checkpoint.\n\n"
        "Where the files come from: the bit-ml/dolos README, section \"Pretrained models\", links one zip with "
        "the Patches models of the paper (CelebA-HQ setups A, B, C; trained on FFHQ). It holds "
        "best_model_<epoch>_<score_name>=<score>.pt files written by pytorch-ignite, each a plain state dict. "
        "The official loader takes the file with the highest score; given a folder, so does this command, and "
        "it says which file it took.\n\n"
        "The file is read as tensors only (nothing in it is run) and must have exactly the official names and "
        "shapes. The checkpoint works with weakloc info / predict / evaluate / serve like a trained one "
        "(docs/import.md).")


@app.command("dolos-patches", help=HELP)
def dolos_patches(
        source: Annotated[Path, typer.Argument(help="a best_model_*.pt file, or the folder holding them (the "
                                                    "one of highest score is taken)")],
        setup: Annotated[Setup, typer.Option(help="the paper's setup the file was trained in (sets the "
                                                  "preprocessing: A/B lanczos, C bilinear)")],
        out: Annotated[Path, typer.Option(help="the weakloc checkpoint to write (.safetensors; a .json card "
                                               "beside it)")],
        dataset: Annotated[Dataset, typer.Option(help="what it was trained on: celebahq (paper section 5.1) "
                                                      "or ffhq (5.2)")] = Dataset.celebahq,
        force: Annotated[bool, typer.Option(help="replace an existing --out")] = False) -> None:
    def go():
        from ..train.released import import_dolos_patches

        done = import_dolos_patches(source, setup.value, out, dataset.value, force)
        if source.is_dir():
            note(f"picked {done.source.name}: the highest score of {done.candidates} best_model_*.pt files")
        card = done.card
        typer.echo(f"imported {done.source} ({card['source']['format']}, sha256 {card['source']['sha256'][:12]}...)"
                   f" -> {done.checkpoint}")
        typer.echo(f"  patches, setup {setup.value}, {dataset.value}; input {card['input_size']} "
                   f"({card['resize']}), map {card['map_size']}x{card['map_size']}")
    guarded(go)
