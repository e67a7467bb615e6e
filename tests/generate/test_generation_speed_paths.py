"""The generators' speed paths: ``precision`` (fp32 | bf16 | auto) and the leaner sampling loops.

fp32 must give exactly what the loops gave before precision existed: the reference below is weakloc's code as
it was then (commit 3e3c2a3: the scheduler stepped on device tensors, ``int(t)`` per step, no autocast), kept
here verbatim and run on the same tiny seeded models, so the comparison is bit for bit on any machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffusers_models import tiny_kl, tiny_unet, tiny_vq
from weakloc.errors import ConfigError
from weakloc.generate.generators import InpaintSettings
from weakloc.generate.generators.repaint import LatentRePaintInpainter, RePaintInpainter, repaint, repaint_scheduler
from weakloc.generate.generators.sampling import DiffusionSampler, sample
from weakloc.generate.generators.tensors import (epsilon, filtered_config, forward_dtype, latent_factor, latent_mask,
                                                 latent_scaling, mask_tensor, to_tensor, to_uint8)
from weakloc.generate.seeds import torch_generators

SCHEDULE = {"num_train_timesteps": 100}
FAST = dict(steps=10, jump_length=3, jump_n_sample=2)

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the reference: the loops as they were (do not "improve" these) -------------------------------------------

def _old_epsilon(unet, x, t, keep_variance=False):
    dtype = next(unet.parameters()).dtype
    out = unet(x.to(dtype), t.to(x.device)).sample.float()
    if out.shape[1] == 2 * x.shape[1] and not keep_variance:
        out = out[:, : x.shape[1]]
    return out


@torch.inference_mode()
def _old_repaint(unet, scheduler_config, known, fake, generators, *, steps, jump_length, jump_n_sample, eta=1.0,
                 clip_sample=None):
    from diffusers.utils.torch_utils import randn_tensor

    scheduler = repaint_scheduler(scheduler_config, eta=eta, clip_sample=clip_sample)
    scheduler.set_timesteps(steps, jump_length, jump_n_sample, device=known.device)
    generators = list(generators)
    keep = 1.0 - fake
    x = randn_tensor(known.shape, generator=generators, device=known.device, dtype=torch.float32)
    t_last = scheduler.timesteps[0] + 1
    for t in scheduler.timesteps:
        if t < t_last:
            eps = _old_epsilon(unet, x, t)
            x = scheduler.step(eps, int(t), x, known, keep, generator=generators).prev_sample
        else:
            last = int(t_last)
            n = scheduler.config.num_train_timesteps // scheduler.num_inference_steps
            before = scheduler.alphas_cumprod[last - n].item() if last - n >= 0 else 1.0
            undo = scheduler.alphas_cumprod[last].item() / before
            noise = randn_tensor(x.shape, generator=generators, device=x.device, dtype=x.dtype)
            x = undo ** 0.5 * x + (1.0 - undo) ** 0.5 * noise
        t_last = t
    return x


@torch.inference_mode()
def _old_sample(unet, scheduler_config, shape, generators, *, sampler, steps, eta=0.0, clip_sample=None):
    from diffusers import DDIMScheduler, DDPMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    cls = DDPMScheduler if sampler == "ddpm" else DDIMScheduler
    scheduler = cls(**filtered_config(cls, scheduler_config, clip_sample=clip_sample))
    scheduler.set_timesteps(steps, device="cpu")
    generators = list(generators)
    x = randn_tensor(tuple(shape), generator=generators, device=torch.device("cpu"), dtype=torch.float32)
    x = x * scheduler.init_noise_sigma
    learned = str(scheduler.config.get("variance_type", "")).startswith("learned")
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, t)
        if sampler == "ddpm":
            out = _old_epsilon(unet, model_input, t, keep_variance=learned)
            x = scheduler.step(out, t, x, generator=generators).prev_sample
        else:
            out = _old_epsilon(unet, model_input, t)
            x = scheduler.step(out, t, x, eta=eta, generator=generators).prev_sample
    return x


@torch.inference_mode()
def _old_encode(autoencoder, x):
    scale, shift = latent_scaling(autoencoder)
    out = autoencoder.encode(x.to(next(autoencoder.parameters()).dtype))
    z = out.latents if hasattr(out, "latents") else out.latent_dist.mode()
    return (z.float() - shift) * scale


@torch.inference_mode()
def _old_decode(autoencoder, z):
    scale, shift = latent_scaling(autoencoder)
    return autoencoder.decode((z / scale + shift).to(next(autoencoder.parameters()).dtype)).sample.float()


# --- fixtures --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
    masks = np.zeros((3, 16, 16), bool)
    masks[0, 4:12, 4:12] = True
    masks[1, :, :5] = True
    masks[2, 9:, 3:14] = True
    return images, masks


# --- fp32: bit for bit -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [dict(FAST), dict(steps=8, jump_length=2, jump_n_sample=3, eta=0.5,
                                                      clip_sample=False)], ids=["repaint", "eta-noclip"])
def test_fp32_repaint_is_bit_identical_to_the_reference(batch, options):
    images, masks = batch
    unet = tiny_unet(16, attention=True)
    known, fake = to_tensor(images), mask_tensor(masks)
    expected = _old_repaint(unet, SCHEDULE, known, fake, torch_generators([1, 2, 3]), **options)
    got = repaint(unet, SCHEDULE, known, fake, torch_generators([1, 2, 3]), precision="fp32", **options)
    assert got.dtype == torch.float32 and torch.equal(got, expected)


def test_fp32_inpainters_are_bit_identical_to_the_reference(batch):
    images, masks = batch
    unet = tiny_unet(16)
    out, _ = RePaintInpainter(unet, SCHEDULE, "tiny", precision="fp32", **FAST).inpaint(images, masks, [11, 12, 13])
    x = _old_repaint(unet, SCHEDULE, to_tensor(images), mask_tensor(masks), torch_generators([11, 12, 13]), **FAST)
    assert np.array_equal(out, np.where(masks[..., None], to_uint8(x), images))
    for vae in (tiny_vq(), tiny_kl()):
        latent_unet = tiny_unet(8, in_channels=vae.config.latent_channels)
        inpainter = LatentRePaintInpainter(latent_unet, SCHEDULE, vae, "tiny", policy="decoded", precision="fp32",
                                           **FAST)
        out, _ = inpainter.inpaint(images, masks, [1, 2, 3])
        z = _old_encode(vae, to_tensor(images))
        fake = latent_mask(mask_tensor(masks), latent_factor(vae))
        z = _old_repaint(latent_unet, SCHEDULE, z, fake, torch_generators([1, 2, 3]), clip_sample=False, **FAST)
        assert np.array_equal(out, to_uint8(_old_decode(vae, z))), type(vae).__name__


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_fp32_sampling_is_bit_identical_to_the_reference(sampler):
    unet = tiny_unet(16)
    expected = _old_sample(unet, SCHEDULE, (2, 3, 16, 16), torch_generators([1, 2]), sampler=sampler, steps=4,
                           eta=0.5)
    got = sample(unet, SCHEDULE, (2, 3, 16, 16), torch_generators([1, 2]), sampler=sampler, steps=4, eta=0.5,
                 precision="fp32")
    assert torch.equal(got, expected)
    vae = tiny_vq()
    latent = DiffusionSampler(tiny_unet(8), SCHEDULE, "tiny", sampler=sampler, steps=3, autoencoder=vae,
                              precision="fp32")
    z = _old_sample(latent.unet, SCHEDULE, (1, 3, 8, 8), torch_generators([5]), sampler=sampler, steps=3,
                    clip_sample=False)
    assert np.array_equal(latent.generate([5]), to_uint8(_old_decode(vae, z)))


def test_fp32_settings_are_unchanged_so_older_folders_still_match():
    """No ``precision`` key in fp32: a folder made before precision existed is continued, not refused."""
    inpainter = RePaintInpainter(tiny_unet(16), SCHEDULE, "tiny", precision="fp32", **FAST)
    assert "precision" not in inpainter.settings()
    assert "precision" not in DiffusionSampler(tiny_unet(16), SCHEDULE, "tiny", precision="fp32").settings()


# --- bf16: runs, finite, close to fp32 -------------------------------------------------------------------------

def test_bf16_forward_pass_returns_contiguous_fp32():
    unet = tiny_unet(16, attention=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.inference_mode():
        eps = epsilon(unet, x, torch.tensor(50), amp=torch.bfloat16)
        ref = epsilon(unet, x, torch.tensor(50))
    assert eps.dtype == torch.float32 and eps.is_contiguous()
    assert not torch.equal(eps, ref)  # autocast did run in bf16
    assert (eps - ref).abs().max() < 0.1 * ref.abs().max()


def test_bf16_repaint_runs_finite_and_close_to_fp32(batch):
    images, masks = batch
    unet = tiny_unet(16, attention=True)
    known, fake = to_tensor(images), mask_tensor(masks)
    fp32 = repaint(unet, SCHEDULE, known, fake, torch_generators([1, 2, 3]), precision="fp32", **FAST)
    bf16 = repaint(unet, SCHEDULE, known, fake, torch_generators([1, 2, 3]), precision="bf16", **FAST)
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16).all()
    assert not torch.equal(bf16, fp32)
    assert (bf16 - fp32).abs().mean() < 0.05 and (bf16 - fp32).abs().max() < 0.5  # same noise, bf16 rounding
    # the function leaves the module as it was: fp32 afterwards is still the reference
    again = repaint(unet, SCHEDULE, known, fake, torch_generators([1, 2, 3]), precision="fp32", **FAST)
    assert torch.equal(again, fp32)


def test_bf16_generators_keep_their_contracts(batch):
    images, masks = batch
    fp32, _ = RePaintInpainter(tiny_unet(16), SCHEDULE, "tiny", precision="fp32", **FAST).inpaint(images, masks,
                                                                                                   [1, 2, 3])
    inpainter = RePaintInpainter(tiny_unet(16), SCHEDULE, "tiny", precision="bf16", **FAST)
    assert inpainter.settings()["precision"] == "bf16"
    assert inpainter.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    out, truth = inpainter.inpaint(images, masks, [1, 2, 3])
    assert np.array_equal(truth, masks) and np.array_equal(out[~masks], images[~masks])  # pasted back exactly
    assert np.abs(out.astype(int) - fp32).mean() < 4  # 8-bit levels, over the whole images

    vae = tiny_kl()
    latent = LatentRePaintInpainter(tiny_unet(8, in_channels=4), SCHEDULE, vae, "tiny", policy="decoded",
                                    precision="bf16", **FAST)
    out, truth = latent.inpaint(images, masks, [1, 2, 3])
    assert out.shape == images.shape and np.array_equal(truth, masks)  # decoded: truth = the inpainting mask
    assert vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)

    sampler = DiffusionSampler(tiny_unet(8), SCHEDULE, "tiny", sampler="ddpm", steps=3, autoencoder=tiny_vq(),
                               precision="bf16")
    assert sampler.generate([1, 2]).shape == (2, 16, 16, 3) and sampler.settings()["precision"] == "bf16"


# --- auto: bf16 only where native ------------------------------------------------------------------------------

@pytest.mark.parametrize("native", [False, True])
def test_auto_is_bf16_only_where_the_cpu_has_bf16_kernels(monkeypatch, native):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    expected = torch.bfloat16 if native else None
    assert forward_dtype("auto", "cpu") is expected
    assert forward_dtype("fp32", "cpu") is None and forward_dtype("bf16", "cpu") is torch.bfloat16
    inpainter = RePaintInpainter(tiny_unet(16), SCHEDULE, "tiny", **FAST)  # precision="auto" by default
    assert inpainter.settings().get("precision") == ("bf16" if native else None)
    assert inpainter.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last) is native
    if not native:  # auto here is plain fp32: the reference, bit for bit
        images = np.random.default_rng(1).integers(0, 256, (1, 16, 16, 3)).astype(np.uint8)
        masks = np.zeros((1, 16, 16), bool)
        masks[:, 4:12, 2:9] = True
        out, _ = inpainter.inpaint(images, masks, [7])
        x = _old_repaint(inpainter.unet, SCHEDULE, to_tensor(images), mask_tensor(masks), torch_generators([7]),
                         **FAST)
        assert np.array_equal(out, np.where(masks[..., None], to_uint8(x), images))


@pytest.mark.parametrize("native", [False, True])
def test_auto_on_cuda_follows_the_gpu(monkeypatch, native):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: native)
    assert forward_dtype("auto", "cuda") is (torch.bfloat16 if native else None)


def test_precision_is_checked_and_reaches_the_builders():
    with pytest.raises(ConfigError, match="auto, bf16, fp32"):
        forward_dtype("fp16", "cpu")
    with pytest.raises(ConfigError, match="auto, bf16, fp32"):
        RePaintInpainter(tiny_unet(16), SCHEDULE, "tiny", precision="half")
    assert InpaintSettings().precision == "auto"


def test_half_precision_weights_run_as_they_are():
    """--dtype bfloat16/float16 weights: no autocast on top (fp16 weights are not cast down to bf16)."""
    unet = tiny_unet(16).to(torch.bfloat16)
    assert forward_dtype("bf16", "cpu", unet) is None and forward_dtype("bf16", "cpu", tiny_unet(16)) is torch.bfloat16
    inpainter = RePaintInpainter(unet, SCHEDULE, "tiny", precision="bf16", **FAST)
    assert "precision" not in inpainter.settings() and inpainter.settings()["dtype"] == "bfloat16"
    assert not unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
