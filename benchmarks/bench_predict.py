"""What a practitioner sees: `weakloc predict` throughput per method at the default input size (299 px).

    python benchmarks/bench_predict.py [--images 32] [--size 256] [--precision fp32,auto] [--fold off,on] [--repeats 3]

Times, for each method (random weights, a checkpoint written by save_checkpoint as training would):
- the Python API (`Detector.predict_paths`: decode, resize, model, map back to the image's resolution);
- `weakloc predict` without overlays (adds heatmap/mask PNGs, summary, npz), and with overlays;
each at every precision asked for (``auto`` is bf16 autocast where the CPU has native bf16, else fp32), so the
ratio between them is measured in one run; and with the BatchNorms folded into their convolutions (``on``, what
`weakloc.load` does by default) or not (``off``). Writes benchmarks/results/predict.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from weakloc.device import autocast_dtype
from weakloc.predict.detector import load
from weakloc.train.checkpoint import save_checkpoint
from weakloc.predict.folder import predict_to_folder
from weakloc.methods import build_model

RESULTS = Path(__file__).parent / "results"


def best_rate(run, images: int, repeats: int) -> float:
    """Images per second of the fastest of ``repeats`` calls of ``run`` (the least disturbed by other work)."""
    fastest = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        fastest = min(fastest, time.perf_counter() - start)
    return images / fastest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=256, help="side of the test images (CelebA-HQ: 256)")
    parser.add_argument("--precision", default="fp32,auto", help="comma-separated: fp32, auto, bf16")
    parser.add_argument("--fold", default="off,on", help="comma-separated: off, on (BatchNorm folded for inference)")
    parser.add_argument("--repeats", type=int, default=3, help="each figure is the best of this many timings")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rng = np.random.default_rng(0)
        paths = []
        for i in range(args.images):
            path = tmp / "images" / f"{i:04d}.{'png' if i % 2 else 'jpg'}"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)).save(path)
            paths.append(path)
        runs = [(m, s, p, f) for m, s in (("patches", "A"), ("gradcam", "A"), ("attention", "A"), ("gradcam", "C"))
                for p in args.precision.split(",") for f in args.fold.split(",")]
        for method, setup, precision, fold in runs:
            torch.manual_seed(0)
            model = build_model(method, setup)
            card = {"input_size": 299, "resize": "lanczos", "mean": 0.5, "std": 0.5}
            checkpoint = save_checkpoint(tmp / f"{method}-{setup}.safetensors", model, card)
            detector = load(checkpoint, "cpu", precision=precision, fold_batchnorm=fold == "on")
            dtype = autocast_dtype(precision, torch.device("cpu"))
            detector.predict(paths[:2])  # warm-up

            def api_pass() -> None:
                for _ in detector.predict_paths(paths, batch_size=16, progress=False):
                    pass

            api = best_rate(api_pass, args.images, args.repeats)
            timings = {}
            for overlays in (False, True):
                out = tmp / f"out-{method}-{setup}-{precision}-{fold}-{overlays}"
                items = [(str(p), p) for p in paths]

                def cli_pass() -> None:
                    shutil.rmtree(out, ignore_errors=True)
                    predict_to_folder(detector, items, out, overlays=overlays, progress=False)

                timings[overlays] = best_rate(cli_pass, args.images, args.repeats)
            rows.append({"method": method, "setup": setup, "precision": precision, "fold_batchnorm": fold,
                         "autocast": str(dtype).replace("torch.", "") if dtype else "fp32", "input": 299,
                         "image_px": args.size, "repeats": args.repeats,
                         "api_img_s": api, "cli_img_s": timings[False], "cli_overlays_img_s": timings[True]})
            print(rows[-1], flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "predict.json").write_text(json.dumps({"threads": torch.get_num_threads(), "rows": rows}, indent=2) + "\n")
    print("| method | setup | precision (runs as) | BN folded | API images/s | predict images/s "
          "| predict + overlays images/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['setup']} | {r['precision']} ({r['autocast']}) | {r['fold_batchnorm']} "
              f"| {r['api_img_s']:.1f} | {r['cli_img_s']:.1f} | {r['cli_overlays_img_s']:.1f} |")


if __name__ == "__main__":
    main()
