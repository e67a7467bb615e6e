"""The authors' released models, converted into weakloc checkpoints (``weakloc import dolos-patches``).

Only Patches was released (bit-ml/dolos README, "Pretrained models"; issue #1): one zip of pytorch-ignite
``ModelCheckpoint`` files ``best_model_<epoch>_<score_name>=<score>.pt``, each ``torch.save`` of the state
dict of patch-forensics' ``make_patch_xceptionnet(layername="block2")``: Cadene's Xception stem and blocks 1-2
(the names timm's ``legacy_xception`` kept, which weakloc's Patches trunk carries) and ``convout``, the 1x1
convolution weakloc calls ``head``. The official loader takes the file with the highest score.

The file is read without unpickling anything but tensors (methods/weights.py) and must have exactly the
official names and shapes; the checkpoint records the official preprocessing of the setup, the source file
and its SHA-256.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError, InputError
from ..files import file_sha256
from ..methods import build_model, training_preprocessing
from ..methods.weights import read_state_dict, to_weakloc_names
from .checkpoint import read_card, save_checkpoint

FORMAT = "dolos-patches"
DATASETS = ("celebahq", "ffhq")  # paper section 5.1 (setups A/B/C) and 5.2 (trained on FFHQ)
INPUT_SIZE, MEAN, STD = 299, 0.5, 0.5
PATTERN = "best_model_*.pt"
SCORE = re.compile(r"=([^=]*)\.pt$")  # the official loader's score: between the '=' and the extension
FIX = ("pass a best_model_*.pt file from the authors' zip (bit-ml/dolos README, \"Pretrained models\"), "
       "or the folder holding them")


@dataclass
class Imported:
    checkpoint: Path
    source: Path
    card: dict  # as stored in the checkpoint
    candidates: int  # best_model_*.pt files considered (1 when a file was given)


def released_score(path: Path) -> float | None:
    """The score in an ignite checkpoint name (``best_model_12_neg_loss=-0.0123.pt`` -> -0.0123)."""
    match = SCORE.search(path.name)
    try:
        score = float(match[1]) if match else None
    except ValueError:
        return None
    return None if score is None or math.isnan(score) else score


def pick_released(source: str | Path) -> tuple[Path, int]:
    """``source`` itself when it is a file; in a folder, the best_model_*.pt of highest score, as the official
    loader picks it (ties: the last name in sorted order). Returns (file, number of candidates)."""
    source = Path(source)
    if source.is_file():
        return source, 1
    if not source.is_dir():
        raise InputError(source, "no such file or folder", FIX)
    scored = [(s, p.name, p) for p in source.glob(PATTERN) if p.is_file() and (s := released_score(p)) is not None]
    if not scored:
        raise InputError(source, f"no {PATTERN} file with a '=<score>' in its name here", FIX)
    return max(scored)[2], len(scored)


def official_layout() -> dict[str, torch.Size]:
    """Names and shapes of the official Patches state dict (weakloc's Patches with ``head`` named ``convout``)."""
    own = build_model("patches", "C").state_dict()
    return {"convout." + k[len("head."):] if k.startswith("head.") else k: v.shape for k, v in own.items()}


def check_layout(state: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse a state dict whose names or shapes are not the official ones, naming the first offender."""
    expected = official_layout()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k]]
    counts = f"({len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} of wrong shape)"
    if missing:
        raise InputError(path, f"not the official Patches layout: missing tensor {missing[0]!r} {counts}", FIX)
    if unexpected:
        raise InputError(path, f"not the official Patches layout: unexpected tensor {unexpected[0]!r} {counts}",
                         FIX)
    if wrong:
        key = wrong[0]
        raise InputError(path, f"not the official Patches layout: {key!r} has shape {list(state[key].shape)}, "
                               f"expected {list(expected[key])} {counts}", FIX)


def released_card(source: Path, setup: str, dataset: str, map_size: int) -> dict:
    """The card of an imported model: official preprocessing of ``setup``, data, and where it came from."""
    official = training_preprocessing("patches", setup)
    return {"input_size": INPUT_SIZE, "resize": official.resize, "hflip": official.hflip, "mean": MEAN, "std": STD,
            "official_preprocessing": True, "map_size": map_size,
            "data": {"layout": "dolos", "dataset": dataset},
            "source": {"file": source.name, "sha256": file_sha256(source), "format": FORMAT,
                       "score": released_score(source)},
            "imported": "the authors' released weights (bit-ml/dolos), converted by `weakloc import dolos-patches`; "
                        "not trained by weakloc"}


def import_dolos_patches(source: str | Path, setup: str, out: str | Path, dataset: str = "celebahq",
                         force: bool = False) -> Imported:
    """Convert a released Patches file (or the best one in a folder) into a weakloc checkpoint at ``out``."""
    out = Path(out)
    if setup not in ("A", "B", "C"):
        raise ConfigError(f"setup must be A, B or C (the paper's setup the file was trained in), not {setup!r}")
    if dataset not in DATASETS:
        raise ConfigError(f"dataset must be one of {', '.join(DATASETS)}, not {dataset!r}")
    if out.suffix != ".safetensors":
        raise InputError(out, "the checkpoint name must end in .safetensors", "e.g. --out patches-A.safetensors")
    if out.exists() and not force:
        raise InputError(out, "already exists", "choose another --out, or pass --force to replace it")
    path, candidates = pick_released(source)
    state = read_state_dict(path, FIX)
    check_layout(state, path)
    model = build_model("patches", setup)
    model.load_state_dict(to_weakloc_names(state, FORMAT), strict=True)
    save_checkpoint(out, model, released_card(path, setup, dataset, model.eval().map_size(INPUT_SIZE)))
    return Imported(out, path, read_card(out), candidates)
