"""``weakloc evaluate``: score a checkpoint, saved predictions or a folder of heatmaps on a test split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import DataOptions, app, card_data, guarded, load_data, note, with_data_options


@app.command()
@with_data_options
def evaluate(data: DataOptions,
             source: Annotated[Path, typer.Argument(help="checkpoint (.safetensors), predictions (.npz) or a folder "
                                                         "of heatmap PNGs")],
             out: Annotated[Path, typer.Option(help="results folder")] = Path("evaluation"),
             threshold: Annotated[float, typer.Option(help="binarisation threshold")] = 0.5,
             threshold_from: Annotated[Optional[str], typer.Option(
                 help="where the threshold comes from: 'given' (--threshold, default), 'valid' (the one maximising "
                      "mean IoU on the validation split's local fakes, predicted with the checkpoint) or saved "
                      "predictions of the validation split (.npz / heatmap folder)")] = None,
             perturb: Annotated[Optional[list[str]], typer.Option(
                 help="robustness: also score the checkpoint on perturbed test images, repeatable: jpeg:95,75,50 "
                      "resize:0.75,0.5 blur:1,2 noise:3,7 chain:social (docs/evaluate.md)")] = None) -> None:
    """Localization (IoU, PBCA; F1, pixel AP / AUC, oracles) and detection (AP, AUC) on a dataset's test split,
    with 95% intervals and baselines (a checkpoint without data options: the test split of the data it was
    trained on)."""
    def go():
        from ..config import EvalConfig, from_dict
        from ..data.load import data_where
        from ..data.perturb import parse_perturbations
        from ..errors import ConfigError
        from ..evaluate.report import metrics_markdown, write_results
        from ..evaluate.scoring import evaluate_checkpoint, evaluate_predictions
        from ..predict.saved import Predictions

        checkpoint = source.suffix == ".safetensors"
        defaults = {}
        if checkpoint and not data.given():
            from ..train.checkpoint import read_card

            defaults = card_data(read_card(source))
        tree = data.tree(defaults)
        chosen = {"threshold_from": threshold_from} if threshold_from else {}
        cfg = from_dict(EvalConfig, {**tree.get("evaluate", {}), "threshold": threshold, **chosen}, "evaluate")
        if cfg.threshold_from == "valid" and not checkpoint:
            raise ConfigError(f"--threshold-from valid predicts the validation split with a checkpoint; {source} "
                              "holds saved predictions: pass --threshold-from VALID.npz (predictions of the "
                              "validation split's local fakes) or a --threshold")
        perturbations = parse_perturbations(perturb or cfg.perturb, "--perturb" if perturb else "evaluate.perturb")
        if perturbations and not checkpoint:
            raise ConfigError(f"--perturb needs a checkpoint (.safetensors), which is re-run on the perturbed "
                              f"images; {source} holds saved predictions")
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
        typer.echo(f"results: {out}/metrics.json, metrics.md, per_image.csv, baselines.csv, iou_vs_area.csv/png")
        if perturbations:  # after the clean table: the robustness table compares against it
            from ..evaluate.robustness import evaluate_robustness, robustness_markdown

            robust = evaluate_robustness(source, resolved, samples, cfg, out / "robustness", perturbations,
                                         clean=summary)
            typer.echo(robustness_markdown(robust))
            typer.echo(f"robustness: {out}/robustness/robustness.{{md,csv,json,png}}")
    guarded(go)
