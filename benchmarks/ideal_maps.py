"""The IoU a perfect map of each resolution scores on the built-in benchmark's test masks: an upper bound for setup C.

    python benchmarks/ideal_maps.py [--root data] [--source photos-a] [--generator repaint] [--sizes 8,12,16]

A model trained on setup C's targets can at best predict them. For each test mask, the target map of a given size is
made the way training makes it (``nearest``: PIL NEAREST, the official choice for Patches; ``area``: each cell's
share of fake pixels, ``data.mask_resize = "area"``), then scored as the evaluation scores a predicted map: resized to
the mask's size with PIL bicubic, thresholded at 0.5, IoU averaged over the images (x100).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from weakloc.data.cache import MaskTarget
from weakloc.data.images import read_mask


def ideal_iou(masks: list[np.ndarray], size: int, resize: str) -> float:
    target = MaskTarget(size, resize)
    scores = []
    for mask in masks:
        small = target(mask.astype(np.uint8)).astype(np.float32) / (255 if target.soft else 1)
        big = np.asarray(Image.fromarray(small, "F").resize(mask.shape[::-1], Image.BICUBIC)) > 0.5
        union = (big | mask).sum()
        scores.append(1.0 if union == 0 else (big & mask).sum() / union)
    return 100 * float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="data", help="the folder holding builtin/ (data.root)")
    parser.add_argument("--source", default="photos-a")
    parser.add_argument("--generator", default="repaint")
    parser.add_argument("--sizes", default="8,12,16", help="map sides: 8, 12, 16 at input 64, 96, 128")
    args = parser.parse_args()
    folder = Path(args.root) / "builtin" / args.source / "fake" / args.generator / "masks" / "test"
    files = sorted(folder.glob("*.png"))
    if not files:
        raise SystemExit(f"{folder}: no test masks; build the benchmark first (weakloc demo, or weakloc data builtin)")
    masks = [read_mask(f).astype(bool) for f in files]
    print(f"{len(masks)} test masks of {args.source}/{args.generator}")
    print("| map | nearest targets (official) | area targets |")
    print("|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"| {size}x{size} | {ideal_iou(masks, size, 'nearest'):.1f} | {ideal_iou(masks, size, 'area'):.1f} |")


if __name__ == "__main__":
    main()
