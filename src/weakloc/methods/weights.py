"""Weights files made elsewhere: read safely, their names mapped onto weakloc's, loaded whole or refused.

Reading never runs code from a file: safetensors, or ``torch.load(weights_only=True)``, which rebuilds only
tensors, plain containers and numbers (a pickle that needs anything else is refused before it runs).

Layouts recognised (every one is Cadene's Xception port, so only the names differ):

- ``timm``: timm's ``legacy_xception`` (Cadene's and patch-forensics' names, which timm kept).
- ``ffd``: Dang et al.'s FFD network (JStehouwer/FFD_CVPR2020, ``xception.py``; its ``xcp_reg.tar`` keeps the
  state dict under ``net``): a separable convolution names its depthwise kernel ``c`` (timm: ``conv1``), a
  block its skip BatchNorm ``skip_bn`` (timm: ``skipbn``), the classifier is ``last_linear`` (timm: ``fc``)
  and the regression map after block 7 is ``map.c`` (weakloc's Attention: ``head``).
- ``dolos-patches``: the authors' released Patches network (timm names plus ``convout``, weakloc's ``head``).

``--init`` fills a model's Xception stages, and its map module when the file has one of the same names, in
full or not at all: a partial load is refused unless asked for (``train.init_partial``). The classifier is
never required (ImageNet's has 1000 classes); it is loaded when its shape fits (FFD's: real 0 / fake 1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError
from ..files import load_torch_weights
from .xception import BLOCKS, STEM, TAIL

WRAPPERS = ("state_dict", "model", "net")  # where checkpoints nest their state dict (ignite: model, FFD: net)
CLASSIFIER = "fc."
HEAD = "head."
FFD_RENAMES = ((r"^map\.c\.", "head."), (r"\.c\.weight$", ".conv1.weight"), (r"\.skip_bn\.", ".skipbn."),
               (r"^last_linear\.", "fc."))
DOLOS_PATCHES_RENAMES = ((r"^convout\.", "head."),)
COUNTER = "num_batches_tracked"
SAFE_FIX = "re-save it as a plain state dict: torch.save(model.state_dict(), PATH), or as .safetensors"
SHOWN = 5  # missing keys named in a refusal
XCEPTION_STAGES = frozenset(STEM + BLOCKS + TAIL)


# ------------------------------------------------------------------ reading

def read_state_dict(path: str | Path, fix: str = SAFE_FIX) -> dict[str, torch.Tensor]:
    """The tensors of a local weights file (safetensors or torch), unwrapped from a checkpoint dict when it
    clearly is one; ``fix`` ends the message of every refusal."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file does not exist", "check the path")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputError(path, f"unreadable as safetensors ({exc})", fix) from None
    return unwrap_state_dict(_torch_load(path, fix), path, fix)


def _torch_load(path: Path, fix: str) -> object:
    # a file you trust that pickles a whole model can be re-saved as its weights
    hint = "" if "state_dict()" in fix else (" (a file you trust that pickles a whole model: re-save its weights "
                                             "with torch.save(model.state_dict(), PATH))")
    return load_torch_weights(path, fix, hint)


def _is_tensor_dict(obj: object) -> bool:
    return (isinstance(obj, dict) and bool(obj)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def unwrap_state_dict(obj: object, path: str | Path, fix: str = SAFE_FIX) -> dict[str, torch.Tensor]:
    """``obj`` itself when it is a dict of tensors, else the one dict of tensors under a wrapper key
    (``state_dict``, ``model``, ``net``); a ``module.`` prefix on every key (DataParallel) is dropped."""
    if _is_tensor_dict(obj):
        state = dict(obj)
    elif isinstance(obj, dict):
        found = [k for k in WRAPPERS if _is_tensor_dict(obj.get(k))]
        if len(found) != 1:
            keys = ", ".join(map(repr, list(obj)[:8]))
            why = (f"state dicts under more than one key ({', '.join(found)})" if found
                   else f"no dict of tensors under {', '.join(map(repr, WRAPPERS))}")
            raise InputError(path, f"a dict (keys {keys}) that is not a state dict and holds {why}", fix)
        state = dict(obj[found[0]])
    else:
        raise InputError(path, f"holds a {type(obj).__name__}, not a dict of tensors", fix)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


# ------------------------------------------------------------------ names

def layout_of(state: dict[str, torch.Tensor]) -> str:
    """``ffd``, ``dolos-patches`` or ``timm`` (see the module docstring)."""
    keys = list(state)
    if any(".skip_bn." in k or k.startswith(("last_linear.", "map.")) or k.endswith(".c.weight") for k in keys):
        return "ffd"
    if any(k.startswith("convout.") for k in keys):
        return "dolos-patches"
    return "timm"


def to_weakloc_names(state: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """Rename the keys of a state dict of ``layout`` to weakloc's (timm stage names, ``head`` for the map)."""
    rules = {"ffd": FFD_RENAMES, "dolos-patches": DOLOS_PATCHES_RENAMES}.get(layout, ())
    renamed = {}
    for key, value in state.items():
        for pattern, new in rules:
            key = re.sub(pattern, new, key)
        renamed[key] = value
    return renamed


def _stage(key: str) -> str:
    return key.split(".", 1)[0]


# ------------------------------------------------------------------ loading

@dataclass
class InitReport:
    """What an initialisation file filled: ``loaded`` of the ``expected`` tensors (Xception stages, plus the
    map module when the file has one), the classifier apart."""

    path: str
    layout: str
    expected: list[str]
    loaded: list[str]
    problems: dict[str, str] = field(default_factory=dict)  # expected key -> why it was not loaded
    classifier: bool = False  # the classifier was loaded too
    ignored: int = 0  # tensors of the file the model has no place for (e.g. stages a truncated model lacks)

    @property
    def complete(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        extra = " + classifier" if self.classifier else ""
        return (f"init {Path(self.path).name} ({self.layout} layout): loaded {len(self.loaded)} of "
                f"{len(self.expected)} tensors{extra}" + ("" if self.complete else " (PARTIAL)")
                + (f"; {self.ignored} tensors of the file unused" if self.ignored else ""))

    def card(self) -> dict:
        return {"file": Path(self.path).name, "layout": self.layout, "loaded": len(self.loaded),
                "of": len(self.expected), "complete": self.complete, "classifier": self.classifier,
                "missing": list(self.problems)[:SHOWN]}


def _expected(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> list[str]:
    """The model's keys the file should fill: its Xception stages, and its map module when the file has
    tensors of the same names (FFD's map into Attention; not into Grad-CAM's different head)."""
    keys = [k for k in own if _stage(k) in XCEPTION_STAGES]
    head = [k for k in own if k.startswith(HEAD)]
    if any(k in state for k in head):
        keys += head
    if not any(k.endswith(COUNTER) for k in state):  # saved before PyTorch 0.4.1: no BN counters to fill
        keys = [k for k in keys if not k.endswith(COUNTER)]
    return keys


def _fit(key: str, mine: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor | str:
    """The file's tensor for ``key`` shaped as the model's, or why there is none."""
    if key not in state:
        return "absent"
    theirs = state[key]
    if theirs.shape == mine.shape:
        return theirs
    if theirs.dim() == 2 and mine.shape == (*theirs.shape, 1, 1):  # Cadene's ImageNet file: 2-D pointwise
        return theirs[:, :, None, None]
    return f"shape {list(theirs.shape)} in the file, {list(mine.shape)} in the model"


def load_init_weights(network: nn.Module, path: str | Path, partial: bool = False) -> InitReport:
    """Initialise ``network``'s Xception stages (and map module) from a local weights file of any recognised
    layout; refuses a partial fill unless ``partial``. Returns what was loaded."""
    raw = read_state_dict(path)
    report, tensors = _plan(network.state_dict(), raw, str(path))
    if not report.loaded:
        raise InputError(path, f"no tensor fits this model's Xception layers ({report.layout} layout read)",
                         "pass a timm legacy_xception state dict, FFD's xcp_reg.tar or a weakloc-compatible file")
    if not report.complete and not partial:
        raise InputError(path, _partial_message(report), "pass the complete weights file, or --init-partial "
                         "(train.init_partial = true) to keep the rest at its random initialisation")
    network.load_state_dict(tensors, strict=False)
    return report


def _plan(own: dict[str, torch.Tensor], raw: dict[str, torch.Tensor], path: str) -> tuple[InitReport, dict]:
    """(what a file would fill in a model with state dict ``own``, the tensors to load)."""
    layout = layout_of(raw)
    state = to_weakloc_names(raw, layout)
    expected = _expected(own, state)
    fitted = {k: _fit(k, own[k], state) for k in expected}
    matched = {k: v for k, v in fitted.items() if isinstance(v, torch.Tensor)}
    heads = {k: _fit(k, own[k], state) for k in own if k.startswith(CLASSIFIER)}
    classifier = {k: v for k, v in heads.items() if isinstance(v, torch.Tensor)}
    report = InitReport(path, layout, expected, list(matched),
                        problems={k: v for k, v in fitted.items() if isinstance(v, str)},
                        classifier=bool(classifier),
                        ignored=sum(1 for k in state if k not in matched and k not in classifier))
    return report, {**matched, **classifier}


def _partial_message(report: InitReport) -> str:
    shown = [f"{k} ({why})" for k, why in list(report.problems.items())[:SHOWN]]
    more = len(report.problems) - len(shown)
    return (f"would fill only {len(report.loaded)} of the {len(report.expected)} tensors it should "
            f"({report.layout} layout); missing: " + ", ".join(shown) + (f", ... ({more} more)" if more else ""))
