"""`weakloc import dolos-patches`: the authors' released Patches state dict -> a weakloc checkpoint that
predicts exactly what the official network predicts; unsafe or foreign files are refused with the key named."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import weakloc
from official_nets import PatchNet, randomize
from conftest import WritesAFile
from weakloc.cli import app
from weakloc.data.cache import normalize, preprocess_image
from weakloc.errors import InputError
from weakloc.train.released import import_dolos_patches, pick_released

runner = CliRunner()
NAME = "best_model_37_neg_loss=-0.0123.pt"


def official_file(folder, name=NAME, seed=0):
    """(path, network): a randomised official Patches network saved as the released files are."""
    net = randomize(PatchNet(), seed)
    path = folder / name
    torch.save(net.state_dict(), path)
    return path, net


def official_fake_map(net, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(images).softmax(dim=1)[:, 1]


def write_pngs(folder, n=3):
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(64, 80), (120, 90), (40, 40)][:n]):
        paths.append(folder / f"img{i}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    return paths


@pytest.mark.parametrize("setup,resize,hflip", [("A", "lanczos", True), ("C", "bilinear", False)])
def test_imported_model_predicts_what_the_official_network_predicts(tmp_path, setup, resize, hflip):
    source, net = official_file(tmp_path)
    done = import_dolos_patches(source, setup, tmp_path / "pt.safetensors", dataset="ffhq")
    card = done.card
    assert card["method"] == "patches" and card["setup"] == setup and card["options"] == {"init": None}
    assert (card["input_size"], card["mean"], card["std"], card["map_size"]) == (299, 0.5, 0.5, 37)
    assert (card["resize"], card["hflip"]) == (resize, hflip)
    assert card["source"] == {"file": NAME, "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
                              "format": "dolos-patches", "score": -0.0123}
    assert card["data"]["dataset"] == "ffhq" and "not trained by weakloc" in card["imported"]
    assert json.loads((tmp_path / "pt.json").read_text()) == card  # the sidecar card

    detector = weakloc.load(tmp_path / "pt.safetensors", device="cpu", precision="fp32")  # exact: no bf16
    images = torch.rand(2, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        out = detector.model.localize(images)
    expected = official_fake_map(net, images)
    assert out.map.shape == (2, 37, 37)
    assert torch.allclose(out.map, expected, atol=1e-6, rtol=0)
    assert torch.allclose(out.score, expected.mean(dim=(1, 2)), atol=1e-6, rtol=0)

    # predict on files: the card's preprocessing, then the official network's map
    paths = write_pngs(tmp_path)
    for path, result in zip(paths, detector.predict(paths)):
        array = preprocess_image(Image.open(path).convert("RGB"), 299, resize)
        official = official_fake_map(net, normalize(torch.from_numpy(array.copy())[None], 0.5, 0.5))[0]
        assert np.allclose(result.model_map, official.numpy(), atol=1e-6, rtol=0)
        assert result.map.shape == Image.open(path).size[::-1]


def test_a_folder_gives_the_file_of_highest_score(tmp_path):
    for i, score in enumerate(["-0.5", "-0.0871", "-0.3", "-0.0871"]):
        official_file(tmp_path, f"best_model_{10 + i}_neg_loss={score}.pt", seed=i)
    (tmp_path / "notes.txt").write_text("not a model")
    picked, n = pick_released(tmp_path)
    assert n == 4 and picked.name == "best_model_13_neg_loss=-0.0871.pt"  # tie: the last name
    done = import_dolos_patches(tmp_path, "B", tmp_path / "out.safetensors")
    assert done.card["source"]["file"] == picked.name and done.card["data"]["dataset"] == "celebahq"
    assert pick_released(picked) == (picked, 1)  # a file is taken as it is
    with pytest.raises(InputError, match="no such file or folder"):
        pick_released(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no best_model_"):
        pick_released(tmp_path / "empty")


def test_cli_import_then_info_and_predict(tmp_path):
    (tmp_path / "zip").mkdir()
    source, net = official_file(tmp_path / "zip", seed=3)
    out = tmp_path / "patches-C.safetensors"
    result = runner.invoke(app, ["import", "dolos-patches", str(tmp_path / "zip"), "--setup", "C", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"picked {NAME}" in result.output and f"-> {out}" in result.output

    info = runner.invoke(app, ["info", str(out)])
    card = json.loads(info.output)
    assert info.exit_code == 0 and card["source"]["format"] == "dolos-patches" and card["resize"] == "bilinear"

    (tmp_path / "imgs").mkdir()
    paths = write_pngs(tmp_path / "imgs")
    result = runner.invoke(app, ["predict", str(out), *map(str, paths), "--out", str(tmp_path / "pred"),
                                 "--device", "cpu", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "pred" / "predictions.npz") as f:
        maps = f["maps"]
    for path, model_map in zip(paths, maps):
        array = preprocess_image(Image.open(path).convert("RGB"), 299, "bilinear")
        official = official_fake_map(net, normalize(torch.from_numpy(array.copy())[None], 0.5, 0.5))[0]
        assert np.allclose(model_map, official.numpy(), atol=1e-6, rtol=0)

    again = runner.invoke(app, ["import", "dolos-patches", str(source), "--setup", "C", "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output
    forced = runner.invoke(app, ["import", "dolos-patches", str(source), "--setup", "A", "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    assert json.loads(runner.invoke(app, ["info", str(out)]).output)["setup"] == "A"


def test_a_pickle_that_would_run_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / NAME
    torch.save({"conv1.weight": WritesAFile(marker)}, evil)
    with pytest.raises(InputError, match=r"io.open, and weakloc never runs code") as err:
        import_dolos_patches(evil, "A", tmp_path / "out.safetensors")
    assert str(evil) in str(err.value) and "fix:" in str(err.value)
    assert not marker.exists() and not (tmp_path / "out.safetensors").exists()


def test_a_pickled_module_is_refused(tmp_path):
    path = tmp_path / NAME
    torch.save(PatchNet(), path)  # the whole network, not its state dict
    with pytest.raises(InputError, match="PatchNet") as err:
        import_dolos_patches(path, "A", tmp_path / "out.safetensors")
    assert "state_dict()" in str(err.value)


@pytest.mark.parametrize("change,message", [
    (lambda sd: sd.pop("block2.rep.5.running_var"), "missing tensor 'block2.rep.5.running_var'"),
    (lambda sd: sd.update({"lfs.weight": torch.zeros(3)}), "unexpected tensor 'lfs.weight'"),
    (lambda sd: sd.update({"convout.weight": torch.zeros(3, 256, 1, 1)}),
     r"'convout.weight' has shape \[3, 256, 1, 1\], expected \[2, 256, 1, 1\]"),
    (lambda sd: [sd.update({"head." + k[8:]: sd.pop(k)}) for k in ("convout.weight", "convout.bias")],
     "missing tensor 'convout.weight'"),  # weakloc's own names are not the official file
])
def test_a_different_layout_is_refused_naming_the_key(tmp_path, change, message):
    state = randomize(PatchNet(), 0).state_dict()
    change(state)
    torch.save(state, tmp_path / NAME)
    with pytest.raises(InputError, match=message):
        import_dolos_patches(tmp_path / NAME, "A", tmp_path / "out.safetensors")


def test_only_clearly_wrapped_state_dicts_are_accepted(tmp_path):
    state = randomize(PatchNet(), 1).state_dict()
    accepted = {"ignite": {"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3}]}, "epoch": 3},
                "lightning": {"state_dict": state, "epoch": 3},
                "dataparallel": {f"module.{k}": v for k, v in state.items()}}
    for name, obj in accepted.items():
        torch.save(obj, tmp_path / f"{name}.pt")
        card = import_dolos_patches(tmp_path / f"{name}.pt", "A", tmp_path / f"{name}.safetensors").card
        assert card["source"]["file"] == f"{name}.pt"
    refused = {"two": ({"model": state, "state_dict": state}, "more than one key"),
               "other": ({"weights": state}, "no dict of tensors under"),
               "list": ([state], "holds a list")}
    for name, (obj, message) in refused.items():
        torch.save(obj, tmp_path / f"{name}.pt")
        with pytest.raises(InputError, match=message):
            import_dolos_patches(tmp_path / f"{name}.pt", "A", tmp_path / f"{name}.safetensors")
