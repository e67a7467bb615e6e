"""The built-in benchmark's table of contents: counts per source / generator / split, mask areas, build times."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from ...files import atomic_path, write_json, write_text
from ...data.samples import SPLITS

AREA_BINS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def read_rows(base: Path, source: str) -> list[dict]:
    path = base / source / "manifest.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarize(base: Path, sources: list[str]) -> dict:
    counts: dict[str, dict[str, dict[str, int]]] = {}
    areas: dict[str, list[float]] = {}
    for source in sources:
        rows = read_rows(base, source)
        table: dict[str, Counter] = {}
        for row in rows:
            table.setdefault(row["generator"] or "real", Counter())[row["split"]] += 1
        counts[source] = {gen: {s: c.get(s, 0) for s in SPLITS} for gen, c in sorted(table.items())}
        first_local = next((r["generator"] for r in rows if r.get("mask")), None)
        areas[source] = [float(r["mask_area"]) for r in rows if r["generator"] == first_local and "mask_area" in r]
    return {"counts": counts, "mask_areas": {s: _area_stats(a) for s, a in areas.items()}, "_areas": areas}


def _area_stats(areas: list[float]) -> dict:
    if not areas:
        return {}
    values = np.asarray(areas)
    hist, _ = np.histogram(values, bins=AREA_BINS)
    return {"mean": round(float(values.mean()), 4), "median": round(float(np.median(values)), 4),
            "min": round(float(values.min()), 4), "max": round(float(values.max()), 4),
            "bins": {f"{a:g}-{b:g}": int(n) for a, b, n in zip(AREA_BINS, AREA_BINS[1:], hist, strict=False)}}


def _plot(path: Path, areas: dict[str, list[float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    bins = np.linspace(0, 0.6, 31)
    for source, values in areas.items():
        ax.hist(values, bins=bins, alpha=0.6, label=f"{source} ({len(values)} masks)")
    ax.set_xlabel("mask area (fraction of the image)")
    ax.set_ylabel("masks")
    ax.set_title("Built-in benchmark: mask areas (all splits)")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _markdown(summary: dict, timings: dict) -> str:
    lines = ["# Built-in benchmark: contents", "",
             "Crops of photographs shipped inside scikit-image / scikit-learn; fakes by the diffusion models shipped "
             "with weakloc and by classical inpainters. A test bed for the system, not a claim about real deepfakes.",
             ""]
    for source, table in summary["counts"].items():
        lines += [f"## {source}", "", "| generator | " + " | ".join(SPLITS) + " | total |",
                  "|---|" + "---|" * (len(SPLITS) + 1)]
        for gen, per in table.items():
            lines.append(f"| {gen} | " + " | ".join(str(per[s]) for s in SPLITS) + f" | {sum(per.values())} |")
        stats = summary["mask_areas"].get(source)
        if stats:
            lines += ["", f"Mask area: mean {stats['mean']}, median {stats['median']}, range {stats['min']}–"
                          f"{stats['max']}; per bin: " + ", ".join(f"{k}: {v}" for k, v in stats["bins"].items())]
        lines.append("")
    lines += ["Examples (test split): `examples-SOURCE.png`, one row per item: the source crop, its mask (white = "
              "inpainted), each local generator's image (repaint, repaint-ldm where present, telea, biharmonic), a fully "
              "generated image (ddpm).", ""]
    lines += ["## Build time (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {stage} | {sec} |" for stage, sec in timings.items()]
    return "\n".join(lines) + "\n"


def example_grid(base: Path, source: str, count: int = 8, upscale: int = 3) -> np.ndarray:
    """One row per test item: the crop the fakes were made from, its mask (white = inpainted), then each local
    generator's image, then a full fake; nearest-neighbour upscaled so that 32-px images can be seen."""
    from PIL import Image

    rows = read_rows(base, source)
    local = [r for r in rows if r.get("mask") and r["split"] == "test"]
    generators = list(dict.fromkeys(r["generator"] for r in local))
    by_item = {}
    for r in local:
        by_item.setdefault(Path(r["path"]).name, {})[r["generator"]] = r
    full = [r for r in rows if r["label"] == 1 and not r.get("mask") and r["split"] == "test"]
    lines = []
    for k, name in enumerate(sorted(by_item)[:count]):
        first = by_item[name][generators[0]]
        tiles = [np.asarray(Image.open(first["source_image"]).convert("RGB")),
                 np.repeat((np.asarray(Image.open(base / source / first["mask"]).convert("L")) < 128)[..., None]
                           * np.uint8(255), 3, axis=2)]
        tiles += [np.asarray(Image.open(base / source / by_item[name][g]["path"]).convert("RGB")) for g in generators]
        if full:
            tiles.append(np.asarray(Image.open(base / source / full[k % len(full)]["path"]).convert("RGB")))
        lines.append(np.concatenate([np.pad(t, ((1, 1), (1, 1), (0, 0)), constant_values=255) for t in tiles], axis=1))
    grid = np.concatenate(lines, axis=0)
    return grid.repeat(upscale, axis=0).repeat(upscale, axis=1)


def write_contents(base: Path, sources: list[str], timings: dict) -> dict:
    """contents.json, contents.md, mask-areas.png and examples-SOURCE.png beside the benchmark."""
    from ...files import save_image

    summary = summarize(base, sources)
    areas = summary.pop("_areas")
    summary["build_seconds"] = timings
    write_json(base / "contents.json", summary)
    write_text(base / "contents.md", _markdown(summary, timings))
    _plot(base / "mask-areas.png", areas)
    for source in sources:
        save_image(base / f"examples-{source}.png", example_grid(base, source))
    return summary
