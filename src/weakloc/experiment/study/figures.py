"""The study's figures: IoU by mask area, same vs other source (the paper's Figure 5); the cross-generator IoU
matrix as an annotated heatmap (Figure 6); and qualitative grids of maps on fixed test images (Figures 3, 4, 7),
predicted by the trained checkpoints through the same ``Detector`` users call."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ...data.samples import Sample
from ...files import atomic_path

SAME_OTHER_COLOURS = {"same": "tab:blue", "other": "tab:orange"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def plot_iou_by_area(curves: dict[str, dict[str, list[dict]]], path: Path, labels: dict[str, str]) -> Path:
    """One panel per setup: IoU lg (%) against the mask area bin, one line per training source
    (``curves[setup][same|other]`` = iou_vs_area rows of an evaluation); empty bins are skipped."""
    plt = _pyplot()
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter
    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.4), dpi=100, squeeze=False)
    for ax, (setup, lines) in zip(axes[0], curves.items()):
        for which, rows in lines.items():
            kept = [r for r in rows if r.get("count") and r.get("iou_lg") is not None and not math.isnan(r["iou_lg"])]
            if not kept:
                continue
            x = [(r["area_lo"] + r["area_hi"]) / 2 for r in kept]
            ax.plot(x, [r["iou_lg"] for r in kept], marker="o", color=SAME_OTHER_COLOURS.get(which),
                    label=labels.get(which, which))
        ax.set_xscale("log")
        # plain percentages as ticks (matplotlib's log axis writes 6x10^0, 2x10^1 ... and overlaps them)
        ax.xaxis.set_major_locator(FixedLocator([1, 2, 5, 10, 20, 50, 100]))
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"setup {setup}")
        ax.set_xlabel("mask area (% of the image)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("IoU (%)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_matrix(values: Sequence[Sequence[float | None]], rows: Sequence[str], cols: Sequence[str], path: Path,
                title: str, split_after: int | None = None) -> Path:
    """An annotated heatmap of IoU (%): ``values[i][j]`` = tested on ``rows[i]``, trained on ``cols[j]``; a line
    after column ``split_after`` separates single generators from combinations."""
    plt = _pyplot()
    data = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * len(cols) + 2, 0.7 * len(rows) + 1.8), dpi=100)
    ax.imshow(data, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if not np.isnan(data[i, j]):
                ax.text(j, i, f"{data[i, j]:.1f}", ha="center", va="center", fontsize=9,
                        color="white" if data[i, j] < 60 else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("trained on")
    ax.set_ylabel("tested on")
    if split_after is not None:
        ax.axvline(split_after - 0.5, color="white", linewidth=3)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def map_grid(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], maps: dict[str, Sequence[np.ndarray]],
             path: Path, title: str, row_labels: Sequence[str] | None = None) -> Path:
    """One row per test image: the image, its true mask (white = manipulated), then each model's map (0-1,
    same colour scale for all)."""
    plt = _pyplot()
    columns = ["image", "true mask", *maps]
    fig, axes = plt.subplots(len(images), len(columns), figsize=(1.25 * len(columns), 1.3 * len(images) + 0.6),
                             dpi=100, squeeze=False)
    for i, (image, mask) in enumerate(zip(images, masks)):
        cells = [(image, {}), (mask.astype(float), {"cmap": "gray", "vmin": 0, "vmax": 1})]
        cells += [(m[i], {"cmap": "magma", "vmin": 0, "vmax": 1}) for m in maps.values()]
        for j, (cell, style) in enumerate(cells):
            ax = axes[i][j]
            ax.imshow(cell, interpolation="nearest", **style)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(columns[j], fontsize=7)
        if row_labels:
            axes[i][0].set_ylabel(row_labels[i], fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def pick_examples(local: Sequence[Sample], count: int, areas: dict[str, float]) -> list[Sample]:
    """``count`` test fakes spread over the mask areas (evenly spaced ranks of the sorted areas), so that the
    grids show small and large manipulations; the same images on every run."""
    ranked = sorted(local, key=lambda s: (areas.get(s.id, 0.0), s.id))
    if len(ranked) <= count:
        return ranked
    picks = np.linspace(0.15, 0.95, count) * (len(ranked) - 1)
    return [ranked[int(round(p))] for p in picks]


def predict_maps(checkpoints: dict[str, Path], paths: Sequence[Path]) -> dict[str, list[np.ndarray]]:
    """Each checkpoint's map of each image, at the image's resolution (``weakloc.load(...).predict``)."""
    from ...predict.detector import load

    maps = {}
    for label, checkpoint in checkpoints.items():
        results = load(checkpoint, device="cpu").predict([str(p) for p in paths])
        maps[label] = [r.map for r in results]
    return maps


def _examples(study, run, count: int):
    """(data, picked test fakes, their images, their masks) of a run's test data."""
    from ...data.images import read_mask, read_rgb
    from ...data.load import load_samples
    from ...data.samples import select

    data, samples = load_samples(study.exp.test_config(run))
    local = select(samples, "test", ["local"])
    masks = {s.id: read_mask(s.mask_path, polarity=data.mask_polarity, binarize=data.binarize_masks) for s in local}
    picked = pick_examples(local, count, {k: float(m.mean()) for k, m in masks.items()})
    return picked, [np.asarray(read_rgb(s.path)) for s in picked], [masks[s.id] for s in picked]


def _run_of(study, res: dict):
    return next(run for run in study.exp.runs if study.results.get(run.name) is res)


def write_figures(study, out_dir: Path, checkpoints: dict[str, Path], examples: int = 4) -> dict:
    """Figures 3-7 as PNGs in ``out_dir``; {"sections": [(key, title, markdown)]} for the report."""
    from ...methods import METHODS

    sections = []
    table2 = {(m, s): study.table2(m, s) for m in ("gradcam", "patches", "attention") for s in "ABC"}
    table2 = {k: v for k, v in table2.items() if v}
    name_of = {id(res): run.name for run in study.exp.runs if (res := study.results.get(run.name))}
    first = next(iter(table2.values()), None)
    if first is not None and study.exp is not None:
        picked, images, masks = _examples(study, _run_of(study, first), examples)
        paths = [s.path for s in picked]
        chosen = {f"{METHODS[m].short_name} {s}": checkpoints[name_of[id(r)]] for (m, s), r in table2.items()
                  if name_of.get(id(r)) in checkpoints}
        if chosen:
            map_grid(images, masks, predict_maps(chosen, paths), out_dir / "figure3.png",
                     "Figure 3: maps of each method (GC, PT, AT) and setup (A, B, C) on the same test fakes")
            sections.append(("figure3", "Figure 3: maps per method and setup", "![Figure 3](figure3.png)\n\n"
                             "Maps (0–1, same colour scale) on test fakes chosen across the mask areas.\n"))
        pairs = {}
        for s in "ABC":
            for which, res in (("same", study.table2("patches", s)), ("other", study.table3(s))):
                if res and name_of.get(id(res)) in checkpoints:
                    pairs[f"PT {s} {which}"] = checkpoints[name_of[id(res)]]
        if study.has_table3():
            map_grid(images, masks, predict_maps(pairs, paths), out_dir / "figure4.png",
                     "Figure 4: Patches trained on the same vs the other source")
            sections.append(("figure4", "Figure 4: Patches, same vs other source", "![Figure 4](figure4.png)\n\n"
                             "Soft maps of Patches trained on the test images' source (same) or on the other "
                             "source (other), setups A, B, C.\n"))
    curves = {s: {w: r["iou_vs_area"] for w, r in (("same", study.table2("patches", s)), ("other", study.table3(s)))
                  if r and r.get("iou_vs_area")} for s in "ABC"}
    curves = {s: c for s, c in curves.items() if c}
    if curves and study.has_table3():
        sources = study.sources()
        plot_iou_by_area(curves, out_dir / "figure5.png",
                         {"same": f"trained on {sources['same']} (same)", "other": f"trained on {sources['other']}"})
        sections.append(("figure5", "Figure 5: IoU by mask area, same vs other source", "![Figure 5](figure5.png)\n\n"
                         "Patches' mean IoU per mask-area bin (test fakes of the main source).\n"))
    matrix = study.figure6()
    if matrix:
        plot_matrix(matrix["values"], matrix["rows"], matrix["columns"], out_dir / "figure6.png",
                    "Figure 6: Patches, setup C, IoU (%) across generators", split_after=matrix["singles"])
        sections.append(("figure6", "Figure 6: across generators (Patches, setup C)", "![Figure 6](figure6.png)\n\n"
                         "Left of the line: trained on one generator; right: on all but one. Rows: the generator "
                         "of the test fakes (the same masks and source images for all).\n"))
        sections += _figure7(study, matrix, out_dir, checkpoints, name_of)
    return {"sections": sections}


def _figure7(study, matrix: dict, out_dir: Path, checkpoints: dict[str, Path], name_of: dict) -> list:
    """The single-generator models of Figure 6 on the same two items as inpainted by each generator."""
    from ...data.images import read_mask, read_rgb
    from ...data.load import load_samples
    from ...data.samples import select

    runs = {c: r for r in study.results.values() if r.get("cross")
            for c in [matrix["columns"][j] for j in range(matrix["singles"])]
            if list(r.get("trained_on", {}).get("local") or []) == [c]}
    chosen = {f"trained on {c}": checkpoints[name_of[id(r)]] for c, r in runs.items() if name_of.get(id(r)) in checkpoints}
    if not chosen:
        return []
    run = _run_of(study, next(iter(runs.values())))
    per_generator = {}
    for generator in matrix["rows"]:
        data, samples = load_samples(study.exp.cross_config(run, generator))
        per_generator[generator] = {s.name: s for s in select(samples, "test", ["local"])}
    common = sorted(set.intersection(*(set(v) for v in per_generator.values())))
    if not common:
        return []
    first = per_generator[matrix["rows"][0]]
    masks = {n: read_mask(first[n].mask_path, polarity=data.mask_polarity) for n in common}
    items = [s.name for s in pick_examples([first[n] for n in common], 2,
                                           {first[n].id: float(masks[n].mean()) for n in common})]
    rows = [(n, g) for n in items for g in matrix["rows"]]
    paths = [per_generator[g][n].path for n, g in rows]
    map_grid([np.asarray(read_rgb(p)) for p in paths], [masks[n] for n, _ in rows], predict_maps(chosen, paths),
             out_dir / "figure7.png", "Figure 7: Patches (setup C) trained on one generator, on each generator's fakes",
             row_labels=[g for _, g in rows])
    return [("figure7", "Figure 7: across generators, maps", "![Figure 7](figure7.png)\n\n"
             "Two items, each inpainted (same mask) by every generator (rows); columns: Patches trained on one "
             "generator.\n")]
