"""`weakloc generate` as a new user met it: shard numbering, dilation at small sizes, numeric options, hub ids
that are not cached, mediapipe's log lines, and what the reports say."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from diffusers_models import save_pipeline, tiny_unet
from weakloc.cli.generate import app
from weakloc.errors import ConfigError, InputError
from weakloc.generate.masks.faceparts import dilation_kernel
from weakloc.generate.writer import Report, Shard

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models run fastest on one thread


def invoke(*args: object, code: int = 0) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    if code == 2:  # one clear message, never a traceback
        assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    return result.output


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Five source photos and a 16-px pipeline trained (nominally) with 100 timesteps."""
    from skimage import data

    base = tmp_path_factory.mktemp("fixes")
    photo = data.astronaut()
    (base / "src").mkdir()
    for i in range(5):
        Image.fromarray(photo[40 * i: 40 * i + 120, 50 * i: 50 * i + 120]).save(base / "src" / f"s{i}.png")
    save_pipeline(base / "pixel", tiny_unet(16), num_train_timesteps=100)
    return base


def _masks(world: Path, out: Path, *extra: object, code: int = 0) -> str:
    return invoke("masks", world / "src", "--out", out, "--size", 16, "--kind", "ellipse", "--split", "test",
                  "--quiet", *extra, code=code)


# ------------------------------------------------------------------ 1. shards are numbered from 0


def test_shard_out_of_range_says_shards_are_numbered_from_zero():
    with pytest.raises(ConfigError) as err:
        Shard.parse("2/2")
    assert "numbered from 0" in str(err.value) and "use 0/2 and 1/2" in str(err.value)
    with pytest.raises(ConfigError, match="0/8, 1/8, ..., 7/8"):
        Shard.parse("8/8")
    with pytest.raises(ConfigError, match="at least 1"):
        Shard.parse("0/0")
    with pytest.raises(ConfigError, match="numbered from 0"):
        Shard.parse("1-2")


def test_a_shard_run_names_the_shards_still_to_run(world, tmp_path):
    second = _masks(world, tmp_path / "plan", "--shard", "1/2")
    assert "other shards pending: 0/2" in second and "numbered from 0" in second
    assert "complete" in _masks(world, tmp_path / "plan", "--shard", "0/2")
    out = _masks(world, tmp_path / "plan2", "--shard", "2/2", code=2)
    assert "use 0/2 and 1/2" in out


# ------------------------------------------------------------------ 2. dilation scales with the mask size


def test_dilation_kernel_scales_with_size():
    assert dilation_kernel(15, 256) == 15 and dilation_kernel(15, 512) == 30
    assert dilation_kernel(15, 64) == 4 and dilation_kernel(15, 128) == 8
    assert dilation_kernel(0, 64) == 1 and dilation_kernel(1, 16) == 1  # at least 1 px (= no dilation)


def _eye_annotations(root: Path, image_id: int) -> Path:
    """A CelebAMask-HQ-mask-anno tree with two 32x24-px eyes and a skin box at 512 px."""
    folder = root / "CelebAMask-HQ-mask-anno" / str(image_id // 2000)
    folder.mkdir(parents=True)
    for part, (x0, y0, x1, y1) in {"l_eye": (176, 200, 208, 224), "r_eye": (304, 200, 336, 224),
                                   "skin": (96, 96, 416, 448)}.items():
        array = np.zeros((512, 512), np.uint8)
        array[y0:y1, x0:x1] = 255
        Image.fromarray(array).save(folder / f"{image_id:05d}_{part}.png")
    return root / "CelebAMask-HQ-mask-anno"


def test_eye_masks_at_64_px_are_dilated_by_at_most_4_px(world, tmp_path):
    anno = _eye_annotations(tmp_path / "anno", 3)
    (tmp_path / "img").mkdir()
    Image.fromarray(np.asarray(Image.open(world / "src" / "s0.png"))).save(tmp_path / "img" / "3.png")
    invoke("masks", tmp_path / "img", "--out", tmp_path / "plan", "--size", 64, "--annotations", anno,
           "--attributes", "eyes", "--per-image", 24, "--split", "test", "--quiet")
    spec = json.loads((tmp_path / "plan" / "plan.json").read_text())
    assert spec["max_dilation"] == 15 and spec["max_dilation_px"] == 4
    rows = [json.loads(line) for line in (tmp_path / "plan" / "plan.jsonl").read_text().splitlines()]
    kernels = {row["dilation"] for row in rows}
    assert kernels <= {1, 2, 3, 4} and 4 in kernels  # drawn in 1..4, not 1..15
    eyes = 2 * 4 * 3 / 64 ** 2  # the two eyes at 64 px
    assert max(row["area"] for row in rows) < 4 * eyes  # a 15-px kernel covers 20x the eyes: half the face


# ------------------------------------------------------------------ 3. numeric options


@pytest.mark.parametrize("args, message", [
    (["--steps", 0], "--steps must be at least 1, not 0"),
    (["--jump-length", 0], "--jump-length must be at least 1"),
    (["--jump-n-sample", 0], "--jump-n-sample must be at least 1"),
    (["--batch-size", 0], "--batch-size must be at least 1"),
    (["--radius", 0], "--radius must be at least 1"),
    (["--patch-size", 0], "--patch-size must be at least 1"),
    (["--limit", 0], "--limit must be at least 1"),
    (["--eta", -0.5], "--eta must be between 0 and 1"),
    (["--eta", 1.5], "--eta must be between 0 and 1"),
])
def test_inpaint_numbers_are_checked_before_anything_loads(tmp_path, args, message):
    out = invoke("inpaint", "--plan", tmp_path / "no-plan", "--out", tmp_path / "d", "--generator", "repaint",
                 "--model", tmp_path / "no-model", *args, code=2)  # neither plan nor model is read first
    assert message in out


@pytest.mark.parametrize("command, args, message", [
    ("full", ["--cell", 0], "--cell must be at least 1"),
    ("full", ["--radius", 0], "--radius must be at least 1"),
    ("sample", ["--steps", 0], "--steps must be at least 1"),
    ("sample", ["--batch-size", 0], "--batch-size must be at least 1"),
    ("sample", ["--eta", -1], "--eta must be between 0 and 1"),
    ("sample", ["--count", "test=-1"], "N must be at least 0"),
    ("sample", ["--count", "test=lots"], "N must be a whole number"),
    ("masks", ["--size", 4], "--size must be at least 8, not 4"),
    ("masks", ["--per-image", 0], "--per-image must be at least 1"),
    ("masks", ["--limit", 0], "--limit must be at least 1"),
    ("masks", ["--max-dilation", -1], "--max-dilation must be at least 0"),
])
def test_numbers_of_the_other_commands_are_checked(tmp_path, command, args, message):
    common = {"full": ["--plan", tmp_path / "no-plan", "--out", tmp_path / "d", "--generator", "telea"],
              "sample": ["--out", tmp_path / "d", "--model", tmp_path / "no-model", "--name", "p2"],
              "masks": [tmp_path / "no-images", "--out", tmp_path / "p", "--kind", "ellipse"]}[command]
    if command == "sample" and args[0] != "--count":
        common += ["--count", "test=1"]
    assert message in invoke(command, *common, *args, code=2)


def test_steps_above_the_models_training_timesteps_are_refused(world, tmp_path):
    out = invoke("sample", "--out", tmp_path, "--model", world / "pixel", "--name", "p2", "--count", "test=1",
                 "--steps", 101, "--quiet", code=2)
    assert "--steps 101" in out and "100 timesteps" in out and "--steps 100 or fewer" in out
    _masks(world, tmp_path / "plan")
    out = invoke("inpaint", "--plan", tmp_path / "plan", "--out", tmp_path, "--generator", "repaint",
                 "--model", world / "pixel", "--steps", 200, "--quiet", code=2)
    assert "100 timesteps" in out
    assert not (tmp_path / "celebahq").exists()  # refused before writing anything


# ------------------------------------------------------------------ 4. hub ids: the local cache, offline


class NetworkUsed(BaseException):
    """Raised by any connection attempt (a BaseException: no `except Exception` may swallow it)."""


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, and sockets that fail the test if anything connects."""
    from huggingface_hub import constants

    def refuse(*args, **kwargs):
        raise NetworkUsed(f"network access: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_an_uncached_hub_id_fails_at_once_saying_how_to_download_it(offline_cache, tmp_path):
    from weakloc.generate.generators.loading import load_diffusion, load_unet

    started = time.perf_counter()
    with pytest.raises(InputError) as err:
        load_unet("someorg/ddpm-not-here")
    message = str(err.value)
    assert "not in the local Hugging Face cache" in message and str(offline_cache) in message
    assert "hf download someorg/ddpm-not-here" in message and "HF_HOME" in message and "local folder" in message
    with pytest.raises(InputError, match="hf download"):
        load_diffusion("someorg/ddpm-not-here", None, "cpu", "float32", latent=None)
    assert time.perf_counter() - started < 5  # no retries
    out = invoke("sample", "--out", tmp_path / "d", "--model", "someorg/ddpm-not-here", "--name", "p2",
                 "--count", "test=1", "--quiet", code=2)
    assert "hf download someorg/ddpm-not-here" in out


def test_a_cached_hub_id_loads_from_the_cache_offline(offline_cache):
    from weakloc.generate.generators.loading import has_autoencoder, load_unet, resolve_model

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = offline_cache / "models--someorg--tiny-ddpm"
    save_pipeline(repo / "snapshots" / commit, tiny_unet(16, seed=5), num_train_timesteps=100)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    assert resolve_model("someorg/tiny-ddpm") == str(repo / "snapshots" / commit)
    unet, config = load_unet("someorg/tiny-ddpm")
    assert config["num_train_timesteps"] == 100 and unet.config.sample_size == 16
    assert not has_autoencoder("someorg/tiny-ddpm")


# ------------------------------------------------------------------ 5. mediapipe's log lines


def test_quiet_stderr_silences_what_native_code_writes(capfd):
    from weakloc.generate.masks.landmarks import quiet_stderr

    with quiet_stderr():
        os.write(2, b"W0000 00:00:1.0 1 inference_feedback_manager.cc:114] chatter\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"  # silenced inside, restored after


def test_landmark_masks_write_nothing_to_stderr(world, tmp_path):
    pytest.importorskip("mediapipe", reason="face landmarks need the optional extra 'landmarks' (mediapipe)")
    from skimage import data

    (tmp_path / "img").mkdir()
    Image.fromarray(data.astronaut()[:300, 80:380]).save(tmp_path / "img" / "face.png")
    command = [sys.executable, "-m", "weakloc.cli", "generate", "masks", str(tmp_path / "img"), "--out",
               str(tmp_path / "plan"), "--size", "128", "--kind", "face", "--landmarks", "--split", "test", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no W0000 ... / INFO: ... lines
    assert "1 mask written for 1 image" in done.stdout


# ------------------------------------------------------------------ 6. what the reports say


def test_masks_report_counts_masks_and_images(world, tmp_path):
    out = _masks(world, tmp_path / "plan", "--per-image", 2)
    assert "10 masks written for 5 images, 0 images already there" in out and "complete" in out


def test_a_limited_run_says_it_is_partial(world, tmp_path):
    out = _masks(world, tmp_path / "plan", "--limit", 2)
    assert "partial: stopped at --limit 2 of 5" in out and "complete" not in out
    out = _masks(world, tmp_path / "plan", "--limit", 7)  # the limit cuts nothing: the plan is complete
    assert "3 masks written for 3 images, 2 images already there" in out and "complete, manifest" in out
    common = ["inpaint", "--plan", tmp_path / "plan", "--out", tmp_path / "d", "--generator", "telea", "--quiet"]
    out = invoke(*common, "--limit", 3)
    assert "partial: stopped at --limit 3 of 5" in out and "rerun without --limit" in out
    assert "2 written, 3 already there" in (out := invoke(*common)) and "complete, manifest" in out


def test_report_summary_wording():
    limited = Report(3, 3, 0, 3, 1.0, True, Path("m.jsonl"), available=10)
    assert limited.limited and "partial: stopped at --limit 3 of 10" in limited.summary()
    whole = Report(3, 3, 0, 3, 1.0, True, Path("m.jsonl"), available=3)
    assert not whole.limited and "complete, manifest m.jsonl" in whole.summary()


def test_resuming_with_another_batch_size_is_refused_with_the_difference(world, tmp_path):
    args = ["sample", "--out", tmp_path, "--model", world / "pixel", "--name", "p2", "--count", "test=2",
            "--steps", 2, "--quiet"]
    invoke(*args, "--batch-size", 2)
    generator = json.loads((tmp_path / "celebahq" / "fake" / "p2" / "generator.json").read_text())
    assert generator["batch_size"] == 2
    out = invoke(*args, "--batch-size", 1, code=2)
    assert "batch_size: 2 -> 1" in out and "rerun with the settings it was made with" in out
    assert "0 written, 2 already there" in invoke(*args, "--batch-size", 2)
