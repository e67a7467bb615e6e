"""`weakloc predict` behind the CLI: predict many images into a folder of results.

OUT/
  summary.json, summary.csv   one row per image: score, verdict (fake / real, the value it thresholds, the rule),
                              mask area, notes, output files; errors; summary.json names the verdict's rule once
  predictions.npz             ids, scores, maps at the model's resolution (`weakloc evaluate` scores it); not
                              written at native scale, where every image has its own map size
  heatmaps/NAME.png           the map at the image's resolution, grayscale (value / 255 = probability)
  masks/NAME.png              the map > threshold (white = manipulated, or DOLOS black = fake)
  overlays/NAME.png           the heatmap over the image, with the mask outline, a colour bar and the score
"""

from __future__ import annotations

import csv
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..files import atomic_path, save_image, write_json
from .detector import Detector
from .render import heatmap_png, mask_image, overlay_png
from .saved import Predictions

WRITER_THREADS = 2  # PNG encoding (zlib, PIL) releases the GIL, so it overlaps the model's next batch


def output_names(ids: Sequence[str]) -> list[str]:
    """PNG names for the per-image files: the image's stem, or its id flattened when stems collide."""
    stems = [Path(i).stem for i in ids]
    counts = Counter(stems)
    return [f"{stem}.png" if counts[stem] == 1 else i.strip("/").replace("/", "__").rsplit(".", 1)[0] + ".png"
            for stem, i in zip(stems, ids)]


def _write_pictures(out: Path, files: dict, result, threshold: float, mask_polarity: str, title: str) -> None:
    """The PNGs of one prediction (run in a writer thread, overlapping the model's next batch)."""
    if "heatmap" in files:
        save_image(out / files["heatmap"], heatmap_png(result.map))
    if "mask" in files:
        save_image(out / files["mask"], mask_image(result.mask, mask_polarity))
    if "overlay" in files:  # on the image predict already decoded
        save_image(out / files["overlay"], overlay_png(result.image, result.map, result.score, threshold, title,
                                                       verdict=result.verdict))
    result.image = None


def predict_to_folder(detector: Detector, items: Sequence[tuple[str, Path]], out: str | Path, *,
                      threshold: float = 0.5, overlays: bool = True, heatmaps: bool = True, masks: bool = True,
                      mask_polarity: str = "white-fake", batch_size: int = 16, progress: bool = True,
                      overwrite: bool = False, skipped: Sequence[str] = ()) -> dict:
    """Predict ``items`` (id, path) and write the results under ``out``; returns the summary. ``skipped``: files
    the caller left out for their extension (named in the summary)."""
    out = Path(out)
    if (out / "summary.json").exists() and not overwrite:
        raise InputError(out, "folder already holds predictions", "choose another --out, or pass --overwrite")
    if not items:
        raise InputError(out, "no images to predict", "pass image files, folders or globs")
    out.mkdir(parents=True, exist_ok=True)
    ids = [i for i, _ in items]
    names = output_names(ids)
    path_to_index = {str(p): k for k, (_, p) in enumerate(items)}
    rows, errors = [], []
    kept_ids, kept_scores, kept_maps = [], [], []
    with ThreadPoolExecutor(WRITER_THREADS) as writers:
        pending = []
        for path, result in detector.predict_paths([p for _, p in items], threshold=threshold,
                                                   batch_size=batch_size, progress=progress, keep_images=overlays):
            k = path_to_index[path]
            if isinstance(result, InputError):
                errors.append({"id": ids[k], "error": str(result)})
                continue
            files = {kind: f"{kind}s/{names[k]}" for kind, wanted in (("heatmap", heatmaps), ("mask", masks),
                                                                      ("overlay", overlays)) if wanted}
            pending.append(writers.submit(_write_pictures, out, files, result, threshold, mask_polarity,
                                          detector.name))
            rows.append({"id": ids[k], "score": round(result.score, 6), "fake": result.is_fake,
                         "verdict": result.verdict, "verdict_value": round(result.verdict_value, 6),
                         "mask_area": round(float(result.mask.mean()), 6), "height": result.map.shape[0],
                         "width": result.map.shape[1], "notes": "; ".join(result.notes), **files})
            kept_ids.append(ids[k])
            kept_scores.append(result.score)
            kept_maps.append(result.model_map)
            if len(pending) > 4 * batch_size:  # bound the pictures waiting in memory
                pending.pop(0).result()
        for job in pending:
            job.result()  # a failed write surfaces here, not silently
    npz_note = None
    if kept_ids and len({m.shape for m in kept_maps}) == 1:
        Predictions(kept_ids, np.array(kept_scores), np.stack(kept_maps)).save_npz(out / "predictions.npz")
    elif kept_ids:  # native scale: each image has its own map size
        npz_note = ("no predictions.npz: the maps differ in size (native scale); `weakloc evaluate` scores the "
                    "heatmaps/ folder instead")
    summary = {"checkpoint_card": {k: detector.card.get(k) for k in ("method", "setup", "input_size", "epoch")},
               "threshold": threshold, "verdict_rule": detector.verdict_rule(threshold).to_dict(),
               "mask_polarity": mask_polarity, "scale": detector.scale, "images": rows, "errors": errors,
               "skipped": list(skipped)}
    if npz_note:
        summary["note"] = npz_note
    write_json(out / "summary.json", summary)
    with atomic_path(out / "summary.csv") as tmp, open(tmp, "w", newline="") as f:
        fields = ["id", "score", "fake", "verdict", "verdict_value", "verdict_rule", "mask_area", "height", "width",
                  "notes", "heatmap", "mask", "overlay"]
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        rule = summary["verdict_rule"]["text"]  # on every row: a CSV has no header block to say it once
        writer.writerows({**row, "verdict_rule": rule} for row in rows)
    return summary
