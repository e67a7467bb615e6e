"""From a data configuration to samples. Reads what is on disk and never generates anything: the built-in
benchmark is made by ``weakloc.generate.builtin.ensure_builtin``, which the CLI and the experiment runner call.

Settings the user left unset are decided from what is on disk, and said (``notes``):
- ``dataset``: the only dataset folder under ``root`` (one holding ``real/`` or ``fake/``), ``root`` itself
  when it holds them, or ``celebahq`` among several;
- ``full`` / ``local`` (DOLOS): the paper's ``p2`` / ``repaint-p2`` when present, else every generator folder
  of that kind that was found (a local generator's folder holds ``images/``, a full one's holds split folders).
- ``train_local`` (DOLOS, setup B): the paper's 9k subset ``repaint-p2-9k`` when present (paper §5: setup B
  trains on 9k Repaint-P2 fakes and the 9k real training images) while the test split stays ``local``'s.
A setting the user gave is used as given, and a missing folder is an error naming what was found.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import DataConfig
from ..errors import ConfigError, InputError
from .layouts import dolos_samples, folder_samples, manifest_samples
from .samples import SPLITS, Sample

BUILTIN_DATASET = "builtin"
BUILTIN_MAIN_SOURCE = "photos-a"  # the built-in benchmark's main source (photos-b is the other)
BUILTIN_DEFAULTS = {"full": ("ddpm",), "local": ("repaint",)}  # the paper's P2 / Repaint-P2 roles
DOLOS_DEFAULTS = {"full": ("p2",), "local": ("repaint-p2",)}  # the paper's main generators
SETUP_B_SUBSET = "repaint-p2-9k"  # what the official setup B trains on (DOLOS layout)
PREFERRED_DATASET = "celebahq"
BUILTIN_ROOT = "data"  # where the built-in benchmark lives when data.root is unset


def builtin_root(data: DataConfig) -> Path:
    """The folder holding ``builtin/`` for a built-in configuration (the one place its default is decided)."""
    return Path(data.root or BUILTIN_ROOT)


def _is_dataset(folder: Path) -> bool:
    return (folder / "real").is_dir() or (folder / "fake").is_dir()


def found_generators(base: Path) -> dict[str, list[str]]:
    """Generator folders under ``base/fake`` by kind: local ones hold ``images/``, full ones split folders."""
    found: dict[str, list[str]] = {"full": [], "local": []}
    fake = base / "fake"
    if fake.is_dir():
        for folder in sorted(p for p in fake.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if (folder / "images").is_dir():
                found["local"].append(folder.name)
            elif any((folder / s).is_dir() for s in SPLITS):
                found["full"].append(folder.name)
    return found


def _choose_dataset(root: Path, notes: list[str]) -> str:
    if not root.is_dir():
        raise InputError(root, "DOLOS dataset folder does not exist (nor its data root)",
                         "point --root at the folder that holds celebahq/ and ffhq/ (wacv_data)")
    if _is_dataset(root):
        notes.append(f"data: {root} itself holds real/ or fake/; reading it as the dataset")
        return ""
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and _is_dataset(p))
    if not found:
        raise InputError(root, "no dataset folder found (a folder holding real/ or fake/)",
                         "point --root at the folder that holds celebahq/, ffhq/ or your own dataset folder")
    if len(found) == 1:
        notes.append(f"data: using dataset {found[0]!r}, the only one in {root} (choose with --dataset)")
        return found[0]
    if PREFERRED_DATASET in found:
        others = ", ".join(f for f in found if f != PREFERRED_DATASET)
        notes.append(f"data: using dataset {PREFERRED_DATASET!r} of {root} "
                     f"(also there: {others}; choose with --dataset)")
        return PREFERRED_DATASET
    raise InputError(root, f"several dataset folders ({', '.join(found)})", "choose one with --dataset")


def _choose_generators(base: Path, kind: str, given: list[str] | None, defaults: tuple[str, ...],
                       found: list[str], notes: list[str]) -> list[str]:
    if given is not None:
        return given
    chosen = [g for g in defaults if g in found]
    if chosen or not found:
        return chosen
    if defaults:
        notes.append(f"data: no fake/{defaults[0]} in {base}; using the {kind} generator(s) found: "
                     f"{', '.join(found)} (choose with --{kind})")
    return found


def resolve_dolos(data: DataConfig, notes: list[str] | None = None, setup: str | None = None) -> DataConfig:
    """The DOLOS (or built-in) configuration with ``dataset``, ``full``, ``local`` and, for a training
    ``setup``, ``train_local`` decided (module doc)."""
    notes = [] if notes is None else notes
    if data.layout == "builtin":
        root = builtin_root(data) / BUILTIN_DATASET
        if not (root / "builtin.json").is_file():
            raise InputError(root, "the built-in benchmark is not there",
                             f"build it with `weakloc data builtin {root.parent}` (the main job builds it by itself)")
        dataset, defaults = data.dataset or BUILTIN_MAIN_SOURCE, BUILTIN_DEFAULTS
    else:
        if not data.root:
            raise ConfigError("data.root is required for the dolos layout (the folder holding celebahq/, ffhq/)")
        root = Path(data.root)
        dataset = data.dataset if data.dataset is not None else _choose_dataset(root, notes)
        defaults = DOLOS_DEFAULTS
    base = root / dataset if dataset else root
    found = found_generators(base)
    full = _choose_generators(base, "full", data.full, defaults["full"], found["full"], notes)
    local = _choose_generators(base, "local", data.local, defaults["local"], found["local"], notes)
    train_local = data.train_local
    if (train_local is None and setup == "B" and data.layout == "dolos" and data.local is None
            and SETUP_B_SUBSET in found["local"]):
        train_local = [SETUP_B_SUBSET]
        notes.append(f"data: setup B trains on fake/{SETUP_B_SUBSET} (the paper's 9k subset) and is tested on "
                     f"{', '.join(local)} (choose with --train-local)")
    return dataclasses.replace(data, layout="dolos", root=str(root) if data.layout == "builtin" else data.root,
                               dataset=dataset, full=full, local=local, train_local=train_local)


def _train_local_only(samples: list[Sample], train_local: list[str], local: list[str]) -> list[Sample]:
    """Local fakes of ``train_local`` in the train/valid splits, of ``local`` in the test split."""
    def keep(s: Sample) -> bool:
        if s.kind != "local":
            return True
        return s.generator in (local if s.split == "test" else train_local)
    return [s for s in samples if keep(s)]


def load_samples(data: DataConfig, notes: list[str] | None = None,
                 setup: str | None = None) -> tuple[DataConfig, list[Sample]]:
    """(the resolved data config, its samples); ``setup`` = the setup a training run will use, if any.
    Decisions taken for unset settings are appended to ``notes``."""
    if data.layout in ("dolos", "builtin"):
        data = resolve_dolos(data, notes, setup)
        if not data.train_local or data.train_local == data.local:
            return data, dolos_samples(data.root, data.dataset, real=data.real, full=data.full, local=data.local)
        both = list(dict.fromkeys([*data.local, *data.train_local]))
        samples = dolos_samples(data.root, data.dataset, real=data.real, full=data.full, local=both)
        return data, _train_local_only(samples, data.train_local, data.local)
    if data.layout == "folder":
        full, local = data.full or [], data.local or []
        if len(full) > 1 or len(local) > 1:
            raise ConfigError("the folder layout takes one data.local folder and at most one data.full folder")
        data = dataclasses.replace(data, full=full, local=local)
        return data, folder_samples(real=data.real, local=local[0] if local else None, masks=data.masks,
                                    full=full[0] if full else None, split_ratios=data.split_ratios)
    if data.layout == "manifest":
        if not data.manifest:
            raise ConfigError("data.manifest is required for the manifest layout")
        samples = manifest_samples(data.manifest)
        keep_full, keep_local = set(data.full or ()), set(data.local or ())
        # generator filters apply only when the manifest names generators the filter mentions
        if keep_full and any(s.generator in keep_full for s in samples):
            samples = [s for s in samples if s.kind != "full" or s.generator in keep_full]
        if keep_local and any(s.generator in keep_local for s in samples):
            samples = [s for s in samples if s.kind != "local" or s.generator in keep_local]
        return data, samples
    raise ConfigError(f"unknown data.layout {data.layout!r}")


def data_where(data: DataConfig) -> str:
    """A path to name in error messages about this data."""
    if data.layout == "dolos":
        return str(Path(data.root) / (data.dataset or ""))
    return str(data.manifest or (data.local[0] if data.local else ""))
