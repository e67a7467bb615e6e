"""The resumable, sharded job runner behind every ``weakloc generate`` command.

A run is a list of jobs in a fixed order; each job writes a few files and yields manifest rows.

- **Atomic**: every file is written to a temporary name and renamed (``weakloc.files``), so a kill leaves no
  half-written PNG; temporary files a killed run left behind are removed when its jobs are taken up again.
- **Resumable**: a job is done when all its files exist and its rows are in a row log; done jobs are skipped.
  Rows are logged (and fsynced) *before* the files are written, so a job is never counted done without them.
- **Sharded**: jobs are grouped into chunks of ``batch_size`` in the fixed order and shard ``i/n`` takes
  chunks ``i, i+n, ...``; shards are numbered from 0, like torchrun ranks (``0/2`` and ``1/2``). A chunk is
  always computed whole (on resume too), so every image is made in the same batch whatever the sharding: with
  per-image seeds the files are byte-identical to a single run. The batch size is therefore part of a run's
  settings (``jobs.py`` records it where it matters).
- The manifest is written (atomically, rows in job order) by the shard that finds every job done; the row logs
  are then removed. Under ``torchrun`` each rank takes its shard from RANK / WORLD_SIZE.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..config import changed_settings, changes_block
from ..data.images import write_mask
from ..errors import ConfigError, InputError
from ..device import launch_env, launched_by_torchrun
from ..files import atomic_path, save_image, write_json

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> "Shard":
        """``"i/n"``; without it, torchrun's RANK / WORLD_SIZE; else the whole run."""
        if text is None or text == "":
            if launched_by_torchrun():
                rank, world_size, _ = launch_env()
                return cls(rank, world_size)
            return cls()
        try:
            index, count = (int(v) for v in text.split("/"))
        except ValueError:
            raise ConfigError(f"--shard must look like I/N, shard I of N numbered from 0 (e.g. 0/4), "
                              f"not {text!r}") from None
        if count < 1:
            raise ConfigError(f"--shard {text}: N (the number of shards) must be at least 1")
        if not 0 <= index < count:
            raise ConfigError(f"--shard {text}: shards are numbered from 0, like torchrun ranks: "
                              f"use {cls.names(count)}")
        return cls(index, count)

    @staticmethod
    def names(count: int) -> str:
        """How the ``count`` shards of a run are written: ``0/2 and 1/2``; ``0/8, 1/8, ..., 7/8``."""
        if count == 1:
            return "0/1"
        if count <= 4:
            return ", ".join(f"{i}/{count}" for i in range(count - 1)) + f" and {count - 1}/{count}"
        return f"0/{count}, 1/{count}, ..., {count - 1}/{count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Job:
    id: str  # unique in the run; seeds derive from it
    outputs: tuple[Path, ...]
    data: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class Output:
    path: Path
    array: np.ndarray
    mask: bool = False  # write as a DOLOS mask file (RGB 0/255, black = fake)


@dataclass
class Done:
    files: list[Output]
    rows: list[dict]


@dataclass
class Report:
    total: int  # jobs in the whole run (after --limit)
    mine: int  # jobs of this shard
    skipped: int  # already done before this run
    written: int
    seconds: float
    complete: bool  # every job of every shard done, manifest written
    manifest: Path
    rows: int = 0  # manifest rows written by this run
    nouns: tuple[str, str] | None = None  # (job, row) nouns when a job writes several rows: ("images", "masks")
    available: int | None = None  # jobs before --limit cut the run (None: no limit given)
    pending: tuple[Shard, ...] = ()  # shards with jobs left (when not complete)

    @property
    def limited(self) -> bool:
        """Whether --limit left jobs out: the manifest then covers only the first ``total`` jobs."""
        return self.available is not None and self.available > self.total

    def summary(self) -> str:
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        if self.nouns:
            job, row = self.nouns
            done = (f"{_count(self.rows, row)} written for {_count(self.written, job)}, "
                    f"{_count(self.skipped, job)} already there ({self.mine} of {_count(self.total, job)} in this "
                    f"shard, {rate:.2f} {job}/s)")
        else:
            done = (f"{self.written} written, {self.skipped} already there ({self.mine} of {self.total} in this "
                    f"shard, {rate:.2f}/s)")
        if not self.complete:
            left = f": {', '.join(str(s) for s in self.pending)}" if self.pending else ""
            state = f"this shard done; other shards pending{left} (shards are numbered from 0)"
        elif self.limited:
            state = (f"partial: stopped at --limit {self.total} of {self.available}; manifest {self.manifest} "
                     "covers only these (rerun without --limit, or with a larger one, to continue)")
        else:
            state = f"complete, manifest {self.manifest}"
        return f"{done}; {state}"


def _count(number: int, noun: str) -> str:
    """``1 image``, ``2 images`` (``noun`` is the plural)."""
    return f"{number} {noun[:-1] if number == 1 and noun.endswith('s') else noun}"


def check_spec(path: Path, spec: dict) -> None:
    """Refuse to mix two different runs in one folder; write the spec the first time."""
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError:
            old = None
        new = json.loads(json.dumps(spec))
        if old != new:
            changed = changed_settings(old, new) if isinstance(old, dict) else ["(unreadable settings file)"]
            raise InputError(path, f"this folder holds output made with other settings {changes_block(changed)}",
                             "rerun with the settings it was made with (the values left of ->), choose another "
                             "output name (--name / --out), or delete that folder to start over")
        return
    write_json(path, spec)


def _read_rows(path: Path) -> dict[str, list[dict]]:
    """Row log lines ``{"job": id, "rows": [...]}``; a torn last line (killed mid-append) is ignored."""
    rows: dict[str, list[dict]] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        try:
            record = json.loads(line)
            rows[record["job"]] = record["rows"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return rows


def _known_rows(work: Path, manifest: Path) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    if manifest.exists():
        for line in manifest.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                rows.setdefault(record["_job"], []).append({k: v for k, v in record.items() if k != "_job"})
    if work.is_dir():
        for log in sorted(work.glob("rows-*.jsonl")):
            rows.update(_read_rows(log))
    return rows


def _clean_stale(jobs: Sequence[Job]) -> None:
    """Remove temporary files (``.NAME.XXXX.tmp.png``) that a killed run left for these jobs' outputs.
    Only this shard's own outputs are considered: other shards may be writing theirs right now."""
    names_by_dir: dict[Path, set[str]] = {}
    for job in jobs:
        for path in job.outputs:
            names_by_dir.setdefault(path.parent, set()).add(path.name)
    for folder, names in names_by_dir.items():
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name.startswith(".") and ".tmp" in entry.name:
                original = entry.name[1:].rsplit(".tmp", 1)[0].rsplit(".", 1)[0]
                if original in names:
                    entry.unlink(missing_ok=True)


def _write(output: Output) -> None:
    if output.mask:
        write_mask(output.path, output.array)
    else:
        save_image(output.path, output.array)


class _RowLog:
    """This shard's append-only row log, rewritten clean on open (drops a torn last line)."""

    def __init__(self, path: Path) -> None:
        existing = _read_rows(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text("".join(json.dumps({"job": j, "rows": r}) + "\n" for j, r in existing.items()))
        self._file = path.open("a")

    def append(self, job: str, rows: list[dict]) -> None:
        self._file.write(json.dumps({"job": job, "rows": rows}) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def run_jobs(jobs: Sequence[Job], compute: Callable[[list[Job]], list[Done]], *, manifest: Path, work: Path,
             batch_size: int = 1, shard: Shard = Shard(), desc: str = "generate", unit: str = "img",
             nouns: tuple[str, str] | None = None, available: int | None = None,
             progress: bool = True) -> Report:
    """Run this shard's jobs (skipping done ones), then write ``manifest`` if every job is done.

    ``work`` holds the row logs while a run is incomplete. Manifest rows get a ``_job`` key (the job id) so
    that a finished run can be extended or checked again without recomputing anything. ``nouns`` names jobs
    and rows in the report when a job writes several rows; ``available`` is the number of jobs before a
    ``--limit`` cut ``jobs`` (the report then says the run is partial)."""
    if batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    ids = [job.id for job in jobs]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise InputError(manifest.parent, f"two jobs share the id {duplicate!r}", "ids must be unique")
    chunks = [list(jobs[i:i + batch_size]) for i in range(0, len(jobs), batch_size)]
    mine = [chunk for number, chunk in enumerate(chunks) if number % shard.count == shard.index]
    my_jobs = [job for chunk in mine for job in chunk]
    _clean_stale(my_jobs)
    rows = _known_rows(work, manifest)

    def done(job: Job) -> bool:
        return job.id in rows and all(p.exists() for p in job.outputs)

    todo = [chunk for chunk in mine if not all(done(job) for job in chunk)]
    skipped = sum(done(job) for job in my_jobs)
    written = rows_written = 0
    started = time.perf_counter()
    label = desc if shard.count == 1 else f"{desc} [shard {shard}]"
    if todo:
        log = _RowLog(work / f"rows-{shard.index}-of-{shard.count}.jsonl")
        try:
            with tqdm(total=len(my_jobs), initial=skipped, desc=label, unit=unit, disable=not progress,
                      dynamic_ncols=True, smoothing=0.1) as bar:
                for chunk in todo:
                    results = compute(chunk)
                    for job, result in zip(chunk, results, strict=True):
                        if done(job):
                            continue  # computed again only to keep the batch whole (see module doc)
                        log.append(job.id, result.rows)
                        rows[job.id] = result.rows
                        for output in result.files:
                            _write(output)
                        written += 1
                        rows_written += len(result.rows)
                        bar.update(1)
        finally:
            log.close()
    seconds = time.perf_counter() - started
    complete = _finish(jobs, work, manifest)
    pending: tuple[Shard, ...] = ()
    if not complete:
        rows = _known_rows(work, manifest)
        left = {number % shard.count for number, chunk in enumerate(chunks) if not all(done(job) for job in chunk)}
        pending = tuple(Shard(index, shard.count) for index in sorted(left))
    return Report(len(jobs), len(my_jobs), skipped, written, seconds, complete, manifest, rows=rows_written,
                  nouns=nouns, available=available, pending=pending)


def _finish(jobs: Sequence[Job], work: Path, manifest: Path) -> bool:
    """Write the manifest if every job (of every shard) is done; then drop the row logs."""
    rows = _known_rows(work, manifest)
    if not all(job.id in rows and all(p.exists() for p in job.outputs) for job in jobs):
        return False
    with atomic_path(manifest) as tmp:
        tmp.write_text("".join(json.dumps({**row, "_job": job.id}) + "\n" for job in jobs for row in rows[job.id]))
    if work.is_dir():
        for log in work.glob("rows-*.jsonl"):
            log.unlink(missing_ok=True)
        try:
            work.rmdir()
            if not any(work.parent.iterdir()) and work.parent.name == ".weakloc":
                work.parent.rmdir()
        except OSError:
            pass  # another shard's file is still there, or the folder is shared
    return True
