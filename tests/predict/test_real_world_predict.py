"""`weakloc predict` and the API on real-world files: a bomb is one error and the others go on, files skipped for
their extension are named, EXIF-rotated photos come out upright, GIFs give their first frame; native-resolution
tiles; bf16 agrees with fp32."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import weakloc
from weakloc.cli import app
from weakloc.data.samples import select

from conftest import claim_size


@pytest.fixture(scope="module")
def odd_folder(tiny_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd")
    base = Image.open(tiny_root / "builtin/photos-a/fake/repaint/images/test/test-00001.png").convert("RGB")
    base.resize((90, 60)).save(folder / "plain.png")
    Image.new("L", (16, 16)).save(folder / "bomb.png")
    claim_size(folder / "bomb.png", 60000, 60000)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 90x60, shown 60x90
    base.resize((90, 60)).save(folder / "phone.jpg", exif=exif, quality=95)
    frames = [base.resize((50, 40)), Image.new("RGB", (50, 40), (0, 0, 255))]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=40)
    (folder / "notes.txt").write_text("not a picture")
    (folder / "photo.heic").write_bytes(b"\x00" * 32)
    return folder


def test_predict_folder_of_real_world_files(trained_checkpoint, odd_folder, tmp_path):
    result = CliRunner().invoke(app, ["predict", str(trained_checkpoint), str(odd_folder), "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    rows = {r["id"].rsplit("/", 1)[-1]: r for r in summary["images"]}
    assert set(rows) == {"plain.png", "phone.jpg", "anim.gif"}
    assert len(summary["errors"]) == 1 and "bomb.png" in summary["errors"][0]["error"]
    assert "60000x60000" in summary["errors"][0]["error"] and "--max-pixels" in summary["errors"][0]["error"]
    assert sorted(p.rsplit("/", 1)[-1] for p in summary["skipped"]) == ["notes.txt", "photo.heic"]
    assert "2 file(s) skipped for their extension" in result.output and "notes.txt" in result.output
    phone = rows["phone.jpg"]
    assert (phone["width"], phone["height"]) == (60, 90) and "EXIF orientation" in phone["notes"]
    assert Image.open(tmp_path / "out" / phone["overlay"]).size == (60, 90)  # upright, as viewers show it
    assert "first frame" in rows["anim.gif"]["notes"]


def test_native_scale_tiles_large_images_and_resizes_small_ones(trained_checkpoint, tiny_root, tmp_path):
    detector = weakloc.load(trained_checkpoint, device="cpu", precision="fp32", scale="native")
    size = detector.card["input_size"]
    base = Image.open(tiny_root / "builtin/photos-a/fake/repaint/images/test/test-00002.png").convert("RGB")
    big = base.resize((size * 3 + 5, size * 2 + 3), Image.BICUBIC)
    result = detector.predict(big)
    assert result.map.shape == (big.height, big.width)
    assert result.model_map.shape[1] > detector.model.map_size(size)  # a stitched map, wider than one tile's
    assert any("tiles of" in n for n in result.notes)
    assert result.score == pytest.approx(float(result.model_map.mean()), abs=1e-6)  # Patches: the map's mean
    small = detector.predict(base.resize((size - 8, size - 8)))
    assert any("resized" in n for n in small.notes) and small.model_map.shape == (detector.model.map_size(size),) * 2
    resized = weakloc.load(trained_checkpoint, device="cpu", precision="fp32").predict(big)
    assert resized.model_map.shape == small.model_map.shape and not any("tiles" in n for n in resized.notes)
    big.save(tmp_path / "big.png")
    base.save(tmp_path / "base.png")
    out = CliRunner().invoke(app, ["predict", str(trained_checkpoint), str(tmp_path / "big.png"),
                                   str(tmp_path / "base.png"), "--scale", "native", "--out", str(tmp_path / "o")])
    assert out.exit_code == 0, out.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["scale"] == "native" and "heatmaps/ folder" in summary["note"]
    assert not (tmp_path / "o" / "predictions.npz").exists()
    bad = CliRunner().invoke(app, ["predict", str(trained_checkpoint), str(tmp_path / "big.png"), "--scale", "huge",
                                   "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--scale" in bad.output and "resize, native" in bad.output


def test_bf16_maps_and_verdicts_agree_with_fp32_on_the_builtin_test_split(trained_checkpoint, tiny_data):
    _, samples = tiny_data
    paths = [s.path for s in select(samples, "test", ["real", "local"])]
    fp32 = weakloc.load(trained_checkpoint, device="cpu", precision="fp32").predict(paths)
    bf16 = weakloc.load(trained_checkpoint, device="cpu", precision="bf16").predict(paths)
    assert len(paths) >= 16
    worst = max(float(np.abs(a.map - b.map).max()) for a, b in zip(fp32, bf16))
    agree = np.mean([a.is_fake == b.is_fake for a, b in zip(fp32, bf16)])
    assert worst <= 1e-2 and agree >= 0.99, (worst, agree)
