"""What the command-line modules share: the apps, the error guard, the data options (declared once here)
and loading data from them."""

from __future__ import annotations

import functools
import glob
import inspect
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Callable, Optional, get_type_hints

import typer

from ..errors import WeaklocError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Weakly-supervised localization of diffusion-model manipulations in images.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets: build the built-in benchmark, inspect layouts.")
app.add_typer(data_app, name="data")

Sets = Annotated[Optional[list[str]], typer.Option("--set", help="override, e.g. --set train.lr=1e-4 (repeatable)")]


def guarded(fn: Callable[[], Any], also: tuple[type[Exception], ...] = ()) -> Any:
    """Run ``fn``; bad input and settings (WeaklocError, plus ``also``) exit with code 2 and the message,
    never a traceback."""
    try:
        return fn()
    except (WeaklocError, *also) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.secho("interrupted: rerun the same command to resume", err=True)
        raise typer.Exit(130) from None


def note(text: str) -> None:
    typer.secho(text, fg=typer.colors.CYAN, err=True)


# ------------------------------------------------------------------ the shared data options

NAMES_HELP = "comma-separated or repeated"


@dataclass
class DataOptions:
    """The data options of train / evaluate / predict / data summary, as given on the command line."""

    # help texts are Rich markup: a literal "[" is escaped (else "[data]" vanishes, read as a style tag)
    layout: Annotated[Optional[str], typer.Option(
        help="dolos | folder | manifest | builtin  \\[default: dolos]")] = None
    root: Annotated[Optional[str], typer.Option(help="dolos/builtin: folder holding DATASET/ (e.g. wacv_data)")] = None
    dataset: Annotated[Optional[str], typer.Option(
        help="dolos: dataset subfolder (celebahq, ffhq; default: the only one there, else celebahq)")] = None
    real: Annotated[Optional[str], typer.Option(help="dolos: real subfolder; folder: path of real images")] = None
    full: Annotated[Optional[list[str]], typer.Option(
        help=f"dolos: fully generated generator(s), {NAMES_HELP} (default: p2 if there, else those found); "
             "folder: path")] = None
    local: Annotated[Optional[list[str]], typer.Option(
        help=f"dolos: inpainting generator(s), {NAMES_HELP} (default: repaint-p2 if there, else those found); "
             "folder: path")] = None
    train_local: Annotated[Optional[list[str]], typer.Option(
        help=f"dolos: inpainting generator(s) that training and validation use instead of --local, {NAMES_HELP} "
             "(default: setup B uses repaint-p2-9k if there, the paper's 9k subset; else --local)")] = None
    masks: Annotated[Optional[str], typer.Option(help="folder layout: masks of the local fakes")] = None
    manifest: Annotated[Optional[str], typer.Option(help="manifest layout: CSV/JSONL file")] = None
    data_file: Annotated[Optional[Path], typer.Option("--data", help="TOML file with a \\[data] table")] = None
    sets: Sets = None

    FLAGS = ("layout", "root", "dataset", "real", "full", "local", "train_local", "masks", "manifest")

    def given(self) -> bool:
        """Whether the user said anything about the data."""
        return (any(getattr(self, k) not in (None, []) for k in self.FLAGS) or self.data_file is not None
                or any(s.strip().startswith("data.") for s in self.sets or []))

    def tree(self, defaults: dict | None = None) -> dict:
        """The settings tree: ``defaults`` (e.g. a checkpoint's own data), the --data file, the flags, --set."""
        from ..config import apply_overrides, read_toml

        tree = read_toml(self.data_file) if self.data_file else {}
        section = tree.setdefault("data", {})
        for key, value in (defaults or {}).items():
            section.setdefault(key, value)
        for key in self.FLAGS:
            value = getattr(self, key)
            if value not in (None, []):
                section[key] = value
        return apply_overrides(tree, self.sets or [])


def with_data_options(fn: Callable) -> Callable:
    """Give a command the shared data options: they appear as its own options and reach it as ``data``."""
    own = inspect.signature(fn, eval_str=True)  # Typer reads this signature as it is: annotations evaluated
    hints = get_type_hints(DataOptions, include_extras=True)
    extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=hints[f.name])
             for f in fields(DataOptions)]

    @functools.wraps(fn)
    def command(**kwargs: Any) -> Any:
        options = DataOptions(**{f.name: kwargs.pop(f.name) for f in fields(DataOptions)})
        return fn(data=options, **kwargs)

    command.__signature__ = own.replace(parameters=[p for p in own.parameters.values() if p.name != "data"]
                                        + extra)
    return command


def data_config(tree: dict):
    from ..config import DataConfig, from_dict

    return from_dict(DataConfig, tree.get("data", {}), "data")


def load_data(tree: dict, progress: bool = True, setup: str | None = None):
    """(resolved DataConfig, samples) of a settings tree (``setup``: the setup a training run will use);
    builds the built-in benchmark when it is named, and prints what was decided for the settings left unset."""
    from ..data.load import load_samples
    from ..generate.builtin import ensure_builtin

    data = ensure_builtin(data_config(tree), progress=progress)
    notes: list[str] = []
    resolved, samples = load_samples(data, notes, setup)
    for text in notes:
        note(text)
    return resolved, samples


def card_data(card: dict) -> dict:
    """The data settings a checkpoint was trained on (its card), as a [data] table."""
    keys = ("layout", "root", "dataset", "real", "full", "local", "train_local", "manifest", "masks", "mask_polarity",
            "binarize_masks", "split_ratios")
    return {k: v for k, v in card.get("data", {}).items() if k in keys and v is not None}


def expand_images(inputs: list[str], skipped: list[str] | None = None) -> list[Path]:
    """Files, folders (recursively) and globs -> image paths, in a stable order. Files of folders and globs
    left out for their extension are appended to ``skipped`` (a file named on its own is always tried)."""
    from ..data.images import is_image_file

    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
        elif any(c in item for c in "*?["):
            found = sorted(Path(q) for q in glob.glob(item, recursive=True) if Path(q).is_file())
        else:
            paths.append(p)
            continue
        paths += [q for q in found if is_image_file(q)]
        if skipped is not None:
            skipped += [str(q) for q in found if not is_image_file(q)]
    return paths
