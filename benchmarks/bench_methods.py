"""Training and prediction speed of every localizer (Patches, GradCAM, Attention; weak and full variants) on
this machine's CPU, at 299 px (the paper's input) and 128 px, with small batches.

    .venv/bin/python benchmarks/bench_methods.py            # ~2.5 min on 2 idle CPU cores
    .venv/bin/python benchmarks/bench_methods.py --quick    # a smoke run (128 px only, one timed step)

- train: forward + ``model.loss`` + backward + Adam step, exactly as the training loop runs them (train mode,
  channels_last, the loop's default precision "auto" = bf16 autocast where the CPU has it); one warm-up step,
  then images/s of the median of 5 timed steps. Setup A for the weak variants (image labels), C for the full
  ones (masks).
- predict: ``predict_cache`` on cached images, as ``weakloc predict`` / ``evaluate`` run it (eval mode, fp32;
  GradCAM's weak variant includes its backward pass to block 11). One warm-up batch, then the median of 5.
Random weights and random images: speed does not depend on them. Writes benchmarks/results/methods.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from weakloc.data.cache import CachedImages  # noqa: E402
from weakloc.methods import METHODS, build_model  # noqa: E402
from weakloc.predict.batch import predict_cache  # noqa: E402
from weakloc.device import autocast, autocast_dtype  # noqa: E402

RESULTS = Path(__file__).parent / "results"
METHOD_ORDER = ("patches", "gradcam", "attention")
BATCH = {299: 4, 128: 8}  # small batches: a 2-core CPU


def parameters(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


def bench_train(method: str, setup: str, size: int, batch: int, steps: int, precision: str) -> float:
    torch.manual_seed(0)
    model = build_model(method, setup).train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=METHODS[method].defaults[setup].lr)
    device = torch.device("cpu")
    dtype = autocast_dtype(precision, device)
    masks = torch.zeros(batch, size, size, dtype=torch.uint8)
    masks[:, size // 4: size // 2, size // 3: 2 * size // 3] = 1
    data = {"image": torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last),
            "label": torch.arange(batch) % 2, "mask": masks}

    def step() -> None:
        with autocast(device, dtype):
            loss = model.loss(model(data["image"]), data)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocations, oneDNN kernel selection
    return batch / median_seconds(step, steps)


def median_seconds(work, repeats: int) -> float:
    """Median wall time of ``repeats`` calls: robust to the odd step slowed by another process."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def bench_predict(method: str, setup: str, size: int, batch: int, batches: int) -> float:
    torch.manual_seed(0)
    model = build_model(method, setup).eval()
    images = np.random.default_rng(0).integers(0, 256, (batch, 3, size, size), dtype=np.uint8)
    cache = CachedImages([None] * batch, images, None, np.zeros(batch, np.int64))

    def run() -> None:
        predict_cache(model, cache, batch_size=batch, progress=False)

    run()  # warm-up
    return batch / median_seconds(run, batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="128 px only, one timed step/batch (smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps/batches per row (default 5)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="input sizes (default 299 128)")
    parser.add_argument("--methods", nargs="+", default=list(METHOD_ORDER), choices=sorted(METHODS))
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"),
                        help="training precision (prediction is fp32, as `weakloc evaluate` runs it)")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/methods[-quick].json)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")
    sizes = args.sizes or ([128] if args.quick else [299, 128])
    steps = args.repeats or (1 if args.quick else 5)
    env = {"python": sys.version.split()[0], "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "train_precision": args.precision,
           "train_autocast": str(autocast_dtype(args.precision, torch.device("cpu")) or "none"),
           "load_average_at_start": os.getloadavg()[0]}
    rows = []
    for size in sizes:
        batch = BATCH.get(size, 4)
        for method in args.methods:
            for setup in ("A", "C"):
                model = build_model(method, setup)
                row = {"method": method, "variant": "weak (A/B)" if setup == "A" else "full (C)", "setup": setup,
                       "input": size, "map": model.map_size(size), "params_M": round(parameters(model), 2),
                       "batch": batch,
                       "train_img_s": bench_train(method, setup, size, batch, steps, args.precision),
                       "predict_img_s": bench_predict(method, setup, size, batch, steps)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    env["load_average_at_end"] = os.getloadavg()[0]
    out = Path(args.out) if args.out else RESULTS / ("methods-quick.json" if args.quick else "methods.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": env, "rows": rows}, indent=2) + "\n")
    print(table(rows))
    print(f"written {out}")


def table(rows: list[dict]) -> str:
    lines = ["| method | variant | input | map | params (M) | batch | train img/s | predict img/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['variant']} | {r['input']} | {r['map']}x{r['map']} | {r['params_M']:.2f} | "
                     f"{r['batch']} | {r['train_img_s']:.2f} | {r['predict_img_s']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
