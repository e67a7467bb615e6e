"""``weakloc evaluate``: score a checkpoint, saved predictions or a folder of heatmaps on a test split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import DataOptions, app, card_data, guarded, load_data, note, with_data_options


@app.command()
@with_data_options
def evaluate(data: DataOptions,
             source: Annotated[Path, typer.Argument(help="checkpoint (.safetensors), predictions (.npz) or a folder "
                                                         "of heatmap PNGs")],
             out: Annotated[Path, typer.Option(help="results folder")] = Path("evaluation"),
             threshold: Annotated[float, typer.Option(help="binarisation threshold")] = 0.5) -> None:
    """Localization (IoU, PBCA) and detection (AP, AUC) on a dataset's test split (a checkpoint without data
    options: the test split of the data it was trained on)."""
    def go():
        from ..config import EvalConfig, from_dict
        from ..data.load import data_where
        from ..evaluate.report import metrics_markdown, write_results
        from ..evaluate.scoring import evaluate_checkpoint, evaluate_predictions
        from ..predict.saved import Predictions

        checkpoint = source.suffix == ".safetensors"
        defaults = {}
        if checkpoint and not data.given():
            from ..train.checkpoint import read_card

            defaults = card_data(read_card(source))
        tree = data.tree(defaults)
        cfg = from_dict(EvalConfig, {**tree.get("evaluate", {}), "threshold": threshold}, "evaluate")
        resolved, samples = load_data(tree)
        if defaults:
            note(f"evaluating on the checkpoint's own data: {data_where(resolved)} ({resolved.layout}; "
                 f"local {', '.join(resolved.local or []) or '-'}), test split")
        if checkpoint:
            summary = evaluate_checkpoint(source, resolved, samples, cfg, out)
        else:
            result = evaluate_predictions(Predictions.load(source), samples, resolved, cfg, data_where(resolved))
            write_results(result, out)
            summary = {k: v for k, v in result.items() if k != "per_image"}
        typer.echo(metrics_markdown(summary))
        typer.echo(f"results: {out}/metrics.json, {out}/per_image.csv")
    guarded(go)
