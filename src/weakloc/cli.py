"""The command line: a thin layer over the library (every command is a few calls into it)."""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .cli_support import guarded
from .generate.cli import app as generate_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Weakly-supervised localization of diffusion-model manipulations in images.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: build the built-in benchmark, inspect layouts.")
app.add_typer(data_app, name="data")
app.add_typer(generate_app, name="generate")

# ------------------------------------------------------------------ shared data options
Layout = Annotated[str, typer.Option(help="dolos | folder | manifest | builtin")]
Root = Annotated[Optional[str], typer.Option(help="dolos/builtin: folder holding DATASET/ (e.g. wacv_data)")]
Dataset = Annotated[Optional[str], typer.Option(help="dolos: dataset subfolder (celebahq, ffhq)")]
Real = Annotated[Optional[str], typer.Option(help="dolos: real subfolder; folder: path of real images")]
Full = Annotated[Optional[list[str]], typer.Option(help="dolos: fully generated generator(s); folder: path")]
Local = Annotated[Optional[list[str]], typer.Option(help="dolos: inpainting generator(s); folder: path")]
Masks = Annotated[Optional[str], typer.Option(help="folder layout: masks of the local fakes")]
Manifest = Annotated[Optional[str], typer.Option(help="manifest layout: CSV/JSONL file")]
DataFile = Annotated[Optional[Path], typer.Option("--data", help="TOML file with a [data] table")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="override, e.g. --set train.lr=1e-4 (repeatable)")]


def _tree(data_file: Optional[Path], sets: Optional[list[str]], **flags) -> dict:
    from .config import apply_overrides, read_toml

    tree = read_toml(data_file) if data_file else {}
    section = tree.setdefault("data", {})
    for key, value in flags.items():
        if value not in (None, []):
            section[key] = value
    return apply_overrides(tree, sets or [])


def _data(tree: dict):
    from .config import DataConfig, from_dict

    return from_dict(DataConfig, tree.get("data", {}), "data")


def _run(fn):
    """Bad input and bad configuration end with one clear message and exit code 2, never a traceback."""
    return guarded(fn)


# ------------------------------------------------------------------ commands


@app.command()
def demo(out: Annotated[Path, typer.Option(help="report folder")] = Path("runs/demo"),
         data_root: Annotated[str, typer.Option(help="where the built-in dataset is made")] = "data",
         experiment: Annotated[str, typer.Option(help="built-in experiment to run (see `weakloc experiment --list`)")]
         = "builtin-table2",
         sets: Sets = None) -> None:
    """The main job: build the built-in benchmark, train GradCAM, Patches and Attention under setups A, B, C,
    evaluate, print the paper's Table 2 shape (about 8 minutes on 2 CPU cores)."""
    def go():
        from .experiment import load_experiment, run_experiment

        exp = load_experiment(experiment, [f"data.root={data_root}"] + (sets or []))
        run_experiment(exp, out)
        typer.echo((out / "report.md").read_text())
        typer.echo(f"report: {out / 'report.md'}; checkpoints: {out}/*/best.safetensors")
    _run(go)


@app.command()
def experiment(name: Annotated[str, typer.Argument(help="experiment file, or a built-in name (see --list)")] = "",
               out: Annotated[Optional[Path], typer.Option(help="report folder (default runs/NAME)")] = None,
               sets: Sets = None,
               only: Annotated[Optional[list[str]], typer.Option(help="run only these run names")] = None,
               overwrite: Annotated[bool, typer.Option(help="delete a different earlier run in the same folder")] = False,
               list_: Annotated[bool, typer.Option("--list", help="list the built-in experiments")] = False) -> None:
    """Run a declarative experiment (train every run, evaluate, write report.md and results.json)."""
    def go():
        from .experiment import builtin_experiments, load_experiment, run_experiment

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
    _run(go)


@app.command()
def train(out: Annotated[Path, typer.Option(help="run folder (checkpoints, history, resume state)")],
          method: Annotated[str, typer.Option(help="patches | gradcam | attention")] = "patches",
          setup: Annotated[str, typer.Option(help="A: real+full fakes; B: real+local fakes; C: local fakes+masks")] = "A",
          layout: Layout = "dolos", root: Root = None, dataset: Dataset = None, real: Real = None, full: Full = None,
          local: Local = None, masks: Masks = None, manifest: Manifest = None, data_file: DataFile = None,
          init: Annotated[Optional[Path], typer.Option(help="local timm-format Xception weights (e.g. ImageNet) "
                                                           "to initialise the backbone")] = None,
          sets: Sets = None,
          overwrite: Annotated[bool, typer.Option(help="delete a different earlier run in --out")] = False) -> None:
    """Train one localizer (resumes automatically when --out holds the same, unfinished run)."""
    def go():
        from .config import TrainConfig, from_dict
        from .pipeline import load_samples
        from .train import train as train_run

        tree = _tree(data_file, sets, layout=layout, root=root, dataset=dataset, real=real, full=full, local=local,
                     masks=masks, manifest=manifest)
        values = {**tree.get("train", {}), "method": method, "setup": setup}
        if init:
            values["init"] = str(init)
        cfg = from_dict(TrainConfig, values, "train")
        data, samples = load_samples(_data(tree))
        result = train_run(out, data, cfg, samples, overwrite=overwrite)
        typer.echo(f"best checkpoint: {result.best_checkpoint}")
    _run(go)


def _expand(inputs: list[str]) -> list[Path]:
    from .data.images import is_image_file

    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(q for q in p.rglob("*") if q.is_file() and is_image_file(q))
        elif any(c in item for c in "*?["):
            paths += sorted(Path(q) for q in glob.glob(item, recursive=True) if is_image_file(Path(q)))
        else:
            paths.append(p)
    return paths


@app.command()
def predict(checkpoint: Annotated[Path, typer.Argument(help="a .safetensors checkpoint from `weakloc train`")],
            images: Annotated[Optional[list[str]], typer.Argument(help="image files, folders or globs")] = None,
            out: Annotated[Path, typer.Option(help="output folder")] = Path("predictions"),
            threshold: Annotated[float, typer.Option(help="threshold for the binary mask and the verdict")] = 0.5,
            overlays: Annotated[Optional[bool], typer.Option(help="write overlay PNGs (default: yes for images, "
                                                                   "no for dataset splits)")] = None,
            mask_polarity: Annotated[str, typer.Option(help="white-fake | black-fake (DOLOS files)")] = "white-fake",
            split: Annotated[str, typer.Option(help="with dataset options: the split to predict")] = "test",
            layout: Layout = "dolos", root: Root = None, dataset: Dataset = None, real: Real = None,
            full: Full = None, local: Local = None, masks: Masks = None, manifest: Manifest = None,
            data_file: DataFile = None, sets: Sets = None,
            batch_size: Annotated[int, typer.Option(help="images per batch")] = 16,
            device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
            overwrite: Annotated[bool, typer.Option(help="replace earlier predictions in --out")] = False) -> None:
    """Fake score, map at each image's resolution, mask and overlay for images (or a dataset split); writes
    summary.json/.csv and predictions.npz (which `weakloc evaluate` scores)."""
    def go():
        from .api import load
        from .errors import InputError
        from .inference import predict_to_folder

        if mask_polarity not in ("white-fake", "black-fake"):
            raise InputError(mask_polarity, "unknown mask polarity", "use white-fake or black-fake")
        detector = load(checkpoint, device)
        if images:
            paths = _expand(images)
            if not paths:
                raise InputError(" ".join(images), "no image files found (empty folder or glob)",
                                 "pass image files, folders or globs")
            items = [(str(p), p) for p in paths]
        else:
            from .data.samples import select
            from .pipeline import load_samples

            tree = _tree(data_file, sets, layout=layout, root=root, dataset=dataset, real=real, full=full,
                         local=local, masks=masks, manifest=manifest)
            _, all_samples = load_samples(_data(tree))
            samples = select(all_samples, split, ["real", "full", "local"])
            if not samples:
                raise InputError(root or manifest or "", f"no images in split {split!r}",
                                 "check --split and the data options")
            items = [(s.id, s.path) for s in samples]
        summary = predict_to_folder(detector, items, out, threshold=threshold,
                                    overlays=bool(images) if overlays is None else overlays,
                                    mask_polarity=mask_polarity, batch_size=batch_size, overwrite=overwrite)
        for row in summary["images"][:20]:
            note = f"  [{row['notes']}]" if row["notes"] else ""
            typer.echo(f"{row['score']:.3f}  {'FAKE' if row['fake'] else 'real'}  {row['id']}{note}")
        if len(summary["images"]) > 20:
            typer.echo(f"... {len(summary['images']) - 20} more in {out / 'summary.csv'}")
        typer.echo(f"{len(summary['images'])} images -> {out}/ (summary.json, summary.csv, predictions.npz)")
        if summary["errors"]:
            typer.secho(f"{len(summary['errors'])} file(s) could not be read:", fg=typer.colors.YELLOW, err=True)
            for err in summary["errors"]:
                typer.secho(f"  {err['error']}", err=True)
            if not summary["images"]:
                raise typer.Exit(2)
    _run(go)


@app.command()
def evaluate(source: Annotated[Path, typer.Argument(help="checkpoint (.safetensors), predictions (.npz) or a folder of heatmap PNGs")],
             out: Annotated[Path, typer.Option(help="results folder")] = Path("evaluation"),
             layout: Layout = "dolos", root: Root = None, dataset: Dataset = None, real: Real = None,
             full: Full = None, local: Local = None, masks: Masks = None, manifest: Manifest = None,
             data_file: DataFile = None, sets: Sets = None,
             threshold: Annotated[float, typer.Option(help="binarisation threshold")] = 0.5) -> None:
    """Localization (IoU, PBCA) and detection (AP, AUC) on a dataset's test split."""
    def go():
        from .config import EvalConfig, from_dict
        from .evaluate.run import evaluate_predictions, metrics_markdown, write_results
        from .experiment import evaluate_checkpoint
        from .pipeline import data_where, load_samples
        from .predictions import Predictions

        tree = _tree(data_file, sets, layout=layout, root=root, dataset=dataset, real=real, full=full, local=local,
                     masks=masks, manifest=manifest)
        cfg = from_dict(EvalConfig, {**tree.get("evaluate", {}), "threshold": threshold}, "evaluate")
        data, samples = load_samples(_data(tree))
        if source.suffix == ".safetensors":
            summary = evaluate_checkpoint(source, data, samples, cfg, out)
        else:
            result = evaluate_predictions(Predictions.load(source), samples, data, cfg, data_where(data))
            write_results(result, out)
            summary = {k: v for k, v in result.items() if k != "per_image"}
        typer.echo(metrics_markdown(summary))
        typer.echo(f"results: {out}/metrics.json, {out}/per_image.csv")
    _run(go)


@app.command()
def info(checkpoint: Annotated[Path, typer.Argument(help="a .safetensors checkpoint")]) -> None:
    """Print a checkpoint's model card (method, setup, preprocessing, training data, metrics)."""
    def go():
        from .checkpoint import read_card

        typer.echo(json.dumps(read_card(checkpoint), indent=2))
    _run(go)


@app.command()
def serve(checkpoint: Annotated[Path, typer.Argument(help="a .safetensors checkpoint")],
          port: Annotated[int, typer.Option(help="port on localhost (0 = any free port)")] = 8765,
          host: Annotated[str, typer.Option(help="address to bind (keep 127.0.0.1 unless you mean it)")] = "127.0.0.1",
          device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto") -> None:
    """A local web page: drop an image, see its fake score, heatmap overlay and mask, move the threshold."""
    def go():
        from .api import load
        from .serve import serve as run_server

        run_server(load(checkpoint, device), host, port)
    _run(go)


@data_app.command("builtin")
def data_builtin(root: Annotated[Path, typer.Argument(help="folder to write ROOT/builtin into")] = Path("data"),
                 n: Annotated[int, typer.Option(help="crops per kind (real, local fake, full fake)")] = 360,
                 size: Annotated[int, typer.Option(help="crop size in pixels")] = 96,
                 seed: Annotated[int, typer.Option(help="random seed")] = 0) -> None:
    """Build the small built-in dataset (DOLOS layout) from photographs shipped inside installed packages."""
    def go():
        from .generate.builtin import build_builtin

        typer.echo(f"built-in dataset: {build_builtin(root, n=n, size=size, seed=seed)}")
    _run(go)


@data_app.command("summary")
def data_summary(layout: Layout = "dolos", root: Root = None, dataset: Dataset = None, real: Real = None,
                 full: Full = None, local: Local = None, masks: Masks = None, manifest: Manifest = None,
                 data_file: DataFile = None, sets: Sets = None) -> None:
    """Count the images of a dataset by split and kind (checks the layout without training)."""
    def go():
        from collections import Counter

        from .pipeline import load_samples

        tree = _tree(data_file, sets, layout=layout, root=root, dataset=dataset, real=real, full=full, local=local,
                     masks=masks, manifest=manifest)
        _, samples = load_samples(_data(tree))
        counts = Counter((s.split, s.kind) for s in samples)
        missing = sum(1 for s in samples if s.kind == "local" and s.mask_path is None)
        typer.echo("split\treal\tfull\tlocal")
        for split in ("train", "valid", "test"):
            typer.echo(f"{split}\t" + "\t".join(str(counts[(split, k)]) for k in ("real", "full", "local")))
        if missing:
            typer.echo(f"{missing} local fakes have no mask")
    _run(go)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
