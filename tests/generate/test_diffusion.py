"""RePaint, RePaint-LDM and full-image sampling on tiny random diffusers models; loading from folders."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from diffusers_models import save_pipeline, tiny_kl, tiny_unet, tiny_vq
from weakloc.errors import InputError
from weakloc.generate.generators.loading import load_autoencoder, load_unet
from weakloc.generate.generators.repaint import (LatentRePaintInpainter, RePaintInpainter, repaint,
                                                 repaint_scheduler, repaint_unet_calls, undo_keep)
from weakloc.generate.generators.sampling import DiffusionSampler
from weakloc.generate.generators.tensors import latent_mask, mask_tensor, to_tensor, to_uint8, upsample_mask
from weakloc.generate.seeds import derive_seed, torch_generators

SCHEDULE = {"num_train_timesteps": 100}  # 100 training steps keep the re-noising loops short on CPU
FAST = dict(steps=10, jump_length=3, jump_n_sample=2)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models run fastest on one thread


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    masks = np.zeros((3, 16, 16), bool)
    masks[0, 4:12, 4:12] = True
    masks[1, :, :5] = True
    masks[2, 9:, 3:14] = True
    return images, masks


class CountingUNet(torch.nn.Module):
    """Stands in for a UNet: predicts zero noise and counts its calls and their timesteps."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.calls: list[int] = []

    def forward(self, x, t):
        self.calls.append(int(t))
        return type("Out", (), {"sample": torch.zeros_like(x)})()


def test_repaint_schedule_and_unet_call_count():
    unet = CountingUNet()
    known, fake = torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 8, 8)
    repaint(unet, SCHEDULE, known, fake, torch_generators([0]), steps=10, jump_length=3, jump_n_sample=3)
    # jumps start at steps 0, 3, 6; each goes back 3 steps twice more: 10 + 3 * 2 * 3 = 28 denoising steps
    assert len(unet.calls) == 28 == repaint_unet_calls(10, 3, 3, 100)
    assert unet.calls[0] == 90 and unet.calls[-1] == 0  # 100 training steps / 10 inference steps
    assert repaint_unet_calls(250, 10, 10) == 250 + 24 * 9 * 10  # RePaint's face setting: 2410 UNet calls
    assert repaint_unet_calls(50, 5, 1) == 50  # no resampling: plain DDPM length


def test_jumps_back_renoise_to_the_level_the_next_step_expects():
    scheduler = repaint_scheduler({"num_train_timesteps": 1000})
    scheduler.set_timesteps(10, 3, 2)  # n = 100 training steps per inference step
    alpha_bar = scheduler.alphas_cumprod
    # after the step at 500 the sample is at level 400; the next step (at 500) expects level 500
    assert undo_keep(scheduler, 500) == pytest.approx((alpha_bar[500] / alpha_bar[400]).item(), rel=1e-6)
    assert undo_keep(scheduler, 0) == pytest.approx(alpha_bar[0].item(), rel=1e-6)  # from clean to level 0
    # three jumps from level 100 reach level 400 exactly: the keeps chain
    chained = undo_keep(scheduler, 200) * undo_keep(scheduler, 300) * undo_keep(scheduler, 400)
    assert chained == pytest.approx((alpha_bar[400] / alpha_bar[100]).item(), rel=1e-5)


def test_repaint_keeps_the_known_region_exactly_and_fills_the_hole(batch):
    images, masks = batch
    inpainter = RePaintInpainter(tiny_unet(16), SCHEDULE, "tiny", **FAST)
    out, truth = inpainter.inpaint(images, masks, [11, 12, 13])
    assert out.dtype == np.uint8 and out.shape == images.shape
    assert np.array_equal(truth, masks)
    for i in range(3):
        assert np.array_equal(out[i][~masks[i]], images[i][~masks[i]])
        assert np.abs(out[i][masks[i]].astype(int) - images[i][masks[i]]).mean() > 10  # regenerated
    again, _ = inpainter.inpaint(images, masks, [11, 12, 13])
    assert np.array_equal(out, again)
    other, _ = inpainter.inpaint(images, masks, [11, 12, 99])
    assert np.array_equal(other[:2], out[:2]) and not np.array_equal(other[2], out[2])  # noise is per image


def test_repaint_result_does_not_depend_on_the_rest_of_the_batch(batch):
    images, masks = batch
    # fp32 pinned: bf16 kernels ("auto" on bf16 hardware) may round batches of other sizes more differently
    inpainter = RePaintInpainter(tiny_unet(16), SCHEDULE, "tiny", precision="fp32", **FAST)
    together, _ = inpainter.inpaint(images, masks, [1, 2, 3])
    alone, _ = inpainter.inpaint(images[1:2], masks[1:2], [2])
    # same noise draws; only float rounding of batched convolutions may differ
    assert np.abs(together[1].astype(int) - alone[0]).max() <= 1


def test_repaint_pastes_known_region_even_without_its_own_composite(batch):
    """Eq. 3 at every step: without paste-back the output outside the mask is already close to the input."""
    images, masks = batch
    known = to_tensor(images)
    x = repaint(tiny_unet(16), SCHEDULE, known, mask_tensor(masks), torch_generators([1, 2, 3]), **FAST)
    raw = to_uint8(x)
    for i in range(3):
        assert np.abs(raw[i][~masks[i]].astype(int) - images[i][~masks[i]]).max() <= 2


@pytest.mark.parametrize("make_vae", [tiny_vq, tiny_kl], ids=["vq", "kl"])
def test_latent_repaint_policies_and_their_truth_masks(batch, make_vae):
    images, masks = batch
    vae = make_vae()
    unet = tiny_unet(8, in_channels=vae.config.latent_channels)
    paste = LatentRePaintInpainter(unet, SCHEDULE, vae, "tiny", policy="paste", **FAST)
    out, truth = paste.inpaint(images, masks, [1, 2, 3])
    assert np.array_equal(truth, masks)
    for i in range(3):
        assert np.array_equal(out[i][~masks[i]], images[i][~masks[i]])
    decoded = LatentRePaintInpainter(unet, SCHEDULE, vae, "tiny", **FAST)  # the default: the paper's dec(x^)
    assert decoded.policy == "decoded"
    out2, truth2 = decoded.inpaint(images, masks, [1, 2, 3])
    assert np.array_equal(truth2, masks)  # the truth is the inpainting mask
    assert np.array_equal(out2[masks], out[masks])  # same latent run; only the outside differs
    assert np.any(out2[~masks] != images[~masks])  # the decoder changed pixels outside the mask too
    whole = LatentRePaintInpainter(unet, SCHEDULE, vae, "tiny", policy="decoded-whole", **FAST)
    out3, truth3 = whole.inpaint(images, masks, [1, 2, 3])
    assert truth3.all() and np.array_equal(out3, out2)  # every pixel comes from the decoder
    region = paste.inpainted_region(masks)
    assert region.shape == masks.shape and np.all(region[masks])  # whole latent cells cover the pixel mask


def test_latent_mask_is_max_pooled():
    fake = torch.zeros(1, 1, 8, 8)
    fake[0, 0, 3, 5] = 1
    small = latent_mask(fake, 4)
    assert small.shape == (1, 1, 2, 2) and small[0, 0].tolist() == [[0.0, 1.0], [0.0, 0.0]]
    assert upsample_mask(small, 4)[0, 0, :4, 4:].all()


def test_latent_policy_must_be_known():
    from weakloc.errors import ConfigError

    with pytest.raises(ConfigError, match="decoded, paste, decoded-whole"):
        LatentRePaintInpainter(tiny_unet(8), SCHEDULE, tiny_vq(), "tiny", policy="blend")


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_full_image_sampling_shapes_and_seeds(sampler):
    gen = DiffusionSampler(tiny_unet(16), SCHEDULE, "tiny", sampler=sampler, steps=4, precision="fp32")
    images = gen.generate([1, 2])
    assert images.shape == (2, 16, 16, 3) and images.dtype == np.uint8
    assert not np.array_equal(images[0], images[1]) and images.std() > 5
    assert np.array_equal(gen.generate([2])[0], images[1])


def test_latent_sampling_decodes_to_pixel_size():
    vae = tiny_vq()
    gen = DiffusionSampler(tiny_unet(8), SCHEDULE, "tiny", steps=3, autoencoder=vae)
    assert gen.size == 16
    assert gen.generate([5]).shape == (1, 16, 16, 3)


def test_models_load_from_pipeline_and_flat_folders(tmp_path):
    from diffusers import DDPMScheduler

    unet = tiny_unet(16, seed=3)
    save_pipeline(tmp_path / "pipe", unet, num_train_timesteps=100, beta_end=0.03)
    loaded, config = load_unet(tmp_path / "pipe")
    assert config["num_train_timesteps"] == 100 and config["beta_end"] == 0.03
    for (name, a), b in zip(unet.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    unet.save_pretrained(tmp_path / "flat")  # google/ddpm-* layout: config.json + scheduler_config.json at the top
    DDPMScheduler(num_train_timesteps=50).save_pretrained(tmp_path / "flat")
    _, flat_config = load_unet(tmp_path / "flat")
    assert flat_config["num_train_timesteps"] == 50
    bf16, _ = load_unet(tmp_path / "pipe", dtype=torch.bfloat16)
    assert next(bf16.parameters()).dtype == torch.bfloat16

    save_pipeline(tmp_path / "ldm", tiny_unet(8), autoencoder=tiny_vq(), scheduler="ddim", clip_sample=False)
    assert type(load_autoencoder(tmp_path / "ldm")).__name__ == "VQModel"
    save_pipeline(tmp_path / "kl", tiny_unet(8, in_channels=4), autoencoder=tiny_kl())
    assert type(load_autoencoder(tmp_path / "kl")).__name__ == "AutoencoderKL"


def test_bad_model_sources_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="model folder does not exist"):
        load_unet(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="cannot load the UNet2DModel"):
        load_unet(tmp_path / "empty")
    save_pipeline(tmp_path / "v", tiny_unet(16), prediction_type="v_prediction")
    with pytest.raises(InputError, match="'v_prediction'"):
        load_unet(tmp_path / "v")
    with pytest.raises(InputError, match="VQModel or AutoencoderKL"):
        load_autoencoder(tmp_path / "v")  # a pixel pipeline has no autoencoder
    index = json.loads((tmp_path / "v" / "model_index.json").read_text())
    assert "vqvae" not in index


def test_seeds_are_stable_and_distinct():
    assert derive_seed(0, "a") == derive_seed(0, "a") != derive_seed(0, "b") != derive_seed(1, "a")
    # the documented derivation (SHA-256 of the joined keys): seeds must not change between versions or machines
    expected = int.from_bytes(hashlib.sha256(b"0\x1fimg-1").digest()[:8], "little") >> 1
    assert derive_seed(0, "img-1") == expected
    assert 0 <= derive_seed(123, "x") < 2 ** 63
