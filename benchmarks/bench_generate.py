"""Generation speed on this machine: UNet evaluations/s and RePaint images/s (random weights, no downloads).

    .venv/bin/python benchmarks/bench_generate.py                 # ~6-9 min on 2 idle CPU cores
    .venv/bin/python benchmarks/bench_generate.py --compare-only  # weakloc vs diffusers only, ~3-4 min
    .venv/bin/python benchmarks/bench_generate.py --quick         # a smoke run (a minute or two)
    .venv/bin/python benchmarks/bench_generate.py --compare-only --device cuda   # the comparison on a GPU

Rows:
- ``small``: a small pixel UNet (benchmarks/unets.py small_unet) at 64 and 128 px;
- ``celebahq-256``: a UNet with google/ddpm-celebahq-256's configuration (113.7M parameters) at 256 px; only a
  few evaluations are timed (a full RePaint would take hours on a CPU).
- ``p2-256``: the P2 models' UNet (guided-diffusion, 93.6M parameters, learned variance; ``import-adm``) at
  256 px, timed the same way (its RePaint steps use the learned variance, whose scheduler cost is negligible
  next to a 256 px UNet call).
"UNet evals/s" counts image-evaluations (batch x calls per second). RePaint images/s is measured with a short
schedule and projected to RePaint's face schedule (250 steps, jumps of 10, 10 resamplings = 2410 UNet calls
per image) from the measured per-call cost, scheduler included. Writes benchmarks/results/generate.json.

Comparison with diffusers (``compare`` in the JSON): weakloc's ``repaint`` against diffusers' own
``RePaintPipeline`` on the same UNet (``small``, 4.3M parameters, 64 px), the same RePaint schedule (25 steps,
jumps of 5, 2 resamplings = 45 UNet calls per image, eta 1), the same batch (8), random weights. The runs are
interleaved (each repeat runs every variant once, in rotated order) and the median of the repeats is reported,
with the ratio to diffusers taken within each repeat; "UNet only" times the same 45 batched UNet calls without
any scheduler (the ceiling). weakloc runs with ``precision`` fp32 and auto (bf16 autocast + channels_last
where the hardware has native bf16, else the same as fp32; the resolved one is printed). The two loops do not
draw the same noise (diffusers' undo draws n = 40 Gaussians per jump back, weakloc one: see ``undo_keep``), so
only their speeds are compared.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from unets import celebahq_unet, p2_unet, small_unet  # noqa: E402  (beside this script)
from weakloc.device import autocast_dtype  # noqa: E402
from weakloc.generate.generators.repaint import repaint, repaint_unet_calls  # noqa: E402
from weakloc.generate.generators.tensors import channels_last, to_uint8  # noqa: E402
from weakloc.generate.seeds import torch_generators  # noqa: E402

FACE_SCHEDULE = (250, 10, 10)
SHORT_SCHEDULE = (20, 5, 2)
COMPARE_SCHEDULE = (25, 5, 2)  # 45 UNet calls per image
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


def bf16_native(device: torch.device = torch.device("cpu")) -> bool:
    """Whether ``device`` runs bf16 natively (what weakloc's precision "auto" checks)."""
    return autocast_dtype("auto", device) is not None


def compare_with_diffusers(size: int, batch: int, schedule: tuple[int, int, int], repeats: int,
                           precisions: list[str], device: torch.device = torch.device("cpu")) -> dict:
    """weakloc's repaint vs diffusers' RePaintPipeline: same UNet, schedule, batch; interleaved repeats."""
    from diffusers import RePaintPipeline, RePaintScheduler

    steps, jump, resample = schedule
    calls = repaint_unet_calls(steps, jump, resample)
    unet = small_unet(size).to(device)
    known = (torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)
    fake = torch.zeros(batch, 1, size, size, device=device)
    fake[:, :, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
    pipe = RePaintPipeline(unet=unet, scheduler=RePaintScheduler(**SCHEDULE))
    pipe.set_progress_bar_config(disable=True)

    def diffusers_run(sched: tuple[int, int, int]) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the pipeline's preprocess deprecation notice
            pipe(image=known, mask_image=1.0 - fake, num_inference_steps=sched[0], eta=1.0, jump_length=sched[1],
                 jump_n_sample=sched[2], generator=torch_generators(range(batch)), output_type="np")

    def weakloc_run(model: torch.nn.Module, precision: str):
        def run(sched: tuple[int, int, int]) -> None:
            x = repaint(model, SCHEDULE, known, fake, torch_generators(range(batch)), steps=sched[0],
                        jump_length=sched[1], jump_n_sample=sched[2], eta=1.0, precision=precision)
            to_uint8(x)
        return run

    @torch.inference_mode()
    def unet_only(sched: tuple[int, int, int]) -> None:
        x, t = torch.randn(batch, 3, size, size, device=device), torch.tensor(500, device=device)
        for _ in range(repaint_unet_calls(*sched)):
            unet(x, t)

    in_unet = [0.0]  # seconds inside UNet forward passes (CPU: the calls are synchronous)

    def clock(model: torch.nn.Module) -> torch.nn.Module:
        started = [0.0]
        model.register_forward_pre_hook(lambda *_: started.__setitem__(0, time.perf_counter()))
        model.register_forward_hook(lambda *_: in_unet.__setitem__(0, in_unet[0] + time.perf_counter() - started[0]))
        return model

    def timed(run, sched: tuple[int, int, int]) -> tuple[float, float]:
        """(seconds, of which inside the UNet)."""
        in_unet[0] = 0.0
        started = time.perf_counter()
        run(sched)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - started, in_unet[0]

    variants = {"diffusers RePaintPipeline": diffusers_run}
    resolved = {}
    for precision in precisions:
        amp = autocast_dtype(precision, device)
        resolved[precision] = "bf16" if amp is not None else "fp32"
        model = unet
        if amp is not None:  # what RePaintInpainter does: channels_last weights for the bf16 kernels
            model = clock(copy.deepcopy(unet))
            channels_last(model)
        variants[f"weakloc {precision}"] = weakloc_run(model, precision)
    variants["UNet only (no scheduler)"] = unet_only
    clock(unet)

    for run in variants.values():  # warm-up: allocations, kernel selection
        timed(run, (4, 2, 2))
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    outside: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order
            total, inside = timed(variants[name], schedule)
            seconds[name].append(total)
            outside[name].append(total - inside)
    base = seconds["diffusers RePaintPipeline"]
    rows = []
    for name in names:
        ratios = [b / s for b, s in zip(base, seconds[name], strict=True)]
        precision = name.removeprefix("weakloc ") if name.startswith("weakloc ") else None
        rows.append({"variant": name, "resolved_precision": resolved.get(precision),
                     "images_per_s": round(batch / statistics.median(seconds[name]), 4),
                     "unet_evals_per_s": round(batch * calls / statistics.median(seconds[name]), 2),
                     "speedup_vs_diffusers": round(statistics.median(ratios), 3),
                     "seconds": [round(v, 2) for v in seconds[name]],
                     # the loop's own cost: scheduler, noise, conversions (CPU only: CUDA calls are asynchronous)
                     "outside_unet_s": round(statistics.median(outside[name]), 3) if device.type == "cpu" else None})
    return {"model": "small", "params_M": round(params(unet), 2), "size": size, "batch": batch,
            "schedule": {"steps": steps, "jump_length": jump, "jump_n_sample": resample, "eta": 1.0,
                         "unet_calls": calls}, "repeats": repeats, "device": str(device),
            "bf16_native": bf16_native(device), "rows": rows}


def print_comparison(compare: dict) -> None:
    s = compare["schedule"]
    print(f"RePaint, weakloc vs diffusers: {compare['model']} UNet ({compare['params_M']}M), {compare['size']} px, "
          f"batch {compare['batch']}, {s['steps']} steps / jumps of {s['jump_length']} / {s['jump_n_sample']} "
          f"resamplings = {s['unet_calls']} UNet calls per image; median of {compare['repeats']} interleaved repeats; "
          f"{compare['device']}, bf16 native: {compare['bf16_native']}")
    print(f"{'variant':<28}{'runs as':>9}{'images/s':>10}{'UNet evals/s':>14}{'x diffusers':>13}"
          f"{'s/run outside UNet':>20}")
    for r in compare["rows"]:
        outside = "" if r["outside_unet_s"] is None else f"{r['outside_unet_s']:.3f}"
        print(f"{r['variant']:<28}{r['resolved_precision'] or 'fp32':>9}{r['images_per_s']:>10.3f}"
              f"{r['unet_evals_per_s']:>14.2f}{r['speedup_vs_diffusers']:>13.3f}{outside:>20}")


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(), "cpu_model": cpu,
            "bf16_native": bf16_native(), "load_average": [round(v, 2) for v in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny timings, to check the script runs")
    parser.add_argument("--big-evals", type=int, default=3, help="timed evaluations of the 256 px UNet")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--compare-only", action="store_true",
                        help="only weakloc's repaint vs diffusers' RePaintPipeline (writes generate-compare.json)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the diffusers comparison")
    parser.add_argument("--device", default="cpu", help="device of the diffusers comparison (cpu, cuda, cuda:N)")
    parser.add_argument("--precisions", default="fp32,auto",
                        help="weakloc precisions in the comparison (auto, bf16, fp32; bf16 is emulated, several "
                             "times slower, on CPUs without bf16 units)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON [default: benchmarks/results/generate.json, generate-compare.json "
                             "with --compare-only]")
    args = parser.parse_args()
    results = Path(__file__).resolve().parent / "results"
    args.out = args.out or results / ("generate-compare.json" if args.compare_only else "generate.json")
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # .to(bfloat16) on a model built in code warns on every call
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    compare = compare_with_diffusers(64, 2 if args.quick else 8, (4, 2, 2) if args.quick else COMPARE_SCHEDULE,
                                     1 if args.quick else args.repeats, precisions, torch.device(args.device))
    machine = machine_info()
    print(f"torch {torch.__version__}, {machine['threads']} threads, {machine['cpu_model']}, "
          f"load {machine['load_average']}")
    print_comparison(compare)
    if args.compare_only:
        if not args.quick:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"machine": machine, "quick": args.quick, "compare": compare},
                                           indent=2) + "\n")
            print(f"wrote {args.out}")
        return

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

    evals = 1 if args.quick else args.big_evals
    for name, build in (("celebahq-256", celebahq_unet), ("p2-256", p2_unet)):
        big = build()
        rate = unet_rate(big, 256, 1, min_seconds=0.0, max_calls=evals)
        rows.append({"model": name, "params_M": round(params(big), 1), "size": 256, "batch": 1,
                     "dtype": "float32", "unet_evals_per_s": round(rate, 3), "timed_evals": evals,
                     "face_schedule_images_per_s": round(rate / face_calls, 6),
                     "face_schedule_s_per_image": round(face_calls / rate)})
        del big

    machine = machine_info()
    result = {"machine": machine, "face_schedule": {"steps": 250, "jump_length": 10, "jump_n_sample": 10,
                                                    "unet_calls": face_calls},
              "short_schedule_unet_calls": short_calls, "quick": args.quick, "rows": rows, "compare": compare}
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
