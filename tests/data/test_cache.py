"""Identical preprocessing for real and fake images, and the decode-once tensor cache."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

import weakloc.data.cache as dataset_module
from weakloc.config import DataConfig
from weakloc.data.cache import CachedImages, MaskTarget, preprocess_image
from weakloc.data.images import read_mask
from weakloc.data.samples import Sample, select


def test_real_and_fake_share_one_preprocessing(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "real.png")
    Image.fromarray(pixels).save(tmp_path / "fake.png")
    samples = [Sample("real.png", tmp_path / "real.png", 0, "real", "train"),
               Sample("fake.png", tmp_path / "fake.png", 1, "full", "train")]
    data = DataConfig(input_size=32, resize="lanczos")
    cache = CachedImages.build(samples, data, masks=MaskTarget(32), progress=False)
    assert np.array_equal(cache.images[0], cache.images[1])
    expected = np.asarray(Image.fromarray(pixels).resize((32, 32), Image.LANCZOS)).transpose(2, 0, 1)
    assert np.array_equal(cache.images[0], expected)
    assert cache.masks[0].sum() == 0 and cache.masks[1].min() == 1  # real: nothing fake; full: all fake
    batch = cache.batch([0, 1])
    assert batch["image"].dtype == torch.float32 and -1 <= batch["image"].min() and batch["image"].max() <= 1
    assert torch.allclose(batch["image"][0], torch.from_numpy(expected.copy()).float() / 127.5 - 1)
    flipped = cache.batch([0, 1], flip=torch.tensor([True, False]))
    assert torch.equal(flipped["image"][0], batch["image"][0].flip(-1))
    assert torch.equal(flipped["image"][1], batch["image"][1])


def test_quarter_turns_rotate_each_image_with_its_mask(tiny_data):
    data, samples = tiny_data
    local = select(samples, "train", ["local"])[:4]
    cache = CachedImages.build(local, dataclasses.replace(data, input_size=32, resize="bilinear"),
                               masks=MaskTarget(8), progress=False)
    plain = cache.batch([0, 1, 2, 3])
    assert all(plain["mask"][i].sum() > 0 and not torch.equal(plain["mask"][i], plain["mask"][i].rot90(1, (0, 1)))
               for i in range(4))  # masks without a quarter-turn symmetry, so a wrong turn would show
    turned = cache.batch([0, 1, 2, 3], flip=torch.tensor([False, True, False, True]), turns=torch.tensor([0, 1, 2, 3]))
    for i, (k, flip) in enumerate(((0, False), (1, True), (2, False), (3, True))):
        image, mask = plain["image"][i], plain["mask"][i]
        if flip:
            image, mask = image.flip(-1), mask.flip(-1)
        assert torch.equal(turned["image"][i], torch.rot90(image, k, dims=(-2, -1)))
        assert torch.equal(turned["mask"][i], torch.rot90(mask, k, dims=(-2, -1)))


def test_area_targets_are_each_cells_fake_share(tmp_path):
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[:, :16] = 1  # the left half: whole cells at 8x8
    mask[0:4, 16:18] = 1  # half of one cell
    assert MaskTarget(8, "area").soft and not MaskTarget(8).soft
    shares = MaskTarget(8, "area")(mask)
    assert shares.dtype == np.uint8 and shares.shape == (8, 8)
    assert (shares[:, :4] == 255).all() and shares[0, 4] == 128 and (shares[1:, 4:] == 0).all()
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "fake.png")
    Image.fromarray((1 - mask) * 255).save(tmp_path / "mask.png")  # the DOLOS polarity: black = fake
    samples = [Sample("fake.png", tmp_path / "fake.png", 1, "local", "train", mask_path=tmp_path / "mask.png"),
               Sample("real.png", tmp_path / "fake.png", 0, "real", "train")]
    cache = CachedImages.build(samples, DataConfig(input_size=32, resize="bilinear"), masks=MaskTarget(8, "area"),
                               progress=False)
    batch = cache.batch([0, 1])
    assert batch["mask"].dtype == torch.float32
    assert torch.allclose(batch["mask"][0], torch.from_numpy(shares).float() / 255) and batch["mask"][1].sum() == 0


def test_masks_go_from_native_size_to_the_map_as_the_official_loaders(tiny_data):
    data, samples = tiny_data
    local = select(samples, "train", ["local"])[:3]
    data = dataclasses.replace(data, input_size=32, resize="bilinear")
    native = [read_mask(s.mask_path) for s in local]
    nearest = CachedImages.build(local, data, masks=MaskTarget(12), progress=False)
    assert nearest.masks.shape == (3, 12, 12) and nearest.masks.sum() > 0
    for got, mask in zip(nearest.masks, native):  # one PIL NEAREST resize, native -> map
        assert np.array_equal(got, np.asarray(Image.fromarray(mask).resize((12, 12), Image.NEAREST)))
    bilinear = CachedImages.build(local, data, masks=MaskTarget(6, "bilinear"), progress=False)
    for got, mask in zip(bilinear.masks, native):  # Attention: PIL bilinear, then > 0.5
        grey = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((6, 6), Image.BILINEAR))
        assert np.array_equal(got, (grey > 127.5).astype(np.uint8))
    with pytest.raises(ValueError, match="resize is unset"):
        CachedImages.build(local, dataclasses.replace(data, resize=None), progress=False)


def test_memory_mapped_cache_decodes_only_once(tiny_data, tmp_path, monkeypatch):
    data, samples = tiny_data
    chosen = select(samples, "valid", ["real", "local"])
    cfg = dataclasses.replace(data, cache_dir=str(tmp_path / "cache"), resize="lanczos")
    calls = []
    real_read = dataset_module.read_rgb
    monkeypatch.setattr(dataset_module, "read_rgb", lambda p: calls.append(p) or real_read(p))
    first = CachedImages.build(chosen, cfg, masks=MaskTarget(cfg.input_size), progress=False)
    assert len(calls) == len(chosen)
    second = CachedImages.build(chosen, cfg, masks=MaskTarget(cfg.input_size), progress=False)
    assert len(calls) == len(chosen)  # nothing decoded the second time
    assert np.array_equal(np.asarray(first.images), np.asarray(second.images))
    assert np.array_equal(np.asarray(first.masks), np.asarray(second.masks))
    assert isinstance(second.images, np.memmap)
    other = CachedImages.build(chosen, dataclasses.replace(cfg, input_size=40), masks=MaskTarget(cfg.input_size), progress=False)
    assert other.images.shape[-1] == 40 and len(calls) == 2 * len(chosen)  # new settings, new cache


def test_preprocess_image_keeps_size_when_equal():
    image = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    assert np.array_equal(preprocess_image(image, 4, "lanczos"), np.asarray(image).transpose(2, 0, 1))
