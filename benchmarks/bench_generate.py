"""Generation speed on this machine: UNet evaluations/s and RePaint images/s (random weights, no downloads).

    .venv/bin/python benchmarks/bench_generate.py            # ~3-5 min on 2 CPU cores
    .venv/bin/python benchmarks/bench_generate.py --quick    # a smoke run (seconds)

Rows:
- ``small``: a small pixel UNet (benchmarks/unets.py small_unet) at 64 and 128 px;
- ``celebahq-256``: a UNet with google/ddpm-celebahq-256's configuration (113.7M parameters) at 256 px; only a
  few evaluations are timed (a full RePaint would take hours on a CPU).
"UNet evals/s" counts image-evaluations (batch x calls per second). RePaint images/s is measured with a short
schedule and projected to RePaint's face schedule (250 steps, jumps of 10, 10 resamplings = 2410 UNet calls
per image) from the measured per-call cost, scheduler included. Writes benchmarks/results/generate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from unets import celebahq_unet, small_unet  # noqa: E402  (beside this script)
from weakloc.generate.generators.repaint import repaint, repaint_unet_calls  # noqa: E402
from weakloc.generate.seeds import torch_generators  # noqa: E402

FACE_SCHEDULE = (250, 10, 10)
SHORT_SCHEDULE = (20, 5, 2)
SCHEDULE = {"num_train_timesteps": 1000}


def params(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e6


@torch.inference_mode()
def unet_rate(unet: torch.nn.Module, size: int, batch: int, *, min_seconds: float, max_calls: int,
              dtype: torch.dtype = torch.float32) -> float:
    """Image-evaluations per second of the UNet alone."""
    x = torch.randn(batch, unet.config.in_channels, size, size, dtype=dtype)
    t = torch.tensor(500)
    unet(x, t)  # warm-up: allocations, kernel selection
    calls, started = 0, time.perf_counter()
    while calls < max_calls and (calls == 0 or time.perf_counter() - started < min_seconds):
        unet(x, t)
        calls += 1
    return batch * calls / (time.perf_counter() - started)


def repaint_rate(unet: torch.nn.Module, size: int, batch: int, schedule: tuple[int, int, int]) -> tuple[float, float]:
    """(images/s, image-evaluations/s) of a whole RePaint run, scheduler and noise included."""
    steps, jump, resample = schedule
    known = torch.rand(batch, 3, size, size) * 2 - 1
    fake = torch.zeros(batch, 1, size, size)
    fake[:, :, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    repaint(unet, SCHEDULE, known, fake, torch_generators(range(batch)), steps=4, jump_length=2, jump_n_sample=2)
    started = time.perf_counter()
    repaint(unet, SCHEDULE, known, fake, torch_generators(range(batch)), steps=steps, jump_length=jump,
              jump_n_sample=resample)
    seconds = time.perf_counter() - started
    calls = repaint_unet_calls(steps, jump, resample)
    return batch / seconds, batch * calls / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny timings, to check the script runs")
    parser.add_argument("--big-evals", type=int, default=3, help="timed evaluations of the 256 px UNet")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "generate.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # .to(bfloat16) on a model built in code warns on every call
    seconds = 0.3 if args.quick else 3.0
    face_calls = repaint_unet_calls(*FACE_SCHEDULE)
    short_calls = repaint_unet_calls(*SHORT_SCHEDULE)
    rows = []

    for size in (64, 128):
        unet = small_unet(size)
        for batch in (1, 8):
            rate = unet_rate(unet, size, batch, min_seconds=seconds, max_calls=200)
            rows.append({"model": "small", "params_M": round(params(unet), 2), "size": size, "batch": batch,
                         "dtype": "float32", "unet_evals_per_s": round(rate, 2)})
        if not args.quick:
            bf16 = small_unet(size).to(torch.bfloat16)
            rate = unet_rate(bf16, size, 8, min_seconds=seconds, max_calls=200, dtype=torch.bfloat16)
            rows.append({"model": "small", "params_M": round(params(unet), 2), "size": size, "batch": 8,
                         "dtype": "bfloat16", "unet_evals_per_s": round(rate, 2)})
        batch = 8
        schedule = (4, 2, 2) if args.quick else SHORT_SCHEDULE
        images_per_s, evals_per_s = repaint_rate(unet, size, batch, schedule)
        rows.append({"model": "small", "params_M": round(params(unet), 2), "size": size, "batch": batch,
                     "dtype": "float32", "repaint_schedule": "/".join(map(str, schedule)),
                     "repaint_unet_calls": repaint_unet_calls(*schedule),
                     "repaint_images_per_s": round(images_per_s, 4), "unet_evals_per_s": round(evals_per_s, 2),
                     "face_schedule_images_per_s": round(evals_per_s / face_calls, 5),
                     "face_schedule_s_per_image": round(face_calls / evals_per_s, 1)})

    big = celebahq_unet()
    evals = 1 if args.quick else args.big_evals
    rate = unet_rate(big, 256, 1, min_seconds=0.0, max_calls=evals)
    rows.append({"model": "celebahq-256", "params_M": round(params(big), 1), "size": 256, "batch": 1,
                 "dtype": "float32", "unet_evals_per_s": round(rate, 3), "timed_evals": evals,
                 "face_schedule_images_per_s": round(rate / face_calls, 6),
                 "face_schedule_s_per_image": round(face_calls / rate)})

    machine = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
               "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
               "load_average": [round(v, 2) for v in os.getloadavg()]}
    result = {"machine": machine, "face_schedule": {"steps": 250, "jump_length": 10, "jump_n_sample": 10,
                                                    "unet_calls": face_calls},
              "short_schedule_unet_calls": short_calls, "quick": args.quick, "rows": rows}
    print(f"torch {torch.__version__}, {machine['threads']} threads, load {machine['load_average']}")
    print(f"{'model':<14}{'px':>5}{'batch':>6}{'dtype':>10}{'UNet evals/s':>14}{'RePaint img/s':>15}"
          f"{'face sched. s/img':>19}")
    for r in rows:
        repaint = f"{r['repaint_images_per_s']:.3f}" if "repaint_images_per_s" in r else ""
        face = f"{r['face_schedule_s_per_image']:,}" if "face_schedule_s_per_image" in r else ""
        print(f"{r['model']:<14}{r['size']:>5}{r['batch']:>6}{r['dtype']:>10}{r['unet_evals_per_s']:>14}"
              f"{repaint:>15}{face:>19}")
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
