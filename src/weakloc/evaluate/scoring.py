"""Scoring predictions against a dataset's test split: localization on the local fakes, detection on the
reals + local fakes; from saved predictions, or from a checkpoint (predicting first). The pixel threshold is
given, or chosen on the validation split's local fakes (never on the test split's)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..config import DataConfig, EvalConfig
from ..errors import ConfigError, InputError
from ..data.images import image_size, read_mask
from ..data.load import data_where
from ..data.samples import Sample, require, require_masks, select
from ..device import pick_device
from ..predict.batch import predict_samples
from ..predict.saved import Predictions
from ..train.calibrate import VerdictRule
from ..train.checkpoint import load_checkpoint, update_card
from .intervals import bootstrap_means, detection_intervals, localization_intervals
from .metrics import detection_baselines, detection_scores, summarize_localization
from .pixel import DOLOS_KEYS, LEVELS, PIXEL_KEYS, PixelStats, best_threshold, iou_by_area, \
    localization_baselines, pixel_statistics, summarize_pixel
from .report import write_results


def load_native_masks(samples: Sequence[Sample], data: DataConfig) -> list[np.ndarray]:
    """Masks at their native size (checked against their image's size), read in parallel."""
    def one(s: Sample) -> np.ndarray:
        return read_mask(s.mask_path, polarity=data.mask_polarity, binarize=data.binarize_masks,
                         expected_size=image_size(s.path))

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, samples))


def test_sets(samples: Sequence[Sample], where: object) -> tuple[list[Sample], list[Sample]]:
    """(local fakes of the test split, with masks; real images of the test split, possibly empty)."""
    local = require_masks(require(select(samples, "test", ["local"]), "localization", where, split="test",
                                  kinds=["local"]), "localization metrics")
    return local, select(samples, "test", ["real"])


def held_out_fakes(samples: Sequence[Sample], where: object, split: str = "valid") -> list[Sample]:
    """The local fakes (with masks) of the split a threshold is chosen on."""
    return require_masks(require(select(samples, split, ["local"]), "choosing the threshold (--threshold-from)",
                                 where, split=split, kinds=["local"]), "choosing the threshold")


def checked_maps(maps: Sequence[np.ndarray], samples: Sequence[Sample], where: object) -> list[np.ndarray]:
    """The maps, refusing one with NaN values (by image id: no threshold and no ranking can place NaN)."""
    for m, s in zip(maps, samples):
        if np.isnan(m).any():
            raise InputError(where, f"the map of {s.id} has NaN values", "save maps without NaN (0 where undefined)")
    return list(maps)


def choose_threshold(predictions: Predictions, held: Sequence[Sample], data: DataConfig, where: object) -> dict:
    """The threshold of the common grid (pixel.py) maximising mean IoU lg over ``held`` (the validation split's
    local fakes)."""
    try:
        _, maps = predictions.align(held, where)
    except InputError as exc:
        problem = str(exc).splitlines()[0].removeprefix(f"{where}: ")
        raise InputError(where, f"the threshold's predictions do not cover the validation split: {problem}",
                         "--threshold-from FILE must hold predictions of the validation split's local fakes "
                         "(e.g. `weakloc predict CKPT .../images/valid --out preds` -> preds/predictions.npz)"
                         ) from None
    stats = pixel_statistics(checked_maps(maps, held, where), load_native_masks(held, data))
    threshold, iou = best_threshold(stats.iou_curve, stats.grid)
    e, m = stats.grid
    return {"origin": "valid", "threshold": threshold, "split": "valid", "n_images": len(held),
            "mean_iou_lg": iou * 100, "criterion": "mean IoU lg",
            "candidates": f"{LEVELS} thresholds k / 2^{e}, k = {m} .. {m + LEVELS - 1} (the maps' range)"}


def resolve_threshold(cfg: EvalConfig, samples: Sequence[Sample], data: DataConfig, where: object = "", *,
                      predict: Callable[[list[Sample]], Predictions] | None = None) -> dict:
    """{"origin": "given" | "valid", "threshold": t, ...}. ``cfg.threshold_from``: "given" (cfg.threshold),
    "valid" (``predict`` runs a checkpoint on the validation split's local fakes) or the path of saved predictions
    of that split. Only validation images are read: the test split never chooses its own threshold."""
    source = str(cfg.threshold_from)
    if source == "given":
        return {"origin": "given", "threshold": float(cfg.threshold)}
    held = held_out_fakes(samples, where)
    if source == "valid":
        if predict is None:
            raise ConfigError("--threshold-from valid predicts the validation split with a checkpoint; saved "
                              "predictions only cover the images they were made for: pass --threshold-from "
                              "VALID.npz (predictions of the validation split's local fakes) or a --threshold")
        return {**choose_threshold(predict(held), held, data, where), "predictions": "checkpoint"}
    path = Path(source)
    if not path.exists():
        raise InputError(path, "--threshold-from: no such file or folder",
                         "pass 'given', 'valid' (with a checkpoint) or saved predictions of the validation split")
    return {**choose_threshold(Predictions.load(path), held, data, where), "predictions": str(path)}


def score_maps(maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], threshold: float, cfg: EvalConfig
               ) -> tuple[dict, PixelStats]:
    """Every localization number of ``evaluate_predictions`` (localization, pixel, intervals, baselines,
    iou_vs_area) from maps and native-size masks; benchmarks/run.py times this against the DOLOS metrics alone."""
    stats = pixel_statistics(maps, masks, threshold)
    area = stats.counts["n_true"] / np.maximum(stats.counts["n_pixels"], 1)
    result = {"localization": summarize_localization({k: stats.per_image[k] for k in DOLOS_KEYS}),
              "pixel": summarize_pixel(stats),
              "intervals": {"method": "percentile bootstrap over test images", "level": 95,
                            "resamples": cfg.bootstrap, "seed": cfg.bootstrap_seed,
                            **localization_intervals(stats, cfg.bootstrap, cfg.bootstrap_seed)},
              "baselines": {"seed": cfg.bootstrap_seed,
                            "localization": localization_baselines(stats, threshold, cfg.bootstrap_seed)},
              # the all-fake map's IoU is the mask's area
              "iou_vs_area": iou_by_area(area, stats.per_image, area)}
    return result, stats


def evaluate_predictions(predictions: Predictions, samples: Sequence[Sample], data: DataConfig,
                         cfg: EvalConfig | None = None, where: object = "", *,
                         masks: Sequence[np.ndarray] | None = None, threshold_source: dict | None = None) -> dict:
    """Metrics (percentages) and per-image rows for the test split of ``samples``; ``masks``: the local fakes'
    masks when not the files' (e.g. resized with a perturbed image, evaluate/robustness.py); ``threshold_source``:
    a threshold already resolved (``resolve_threshold``), else ``cfg.threshold_from`` is resolved here.

    Keys: localization (DOLOS means), detection, pixel (F1, pixel AP / AUC, oracle, pooled), intervals (95%
    bootstrap), baselines (all-fake / all-real / random), iou_vs_area, threshold(_source), per_image."""
    cfg = cfg or EvalConfig()
    local, real = test_sets(samples, where)
    source = threshold_source or resolve_threshold(cfg, samples, data, where)
    threshold = float(source["threshold"])
    local_scores, maps = predictions.align(local, where)
    masks = load_native_masks(local, data) if masks is None else list(masks)
    result, stats = score_maps(checked_maps(maps, local, where), masks, threshold, cfg)
    result = {"localization": result.pop("localization"), "n_local": len(local), "threshold": threshold,
              "threshold_source": source, **result}
    intervals, baselines, areas = result.pop("intervals"), result.pop("baselines"), result.pop("iou_vs_area")
    if real and not np.isnan(local_scores).any():
        real_scores, _ = predictions.align(real, where)
        scores = np.concatenate([real_scores, local_scores])
        labels = np.concatenate([np.zeros(len(real)), np.ones(len(local))])
        options = {"repeats": cfg.ap_repeats, "seed": cfg.ap_seed, "sampling": cfg.ap_sampling}
        result["detection"] = {**detection_scores(scores, labels, **options), "ap_sampling": cfg.ap_sampling,
                               "ap_seed": cfg.ap_seed}
        intervals["detection"] = detection_intervals(scores, labels, cfg.bootstrap, cfg.bootstrap_seed)
        baselines["detection"] = detection_baselines(labels, cfg.bootstrap_seed, **options)
    area = stats.counts["n_true"] / stats.counts["n_pixels"]
    if cfg.bootstrap:  # the trivial maps' own intervals (same resamples): is a method outside them?
        intervals["baselines"] = trivial_map_intervals(area, cfg.bootstrap, cfg.bootstrap_seed)
        result["intervals"] = intervals
    result["baselines"] = baselines
    result["iou_vs_area"] = areas
    keys = DOLOS_KEYS + PIXEL_KEYS
    rows = [{"id": s.id, **{k: float(stats.per_image[k][i]) for k in keys}, "mask_area": float(area[i]),
             "score": float(local_scores[i])} for i, s in enumerate(local)]
    result["per_image"] = rows
    return result


def trivial_map_intervals(area: np.ndarray, resamples: int, seed: int) -> dict:
    """95% intervals of the all-fake and all-real maps' IoU / PBCA lg: per image, the all-fake map scores IoU =
    PBCA = the mask's area, the all-real map IoU 0 and PBCA 1 - area (x100)."""
    area = np.asarray(area, dtype=np.float64) * 100
    (fake,), (real,) = bootstrap_means(area[:, None], resamples, seed), bootstrap_means(100 - area[:, None],
                                                                                          resamples, seed)
    return {"all-fake": {"iou_lg": fake.tolist(), "pbca_lg": fake.tolist()},
            "all-real": {"iou_lg": [0.0, 0.0], "pbca_lg": real.tolist()}}


CARD_KEYS = ("localization", "detection", "pixel", "threshold", "threshold_source", "n_local")


def evaluate_checkpoint(checkpoint: Path, data: DataConfig, samples: list, cfg: EvalConfig, out_dir: Path, *,
                        progress: bool = True, device: str = "auto") -> dict:
    """Predict the test split (local fakes + reals) with a checkpoint, score it, record the metrics in its card.
    With ``cfg.threshold_from == "valid"`` the validation split's local fakes are predicted first (saved as
    predictions-valid.npz) and the threshold chosen on them."""
    model, card = load_checkpoint(checkpoint, pick_device(device))
    where = data_where(data)
    local, real = test_sets(samples, where)
    run_device = next(model.parameters()).device
    out_dir.mkdir(parents=True, exist_ok=True)

    def predict(chosen: list[Sample]) -> Predictions:
        held = predict_samples(model, card, chosen, batch_size=cfg.batch_size, device=run_device, progress=progress,
                               cache_dir=data.cache_dir)
        held.save_npz(out_dir / "predictions-valid.npz")
        return held

    source = resolve_threshold(cfg, samples, data, where, predict=predict)
    predictions = predict_samples(model, card, real + local, batch_size=cfg.batch_size, device=run_device,
                                  progress=progress, cache_dir=data.cache_dir)  # a disk cache, when set
    predictions.save_npz(out_dir / "predictions.npz")
    result = evaluate_predictions(predictions, samples, data, cfg, where, threshold_source=source)
    _verdict_accuracy(result, card, predictions, len(real))
    write_results(result, out_dir)
    summary = {k: v for k, v in result.items() if k != "per_image"}
    update_card(checkpoint, test_metrics={k: summary[k] for k in CARD_KEYS if k in summary},
                test_data={"root": data.root, "dataset": data.dataset, "local": data.local, "n_local": len(local),
                           "n_real": len(real)})
    return summary


def _verdict_accuracy(result: dict, card: dict, predictions: Predictions, n_real: int) -> None:
    """Beside the accuracy at 0.5: the accuracy of the verdict the checkpoint's card carries (the rule `predict`
    and the API apply; calibrated on the validation split by training), when it has one."""
    rule = VerdictRule.from_card(card)
    detection = result.get("detection")
    if not rule.calibrated or not detection:
        return
    labels = np.r_[np.zeros(n_real, dtype=bool), np.ones(len(predictions.ids) - n_real, dtype=bool)]
    maps = None if rule.statistic == "score" else np.stack(list(predictions.maps))
    called = rule.is_fake(rule.values(predictions.scores, maps))
    detection["acc_verdict"] = float((called == labels).mean() * 100)
    detection["verdict"] = rule.condition()
