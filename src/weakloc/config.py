"""Typed configuration: data, training and experiment settings, read from TOML files and CLI overrides.

Unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

RESIZE_FILTERS = ("lanczos", "bilinear", "bicubic", "nearest")


MASK_RESIZES = ("nearest", "bilinear", "area")


@dataclass
class DataConfig:
    """Where the images are and how every image (real or fake alike) is preprocessed."""

    layout: str = "dolos"  # dolos | folder | manifest | builtin
    root: str = ""  # dolos/builtin: folder holding DATASET/; folder: unused
    # dolos: subfolder of root ("" = root itself); None = decided from the folders found (data/load.py)
    dataset: str | None = None
    real: str | None = "real"  # dolos: subfolder name; folder: path of the real images
    # dolos: generator names (None = p2 / repaint-p2 when present, else those found); folder: one path
    full: list[str] | None = None
    local: list[str] | None = None
    masks: str | None = None  # folder layout: masks of the local fakes
    manifest: str | None = None  # manifest layout: the CSV/JSONL file
    split_ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    mask_polarity: str = "black-fake"  # DOLOS files: black = fake
    binarize_masks: bool = False  # threshold non-binary masks at 128 instead of failing
    # local generators that training and validation use when they differ from the tested ones (``local``);
    # None = ``local``, except setup B on a DOLOS root with repaint-p2-9k (the paper's 9k subset; data/load.py)
    train_local: list[str] | None = None
    input_size: int = 299
    # None = the method's official choice for the setup (methods/base.py Localizer.preprocessing):
    # lanczos + flip for Patches/GradCAM in A/B, bilinear and no flip for setup C and for Attention
    resize: str | None = None
    mean: float = 0.5
    std: float = 0.5
    hflip: bool | None = None  # random horizontal flip at training time
    # random quarter turns at training time (images and masks; with hflip, all 8 symmetries of the square); not an
    # official choice (tried on the study's setup C, docs/study.md)
    rot90: bool = False
    # setup C: how masks become the map's targets. None = the method's official choice (PIL NEAREST for Patches and
    # GradCAM; bilinear then > 0.5 for Attention); "area" = each cell's share of fake pixels, a soft target (what
    # a map that is upsampled and thresholded at 0.5 can best follow; not official, docs/study.md)
    mask_resize: str | None = None
    cache_dir: str | None = None  # memory-mapped tensor cache; None keeps decoded images in memory
    builtin_seed: int = 0  # builtin layout: seed of the generated dataset
    builtin_preset: str = "default"  # builtin layout: default | quick (generate/builtin/build.py)
    builtin_images: int | None = None  # builtin layout: crops per source (None: the preset's, 1500 by default)
    builtin_size: int | None = None  # builtin layout: image side in px (None: the preset's, 32)

    def __post_init__(self) -> None:
        for name in ("full", "local", "train_local"):
            value = getattr(self, name)
            if value is None:
                continue
            items = [value] if isinstance(value, str) else list(value)
            if self.layout != "folder":  # generator names: "a,b" and repeated options alike (folder: paths)
                items = [part.strip() for item in items for part in str(item).split(",")]
            setattr(self, name, [item for item in items if item])
        if self.resize is not None and self.resize not in RESIZE_FILTERS:
            raise ConfigError(f"data.resize must be one of {', '.join(RESIZE_FILTERS)}, not {self.resize!r}")
        if self.layout not in ("dolos", "folder", "manifest", "builtin"):
            raise ConfigError(f"data.layout must be dolos, folder, manifest or builtin, not {self.layout!r}")
        if self.mask_resize not in (None, *MASK_RESIZES):
            raise ConfigError(f"data.mask_resize must be one of {', '.join(MASK_RESIZES)}, not {self.mask_resize!r}")
        if self.input_size < 32:
            raise ConfigError(f"data.input_size must be at least 32, not {self.input_size}")


LR_SCHEDULES = ("constant", "cosine")


@dataclass
class TrainConfig:
    """One training run. ``None`` means: the method's default for this setup (REFERENCE.md)."""

    method: str = "patches"
    setup: str = "A"
    epochs: int | None = None
    iters_per_epoch: int = 500
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 0.0
    # "constant" (the official code: no schedule) or "cosine" (lr * (1 + cos(pi * step / steps)) / 2, step by step)
    lr_schedule: str = "constant"
    val_batch_size: int = 64
    keep_best: int = 5
    seed: int = 0
    precision: str = "auto"  # auto (bf16 autocast where the hardware has it) | bf16 | fp32
    channels_last: bool = True
    device: str = "auto"
    init: str | None = None  # optional local weights file to initialise the backbone
    init_partial: bool = False  # accept an init file that fills only part of the backbone (else refused)
    options: dict[str, Any] = field(default_factory=dict)  # method-specific (e.g. attention lambda)

    def __post_init__(self) -> None:
        if self.setup not in ("A", "B", "C"):
            raise ConfigError(f"train.setup must be A, B or C, not {self.setup!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"train.precision must be auto, bf16 or fp32, not {self.precision!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"train.lr_schedule must be one of {', '.join(LR_SCHEDULES)}, not {self.lr_schedule!r}")


AP_SAMPLINGS = ("official", "numpy")


@dataclass
class EvalConfig:
    """Scoring settings; the defaults are the DOLOS evaluation's (docs/evaluate.md)."""

    threshold: float = 0.5
    ap_repeats: int = 5
    # detection AP's balanced subsamples: "official" (python random.sample, DOLOS) | "numpy" (earlier weakloc)
    ap_sampling: str = "official"
    ap_seed: int = 1337  # the DOLOS evaluation's random.seed (earlier weakloc drew with numpy and seed 0)
    batch_size: int = 64
    # the pixel threshold: "given" (= threshold), "valid" (the one maximising mean IoU lg on the validation split's
    # local fakes, predicted with the checkpoint) or the path of saved predictions of that split (.npz / heatmaps)
    threshold_from: str = "given"
    bootstrap: int = 1000  # resamples for the 95% intervals (0: none); docs/evaluate.md "Confidence intervals"
    bootstrap_seed: int = 0  # also seeds the random baseline maps and scores
    # robustness: perturbations to re-run a checkpoint under, e.g. ["jpeg:95,50", "chain:social"]
    # (parsed and checked by data/perturb.py; docs/evaluate.md "Robustness")
    perturb: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.perturb, str):  # --set evaluate.perturb=jpeg:50 gives a bare string
            self.perturb = [self.perturb]
        if self.ap_sampling not in AP_SAMPLINGS:
            raise ConfigError(f"evaluate.ap_sampling must be one of {', '.join(AP_SAMPLINGS)}, "
                              f"not {self.ap_sampling!r}")
        if not isinstance(self.bootstrap, int) or self.bootstrap < 0:
            raise ConfigError(f"evaluate.bootstrap must be a whole number >= 0 (resamples), not {self.bootstrap!r}")
        if not str(self.threshold_from).strip():
            raise ConfigError("evaluate.threshold_from must be 'given', 'valid' or a path of saved predictions")


def from_dict(cls: type, values: dict[str, Any], where: str) -> Any:
    """Build a config dataclass, naming unknown keys and their closest valid names."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}")
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` with a TOML value (strings may be bare): (['section', 'key'], value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value (e.g. train.lr=1e-4)")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare string such as data.root=/data/wacv_data
    return key.strip().split("."), value


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        keys, value = parse_override(text)
        node = tree
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {key} is not a section")
        node[keys[-1]] = value
    return tree


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: experiment file does not exist")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _resolved(value: Any) -> Any:
    if isinstance(value, str) and value:
        return str(Path(value).expanduser().resolve())
    if isinstance(value, list):
        return [_resolved(v) for v in value]
    return value


def changed_settings(old: dict[str, Any], new: dict[str, Any], *, ignore: tuple[str, ...] = (),
                     paths: tuple[str, ...] = ()) -> list[str]:
    """The settings that differ between two (nested) settings dicts, one ``key: old -> new`` line each.
    Keys in ``paths`` hold file paths and are compared resolved (``runs/x`` equals its absolute form)."""
    before, after = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(set(before) | set(after)):
        if key in ignore:
            continue
        a, b = before.get(key), after.get(key)
        if key in paths:
            a, b = _resolved(a), _resolved(b)
        if a != b:
            lines.append(f"{key}: {_shown(before, key)} -> {_shown(after, key)}")
    return lines


def changes_block(changed: list[str]) -> str:
    """The lines of :func:`changed_settings` as an indented block, under a ``(there -> now)`` heading."""
    return "(there -> now):\n    " + "\n    ".join(changed)


def _shown(values: dict[str, Any], key: str) -> str:
    return repr(values[key]) if key in values else "(unset)"
