"""The dataset writer: DOLOS layout read back by the loader, sharding identity, kill-and-resume identity, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from weakloc.data.images import read_mask
from weakloc.data.layouts import dolos_samples, manifest_samples
from weakloc.errors import ConfigError
from weakloc.cli.generate import app
from diffusers_models import save_pipeline, tiny_unet, tiny_vq
from weakloc.generate.writer import Shard

FAST = ["--steps", "10", "--jump-length", "3", "--jump-n-sample", "2"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models run fastest on one thread


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result.output


def tree(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Six source photos (two splits), a mask plan, a tiny pixel pipeline and a tiny latent pipeline."""
    from skimage import data

    base = tmp_path_factory.mktemp("gen")
    photo = data.astronaut()
    for split, names in (("train", ("a", "b", "c", "d")), ("test", ("e", "f"))):
        (base / "src" / split).mkdir(parents=True)
        for i, name in enumerate(names):
            crop = photo[40 * i: 40 * i + 120, 30 * len(name) + 50 * i: 30 * len(name) + 50 * i + 120]
            Image.fromarray(crop).save(base / "src" / split / f"{name}.jpg")
    invoke("masks", base / "src", "--out", base / "plan", "--size", 16, "--kind", "generic", "--per-image", 2,
           "--quiet")
    save_pipeline(base / "pixel", tiny_unet(16), num_train_timesteps=100)
    save_pipeline(base / "latent", tiny_unet(8), autoencoder=tiny_vq(), scheduler="ddim", num_train_timesteps=100,
                  clip_sample=False)
    return base


def test_written_dataset_reads_back_with_the_dolos_loader(world, tmp_path):
    out = tmp_path / "data"
    common = ["--plan", world / "plan", "--out", out, "--dataset", "faces", "--quiet"]
    invoke("real", *common)
    invoke("inpaint", *common, "--generator", "telea")
    invoke("inpaint", *common, "--generator", "repaint", "--name", "repaint-tiny", "--model", world / "pixel",
           *FAST, "--batch-size", 4)
    invoke("inpaint", *common, "--generator", "repaint-ldm", "--model", world / "latent", *FAST, "--batch-size", 4,
           "--policy", "paste")  # outside the mask: the source's pixels (the default, decoded, is tested elsewhere)
    invoke("full", *common, "--generator", "ns")
    invoke("sample", "--out", out, "--dataset", "faces", "--model", world / "pixel", "--name", "p2",
           "--count", "train=2,test=1", "--steps", 3, "--quiet")
    invoke("sample", "--out", out, "--dataset", "faces", "--model", world / "latent", "--name", "ldm-full",
           "--count", "test=1", "--steps", 3, "--quiet")  # a latent pipeline: sampled in latent space, decoded

    samples = dolos_samples(out, "faces", real="real", full=["p2", "ns-full", "ldm-full"],
                            local=["telea", "repaint-tiny", "repaint-ldm"])
    count = lambda **k: sum(all(getattr(s, a) == v for a, v in k.items()) for s in samples)  # noqa: E731
    assert count(kind="real", split="train") == 4 and count(kind="real", split="test") == 2
    assert count(kind="local", generator="telea", split="train") == 8 and count(kind="local", split="test") == 3 * 4
    assert count(kind="full", generator="p2") == 3 and count(kind="full", generator="ns-full") == 6
    assert count(kind="full", generator="ldm-full") == 1
    lines = (world / "plan" / "plan.jsonl").read_text().splitlines()
    plan_rows = {json.loads(line)["id"]: json.loads(line) for line in lines}
    for s in samples:
        image = Image.open(s.path)
        assert image.size == (16, 16) and image.mode == "RGB"
        if s.kind == "local":
            mask = read_mask(s.mask_path, expected_size=(16, 16))
            plan_mask = read_mask(world / "plan" / plan_rows[s.path.stem]["mask"])
            assert np.array_equal(mask, plan_mask)  # same masks for every generator
            real = np.asarray(Image.open(out / "faces" / "real" / s.split / f"{s.path.stem.rsplit('-', 1)[0]}.png"))
            assert np.array_equal(np.asarray(image)[~mask], real[~mask])  # only the mask was regenerated

    # manifests: rows with provenance; concatenated they form one loadable manifest of everything
    rows = [json.loads(line) for line in (out / "faces" / "manifest-repaint-tiny.jsonl").read_text().splitlines()]
    assert [Path(r["path"]).stem for r in rows] == list(plan_rows)  # the plan's order
    first = rows[0]
    assert first["settings"]["jump_n_sample"] == 2 and first["settings"]["unet_calls"] == 19
    assert first["source_image"].endswith("a.jpg") and first["mask_kind"] in ("strokes", "ellipse", "superpixels")
    assert isinstance(first["seed"], int)
    everything = b"".join(p.read_bytes() for p in sorted((out / "faces").glob("manifest-*.jsonl")))
    (out / "faces" / "manifest.jsonl").write_bytes(everything)
    from_manifest = manifest_samples(out / "faces" / "manifest.jsonl")
    assert sorted(s.path for s in from_manifest) == sorted(s.path for s in samples)
    assert not list(out.rglob(".weakloc"))  # work files are gone once a run is complete


def test_two_shards_write_exactly_what_one_run_writes(world, tmp_path):
    args = ["inpaint", "--plan", world / "plan", "--dataset", "faces", "--generator", "repaint",
            "--model", world / "pixel", *FAST, "--batch-size", 3, "--quiet"]
    invoke(*args, "--out", tmp_path / "one")
    first = invoke(*args, "--out", tmp_path / "two", "--shard", "0/2")
    assert "other shards pending" in first and not (tmp_path / "two" / "faces" / "manifest-repaint.jsonl").exists()
    invoke(*args, "--out", tmp_path / "two", "--shard", "1/2")
    one, two = tree(tmp_path / "one"), tree(tmp_path / "two")
    assert len([k for k in one if k.endswith(".png")]) == 24 and one == two

    invoke("masks", world / "src", "--out", tmp_path / "plan2", "--size", 16, "--kind", "generic", "--per-image", 2,
           "--shard", "1/2", "--quiet")
    invoke("masks", world / "src", "--out", tmp_path / "plan2", "--size", 16, "--kind", "generic", "--per-image", 2,
           "--shard", "0/2", "--quiet")
    assert tree(tmp_path / "plan2") == tree(world / "plan")


@pytest.mark.slow
def test_torchrun_ranks_take_their_shards(world, tmp_path):
    args = ["inpaint", "--plan", str(world / "plan"), "--dataset", "faces", "--generator", "ns", "--quiet"]
    invoke(*args, "--out", tmp_path / "one")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    launched = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                               "-m", "weakloc.cli", "generate", *args, "--out", str(tmp_path / "two")],
                              capture_output=True, text=True, timeout=300, env=env)
    assert launched.returncode == 0, launched.stderr
    assert launched.stdout.count("6 of 12 in this shard") == 2  # two ranks, half each
    assert tree(tmp_path / "two") == tree(tmp_path / "one")


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_bytes(world, tmp_path):
    args = ["inpaint", "--plan", str(world / "plan"), "--dataset", "faces", "--generator", "repaint",
            "--model", str(world / "pixel"), "--steps", "10", "--jump-length", "3", "--jump-n-sample", "3",
            "--batch-size", "1", "--quiet"]
    invoke(*args, "--out", tmp_path / "whole")
    command = [sys.executable, "-m", "weakloc.cli", "generate", *args, "--out", str(tmp_path / "killed")]
    images = tmp_path / "killed" / "faces" / "fake" / "repaint" / "images"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as the in-process run above (one_thread)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while not (images.is_dir() and any(images.rglob("[!.]*.png"))):  # a finished file, not a temporary one
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the run wrote nothing in 120 s"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written = len(list(images.rglob("[!.]*.png")))
    assert 0 < written < 12, "the kill must land mid-run"
    assert not (tmp_path / "killed" / "faces" / "manifest-repaint.jsonl").exists()
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{12 - written} written, {written} already there" in resumed.stdout
    assert tree(tmp_path / "killed") == tree(tmp_path / "whole")


def test_rerun_fills_gaps_and_refuses_other_settings(world, tmp_path):
    args = ["inpaint", "--plan", world / "plan", "--out", tmp_path, "--dataset", "faces", "--generator", "biharmonic",
            "--quiet"]
    invoke(*args)
    before = tree(tmp_path)
    (tmp_path / "faces" / "fake" / "biharmonic" / "images" / "train" / "b-1.png").unlink()
    (tmp_path / "faces" / "fake" / "biharmonic" / "masks" / "test" / "e-0.png").unlink()
    stale = tmp_path / "faces" / "fake" / "biharmonic" / "images" / "train" / ".c-0.png.abcd1234.tmp.png"
    stale.write_bytes(b"half a png")  # what a kill during a write leaves behind
    assert "2 written, 10 already there" in invoke(*args)
    assert tree(tmp_path) == before and not stale.exists()
    refused = invoke(*args[:-1], "--radius", "3", "--generator", "telea", "--name", "biharmonic", code=2)
    assert "other settings" in refused and "--name" in refused
    # only what differs, old -> new (not the two whole settings dictionaries)
    assert "settings.inpainter: 'biharmonic' -> 'telea'" in refused and "settings.radius: (unset) -> 3" in refused
    assert "plan" not in refused.split("other settings", 1)[1]


def test_bad_inputs_are_clear_errors(world, tmp_path):
    import shutil

    plan = tmp_path / "plan"
    shutil.copytree(world / "plan", plan)
    wrong = plan / "masks" / "train" / "a-0.png"
    Image.new("RGB", (20, 16), "white").save(wrong)
    out = invoke("inpaint", "--plan", plan, "--out", tmp_path / "d", "--generator", "telea", "--quiet", code=2)
    assert "a-0.png" in out and "20x16" in out

    broken = tmp_path / "src" / "test"
    broken.mkdir(parents=True)
    (broken / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = invoke("masks", tmp_path / "src", "--out", tmp_path / "p", "--size", 16, "--kind", "ellipse", "--quiet",
                 code=2)
    assert "x.png" in out and "image" in out

    out = invoke("masks", tmp_path / "nowhere", "--out", tmp_path / "p2", "--kind", "ellipse", code=2)
    assert "nowhere" in out and "does not exist" in out
    out = invoke("inpaint", "--plan", world / "plan", "--out", tmp_path / "d", "--generator", "repaint", code=2)
    assert "--model" in out
    out = invoke("inpaint", "--plan", tmp_path / "p", "--out", tmp_path / "d", "--generator", "telea", code=2)
    assert "plan" in out
    out = invoke("inpaint", "--plan", world / "plan", "--out", tmp_path / "d", "--generator", "repaint-ldm",
                 "--model", world / "pixel", code=2)  # a pixel pipeline has no autoencoder
    assert "cannot load the autoencoder" in out and "pixel" in out
    out = invoke("inpaint", "--plan", world / "plan", "--out", tmp_path / "d", "--generator", "repaint",
                 "--model", world / "latent", code=2)
    assert "latent diffusion model" in out and "repaint-ldm" in out


def test_shards_come_from_the_option_or_torchrun(monkeypatch):
    assert Shard.parse("1/4") == Shard(1, 4)
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert Shard.parse(None) == Shard(2, 3)
    assert Shard.parse("0/2") == Shard(0, 2)  # the option wins
    for bad in ("4/4", "1-2", "a/b"):
        with pytest.raises(ConfigError):
            Shard.parse(bad)
