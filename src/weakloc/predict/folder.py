"""`weakloc predict` behind the CLI: predict many images into a folder of results.

OUT/
  summary.json, summary.csv   one row per image: score, verdict, mask area, notes, output files; errors
  predictions.npz             ids, scores, maps at the model's resolution (`weakloc evaluate` scores it)
  heatmaps/NAME.png           the map at the image's resolution, grayscale (value / 255 = probability)
  masks/NAME.png              the map > threshold (white = manipulated, or DOLOS black = fake)
  overlays/NAME.png           the heatmap over the image, with the mask outline, a colour bar and the score
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..files import atomic_path, save_image, write_json
from .detector import Detector
from .render import heatmap_png, mask_image, overlay_png
from .saved import Predictions


def output_names(ids: Sequence[str]) -> list[str]:
    """PNG names for the per-image files: the image's stem, or its id flattened when stems collide."""
    stems = [Path(i).stem for i in ids]
    counts = Counter(stems)
    return [f"{stem}.png" if counts[stem] == 1 else i.strip("/").replace("/", "__").rsplit(".", 1)[0] + ".png"
            for stem, i in zip(stems, ids)]


def predict_to_folder(detector: Detector, items: Sequence[tuple[str, Path]], out: str | Path, *,
                      threshold: float = 0.5, overlays: bool = True, heatmaps: bool = True, masks: bool = True,
                      mask_polarity: str = "white-fake", batch_size: int = 16, progress: bool = True,
                      overwrite: bool = False) -> dict:
    """Predict ``items`` (id, path) and write the results under ``out``; returns the summary."""
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
    for path, result in detector.predict_paths([p for _, p in items], threshold=threshold, batch_size=batch_size,
                                               progress=progress, keep_images=overlays):
        k = path_to_index[path]
        if isinstance(result, InputError):
            errors.append({"id": ids[k], "error": str(result)})
            continue
        files = {}
        if heatmaps:
            files["heatmap"] = f"heatmaps/{names[k]}"
            save_image(out / files["heatmap"], heatmap_png(result.map))
        if masks:
            files["mask"] = f"masks/{names[k]}"
            save_image(out / files["mask"], mask_image(result.mask, mask_polarity))
        if overlays:  # on the image predict already decoded
            files["overlay"] = f"overlays/{names[k]}"
            save_image(out / files["overlay"], overlay_png(result.image, result.map, result.score, threshold,
                                                           detector.name))
            result.image = None
        rows.append({"id": ids[k], "score": round(result.score, 6), "fake": result.is_fake,
                     "mask_area": round(float(result.mask.mean()), 6), "height": result.map.shape[0],
                     "width": result.map.shape[1], "notes": "; ".join(result.notes), **files})
        kept_ids.append(ids[k])
        kept_scores.append(result.score)
        kept_maps.append(result.model_map)
    if kept_ids:
        Predictions(kept_ids, np.array(kept_scores), np.stack(kept_maps)).save_npz(out / "predictions.npz")
    summary = {"checkpoint_card": {k: detector.card.get(k) for k in ("method", "setup", "input_size", "epoch")},
               "threshold": threshold, "mask_polarity": mask_polarity, "images": rows, "errors": errors}
    write_json(out / "summary.json", summary)
    with atomic_path(out / "summary.csv") as tmp, open(tmp, "w", newline="") as f:
        fields = ["id", "score", "fake", "mask_area", "height", "width", "notes", "heatmap", "mask", "overlay"]
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return summary
