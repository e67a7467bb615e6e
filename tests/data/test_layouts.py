"""The three layouts (DOLOS, folder, manifest) and the selections each setup uses."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from weakloc.data.images import write_mask
from weakloc.data.layouts import dolos_samples, folder_samples, manifest_samples
from weakloc.data.samples import select, training_selection
from weakloc.errors import InputError


def _img(path, value=100, size=(16, 16)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)


def _dolos(root):
    base = root / "celebahq"
    for split in ("train", "valid", "test"):
        for i in range(2):
            _img(base / "real" / split / f"{i:05d}.png")
            _img(base / "fake" / "p2" / split / f"{i:05d}.png", 50)
            _img(base / "fake" / "repaint-p2" / "images" / split / f"{i:05d}.png", 60)
            m = np.zeros((16, 16), bool)
            m[4:8, 4:8] = True
            (base / "fake" / "repaint-p2" / "masks" / split).mkdir(parents=True, exist_ok=True)
            write_mask(base / "fake" / "repaint-p2" / "masks" / split / f"{i:05d}.png", m)


def test_dolos_layout_exact(tmp_path):
    _dolos(tmp_path)
    samples = dolos_samples(tmp_path, "celebahq", real="real", full=["p2"], local=["repaint-p2"])
    assert len(samples) == 18
    local = select(samples, "test", ["local"])
    assert [s.id for s in local] == ["celebahq/fake/repaint-p2/images/test/00000.png",
                                     "celebahq/fake/repaint-p2/images/test/00001.png"]
    assert all(s.mask_path.name == s.name and s.label == 1 for s in local)
    assert {s.kind for s in select(samples, "train", ["real", "full"])} == {"real", "full"}
    train_b = training_selection(samples, "B", "train", tmp_path)
    assert [s.kind for s in train_b] == ["real", "real", "local", "local"]  # deterministic order
    assert all(s.kind == "local" for s in training_selection(samples, "C", "train", tmp_path))


def test_dolos_bad_generator_and_missing_split(tmp_path):
    _dolos(tmp_path)
    with pytest.raises(InputError, match="generator folder does not exist") as err:
        dolos_samples(tmp_path, "celebahq", full=["p3"], local=["repaint-p2"])
    assert "p2" in str(err.value) and "repaint-p2" in str(err.value)  # lists the folders that exist
    import shutil

    shutil.rmtree(tmp_path / "celebahq" / "real" / "valid")
    samples = dolos_samples(tmp_path, "celebahq", full=["p2"], local=["repaint-p2"])
    with pytest.raises(InputError, match="no real images in split 'valid'"):
        training_selection(samples, "A", "valid", tmp_path)


def test_fake_without_mask_fails_where_masks_are_needed(tmp_path):
    _dolos(tmp_path)
    (tmp_path / "celebahq/fake/repaint-p2/masks/train/00001.png").unlink()
    samples = dolos_samples(tmp_path, "celebahq", full=["p2"], local=["repaint-p2"])
    training_selection(samples, "B", "train", tmp_path)  # labels only: fine
    with pytest.raises(InputError, match=r"repaint-p2/images/train/00001.png: fake image has no mask"):
        training_selection(samples, "C", "train", tmp_path)


def test_folder_layout_with_and_without_split_folders(tmp_path):
    for i in range(30):
        _img(tmp_path / "real" / f"r{i:03d}.jpg")
        _img(tmp_path / "fake" / f"f{i:03d}.jpg")
        (tmp_path / "masks").mkdir(exist_ok=True)
        write_mask(tmp_path / "masks" / f"f{i:03d}.png", np.eye(16, dtype=bool))  # JPEG image, PNG mask
    samples = folder_samples(real=tmp_path / "real", local=tmp_path / "fake", masks=tmp_path / "masks")
    assert len(samples) == 60 and all(s.mask_path is not None for s in samples if s.kind == "local")
    splits = {s.split for s in samples}
    assert splits <= {"train", "valid", "test"} and "train" in splits
    again = folder_samples(real=tmp_path / "real", local=tmp_path / "fake", masks=tmp_path / "masks")
    assert [(s.id, s.split) for s in again] == [(s.id, s.split) for s in samples]  # stable hash split

    for split in ("train", "test"):
        _img(tmp_path / "split" / "real" / split / "a.png")
        _img(tmp_path / "split" / "fake" / split / "a.png")
    samples = folder_samples(real=tmp_path / "split" / "real", local=tmp_path / "split" / "fake")
    assert sorted((s.kind, s.split) for s in samples) == [("local", "test"), ("local", "train"),
                                                          ("real", "test"), ("real", "train")]
    with pytest.raises(InputError, match="real images folder does not exist"):
        folder_samples(real=tmp_path / "nope", local=None)


def test_manifest_csv_and_jsonl(tmp_path):
    _img(tmp_path / "a.png")
    _img(tmp_path / "b.png")
    write_mask(tmp_path / "b_mask.png", np.eye(16, dtype=bool))
    (tmp_path / "m.csv").write_text("path,label,mask,split,generator,source\n"
                                    "a.png,0,,train,,celeb\nb.png,1,b_mask.png,test,repaint,celeb\n")
    samples = manifest_samples(tmp_path / "m.csv")
    assert [(s.kind, s.split, s.generator) for s in samples] == [("real", "train", ""), ("local", "test", "repaint")]
    assert samples[1].mask_path == tmp_path / "b_mask.png"
    (tmp_path / "m.jsonl").write_text(json.dumps({"path": "a.png", "label": 1, "split": "valid"}) + "\n")
    assert manifest_samples(tmp_path / "m.jsonl")[0].kind == "full"

    (tmp_path / "bad.csv").write_text("path,label,split\na.png,2,train\n")
    with pytest.raises(InputError, match=r"bad.csv \(row 1\): label 2 is not 0 or 1"):
        manifest_samples(tmp_path / "bad.csv")
    (tmp_path / "nosplit.csv").write_text("path,label\na.png,0\n")
    with pytest.raises(InputError, match="lacks column"):
        manifest_samples(tmp_path / "nosplit.csv")
    (tmp_path / "dup.csv").write_text("path,label,split\na.png,0,train\na.png,0,test\n")
    with pytest.raises(InputError, match="listed more than once"):
        manifest_samples(tmp_path / "dup.csv")
