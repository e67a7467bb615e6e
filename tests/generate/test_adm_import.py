"""`weakloc generate import-adm`: guided-diffusion (ADM) checkpoints -> diffusers folders that compute what
openai's own UNetModel computes (noise and variance channels), that RePaint and sampling run on, with the
learned variance used as guided-diffusion uses it; unsafe, truncated or foreign files refused, the key named.

The oracle is openai's code (``guided-diffusion-sdk``, a test-only dependency; it needs ``blobfile``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import WritesAFile
from weakloc.cli import app
from weakloc.errors import ConfigError, InputError
from weakloc.generate.generators.adm import (AdmFlags, convert_state_dict, flags_for, import_adm, read_checkpoint,
                                             scheduler_config)

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")  # small networks: one thread is fastest on a shared machine
TIMESTEPS = torch.tensor([0, 37, 250, 999])
TOLERANCE = 1e-4

# two small architectures covering every branch of the mapping: ResBlock up/downsampling, scale-shift norm, learned
# variance, legacy (per-head) qkv, heads of a fixed width; and conv resampling, plain norm, no learned variance,
# the new qkv order, a fixed number of heads, attention at two levels
SMALL_LEARNED = dict(image_size=32, num_channels=32, num_res_blocks=1, channel_mult="1,2", attention_resolutions="16",
                     num_head_channels=16, resblock_updown=True, use_scale_shift_norm=True, learn_sigma=True)
SMALL_PLAIN = dict(image_size=32, num_channels=32, num_res_blocks=2, channel_mult="1,2,2",
                   attention_resolutions="16,8", num_heads=2, num_head_channels=-1, resblock_updown=False,
                   use_scale_shift_norm=False, learn_sigma=False, use_new_attention_order=True)


def gd_script():
    """openai's guided_diffusion.script_util; the tests that need it are skipped without the test extra."""
    return pytest.importorskip("guided_diffusion.script_util", reason="guided-diffusion-sdk is a test extra")


def gd_model(flags: AdmFlags, seed: int = 0) -> torch.nn.Module:
    """openai's UNetModel of ``flags`` with random weights of realistic scale (its zero-initialised output
    layers made non-zero, so every tensor reaches the output)."""
    model = gd_script().create_model(
        flags.image_size, flags.num_channels, flags.num_res_blocks, channel_mult=flags.channel_mult,
        learn_sigma=flags.learn_sigma, attention_resolutions=flags.attention_resolutions, num_heads=flags.num_heads,
        num_head_channels=flags.num_head_channels, num_heads_upsample=flags.num_heads_upsample,
        use_scale_shift_norm=flags.use_scale_shift_norm, resblock_updown=flags.resblock_updown,
        use_new_attention_order=flags.use_new_attention_order)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator)
            if p.dim() > 1:
                p.copy_(noise / math.sqrt(p[0].numel()))
            else:  # GroupNorm scales around 1, biases around 0
                p.copy_(noise * 0.1 + (1.0 if name.endswith("weight") else 0.0))
    return model.eval()


def invoke(*args: object, code: int = 0) -> str:
    result = runner.invoke(app, ["generate", "import-adm", *map(str, args)])
    assert result.exit_code == code, result.output
    if code:
        assert "Traceback" not in result.output
    return result.output


def custom_args(flags: dict) -> list[str]:
    out = []
    for key, value in flags.items():
        option = "--" + key.replace("_", "-")
        out += [option if value else "--no-" + option[2:]] if isinstance(value, bool) else [option, str(value)]
    return out


def assert_same_outputs(gd: torch.nn.Module, folder, size: int) -> dict[str, float]:
    """Both networks on the same noisy input at several timesteps; the max |difference| per half."""
    from weakloc.generate.generators.loading import load_unet

    unet, _ = load_unet(folder)
    x = torch.randn(len(TIMESTEPS), 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, theirs = unet(x, TIMESTEPS).sample, gd(x, TIMESTEPS)
    assert ours.shape == theirs.shape
    assert theirs.abs().mean() > 0.05  # a real output, not zeros
    diffs = {"noise": (ours[:, :3] - theirs[:, :3]).abs().max().item()}
    if ours.shape[1] == 6:
        diffs["variance"] = (ours[:, 3:] - theirs[:, 3:]).abs().max().item()
    assert max(diffs.values()) <= TOLERANCE, diffs
    # the timestep matters (the check is not blind to the time embedding)
    assert (theirs[0] - theirs[-1]).abs().max() > 100 * TOLERANCE
    return diffs


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The learned-variance small model: its file and the folder the CLI made of it."""
    base = tmp_path_factory.mktemp("adm")
    flags = flags_for("custom", SMALL_LEARNED)
    gd = gd_model(flags)
    torch.save(gd.state_dict(), base / "small.pt")
    invoke(base / "small.pt", "--config", "custom", "--out", base / "model", *custom_args(SMALL_LEARNED))
    return base, flags, gd


# ------------------------------------------------------------------ the conversion is exact


def test_small_learned_variance_model_computes_what_guided_diffusion_computes(small):
    base, flags, gd = small
    diffs = assert_same_outputs(gd, base / "model", flags.image_size)
    assert set(diffs) == {"noise", "variance"}
    card = json.loads((base / "model" / "card.json").read_text())
    assert card["source"]["file"] == "small.pt" and card["config"] == "custom"
    assert card["flags"]["num_head_channels"] == 16 and card["flags"]["resblock_updown"] is True
    assert "--num_channels 32" in card["guided_diffusion_flags"]
    assert card["parameters"] == sum(p.numel() for p in gd.parameters())
    assert (base / "model" / "diffusion_pytorch_model.safetensors").is_file()
    scheduler = json.loads((base / "model" / "scheduler_config.json").read_text())
    assert scheduler["variance_type"] == "learned_range" and scheduler["timestep_spacing"] == "linspace"


def test_conv_resampling_plain_norm_and_the_new_qkv_order_convert_exactly(tmp_path):
    flags = flags_for("custom", SMALL_PLAIN)
    gd = gd_model(flags, seed=4)
    torch.save(gd.state_dict(), tmp_path / "plain.pt")
    invoke(tmp_path / "plain.pt", "--config", "custom", "--out", tmp_path / "model", *custom_args(SMALL_PLAIN))
    assert set(assert_same_outputs(gd, tmp_path / "model", 32)) == {"noise"}
    scheduler = json.loads((tmp_path / "model" / "scheduler_config.json").read_text())
    assert scheduler["variance_type"] == "fixed_large"  # guided-diffusion's default without --learn_sigma


def test_the_qkv_order_matters():
    """The legacy order (per head) read as the new one (q, k, v blocks) gives another network: the rule is real."""
    flags = flags_for("custom", SMALL_LEARNED)
    state = gd_model(flags).state_dict()
    legacy = convert_state_dict(state, flags)
    new = convert_state_dict(state, flags_for("custom", {**SMALL_LEARNED, "use_new_attention_order": True}))
    key = "mid_block.attentions.0.to_k.weight"
    assert not torch.equal(legacy[key], new[key])


@pytest.mark.slow
def test_p2_architecture_converts_exactly(tmp_path):
    """The published P2 flags: 93.6M parameters, 362 tensors; outputs equal (at 64 px: the network is fully
    convolutional, and the mapping does not depend on the input size)."""
    flags = flags_for("p2-celebahq")
    gd = gd_model(flags, seed=2)
    state = gd.state_dict()
    assert len(state) == 362 and round(sum(p.numel() for p in gd.parameters()) / 1e6, 1) == 93.6
    torch.save(state, tmp_path / "celebahq_p2.pt")
    del state
    out = invoke(tmp_path / "celebahq_p2.pt", "--config", "p2-celebahq", "--out", tmp_path / "p2")
    assert "93.56M parameters" in out and "learned_range" in out
    assert set(assert_same_outputs(gd, tmp_path / "p2", 64)) == {"noise", "variance"}


# ------------------------------------------------------------------ the learned variance, as guided-diffusion uses it


def test_learned_variance_step_is_guided_diffusions_p_sample(small):
    """One DDPM step on the converted model (diffusers' learned_range on the imported grid) draws the sample
    guided-diffusion's respaced p_sample draws, for the same noise; dropping the variance would not."""
    from diffusers.utils.torch_utils import randn_tensor

    from weakloc.generate.generators.loading import load_unet
    from weakloc.generate.generators.tensors import posterior_scheduler, timestep_grid

    base, flags, gd = small
    unet, config = load_unet(base / "model")
    diffusion = gd_script().create_gaussian_diffusion(steps=1000, learn_sigma=True, noise_schedule="linear",
                                                    timestep_respacing="250")
    grid = timestep_grid(config, 250)
    assert grid == sorted(diffusion.timestep_map)  # the imported grid is guided-diffusion's respacing
    posterior = posterior_scheduler(config, 250)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))

    def draw(scheduler, out, t):
        return scheduler.step(out, t, x, generator=[torch.Generator().manual_seed(s) for s in (7, 8)]).prev_sample

    noise = randn_tensor(x.shape, generator=[torch.Generator().manual_seed(s) for s in (7, 8)])
    fixed = posterior_scheduler({**config, "variance_type": "fixed_small"}, 250)
    for index in (249, 60, 3):
        t = grid[index]
        with torch.no_grad():
            theirs = diffusion.p_mean_variance(gd, x, torch.tensor([index, index]), clip_denoised=True)
            out = unet(x, torch.tensor(t)).sample
        expected = theirs["mean"] + torch.exp(0.5 * theirs["log_variance"]) * noise
        assert (draw(posterior, out, t) - expected).abs().max() <= TOLERANCE
        # the undo of RePaint's jumps keeps what guided-diffusion's respaced beta keeps
        keep = posterior.alphas_cumprod[t] / posterior.alphas_cumprod[grid[index - 1]]
        assert keep.item() == pytest.approx(1 - diffusion.betas[index], rel=1e-5)
    # near the end of sampling the variance's bounds (beta~_t, beta_t) differ most: dropping it shows there
    assert (draw(fixed, out[:, :3], t) - expected).abs().max() > 10 * TOLERANCE


def test_repaint_and_sampling_run_on_the_converted_model(small):
    from weakloc.generate.generators import InpaintSettings, build_inpainter
    from weakloc.generate.generators.loading import load_diffusion
    from weakloc.generate.generators.sampling import DiffusionSampler

    base, flags, _ = small
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    masks = np.zeros((2, 32, 32), dtype=bool)
    masks[:, 8:24, 8:24] = True
    for precision, steps, jumps in (("fp32", 6, 2), ("bf16", 2, 1)):  # bf16 is emulated on most CPUs: short
        inpainter = build_inpainter("repaint", InpaintSettings(model=str(base / "model"), steps=steps, jump_length=2,
                                                               jump_n_sample=jumps, device="cpu", precision=precision))
        assert inpainter.settings()["variance"] == "learned_range"
        assert inpainter.settings()["timestep_grid"] == "linspace"
        out, truth = inpainter.inpaint(images, masks, [1, 2])
        assert out.shape == images.shape and np.array_equal(truth, masks)
        assert np.array_equal(out[~masks], images[~masks]) and not np.array_equal(out[masks], images[masks])
    unet, config, _, device = load_diffusion(str(base / "model"), None, "cpu", "float32", latent=None)
    sampler = DiffusionSampler(unet, config, "small", steps=3, device=device, precision="fp32")
    assert sampler.settings()["variance"] == "learned_range"
    assert sampler.generate([0, 1]).shape == (2, 32, 32, 3)


def test_inpaint_and_sample_commands_run_unchanged_on_an_imported_folder(small, tmp_path):
    base, _, _ = small
    (tmp_path / "src").mkdir()
    for i in range(2):
        Image.fromarray(np.full((40, 40, 3), 60 * i + 40, np.uint8)).save(tmp_path / "src" / f"s{i}.png")

    def generate(*args: object) -> str:
        result = runner.invoke(app, ["generate", *map(str, args)])
        assert result.exit_code == 0, result.output
        return result.output

    generate("masks", tmp_path / "src", "--out", tmp_path / "plan", "--size", 32, "--kind", "ellipse", "--split",
             "test", "--quiet")
    generate("inpaint", "--plan", tmp_path / "plan", "--out", tmp_path / "data", "--generator", "repaint", "--model",
             base / "model", "--steps", 4, "--jump-length", 2, "--jump-n-sample", 2, "--device", "cpu", "--quiet")
    generate("sample", "--model", base / "model", "--out", tmp_path / "data", "--name", "p2", "--count", "test=2",
             "--steps", 3, "--device", "cpu", "--quiet")
    assert len(list((tmp_path / "data/celebahq/fake/repaint/images/test").iterdir())) == 2
    assert len(list((tmp_path / "data/celebahq/fake/p2/test").iterdir())) == 2


# ------------------------------------------------------------------ bad input


def test_a_truncated_file_is_refused(tmp_path):
    torch.save({"time_embed.0.weight": torch.randn(512, 128)}, tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    out = invoke(tmp_path / "cut.pt", "--config", "p2-celebahq", "--out", tmp_path / "m", code=2)
    assert "truncated" in out and "cut.pt" in out and not (tmp_path / "m").exists()


def test_a_pickle_that_would_run_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"time_embed.0.weight": WritesAFile(marker)}, tmp_path / "evil.pt")
    with pytest.raises(InputError, match="never runs code") as err:
        read_checkpoint(tmp_path / "evil.pt")
    assert "evil.pt" in str(err.value) and not marker.exists()


@pytest.mark.parametrize("content,message", [
    ({"time_embed.0.weight": "weights", "time_embed.0.bias": torch.zeros(2)}, "holds a str, not a tensor"),
    ({"state": {}, "param_groups": []}, "holds a dict, not a tensor"),  # an optimizer state (opt*.pt)
    ([torch.zeros(2)], "holds a list, not a state dict"),
])
def test_plain_data_that_is_not_a_tensor_dict_is_refused(tmp_path, content, message):
    torch.save(content, tmp_path / "odd.pt")
    with pytest.raises(InputError, match=message):
        read_checkpoint(tmp_path / "odd.pt")


def test_another_architecture_names_the_first_mismatching_key_and_the_config(small, tmp_path):
    base, _, _ = small
    out = invoke(base / "small.pt", "--config", "p2-celebahq", "--out", tmp_path / "m", code=2)
    assert "--config p2-celebahq" in out and "--num_channels 128" in out
    assert "'time_embed.0.weight' has shape [128, 32], expected [512, 128]" in out
    assert not (tmp_path / "m").exists()
    # the same file under custom flags that differ in one place: the first differing tensor is named
    wrong = {**SMALL_LEARNED, "num_res_blocks": 2}
    out = invoke(base / "small.pt", "--config", "custom", "--out", tmp_path / "m", *custom_args(wrong), code=2)
    # (input_blocks.2 is a 32 -> 32 ResBlock in both: the file's downsampler where the flags expect a second block)
    assert "'input_blocks.3.0.in_layers.2.weight' has shape [64, 32, 3, 3], expected [32, 32, 3, 3]" in out
    assert "--num_res_blocks 2" in out


def test_missing_extra_and_class_conditional_tensors_are_named(small):
    _, flags, gd = small
    state = gd.state_dict()
    with pytest.raises(InputError, match=r"'out.2.bias' is missing \(expected shape \[6\]\)"):
        convert_state_dict({k: v for k, v in state.items() if k != "out.2.bias"}, flags)
    with pytest.raises(InputError, match=r"'label_emb.weight' is not a tensor of this architecture \(a class-cond"):
        convert_state_dict({**state, "label_emb.weight": torch.zeros(10, 128)}, flags)
    # a P2 file (shapes only: guided-diffusion's model built on the meta device) read as this config: named
    with torch.device("meta"):
        p2 = gd_script().create_model(256, 128, 1, learn_sigma=True, attention_resolutions="16",
                                      num_head_channels=64, resblock_updown=True,
                                      use_scale_shift_norm=True).state_dict()
    with pytest.raises(InputError, match="(?s)--config custom .*fix: it matches --config p2-celebahq / p2-ffhq"):
        convert_state_dict(p2, flags, config="custom")


def test_an_existing_folder_is_not_overwritten_and_flags_are_only_for_custom(tmp_path):
    torch.save({"time_embed.0.weight": torch.randn(4, 4)}, tmp_path / "some.pt")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    out = invoke(tmp_path / "some.pt", "--config", "p2-celebahq", "--out", tmp_path / "taken", code=2)
    assert "--overwrite" in out and (tmp_path / "taken" / "mine.txt").read_text() == "keep"
    with pytest.raises(ConfigError, match="--num-channels: architecture flags are for --config custom"):
        import_adm(tmp_path / "some.pt", tmp_path / "x", "p2-ffhq", {"num_channels": 64})
    with pytest.raises(ConfigError, match="--config must be one of p2-celebahq, p2-ffhq, repaint-celeba, custom"):
        flags_for("p2")


def test_published_configs_and_schedule():
    p2 = flags_for("p2-ffhq")
    assert (p2.num_channels, p2.num_res_blocks, p2.attention_resolutions, p2.num_head_channels) == (128, 1, "16", 64)
    assert p2.resblock_updown and p2.use_scale_shift_norm and p2.learn_sigma and p2.image_size == 256
    face = flags_for("repaint-celeba")  # RePaint's confs/face_example.yml
    assert (face.num_channels, face.num_res_blocks, face.attention_resolutions) == (256, 2, "32,16,8")
    config = scheduler_config(p2)
    assert (config["beta_start"], config["beta_end"], config["num_train_timesteps"]) == (1e-4, 0.02, 1000)
    cosine = scheduler_config(flags_for("custom", {**SMALL_PLAIN, "noise_schedule": "cosine", "diffusion_steps": 4000}))
    assert cosine["beta_schedule"] == "squaredcos_cap_v2" and cosine["num_train_timesteps"] == 4000
    with pytest.raises(ConfigError, match="different sizes"):  # guided-diffusion's defaults: 4 heads of 384 and 512
        flags_for("custom", {})


def test_a_learned_variance_schedule_needs_the_variance_channels(tmp_path):
    from diffusers import DDPMScheduler

    from diffusers_models import tiny_unet
    from weakloc.generate.generators.loading import load_unet

    tiny_unet(16).save_pretrained(tmp_path / "m")
    DDPMScheduler(variance_type="learned_range").save_pretrained(tmp_path / "m")
    with pytest.raises(InputError, match="outputs 3 channels, not the 6"):
        load_unet(tmp_path / "m")
