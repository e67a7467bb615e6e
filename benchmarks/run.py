"""Core benchmarks: Patches training / predict throughput, first (decoding) vs cached epochs, metric speed.

    python benchmarks/run.py            # writes benchmarks/results/core.json and prints a table
    python benchmarks/run.py --quick    # smaller sizes, for a smoke check
    python benchmarks/run.py --metrics-only   # metrics and evaluation only -> benchmarks/results/core-metrics.json

Figures are measured on the machine that runs it (the README quotes a 2-core CPU run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from weakloc.config import DataConfig, TrainConfig
from weakloc.data.cache import CachedImages
from weakloc.data.images import write_mask
from weakloc.data.layouts import dolos_samples
from weakloc.evaluate.metrics import localization_scores
from weakloc.methods import build_model
from weakloc.predict.batch import predict_cache
from weakloc.device import autocast_dtype
from weakloc.train.loop import train

RESULTS = Path(__file__).parent / "results"


def make_dolos(root: Path, n: int, size: int = 256) -> None:
    """A synthetic DOLOS-layout dataset of ``n`` PNGs per kind at ``size`` px (CelebA-HQ 256 stand-in)."""
    rng = np.random.default_rng(0)
    base = root / "bench"
    for split, count in (("train", n), ("valid", max(8, n // 8)), ("test", max(8, n // 8))):
        for i in range(count):
            name = f"{i:05d}.png"
            for folder in (base / "real" / split, base / "fake" / "gen" / "images" / split):
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / name)
            masks = base / "fake" / "gen" / "masks" / split
            masks.mkdir(parents=True, exist_ok=True)
            mask = np.zeros((size, size), bool)
            mask[size // 4: size // 2, size // 3: 2 * size // 3] = True
            write_mask(masks / name, mask)


def bench_train(root: Path, input_size: int, batch: int, iters: int, precision: str) -> dict:
    """Epoch 1 decodes every image into the cache; epochs 2-3 read the cache only."""
    data = DataConfig(layout="dolos", root=str(root), dataset="bench", full=[], local=["gen"], input_size=input_size,
                      cache_dir=None)
    samples = dolos_samples(root, "bench", full=[], local=["gen"])
    cfg = TrainConfig(method="patches", setup="B", epochs=3, iters_per_epoch=iters, batch_size=batch,
                      val_batch_size=64, precision=precision, options={"init": "default"})
    with tempfile.TemporaryDirectory() as run:
        start = time.perf_counter()
        result = train(Path(run) / "r", data, cfg, samples, progress=False)
        total = time.perf_counter() - start
    n_train = sum(1 for s in samples if s.split == "train")
    cached = [h["images_per_s"] for h in result.history[1:]]
    epoch_s = [h["seconds"] for h in result.history]
    decode_s = total - sum(epoch_s) - 0  # caches, validation and checkpoints outside the timed epochs
    return {"input": input_size, "batch": batch, "precision": precision, "train_img_s": float(np.median(cached)),
            "epoch_s": epoch_s, "first_epoch_with_decode_s": epoch_s[0] + decode_s, "n_train_images": n_train,
            "decode_and_validation_s": decode_s}


def bench_decode(root: Path, input_size: int) -> dict:
    samples = dolos_samples(root, "bench", full=[], local=["gen"])
    data = DataConfig(input_size=input_size, full=[], local=[])
    start = time.perf_counter()
    cache = CachedImages.build(samples, data, progress=False)
    decode = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(0, len(cache), 32):
        cache.batch(np.arange(i, min(i + 32, len(cache))))
    gather = time.perf_counter() - start
    return {"input": input_size, "images": len(cache), "decode_resize_img_s": len(cache) / decode,
            "cached_batch_img_s": len(cache) / gather}


def bench_predict(input_size: int, batch: int, precision: str, repeats: int) -> dict:
    model = build_model("patches", "A").eval()
    if precision == "auto":
        model = model.to(memory_format=torch.channels_last)
    cache = CachedImages([None] * batch * repeats, np.zeros((batch * repeats, 3, input_size, input_size), np.uint8),
                         None, np.zeros(batch * repeats, np.int64))
    predict_cache(model, CachedImages(cache.samples[:batch], cache.images[:batch], None, cache.labels[:batch]),
                  batch_size=batch, precision=precision, progress=False)  # warm-up
    start = time.perf_counter()
    predict_cache(model, cache, batch_size=batch, precision=precision, progress=False)
    return {"input": input_size, "batch": batch, "precision": precision,
            "predict_img_s": batch * repeats / (time.perf_counter() - start)}


def bench_metrics(n: int, repeats: int = 5) -> dict:
    """The DOLOS metrics alone (IoU + PBCA, lg and sm) against everything `weakloc evaluate` computes from the
    maps (``scoring.score_maps``: the DOLOS four, F1, pixel AP / AUC, oracle, pooled values, 95% bootstrap
    intervals with 1,000 resamples, the three baseline maps, IoU by mask area), alternated ``repeats`` times in
    one process so that both see the same machine load; the ratio is the median of the per-repeat ratios."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    from weakloc.config import EvalConfig
    from weakloc.evaluate.pixel import LEVELS, pixel_statistics
    from weakloc.evaluate.scoring import score_maps
    from weakloc.predict.maps import resize_maps

    rng = np.random.default_rng(0)
    maps = rng.random((n, 37, 37), dtype=np.float32)
    masks = np.zeros((n, 256, 256), bool)
    masks[:, 64:160, 80:200] = True
    maps_list, masks_list = list(maps), list(masks)
    dolos, everything = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        localization_scores(maps_list, masks_list)
        dolos.append(time.perf_counter() - start)
        start = time.perf_counter()
        score_maps(maps_list, masks_list, 0.5, EvalConfig())
        everything.append(time.perf_counter() - start)
    ratios = [b / a for a, b in zip(dolos, everything)]  # per repeat: the two ran back to back
    # detection with intervals and baselines: as many reals as fakes
    scores = rng.random(2 * n)
    labels = np.r_[np.zeros(n), np.ones(n)]
    from weakloc.evaluate.intervals import detection_intervals
    from weakloc.evaluate.metrics import detection_baselines, detection_scores

    start = time.perf_counter()
    detection_scores(scores, labels)
    detection_plain = time.perf_counter() - start
    start = time.perf_counter()
    detection_scores(scores, labels)
    detection_intervals(scores, labels, 1000, 0)
    detection_baselines(labels, 0, repeats=5, seed=1337, sampling="official")
    detection_all = time.perf_counter() - start
    # quantisation: pixel AP / AUC of 50 maps against scikit-learn on the unquantised maps
    k = min(n, 50)
    st = pixel_statistics(maps_list[:k], masks_list[:k])
    big = resize_maps(torch.from_numpy(maps[:k]), (256, 256)).numpy()
    ap_err = max(abs(st.per_image["ap_px"][i] - average_precision_score(masks[i].ravel(), big[i].ravel()))
                 for i in range(k))
    auc_err = max(abs(st.per_image["auc_px"][i] - roc_auc_score(masks[i].ravel(), big[i].ravel())) for i in range(k))
    # the plain per-image PIL loop of the official code, on a subset
    from PIL import Image as PILImage

    k = min(n, 500)
    start = time.perf_counter()
    for m, g in zip(maps[:k], masks[:k]):
        p = np.asarray(PILImage.fromarray(m, mode="F").resize((256, 256), PILImage.BICUBIC)) > 0.5
        _ = np.logical_and(p, g).sum() / max(np.logical_or(p, g).sum(), 1), (p == g).mean()
    loop = (time.perf_counter() - start) / k * n
    vectorised = float(np.median(dolos))
    return {"maps": n, "map": "37x37", "mask": "256x256", "vectorised_s": vectorised, "maps_per_s": n / vectorised,
            "dolos_s_each": dolos, "all_metrics_s_each": everything, "all_metrics_s": float(np.median(everything)),
            "ratio_all_to_dolos_each": ratios, "ratio_all_to_dolos": float(np.median(ratios)),
            "ratio_of_fastest": float(min(everything) / min(dolos)),
            "levels": LEVELS, "bootstrap_resamples": EvalConfig().bootstrap,
            "detection_scores": 2 * n, "detection_plain_s": detection_plain,
            "detection_with_intervals_and_baselines_s": detection_all,
            "pixel_ap_max_abs_error_vs_sklearn": ap_err, "pixel_auc_max_abs_error_vs_sklearn": auc_err,
            "pixel_ap_bound_max": float(st.bounds["ap_px"].max()),
            "pixel_auc_bound_max": float(st.bounds["auc_px"].max()),
            "per_image_pil_loop_s_estimated": loop}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke check)")
    parser.add_argument("--metrics-only", action="store_true", help="only the metric / evaluation throughput")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    quick = args.quick
    env = {"python": sys.version.split()[0], "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine(), "cuda": torch.cuda.is_available(),
           "bf16_autocast_on_cpu": autocast_dtype("auto", torch.device("cpu")) is not None}
    results: dict = {"environment": env, "train": [], "predict": [], "decode": [], "metrics": None}
    if args.metrics_only:
        results = {"environment": env, "metrics": bench_metrics(850 if quick else 8500)}
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / ("core-metrics-quick.json" if quick else "core-metrics.json")
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(metrics_table(results["metrics"]))
        print(f"written {out}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_dolos(root, 32 if quick else 96)
        for size, batch, iters in ((128, 32, 3 if quick else 6), (299, 16, 2 if quick else 4)):
            for precision in ("fp32", "auto"):
                results["train"].append(bench_train(root, size, batch, iters, precision))
                print("train", results["train"][-1], flush=True)
        for size in (128, 299):
            results["decode"].append(bench_decode(root, size))
            print("decode", results["decode"][-1], flush=True)
    for size, batch in ((128, 64), (299, 32)):
        for precision in ("fp32", "auto"):
            results["predict"].append(bench_predict(size, batch, precision, 2 if quick else 4))
            print("predict", results["predict"][-1], flush=True)
    results["metrics"] = bench_metrics(850 if quick else 8500)
    print("metrics", results["metrics"], flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("core-quick.json" if quick else "core.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"written {out}")


def table(r: dict) -> str:
    lines = ["| what | input | precision | images/s |", "|---|---|---|---|"]
    for t in r["train"]:
        lines.append(f"| train Patches (batch {t['batch']}, cached epochs) | {t['input']} | {t['precision']} | "
                     f"{t['train_img_s']:.1f} |")
    for p in r["predict"]:
        lines.append(f"| predict Patches (batch {p['batch']}) | {p['input']} | {p['precision']} | {p['predict_img_s']:.1f} |")
    for d in r["decode"]:
        lines.append(f"| first epoch: decode + resize {d['images']} PNGs 256 px | {d['input']} | – | "
                     f"{d['decode_resize_img_s']:.1f} |")
        lines.append(f"| cached epochs: gather + normalise | {d['input']} | – | {d['cached_batch_img_s']:.0f} |")
    lines.append(metrics_table(r["metrics"], header=False))
    return "\n".join(lines)


def metrics_table(m: dict, header: bool = True) -> str:
    lines = ["| what | input | precision | images/s |", "|---|---|---|---|"] if header else []
    lines.append(f"| metrics: {m['maps']} maps 37x37 -> masks 256x256 (IoU+PBCA lg/sm) | – | – | "
                 f"{m['maps_per_s']:.0f} maps/s ({m['vectorised_s']:.1f} s; per-image PIL loop ≈ "
                 f"{m['per_image_pil_loop_s_estimated']:.1f} s) |")
    lines.append(f"| evaluation, all metrics (+ F1, pixel AP/AUC, oracle, pooled, 95% intervals, baselines, by area) "
                 f"| – | – | {m['maps'] / m['all_metrics_s']:.0f} maps/s ({m['all_metrics_s']:.1f} s; "
                 f"{m['ratio_all_to_dolos']:.2f}x the DOLOS metrics in the same run, median of "
                 f"{len(m['ratio_all_to_dolos_each'])}; fastest vs fastest {m['ratio_of_fastest']:.2f}x) |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
