"""Image verdicts ("fake" / "real") with a threshold chosen on held-out data instead of a fixed 0.5.

The paper's image score stays what AP / AUC rank (methods/scores.py). The verdict thresholds a *statistic* of a
prediction:

- ``score``: the image score itself (setups A and B, which train on real and fake images);
- ``map_share``: the share of the map's pixels above the pixel threshold (setup C: its score is the mean of a map
  that is near 0 outside the manipulated region, so it stays below 0.5 even when the map outlines a region).

The threshold is chosen on validation images by one of three rules, stored in the model card under ``verdict``
(with the previous value in ``verdict.history``) and applied by ``weakloc predict``, the Python API and the web page:

- ``balanced_accuracy`` (the default): the threshold of highest (TPR + TNR) / 2 on the real vs fake images;
- ``fpr``: the lowest threshold whose false-positive rate on the real images is at most a target (``--fpr``);
- ``fakes_only``: when there are no real images at all, the highest threshold that still calls 95% of the fakes
  fake (never below 0: at least one pixel above the pixel threshold); the false-positive rate is then unknown,
  and the card and every output say so.

A card without ``verdict`` (made before this existed) keeps the old rule, score > threshold (0.5 unless the caller
gives another), and its outputs say "uncalibrated".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..config import DataConfig
from ..data.cache import CachedImages
from ..data.load import data_where
from ..data.samples import SETUPS, Sample, select
from ..device import autocast
from ..errors import ConfigError, InputError
from ..methods import Localizer
from .checkpoint import read_card, update_card

STATISTICS = ("score", "map_share")
PIXEL_THRESHOLD = 0.5  # the pixel threshold of the DOLOS evaluation (EvalConfig.threshold)
FAKES_ONLY_TPR = 0.95  # fakes-only rule: the share of validation fakes that must still be called fake
HISTORY_KEPT = 20  # earlier verdicts kept in a card


# ---------------------------------------------------------------- thresholds (pure numpy)

def map_share(maps: np.ndarray, pixel_threshold: float = PIXEL_THRESHOLD) -> np.ndarray:
    """[N, h, w] maps -> [N]: the share of each map's pixels above ``pixel_threshold``."""
    maps = np.asarray(maps)
    return (maps > pixel_threshold).reshape(len(maps), -1).mean(axis=1)


def candidate_thresholds(values: np.ndarray) -> np.ndarray:
    """Every distinct verdict ``value > t`` can give: below the smallest value (all fake), the midpoints between
    consecutive distinct values, and the largest value (all real); increasing."""
    u = np.unique(np.asarray(values, dtype=np.float64))
    if not len(u):
        raise ValueError("no values to choose a threshold from")
    return np.concatenate([[np.nextafter(u[0], -np.inf)], (u[:-1] + u[1:]) / 2, [u[-1]]])


def rates(values: np.ndarray, labels: np.ndarray, thresholds: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(true-positive rate, false-positive rate) of the verdict ``value > t`` for each threshold (NaN for a class
    without images)."""
    values, labels = np.asarray(values, dtype=np.float64), np.asarray(labels)
    t = np.asarray(thresholds, dtype=np.float64)
    fake, real = np.sort(values[labels == 1]), np.sort(values[labels == 0])
    tpr = 1.0 - np.searchsorted(fake, t, side="right") / len(fake) if len(fake) else np.full(t.shape, np.nan)
    fpr = 1.0 - np.searchsorted(real, t, side="right") / len(real) if len(real) else np.full(t.shape, np.nan)
    return tpr, fpr


def _middle_of_best(score: np.ndarray) -> int:
    """Index of the middle candidate among those tied for the best ``score`` (the middle of a plateau)."""
    best = np.flatnonzero(score >= score.max() - 1e-12)
    return int(best[len(best) // 2])


def threshold_balanced_accuracy(values: np.ndarray, labels: np.ndarray) -> float:
    """The threshold of highest balanced accuracy (TPR + 1 - FPR) / 2; needs real and fake images."""
    _need_both(labels)
    candidates = candidate_thresholds(values)
    tpr, fpr = rates(values, labels, candidates)
    return float(candidates[_middle_of_best(tpr + 1.0 - fpr)])


def threshold_for_fpr(values: np.ndarray, labels: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold (so the highest TPR) whose false-positive rate is at most ``target_fpr``."""
    _need_both(labels)
    check_options(None, target_fpr)
    candidates = candidate_thresholds(values)
    _, fpr = rates(values, labels, candidates)
    return float(candidates[np.flatnonzero(fpr <= target_fpr + 1e-12)[0]])  # the largest candidate has FPR 0


def threshold_fakes_only(fake_values: np.ndarray, tpr: float = FAKES_ONLY_TPR) -> float:
    """No real images: the highest threshold that still calls a share ``tpr`` of the fakes fake, at least 0."""
    fake_values = np.asarray(fake_values, dtype=np.float64)
    candidates = candidate_thresholds(fake_values)
    found, _ = rates(fake_values, np.ones(len(fake_values)), candidates)
    return max(0.0, float(candidates[np.flatnonzero(found >= tpr - 1e-12)[-1]]))


def _need_both(labels: np.ndarray) -> None:
    labels = np.asarray(labels)
    if not (labels == 0).any() or not (labels == 1).any():
        raise ValueError("choosing this threshold needs real (label 0) and fake (label 1) images")


# ---------------------------------------------------------------- the rule a card carries

@dataclass(frozen=True)
class VerdictRule:
    """How an image is called fake: ``statistic > threshold``, and where that threshold came from."""

    statistic: str = "score"  # score | map_share
    threshold: float = 0.5
    pixel_threshold: float = PIXEL_THRESHOLD  # map_share: the pixel threshold the share counts
    calibrated: bool = False
    origin: str = ""  # one line: where the threshold came from

    @classmethod
    def from_card(cls, card: dict[str, Any], uncalibrated_threshold: float = 0.5) -> "VerdictRule":
        """The card's calibrated rule; without one, the old rule score > ``uncalibrated_threshold``."""
        verdict = card.get("verdict")
        if not verdict:
            return cls("score", float(uncalibrated_threshold), calibrated=False,
                       origin="the checkpoint's card has no verdict threshold "
                              "(`weakloc calibrate CHECKPOINT` chooses one on validation data)")
        pixel = float(verdict.get("pixel_threshold") or PIXEL_THRESHOLD)  # None in a score rule
        return cls(verdict["statistic"], float(verdict["threshold"]), pixel, True, verdict.get("origin", ""))

    def values(self, scores: np.ndarray, maps: np.ndarray | None = None) -> np.ndarray:
        """[N] the statistic of N predictions (``maps`` [N, h, w] are needed for map_share)."""
        if self.statistic == "score":
            return np.asarray(scores, dtype=np.float64)
        return map_share(maps, self.pixel_threshold)

    def value(self, score: float, model_map: np.ndarray | None = None) -> float:
        return float(self.values(np.array([score]), None if model_map is None else np.asarray(model_map)[None])[0])

    def is_fake(self, value: float | np.ndarray) -> bool | np.ndarray:
        return value > self.threshold

    def condition(self) -> str:
        """``fake when ...``: the rule in words."""
        if self.statistic == "score":
            return f"score > {self.threshold:.4g}"
        return f"share of map pixels above {self.pixel_threshold:g} > {self.threshold:.4g}"

    def describe(self) -> str:
        """The rule and where its threshold came from, in one line (shown by predict, the API and the page)."""
        state = "calibrated" if self.calibrated else "uncalibrated"
        return f"fake when {self.condition()} ({state}" + (f": {self.origin})" if self.origin else ")")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.describe()}


def choose_verdict(scores: np.ndarray, shares: np.ndarray, labels: np.ndarray, *, statistic: str = "score",
                   target_fpr: float | None = None, pixel_threshold: float = PIXEL_THRESHOLD, split: str = "valid",
                   data: str = "", by: str = "training") -> dict[str, Any]:
    """The card's ``verdict`` entry for predictions of labelled images: the statistic (``score`` or
    ``map_share``), its threshold under the rule the data allow, and the figures on these images."""
    check_options(statistic, target_fpr)
    labels = np.asarray(labels)
    values = np.asarray(scores if statistic == "score" else shares, dtype=np.float64)
    n_real, n_fake = int((labels == 0).sum()), int((labels == 1).sum())
    if not n_fake:
        raise ValueError("calibration needs fake images")
    note = None
    if not n_real:
        rule, threshold = "fakes_only", threshold_fakes_only(values[labels == 1])
        how = (f"no real images: the highest threshold calling {FAKES_ONLY_TPR:.0%} of the fakes fake (at least 0); "
               "its false-positive rate is unknown")
        note = ("no real images to calibrate on: the threshold calls 95% of the fakes fake and its false-positive "
                "rate on real images is unknown; run `weakloc calibrate` on data with real images")
        if target_fpr is not None:
            note += f" (the target false-positive rate {target_fpr:g} needs real images and was not applied)"
    elif target_fpr is not None:
        rule, threshold = "fpr", threshold_for_fpr(values, labels, target_fpr)
        how = f"the lowest threshold with a false-positive rate of at most {target_fpr:g}"
    else:
        rule, threshold = "balanced_accuracy", threshold_balanced_accuracy(values, labels)
        how = "the threshold of highest balanced accuracy"
    tpr, fpr = (float(x) for x in rates(values, labels, threshold))
    old_tpr, old_fpr = (float(x) for x in rates(scores, labels, 0.5))
    where = f"the {split} split" + (f" of {data}" if data else "")
    when = "at the end of training" if by == "training" else f"by {by}"
    origin = f"chosen {when} on {where} ({n_real} real, {n_fake} fake images): {how}"
    return {
        "statistic": statistic, "threshold": threshold,
        "pixel_threshold": pixel_threshold if statistic == "map_share" else None,
        "rule": rule, "target_fpr": target_fpr if rule == "fpr" else None,
        "by": by, "split": split, "data": data, "n_real": n_real, "n_fake": n_fake,
        # the figures of this threshold on the calibration images, and of the old rule score > 0.5
        "tpr": tpr, "fpr": None if not n_real else fpr,
        "balanced_accuracy": None if not n_real else (tpr + 1 - fpr) / 2,
        "score_at_0.5": {"tpr": old_tpr, "fpr": None if not n_real else old_fpr,
                         "balanced_accuracy": None if not n_real else (old_tpr + 1 - old_fpr) / 2},
        "origin": origin, "note": note,
    }


def check_options(statistic: str | None, target_fpr: float | None) -> None:
    """Fail before any image is decoded when a calibration option is invalid."""
    if statistic is not None and statistic not in STATISTICS:
        raise ConfigError(f"verdict statistic must be one of {', '.join(STATISTICS)}, not {statistic!r}")
    if target_fpr is not None and not 0.0 <= target_fpr < 1.0:
        raise ConfigError(f"the target false-positive rate must be in [0, 1), not {target_fpr}")


def default_statistic(setup: str) -> str:
    """Setups A/B learn a score from real vs fake images; setup C learns maps from fakes only (module doc)."""
    return "map_share" if setup == "C" else "score"


# ---------------------------------------------------------------- one pass of a model over images

def localize_statistics(model: Localizer, cache: CachedImages, device: torch.device, *,
                        dtype: torch.dtype | None = None, batch_size: int = 64,
                        pixel_threshold: float = PIXEL_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """(scores [N], map shares [N]) of every image of ``cache``, in one pass; maps are reduced batch by batch
    (a GradCAM A/B map is 299x299, too big to keep for a whole split). The model runs as in prediction
    (``localize``, with gradients when the method needs them)."""
    was_training = model.training
    model.eval()
    scores, shares = [], []
    for start in range(0, len(cache), batch_size):
        images = cache.batch(np.arange(start, min(start + batch_size, len(cache))), device=device)["image"]
        with torch.set_grad_enabled(model.needs_grad_to_localize), autocast(device, dtype):
            out = model.localize(images).cpu()
        scores.append(out.score.numpy().astype(np.float64))
        shares.append(map_share(out.map.numpy(), pixel_threshold))
    model.train(was_training)
    if not scores:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(scores), np.concatenate(shares)


def calibrate_model(model: Localizer, caches: Sequence[CachedImages], device: torch.device, *,
                    statistic: str | None = None, target_fpr: float | None = None,
                    pixel_threshold: float = PIXEL_THRESHOLD, dtype: torch.dtype | None = None,
                    batch_size: int = 64, split: str = "valid", data: str = "", by: str = "training") -> dict[str, Any]:
    """The ``verdict`` entry of ``model`` on the labelled images of ``caches`` (one pass over them);
    ``statistic`` None = the setup's default (:func:`default_statistic`)."""
    scores, shares, labels = [], [], []
    for cache in caches:
        s, m = localize_statistics(model, cache, device, dtype=dtype, batch_size=batch_size,
                                   pixel_threshold=pixel_threshold)
        scores.append(s), shares.append(m), labels.append(np.asarray(cache.labels))
    return choose_verdict(np.concatenate(scores), np.concatenate(shares), np.concatenate(labels),
                          statistic=statistic or default_statistic(model.setup), target_fpr=target_fpr,
                          pixel_threshold=pixel_threshold, split=split, data=data, by=by)


def data_name(data: DataConfig, setup: str) -> str:
    """Where calibration images come from, for the card: the dataset's path and the fake generators used."""
    fakes = data.full if setup == "A" else (data.train_local or data.local)
    named = fakes and data.layout in ("dolos", "builtin")
    return data_where(data) + (f" ({', '.join(fakes)})" if named else "")


def calibration_samples(samples: Sequence[Sample], setup: str, split: str) -> tuple[list[Sample], list[Sample]]:
    """(real images, fakes of the kinds the setup trains on) of one split; the reals may be empty."""
    fakes = select(samples, split, [k for k in SETUPS[setup] if k != "real"])
    return select(samples, split, ["real"]), fakes


# ---------------------------------------------------------------- the card

def record_verdict(path: str | Path, verdict: dict[str, Any]) -> dict[str, Any] | None:
    """Write ``verdict`` into a checkpoint's card; the one it replaces moves to ``verdict.history`` (newest
    last). Returns the replaced verdict (None when the card had none)."""
    old = read_card(path).get("verdict")
    history = []
    if old:
        history = [*old.get("history", []), {k: v for k, v in old.items() if k != "history"}][-HISTORY_KEPT:]
    update_card(path, verdict={**verdict, "history": history})
    return old


def calibrate_checkpoint(path: str | Path, model: Localizer, samples: Sequence[Sample], preprocessing: DataConfig, *,
                         split: str = "valid", statistic: str | None = None, target_fpr: float | None = None,
                         pixel_threshold: float = PIXEL_THRESHOLD, batch_size: int = 64, data: str = "",
                         progress: bool = True) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``weakloc calibrate``: choose the verdict of the checkpoint at ``path`` (its ``model`` loaded) on one
    split of ``samples`` (preprocessed as ``preprocessing``, a DataConfig), write it into the card;
    returns (old verdict or None, new verdict)."""
    check_options(statistic, target_fpr)
    reals, fakes = calibration_samples(samples, model.setup, split)
    if not fakes:
        kinds = "/".join(k for k in SETUPS[model.setup] if k != "real")
        raise InputError(data or path, f"no {kinds} fakes in split {split!r} to calibrate on",
                         "choose another --split, or data options naming data with fake images")
    device = next(model.parameters()).device
    caches = [CachedImages.build(part, preprocessing, desc=f"decode {split}", progress=progress)
              for part in (reals, fakes) if part]
    verdict = calibrate_model(model, caches, device, statistic=statistic, target_fpr=target_fpr,
                              pixel_threshold=pixel_threshold, batch_size=batch_size, split=split, data=data,
                              by="weakloc calibrate")
    return record_verdict(path, verdict), verdict
