"""An experiment as a list of stages: one overall progress line per stage (stage k of N, elapsed, estimate), the
wall time of each stage kept in ``stages.json`` (its first, computing run's time when a later run reuses it), and
a small result cache (:func:`cached`) keyed on everything that decides a stage's output."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..files import write_json

CACHE_FILE = "stage.json"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


@dataclass
class Stage:
    name: str
    weight: float  # expected cost relative to the other stages (images through a network), for the estimate
    run: Callable[[], bool]  # does the stage's work; returns True when it computed, False when it reused


class StagePlan:
    """Runs stages in order, printing ``[k/N] name · elapsed · about T left`` above each (to stdout, one line, so
    that logs stay readable when the output is not a terminal) and recording each stage's wall time."""

    def __init__(self, title: str, timings_path: Path, *, progress: bool = True, stream=None) -> None:
        self.title, self.path, self.progress = title, Path(timings_path), progress
        self.stream = stream or sys.stdout
        self.stages: list[Stage] = []
        old = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.timings: dict[str, dict] = old if isinstance(old, dict) else {}

    def add(self, name: str, weight: float, run: Callable[[], bool]) -> None:
        self.stages.append(Stage(name, max(float(weight), 1e-3), run))

    def _line(self, k: int, stage: Stage, started: float, rates: dict[str, list[float]]) -> str:
        elapsed = time.perf_counter() - started
        estimate = self._estimate(k, rates)
        left = f" · about {_clock(estimate)} left" if estimate is not None else ""
        return f"[{self.title} {k + 1}/{len(self.stages)}] {stage.name} · {_clock(elapsed)} elapsed{left}"

    def _estimate(self, k: int, rates: dict[str, list[float]]) -> float | None:
        """Seconds left: each remaining stage's weight at the rate (seconds per unit of weight) its kind (train,
        evaluate, ...) ran at so far, or at the mean rate of the other kinds (the benchmark's excluded); None until a
        stage other than the benchmark has computed."""
        known = {kind: spent / weight for kind, (weight, spent) in rates.items() if weight > 0 and spent > 0}
        # the benchmark's weight (images generated) says nothing of a network's speed: no estimate from it alone
        others = [r for kind, r in known.items() if kind != "benchmark"]
        if not others:
            return None
        fallback = sum(others) / len(others)
        return sum(s.weight * known.get(_kind(s.name), fallback) for s in self.stages[k:])

    def run(self) -> dict[str, dict]:
        started = time.perf_counter()
        rates: dict[str, list[float]] = {}  # kind -> [weight, seconds] of the stages that computed
        for k, stage in enumerate(self.stages):
            if self.progress:
                print(self._line(k, stage, started, rates), file=self.stream, flush=True)
            t0 = time.perf_counter()
            computed = stage.run()
            seconds = time.perf_counter() - t0
            if computed:
                entry = rates.setdefault(_kind(stage.name), [0.0, 0.0])
                entry[0] += stage.weight
                entry[1] += seconds
                self.timings[stage.name] = {"seconds": round(seconds, 1), "reused": False}
            else:
                previous = self.timings.get(stage.name, {})
                self.timings[stage.name] = {"seconds": previous.get("seconds", round(seconds, 1)), "reused": True}
            write_json(self.path, self.timings)
        if self.progress:
            print(f"[{self.title}] done in {_clock(time.perf_counter() - started)}", file=self.stream, flush=True)
        return self.timings


def _kind(name: str) -> str:
    return name.split(" ", 1)[0]


def cached(folder: Path, key: dict, compute: Callable[[], Any]) -> tuple[Any, bool]:
    """``compute()``'s result, or the one stored in ``folder/stage.json`` under the same ``key`` (the checkpoint's
    hash, the data and evaluation settings...); (result, computed)."""
    path = Path(folder) / CACHE_FILE
    key = json.loads(json.dumps(key, default=str))  # the form it has once stored
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError:  # unreadable: computed again
            stored = {}
        if stored.get("key") == key:
            return stored["result"], False
    result = json.loads(json.dumps(compute(), default=str))  # the same values a later run reads back
    write_json(path, {"key": key, "result": result})
    return result, True
