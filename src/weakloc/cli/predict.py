"""Using a trained localizer: ``weakloc predict`` (scores, maps, masks, overlays for images or a dataset split),
``weakloc info`` (its card) and ``weakloc serve`` (the local web page)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import DataOptions, app, card_data, expand_images, guarded, load_data, with_data_options


def check_choices(**options: tuple[str, tuple[str, ...]]) -> None:
    """One clear error for an option value outside its choices."""
    from ..errors import InputError

    for name, (value, allowed) in options.items():
        if value not in allowed:
            raise InputError(f"--{name.replace('_', '-')}", f"unknown value {value!r}", f"use one of {', '.join(allowed)}")


@app.command()
@with_data_options
def predict(data: DataOptions,
            checkpoint: Annotated[Path, typer.Argument(help="a .safetensors checkpoint from `weakloc train`")],
            images: Annotated[Optional[list[str]], typer.Argument(help="image files, folders or globs")] = None,
            out: Annotated[Path, typer.Option(help="output folder")] = Path("predictions"),
            threshold: Annotated[float, typer.Option(help="threshold for the binary mask (and the verdict of a "
                                                         "checkpoint without a calibrated one: score > it)")] = 0.5,
            overlays: Annotated[Optional[bool], typer.Option(help="write overlay PNGs (default: yes for images, "
                                                                   "no for dataset splits)")] = None,
            mask_polarity: Annotated[str, typer.Option(help="white-fake | black-fake (DOLOS files)")] = "white-fake",
            split: Annotated[str, typer.Option(help="without images: the split of the data to predict (the "
                                                    "checkpoint's own data unless data options say otherwise)")]
            = "test",
            batch_size: Annotated[int, typer.Option(help="images per batch")] = 16,
            device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
            scale: Annotated[str, typer.Option(help="resize (each image to the model's input, as in training) | "
                                                    "native (the image's own resolution, in tiles)")] = "resize",
            precision: Annotated[str, typer.Option(help="auto (bf16 where the hardware runs it natively) | bf16 | "
                                                        "fp32")] = "auto",
            max_pixels: Annotated[int, typer.Option(help="refuse images with more pixels than this (checked "
                                                         "before decoding)")] = 100_000_000,
            overwrite: Annotated[bool, typer.Option(help="replace earlier predictions in --out")] = False) -> None:
    """Fake score, map at each image's resolution, mask and overlay for images (or a dataset split); writes
    summary.json/.csv and predictions.npz (which `weakloc evaluate` scores)."""
    def go():
        from ..errors import InputError
        from ..predict.detector import load
        from ..predict.folder import predict_to_folder

        if mask_polarity not in ("white-fake", "black-fake"):
            raise InputError(mask_polarity, "unknown mask polarity", "use white-fake or black-fake")
        check_choices(scale=(scale, ("resize", "native")), precision=(precision, ("auto", "bf16", "fp32")))
        if max_pixels < 1:
            raise InputError("--max-pixels", f"{max_pixels} is not a positive number of pixels", "e.g. 100000000")
        detector = load(checkpoint, device, precision, scale, max_pixels)
        skipped: list[str] = []
        if images:
            paths = expand_images(images, skipped)
            if not paths:
                raise InputError(" ".join(images), "no image files found (empty folder or glob)"
                                 + (f"; {len(skipped)} file(s) skipped for their extension" if skipped else ""),
                                 "pass image files, folders or globs")
            items = [(str(p), p) for p in paths]
        else:
            from ..data.load import data_where
            from ..data.samples import select

            resolved, all_samples = load_data(data.tree({} if data.given() else card_data(detector.card)))
            samples = select(all_samples, split, ["real", "full", "local"])
            if not samples:
                raise InputError(data_where(resolved), f"no images in split {split!r}",
                                 "check --split and the data options")
            items = [(s.id, s.path) for s in samples]
        summary = predict_to_folder(detector, items, out, threshold=threshold,
                                    overlays=bool(images) if overlays is None else overlays,
                                    mask_polarity=mask_polarity, batch_size=batch_size, overwrite=overwrite,
                                    skipped=skipped)
        for row in summary["images"][:20]:
            note = f"  [{row['notes']}]" if row["notes"] else ""
            typer.echo(f"{row['score']:.3f}  {'FAKE' if row['fake'] else 'real'}  {row['id']}{note}")
        if len(summary["images"]) > 20:
            typer.echo(f"... {len(summary['images']) - 20} more in {out / 'summary.csv'}")
        typer.echo(f"verdict: {summary['verdict_rule']['text']}")
        typer.echo(f"{len(summary['images'])} images -> {out}/ (summary.json, summary.csv, predictions.npz)")
        if summary.get("note"):
            typer.echo(summary["note"])
        if skipped:
            from ..data.images import IMAGE_SUFFIXES

            shown = ", ".join(Path(p).name for p in skipped[:10]) + (" ..." if len(skipped) > 10 else "")
            typer.secho(f"{len(skipped)} file(s) skipped for their extension (not {' '.join(IMAGE_SUFFIXES)}): "
                        f"{shown}", fg=typer.colors.YELLOW, err=True)
        if summary["errors"]:
            typer.secho(f"{len(summary['errors'])} file(s) could not be read:", fg=typer.colors.YELLOW, err=True)
            for err in summary["errors"]:
                typer.secho(f"  {err['error']}", err=True)
            if not summary["images"]:
                raise typer.Exit(2)
    guarded(go)


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
          device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
          precision: Annotated[str, typer.Option(help="auto | bf16 | fp32")] = "auto",
          max_pixels: Annotated[int, typer.Option(help="refuse larger uploads (checked before decoding)")]
          = 100_000_000) -> None:
    """A local web page: drop an image, see its fake score, heatmap overlay and mask, move the threshold."""
    def go():
        from ..predict.detector import load
        from ..serve import serve as run_server

        check_choices(precision=(precision, ("auto", "bf16", "fp32")))
        run_server(load(checkpoint, device, precision, "resize", max_pixels), host, port)
    guarded(go)
