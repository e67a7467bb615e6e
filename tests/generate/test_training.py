"""Training diffusion models (weakloc generate train-ddpm / train-latent): the folder loads into the generators,
a killed run resumes to the same end state, settings changes are refused, bad settings are clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from weakloc.cli.generate import app
from weakloc.errors import ConfigError, InputError
from weakloc.generate.training import DiffusionTrainConfig, LatentTrainConfig, train_ddpm, train_latent

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(size=16, channels=(8, 16), layers_per_block=1, batch_size=4, warmup=2, checkpoint_every=2,
            sample_steps=3, precision="fp32", device="cpu")


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("train-images")
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (24 + 4 * i, 30, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


class Interrupt(Exception):
    pass


def stop_at(step: int):
    def hook(current: int) -> None:
        if current == step:
            raise Interrupt
    return hook


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "diffusion_pytorch_model.safetensors")


def test_ddpm_folder_loads_into_repaint_and_sampling(images, tmp_path):
    from weakloc.generate.generators import InpaintSettings, build_inpainter
    from weakloc.generate.generators.loading import load_diffusion
    from weakloc.generate.generators.sampling import DiffusionSampler

    out = train_ddpm(images, tmp_path / "ddpm", DiffusionTrainConfig(steps=4, **TINY), progress=False)
    card = json.loads((out / "card.json").read_text())
    assert card["kind"] == "ddpm" and card["step"] == 4 and card["complete"] and card["data"]["images"] == 3
    assert card["final_loss"] > 0 and card["parameters"]["unet"] > 0 and card["weights"] == "EMA"
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert Image.open(out / "samples.png").size[0] > 16
    unet, config, autoencoder, _ = load_diffusion(str(out), None, "cpu", "float32", latent=None)
    assert autoencoder is None and config["num_train_timesteps"] == 1000 and unet.config.sample_size == 16
    sampler = DiffusionSampler(unet, config, str(out), sampler="ddpm", steps=3)
    assert sampler.generate([1, 2]).shape == (2, 16, 16, 3)
    inpainter = build_inpainter("repaint", InpaintSettings(model=str(out), steps=4, jump_length=2, jump_n_sample=2,
                                                           device="cpu"))
    source = np.full((1, 16, 16, 3), 128, np.uint8)
    mask = np.zeros((1, 16, 16), bool)
    mask[:, 4:10, 4:10] = True
    fake, truth = inpainter.inpaint(source, mask, [0])
    assert np.array_equal(fake[~mask], source[~mask]) and np.array_equal(truth, mask)


def test_killed_ddpm_run_resumes_to_the_same_end_state(images, tmp_path):
    straight = train_ddpm(images, tmp_path / "straight", DiffusionTrainConfig(steps=6, **TINY), progress=False)
    with pytest.raises(Interrupt):
        train_ddpm(images, tmp_path / "killed", DiffusionTrainConfig(steps=6, **TINY), progress=False,
                   on_step=stop_at(3))
    assert json.loads((tmp_path / "killed" / "card.json").read_text())["step"] == 2  # the last checkpoint
    resumed = train_ddpm(images, tmp_path / "killed", DiffusionTrainConfig(steps=6, **TINY), progress=False)
    a, b = weights(straight / "unet"), weights(resumed / "unet")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    sa = torch.load(straight / "checkpoint" / "unet.pt", weights_only=True)
    sb = torch.load(resumed / "checkpoint" / "unet.pt", weights_only=True)
    assert torch.equal(sa["losses"], sb["losses"]) and sa["step"] == sb["step"] == 6
    # raising the steps continues the run; other settings are refused with what changed
    longer = train_ddpm(images, tmp_path / "killed", DiffusionTrainConfig(steps=8, **TINY), progress=False)
    assert json.loads((longer / "card.json").read_text())["step"] == 8
    with pytest.raises(ConfigError, match=r"settings.lr: 0.0002 -> 0.001"):
        train_ddpm(images, tmp_path / "killed", DiffusionTrainConfig(steps=8, **{**TINY, "lr": 1e-3}), progress=False)


def test_latent_folder_loads_into_repaint_ldm(images, tmp_path):
    from weakloc.generate.generators import InpaintSettings, build_inpainter

    config = LatentTrainConfig(steps=2, ae_steps=3, ae_channels=(8, 16), latent_channels=3, **TINY)
    out = train_latent(images, tmp_path / "ldm", config, progress=False)
    card = json.loads((out / "card.json").read_text())
    assert card["kind"] == "latent" and card["latent_factor"] == 2 and card["scaling_factor"] > 0
    assert card["reconstruction_error"] >= 0 and card["complete"]
    assert json.loads((out / "model_index.json").read_text())["vae"] == ["diffusers", "AutoencoderKL"]
    inpainter = build_inpainter("repaint-ldm", InpaintSettings(model=str(out), steps=4, jump_length=2,
                                                               jump_n_sample=1, policy="paste", device="cpu"))
    source = np.full((2, 32, 32, 3), 90, np.uint8)
    mask = np.zeros((2, 32, 32), bool)
    mask[:, 8:20, 8:20] = True
    fake, _ = inpainter.inpaint(source, mask, [0, 1])
    assert fake.shape == source.shape and np.array_equal(fake[~mask], source[~mask])


def test_vq_autoencoder_trains(images, tmp_path):
    config = LatentTrainConfig(steps=1, ae_steps=2, autoencoder="vq", ae_channels=(8, 16), latent_channels=3,
                               num_vq_embeddings=16, **TINY)
    out = train_latent(images, tmp_path / "vq", config, progress=False)
    assert json.loads((out / "model_index.json").read_text())["vqvae"] == ["diffusers", "VQModel"]


def test_a_folder_that_is_not_a_training_run_is_never_overwritten(images, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a weakloc diffusion training folder"):
        train_ddpm(images, out, DiffusionTrainConfig(steps=1, **TINY), progress=False)
    assert (out / "precious.txt").read_text() == "keep me"


def test_bad_inputs_and_settings_are_clear_errors(images, tmp_path):
    runner = CliRunner()
    for option, value, message in (("--steps", "0", "--steps must be at least 1"),
                                   ("--batch-size", "0", "--batch-size must be at least 1"),
                                   ("--lr", "-1", "--lr must be positive"),
                                   ("--channels", "8,x", "--channels takes comma-separated integers"),
                                   ("--size", "18", "--size 18 must be a multiple of 4"),
                                   ("--precision", "half", "--precision must be auto, bf16 or fp32")):
        result = runner.invoke(app, ["train-ddpm", str(images), "--out", str(tmp_path / "x"), "--channels", "8,16,16",
                                     "--steps", "1", option, value, "--quiet"])
        assert result.exit_code == 2, (option, result.output)
        assert message in result.output, (option, result.output)
    result = runner.invoke(app, ["train-ddpm", str(tmp_path / "missing"), "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "is not a folder" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no image files"):
        train_ddpm(empty, tmp_path / "z", DiffusionTrainConfig(steps=1, **TINY), progress=False)
    result = runner.invoke(app, ["train-latent", str(images), "--out", str(tmp_path / "w"), "--autoencoder", "gan"])
    assert result.exit_code == 2 and "--autoencoder must be kl or vq" in result.output


def test_cpu_and_gpu_presets_fill_unset_settings():
    from weakloc.generate.training.config import fill_defaults

    cpu, gpu = fill_defaults(DiffusionTrainConfig(), "cpu"), fill_defaults(DiffusionTrainConfig(), "cuda")
    assert cpu.channels == (32, 64, 128) and cpu.batch_size == 32 and gpu.batch_size == 128
    assert fill_defaults(DiffusionTrainConfig(batch_size=7), "cuda").batch_size == 7
