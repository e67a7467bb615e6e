"""``weakloc train``: one localizer, one method and setup; ``weakloc calibrate``: its verdict threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import DataOptions, app, card_data, guarded, load_data, with_data_options


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


@app.command()
@with_data_options
def calibrate(data: DataOptions,
              checkpoint: Annotated[Path, typer.Argument(help="a .safetensors checkpoint from `weakloc train`")],
              split: Annotated[str, typer.Option(help="the split to calibrate on (never the test split you report)")]
              = "valid",
              fpr: Annotated[Optional[float], typer.Option(help="target false-positive rate on the real images (e.g. "
                                                                 "0.05): the lowest threshold meeting it; default: "
                                                                 "the threshold of highest balanced accuracy")] = None,
              statistic: Annotated[str, typer.Option(help="auto (score for setups A/B, map-share for C) | score | "
                                                          "map-share (share of map pixels above --pixel-threshold)")]
              = "auto",
              pixel_threshold: Annotated[float, typer.Option(help="map-share: the pixel threshold it counts")] = 0.5,
              batch_size: Annotated[int, typer.Option(help="images per batch")] = 64,
              device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto") -> None:
    """Choose a checkpoint's verdict threshold (fake / real) on a data split and write it into its card (the
    previous one is kept in the card's verdict.history and printed as old -> new). Without data options: the
    checkpoint's own data."""
    def go():
        from ..device import pick_device
        from ..predict.batch import preprocessing_of
        from ..train.calibrate import VerdictRule, calibrate_checkpoint, check_options, data_name
        from ..train.checkpoint import load_checkpoint

        kind = None if statistic == "auto" else statistic.replace("-", "_")
        check_options(kind, fpr)  # before anything is loaded
        model, card = load_checkpoint(checkpoint, pick_device(device))
        resolved, samples = load_data(data.tree({} if data.given() else card_data(card)))
        old, new = calibrate_checkpoint(checkpoint, model, samples, preprocessing_of(card, resolved.cache_dir),
                                        split=split, statistic=kind, target_fpr=fpr, pixel_threshold=pixel_threshold,
                                        batch_size=batch_size, data=data_name(resolved, card["setup"]))
        before = VerdictRule.from_card({"verdict": old} if old else {})
        after = VerdictRule.from_card({"verdict": new})
        was = f"{old['threshold']:.4g} ({old['statistic']})" if old else "none (uncalibrated: score > 0.5)"
        typer.echo(f"{checkpoint}: verdict threshold {was} -> {new['threshold']:.4g} ({new['statistic']})")
        typer.echo(f"  old: {before.describe()}")
        typer.echo(f"  new: {after.describe()}")
        if new["n_real"]:
            typer.echo(f"  on these {new['n_real']} real / {new['n_fake']} fake images: balanced accuracy "
                       f"{new['balanced_accuracy']:.3f} (TPR {new['tpr']:.3f}, FPR {new['fpr']:.3f}); "
                       f"score > 0.5 gave {new['score_at_0.5']['balanced_accuracy']:.3f}")
        if split == "test":
            typer.secho("  note: chosen on the test split: metrics you then report on that split are optimistic; "
                        "calibrate on held-out data (--split valid)", fg=typer.colors.YELLOW)
        if new["note"]:
            typer.secho(f"  note: {new['note']}", fg=typer.colors.YELLOW)
    guarded(go)
