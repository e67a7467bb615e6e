"""`--init` loads a weights file whole or refuses it: timm and FFD layouts (FFD's xcp_reg.tar under `net`),
a partial file only with init_partial (and the count reported in the card), unsafe pickles never run."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from conftest import TINY, WritesAFile
from official_nets import FFDXception, randomize
from weakloc.cli import app
from weakloc.config import TrainConfig, from_dict, read_toml
from weakloc.errors import InputError
from weakloc.methods import build_model
from weakloc.methods.weights import load_init_weights
from weakloc.methods.xception import legacy_xception

DEPTHWISE = ".conv1.weight"  # timm's name of a separable convolution's depthwise kernel


def timm_file(tmp_path, drop: str | None = None):
    """A randomised timm legacy_xception (ImageNet shape: 1000 classes) as safetensors; ``drop``: leave out
    the keys containing it. Returns (path, state dict written)."""
    state = {k: v.contiguous() for k, v in randomize(legacy_xception(num_classes=1000), 0).state_dict().items()
             if not (drop and drop in k and ".rep." in k)}
    path = tmp_path / "xception.safetensors"
    save_file(state, str(path))
    return path, state


def test_a_complete_timm_file_loads_every_backbone_tensor(tmp_path):
    path, state = timm_file(tmp_path)
    model = build_model("attention", "A")
    report = load_init_weights(model, path)
    own = model.state_dict()
    backbone = [k for k in own if not k.startswith(("fc.", "head."))]  # the map is not in a timm file
    assert report.complete and report.layout == "timm" and not report.classifier  # 1000 classes: not loaded
    assert report.loaded == backbone and len(backbone) == 274
    assert all(torch.equal(own[k], state[k]) for k in backbone)
    assert report.summary().endswith("loaded 274 of 274 tensors; 2 tensors of the file unused")


def test_missing_depthwise_kernels_are_refused_unless_partial_is_asked(tmp_path):
    path, state = timm_file(tmp_path, drop=DEPTHWISE)
    model = build_model("attention", "A")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InputError) as err:
        load_init_weights(model, path)
    message = str(err.value)
    assert "would fill only 242 of the 274 tensors" in message
    assert "missing: block1.rep.0.conv1.weight (absent), block1.rep.3.conv1.weight (absent)" in message
    assert "(27 more)" in message and "--init-partial" in message and str(path) in message
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # refused: nothing loaded

    report = load_init_weights(model, path, partial=True)
    assert (len(report.loaded), len(report.expected), report.complete) == (242, 274, False)
    assert report.card() == {"file": "xception.safetensors", "layout": "timm", "loaded": 242, "of": 274,
                             "complete": False, "classifier": False,
                             "missing": ["block1.rep.0.conv1.weight", "block1.rep.3.conv1.weight",
                                         "block2.rep.1.conv1.weight", "block2.rep.4.conv1.weight",
                                         "block3.rep.1.conv1.weight"]}
    assert torch.equal(model.state_dict()["block1.rep.0.pointwise.weight"], state["block1.rep.0.pointwise.weight"])


def ffd_tar(tmp_path) -> tuple:
    """FFD's xcp_reg.tar as FFD's Model.save writes it: {'net': state dict, 'optim': Adam state}."""
    net = randomize(FFDXception(), 1)
    optim = torch.optim.Adam(net.parameters(), lr=1e-4, weight_decay=1e-3)
    path = tmp_path / "xcp_reg.tar"
    torch.save({"net": net.state_dict(), "optim": optim.state_dict(), "epoch": 13}, path)
    return path, net


def test_ffd_xcp_reg_fills_attention_backbone_map_and_classifier(tmp_path):
    path, net = ffd_tar(tmp_path)
    model = build_model("attention", "A").eval()
    report = load_init_weights(model, path)
    assert report.complete and report.layout == "ffd" and report.classifier and report.ignored == 0
    assert len(report.loaded) == 276 and {"head.conv1.weight", "head.pointwise.weight"} <= set(report.loaded)
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        logits, mask = net(images)
        out = model(images)
    assert torch.allclose(torch.sigmoid(out["map_logits"]), mask, atol=1e-6, rtol=0)
    assert torch.allclose(out["logits"], logits, atol=1e-5, rtol=0)

    full = load_init_weights(build_model("attention", "C"), path)  # trunk through block 7 + map
    assert full.complete and len(full.loaded) == 158 and full.ignored == 120
    patches = load_init_weights(build_model("patches", "C"), path)  # FFD's map does not fit Patches' head
    assert patches.complete and len(patches.loaded) == 52


def test_a_pickle_that_is_not_tensors_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "xcp_reg.tar"
    torch.save({"net": {"conv1.weight": torch.zeros(32, 3, 3, 3)}, "hook": WritesAFile(marker)}, path)
    with pytest.raises(InputError, match="never runs code from a weights file"):
        load_init_weights(build_model("attention", "A"), path)
    assert not marker.exists()


def test_init_partial_is_a_train_setting(tmp_path):
    (tmp_path / "run.toml").write_text("[train]\ninit = 'x.safetensors'\ninit_partial = true\n")
    cfg = from_dict(TrainConfig, read_toml(tmp_path / "run.toml")["train"], "train")
    assert cfg.init_partial is True and TrainConfig().init_partial is False


SETTINGS = [f"data.builtin_images={TINY['n']}", f"data.builtin_size={TINY['size']}", f"data.builtin_seed={TINY['seed']}",
            "data.builtin_preset=quick", "data.input_size=48", "train.epochs=1", "train.iters_per_epoch=1",
            "train.batch_size=4", "train.precision=fp32", "train.keep_best=1"]
DATA = ["--layout", "builtin", *(arg for setting in SETTINGS for arg in ("--set", setting))]


def test_train_refuses_a_partial_init_and_records_an_accepted_one(tmp_path, tiny_root):
    path, _ = timm_file(tmp_path, drop="block1.rep.0" + DEPTHWISE)  # one depthwise kernel of Patches' trunk
    runner = CliRunner()
    args = ["train", "--out", str(tmp_path / "run"), "--root", str(tiny_root), "--init", str(path), *DATA]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "would fill only 51 of the 52 tensors" in refused.output
    assert "block1.rep.0.conv1.weight" in refused.output and not (tmp_path / "run").exists()

    accepted = runner.invoke(app, [*args, "--init-partial"])
    assert accepted.exit_code == 0, accepted.output
    card = json.loads((tmp_path / "run" / "best.json").read_text())
    assert card["train"]["init_partial"] is True
    assert card["train"]["init_loaded"] == {"file": "xception.safetensors", "layout": "timm", "loaded": 51, "of": 52,
                                            "complete": False, "classifier": False,
                                            "missing": ["block1.rep.0.conv1.weight"]}


def test_cadene_two_dimensional_pointwise_kernels_are_reshaped(tmp_path):
    """Cadene's ImageNet file stores pointwise kernels as [out, in] (FFD's loader unsqueezes them too)."""
    _, state = timm_file(tmp_path)
    flat = {k: v[:, :, 0, 0].contiguous() if "pointwise" in k else v for k, v in state.items()}
    save_file(flat, str(tmp_path / "cadene.safetensors"))
    model = build_model("patches", "A")
    report = load_init_weights(model, tmp_path / "cadene.safetensors")
    assert report.complete and len(report.loaded) == 52
    assert torch.equal(model.state_dict()["block2.rep.4.pointwise.weight"], state["block2.rep.4.pointwise.weight"])
