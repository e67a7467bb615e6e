"""Dataset layouts -> lists of :class:`Sample`.

- ``dolos``: the released DOLOS layout (REFERENCE.md)::

      ROOT/DATASET/real/{split}/*
      ROOT/DATASET/fake/FULL/{split}/*                      fully generated (setup A)
      ROOT/DATASET/fake/LOCAL/{images,masks}/{split}/*      locally inpainted, masks black = fake

- ``folder``: a folder of real images, a folder of locally manipulated fakes with a masks folder of the same
  file names, optionally a folder of fully generated fakes. Each folder has ``train/valid/test`` subfolders,
  or none, in which case files are split by a stable hash of their name (``split_ratios``).
- ``manifest``: a CSV or JSONL file with columns ``path, label, mask, split, generator, source``; relative
  paths are relative to the manifest's folder. A fake with a mask is "local", a fake without one "full".
"""

from __future__ import annotations

import csv
from collections import Counter
import hashlib
import json
from pathlib import Path
from typing import Sequence

from ..errors import InputError
from .images import is_image_file
from .samples import SPLITS, Sample


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def _find_mask(masks_dir: Path, image: Path) -> Path | None:
    """Same file name; else same stem with .png (JPEG images commonly get PNG masks)."""
    for candidate in (masks_dir / image.name, masks_dir / f"{image.stem}.png"):
        if candidate.is_file():
            return candidate
    return None


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _require_dir(path: Path, what: str, fix: str) -> Path:
    if not path.is_dir():
        raise InputError(path, f"{what} folder does not exist", fix)
    return path


# ---------------------------------------------------------------- dolos


def dolos_samples(root: str | Path, dataset: str = "celebahq", *, real: str | None = "real",
                  full: Sequence[str] = ("p2",), local: Sequence[str] = ("repaint-p2",),
                  splits: Sequence[str] = SPLITS) -> list[Sample]:
    """Samples of the released DOLOS layout. Missing split folders are skipped (checked when needed)."""
    root = Path(root)
    base = _require_dir(root / dataset if dataset else root, "DOLOS dataset",
                        "point data.root at the folder that holds celebahq/ and ffhq/ (wacv_data)")
    samples: list[Sample] = []
    for split in splits:
        if real:
            folder = base / real / split
            if folder.is_dir():
                samples += [Sample(_rel(p, root), p, 0, "real", split, source=dataset)
                            for p in _image_files(folder)]
        for gen in full:
            folder = base / "fake" / gen / split
            if folder.is_dir():
                samples += [Sample(_rel(p, root), p, 1, "full", split, generator=gen, source=dataset)
                            for p in _image_files(folder)]
        for gen in local:
            folder = base / "fake" / gen / "images" / split
            masks = base / "fake" / gen / "masks" / split
            if folder.is_dir():
                samples += [Sample(_rel(p, root), p, 1, "local", split, _find_mask(masks, p), gen, dataset)
                            for p in _image_files(folder)]
    _check_known(samples, base, full, local, real)
    return samples


def _check_known(samples: list[Sample], base: Path, full: Sequence[str], local: Sequence[str],
                 real: str | None) -> None:
    """A generator name that matches no folder at all is a typo, not an empty split: say so now."""
    for gen in list(full) + list(local):
        if not (base / "fake" / gen).is_dir():
            present = sorted(p.name for p in (base / "fake").iterdir()) if (base / "fake").is_dir() else []
            raise InputError(base / "fake" / gen, "generator folder does not exist",
                             f"use one of: {', '.join(present) or '(none found)'}")
    if real and not (base / real).is_dir():
        raise InputError(base / real, "real images folder does not exist", "check data.root / data.dataset")


# ---------------------------------------------------------------- folder


def _split_of(name: str, ratios: Sequence[float]) -> str:
    """Stable split from the file name alone (same answer on every machine and every run)."""
    value = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    edge = 0.0
    for split, ratio in zip(SPLITS, ratios):
        edge += ratio
        if value < edge:
            return split
    return SPLITS[-1]


def _folder_files(folder: Path, ratios: Sequence[float]) -> list[tuple[str, Path]]:
    if any((folder / s).is_dir() for s in SPLITS):
        return [(s, p) for s in SPLITS if (folder / s).is_dir() for p in _image_files(folder / s)]
    return [(_split_of(p.name, ratios), p) for p in _image_files(folder)]


def folder_samples(*, real: str | Path | None, local: str | Path | None, masks: str | Path | None = None,
                   full: str | Path | None = None, split_ratios: Sequence[float] = (0.8, 0.1, 0.1),
                   generator: str = "local", full_generator: str = "full") -> list[Sample]:
    """Samples of the generic folder layout; ids are paths relative to each folder's parent."""
    samples: list[Sample] = []
    if real:
        real = _require_dir(Path(real), "real images", "check data.real")
        samples += [Sample(_rel(p, real.parent), p, 0, "real", s, source=real.name)
                    for s, p in _folder_files(real, split_ratios)]
    if full:
        full = _require_dir(Path(full), "fully generated images", "check data.full")
        samples += [Sample(_rel(p, full.parent), p, 1, "full", s, generator=full_generator)
                    for s, p in _folder_files(full, split_ratios)]
    if local:
        local = _require_dir(Path(local), "manipulated images", "check data.local")
        masks_dir = _require_dir(Path(masks), "masks", "check data.masks") if masks else None
        for s, p in _folder_files(local, split_ratios):
            mask = None
            if masks_dir is not None:
                sub = masks_dir / s if (masks_dir / s).is_dir() else masks_dir
                mask = _find_mask(sub, p)
            samples.append(Sample(_rel(p, local.parent), p, 1, "local", s, mask, generator))
    return samples


# ---------------------------------------------------------------- manifest

MANIFEST_COLUMNS = ("path", "label", "mask", "split", "generator", "source")


def _manifest_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise InputError(path, "manifest file does not exist", "check data.manifest")
    if path.suffix.lower() == ".jsonl":
        rows = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(path, f"line {n} is not valid JSON ({exc.msg})", "fix or remove that line") from None
        return rows
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    raise InputError(path, "manifest must be a .csv or .jsonl file", "rename or convert it")


def manifest_samples(manifest: str | Path) -> list[Sample]:
    manifest = Path(manifest)
    rows = _manifest_rows(manifest)
    if not rows:
        raise InputError(manifest, "manifest has no rows", "write one row per image")
    missing = [c for c in ("path", "label", "split") if c not in rows[0]]
    if missing:
        raise InputError(manifest, f"manifest lacks column(s) {', '.join(missing)}",
                         f"columns are: {', '.join(MANIFEST_COLUMNS)} (mask, generator, source optional)")
    base = manifest.parent
    samples = []
    for n, row in enumerate(rows, 1):
        where = f"{manifest} (row {n})"
        try:
            label = int(row["label"])
        except (TypeError, ValueError):
            raise InputError(where, f"label {row['label']!r} is not 0 or 1", "use 0 for real, 1 for fake") from None
        if label not in (0, 1):
            raise InputError(where, f"label {label} is not 0 or 1", "use 0 for real, 1 for fake")
        split = str(row["split"]).strip()
        if split not in SPLITS:
            raise InputError(where, f"split {split!r} is not one of {', '.join(SPLITS)}", "fix the split column")
        path = Path(row["path"])
        path = path if path.is_absolute() else base / path
        mask = row.get("mask") or None
        mask_path = None if mask is None else (Path(mask) if Path(mask).is_absolute() else base / mask)
        kind = "real" if label == 0 else ("local" if mask_path else "full")
        samples.append(Sample(_rel(path, base), path, label, kind, split, mask_path,
                              str(row.get("generator") or ""), str(row.get("source") or "")))
    repeated = [id_ for id_, count in Counter(s.id for s in samples).items() if count > 1]
    if repeated:
        dup = repeated[0]
        raise InputError(manifest, f"image {dup} is listed more than once", "keep one row per image")
    return samples
