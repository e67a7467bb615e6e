"""Using a trained localizer: the Python API and `weakloc predict` on images of any size and format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import weakloc
from weakloc.cli import app
from weakloc.errors import InputError


@pytest.fixture(scope="module")
def mixed_folder(tiny_root, tmp_path_factory):
    """Images of several formats, modes and sizes, plus one broken file."""
    folder = tmp_path_factory.mktemp("mixed")
    base = Image.open(tiny_root / "builtin/photos-a/fake/repaint/images/test/test-00001.png").convert("RGB")
    base.resize((70, 50)).save(folder / "small.jpg", quality=92)
    base.resize((130, 97)).convert("L").save(folder / "gray.png")
    base.resize((64, 64)).convert("RGBA").save(folder / "alpha.webp")
    base.resize((40, 90)).save(folder / "tall.tiff")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder


def test_api_single_image_batch_and_sizes(trained_checkpoint, mixed_folder):
    detector = weakloc.load(trained_checkpoint, device="cpu")
    one = detector.predict(mixed_folder / "small.jpg")
    assert one.map.shape == (50, 70) and one.mask.shape == (50, 70) and one.mask.dtype == bool
    assert 0 <= one.map.min() and one.map.max() <= 1 and 0 <= one.score <= 1
    assert np.array_equal(one.mask, one.map > 0.5)
    assert one.model_map.shape == (6, 6) and one.score == pytest.approx(float(one.model_map.mean()), abs=1e-6)
    many = detector.predict([mixed_folder / "gray.png", mixed_folder / "tall.tiff", np.asarray(Image.open(
        mixed_folder / "small.jpg"))])
    assert [p.map.shape for p in many] == [(97, 130), (90, 40), (50, 70)]
    assert "converted L image to RGB" in many[0].notes[0]
    # an in-memory array gives the same answer as the file it came from
    assert many[2].score == pytest.approx(one.score, abs=1e-6) and np.allclose(many[2].map, one.map, atol=1e-6)
    with pytest.raises(InputError, match="broken.png"):
        detector.predict(mixed_folder / "broken.png")


def test_cli_predict_folder_agrees_with_api_and_reports_bad_files(trained_checkpoint, mixed_folder, tmp_path):
    result = CliRunner().invoke(app, ["predict", str(trained_checkpoint), str(mixed_folder), "--out",
                                      str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["images"]) == 4 and len(summary["errors"]) == 1
    assert "broken.png" in summary["errors"][0]["error"] and "broken.png" in result.output
    detector = weakloc.load(trained_checkpoint, device="cpu")
    for row in summary["images"]:
        expected = detector.predict(row["id"])
        assert row["score"] == pytest.approx(expected.score, abs=1e-6)
        heat = np.asarray(Image.open(tmp_path / "out" / row["heatmap"]))
        assert heat.shape == expected.map.shape == (row["height"], row["width"])
        assert np.abs(heat / 255.0 - expected.map).max() <= 0.5 / 255 + 1e-6
        mask = np.asarray(Image.open(tmp_path / "out" / row["mask"])) > 127
        assert np.array_equal(mask, expected.mask)
        assert Image.open(tmp_path / "out" / row["overlay"]).size == (row["width"], row["height"])
    with np.load(tmp_path / "out" / "predictions.npz") as f:
        assert sorted(f["ids"]) == sorted(r["id"] for r in summary["images"]) and f["maps"].shape[1:] == (6, 6)
    again = CliRunner().invoke(app, ["predict", str(trained_checkpoint), str(mixed_folder), "--out",
                                     str(tmp_path / "out")])
    assert again.exit_code == 2 and "already holds predictions" in again.output  # nothing overwritten silently


def test_cli_predict_empty_folder_and_pickle_checkpoint(trained_checkpoint, tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(app, ["predict", str(trained_checkpoint), str(tmp_path / "empty")])
    assert result.exit_code == 2 and "no image files found" in result.output
    import torch

    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    result = CliRunner().invoke(app, ["info", str(tmp_path / "model.pt")])
    assert result.exit_code == 2 and "not a weakloc checkpoint" in result.output and "pickled" in result.output


def test_predict_decodes_each_image_once_even_with_overlays(trained_checkpoint, mixed_folder, tmp_path,
                                                           monkeypatch):
    import weakloc.predict.detector as detector_module
    from weakloc.predict.folder import predict_to_folder

    reads: list[str] = []
    original = detector_module.read_rgb

    def counting(path, notes=None, max_pixels=None):
        reads.append(str(path))
        return original(path, notes, max_pixels)

    monkeypatch.setattr(detector_module, "read_rgb", counting)
    paths = sorted(p for p in mixed_folder.iterdir() if p.suffix != ".txt" and p.name != "broken.png")
    summary = predict_to_folder(weakloc.load(trained_checkpoint), [(str(p), p) for p in paths], tmp_path / "out",
                                progress=False)
    assert len(summary["images"]) == len(paths) and all(row.get("overlay") for row in summary["images"])
    assert sorted(reads) == sorted(str(p) for p in paths)  # one read per image, overlays included
