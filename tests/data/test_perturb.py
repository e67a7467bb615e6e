"""Robustness perturbations (data/perturb.py): each one's effect, determinism, masks kept aligned, the decode
cache keeping perturbed and clean images apart, originals untouched, bad specs rejected."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from weakloc.config import DataConfig
from weakloc.data.cache import CachedImages, MaskTarget, _cache_key
from weakloc.data.images import write_mask
from weakloc.data.perturb import Perturbation, parse_perturbations
from weakloc.data.samples import Sample
from weakloc.errors import ConfigError
from weakloc.files import save_image


def textured(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    """A picture with both smooth and sharp content (JPEG has something to lose)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, w)[None, :, None] * np.array([1.0, 0.6, 0.3]) * np.ones((h, 1, 3))
    return Image.fromarray(np.clip(x * 0.6 + rng.integers(0, 100, (h, w, 1)), 0, 255).astype(np.uint8))


def square_scene(w: int, h: int, box: tuple[int, int, int, int]) -> tuple[Image.Image, np.ndarray]:
    """A grey image with a red square, and the square's mask (True inside)."""
    top, bottom, left, right = box
    array = np.full((h, w, 3), 128, np.uint8)
    array[top:bottom, left:right] = (230, 20, 20)
    mask = np.zeros((h, w), bool)
    mask[top:bottom, left:right] = True
    return Image.fromarray(array), mask


def red(image: Image.Image) -> np.ndarray:
    a = np.asarray(image).astype(int)
    return (a[..., 0] > 180) & (a[..., 1] < 80) & (a[..., 2] < 80)


def mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)).mean())


def test_jpeg_50_changes_pixels_and_95_changes_fewer() -> None:
    image = textured()
    before = np.asarray(image).copy()
    q95, q50 = Perturbation("jpeg", 95)(image, "a"), Perturbation("jpeg", 50)(image, "a")
    assert q95.size == q50.size == image.size and q95.mode == q50.mode == "RGB"
    changed95 = np.count_nonzero(np.asarray(q95) != before)
    changed50 = np.count_nonzero(np.asarray(q50) != before)
    assert changed50 > changed95 > 0
    assert mean_abs_diff(q50, image) > 1.5 * mean_abs_diff(q95, image)
    assert np.array_equal(np.asarray(image), before)  # the input is not modified
    assert np.array_equal(np.asarray(Perturbation("jpeg", 50)(image, "b")), np.asarray(q50))  # no id dependence


@pytest.mark.parametrize("spec, size, expected", [("resize:0.5", (64, 48), (32, 24)),
                                                  ("resize:0.75", (30, 30), (23, 23)),  # 22.5 rounds half up
                                                  ("chain:social", (2000, 1200), (1080, 648)),
                                                  ("chain:social", (600, 400), (600, 400))])  # never upscaled
def test_resizing_keeps_masks_aligned(spec: str, size: tuple[int, int], expected: tuple[int, int]) -> None:
    (p,) = parse_perturbations([spec])
    w, h = size
    box = (h // 4, h // 4 + h // 3, w // 3, w // 3 + w // 4)
    image, mask = square_scene(w, h, box)
    out, out_mask = p(image, "x"), p.mask(mask)
    assert out.size == expected == p.output_size(size) and out_mask.shape == (expected[1], expected[0])
    assert out_mask.dtype == bool and 0 < out_mask.sum() < out_mask.size
    coloured = red(out)
    # the mask still covers the coloured square: no red pixel outside it, its inside (one pixel in from its
    # edge, where the filter blends red and grey) all red
    inside = out_mask[1:-1, 1:-1] & out_mask[:-2, 1:-1] & out_mask[2:, 1:-1] & out_mask[1:-1, :-2] & out_mask[1:-1, 2:]
    assert not (coloured & ~out_mask).any() and coloured[1:-1, 1:-1][inside].all() and inside.sum() > 0
    assert (coloured & out_mask).sum() / out_mask.sum() > 0.75


def test_blur_is_a_gaussian_of_that_sigma_and_deterministic() -> None:
    impulse = np.zeros((41, 41, 3), np.uint8)
    impulse[20, 20] = 255
    image = Image.fromarray(impulse)
    out = np.asarray(Perturbation("blur", 2)(image, "a"), dtype=float)
    # a unit impulse becomes the 2-D Gaussian: peak 255 / (2 pi sigma^2), 1/e^(1/2) of it one sigma away
    assert out[20, 20, 0] == pytest.approx(255 / (2 * np.pi * 4), abs=1)
    assert out[20, 22, 0] == pytest.approx(out[20, 20, 0] * np.exp(-0.5), abs=1)
    grey = Image.fromarray(np.full((20, 30, 3), 77, np.uint8))
    assert np.array_equal(np.asarray(Perturbation("blur", 2)(grey, "a")), np.asarray(grey))  # normalised, borders
    again = Perturbation("blur", 2)(image, "other id")
    assert np.array_equal(np.asarray(again), out.astype(np.uint8))
    wider = np.asarray(Perturbation("blur", 1)(image, "a"), dtype=float)
    assert wider[20, 20, 0] > out[20, 20, 0]  # smaller sigma, sharper peak


def test_noise_is_seeded_by_the_image_id() -> None:
    grey = Image.fromarray(np.full((64, 64, 3), 128, np.uint8))
    noise7 = Perturbation("noise", 7)
    a, b, other = noise7(grey, "test/a.png"), noise7(grey, "test/a.png"), noise7(grey, "test/b.png")
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(other))
    diff = np.asarray(a, dtype=float) - 128
    assert abs(diff.mean()) < 0.3 and diff.std() == pytest.approx(7, abs=0.3)  # sigma in 8-bit levels
    assert np.array_equal(diff, np.rint(diff))
    small = np.asarray(Perturbation("noise", 3)(grey, "test/a.png"), dtype=float) - 128
    assert small.std() == pytest.approx(3, abs=0.2)
    assert np.corrcoef(small.ravel(), diff.ravel())[0, 1] > 0.95  # one field per image, scaled per level
    white = np.asarray(noise7(Image.fromarray(np.full((32, 32, 3), 255, np.uint8)), "w"))
    assert white.max() == 255 and white.min() < 255 and (white == 255).mean() > 0.4  # clipped, not wrapped


@pytest.mark.parametrize("spec, says", [("jpeg:150", "out of range"), ("blur:x", "'x' is not a valid blur level"),
                                        ("foo:1", "unknown perturbation 'foo'"), ("jpeg:50.5", "not a valid"),
                                        ("noise:0", "out of range"), ("resize", "at least one level"),
                                        ("chain:tiktok", "unknown chain")])
def test_bad_specs_name_the_option_and_the_valid_forms(spec: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_perturbations([spec], "--perturb")
    message = str(info.value)
    assert message.startswith(f"--perturb {spec!r}") and says in message
    assert "jpeg:Q" in message and "resize:F" in message and "chain:social" in message


def test_specs_expand_levels_in_order_without_duplicates() -> None:
    got = parse_perturbations(["jpeg:95,50", "jpeg:50", "blur:1.5", "chain:social"])
    assert [p.name for p in got] == ["jpeg:95", "jpeg:50", "blur:1.5", "chain:social"]
    assert [p.folder for p in got][-1] == "chain-social"


@pytest.fixture()
def folder_samples(tmp_path):
    samples = []
    for i in range(3):
        image, mask = square_scene(40, 30, (5, 15, 10, 20 + i))
        path, mask_path = tmp_path / "img" / f"f{i}.png", tmp_path / "msk" / f"f{i}.png"
        save_image(path, image)
        write_mask(mask_path, mask)
        samples.append(Sample(f"img/f{i}.png", path, 1, "local", "test", mask_path))
    return samples


def stamps(samples):
    return [(s.path.read_bytes(), s.path.stat().st_mtime_ns, s.mask_path.read_bytes(), s.mask_path.stat().st_mtime_ns)
            for s in samples]


def test_cache_keys_keep_perturbed_and_clean_decodes_apart(folder_samples, tmp_path) -> None:
    data = DataConfig(input_size=32, resize="bilinear", cache_dir=str(tmp_path / "cache"), full=[], local=[])
    keys = {_cache_key(folder_samples, data, None, p)
            for p in (None, Perturbation("jpeg", 50), Perturbation("jpeg", 95), Perturbation("noise", 3))}
    assert len(keys) == 4
    before = stamps(folder_samples)
    clean = CachedImages.build(folder_samples, data, progress=False)
    jpeg = CachedImages.build(folder_samples, data, progress=False, perturb=Perturbation("jpeg", 50))
    assert len(list((tmp_path / "cache").glob("*.done"))) == 2
    assert not np.array_equal(np.asarray(clean.images), np.asarray(jpeg.images))
    again = CachedImages.build(folder_samples, data, progress=False, perturb=Perturbation("jpeg", 50))
    assert np.array_equal(np.asarray(again.images), np.asarray(jpeg.images))  # read back from the cache
    assert stamps(folder_samples) == before  # originals: same bytes, same modification times
    assert sorted(p.name for p in (tmp_path / "img").iterdir()) == ["f0.png", "f1.png", "f2.png"]


def test_setup_c_masks_follow_a_resized_image(folder_samples) -> None:
    data = DataConfig(input_size=32, resize="bilinear", full=[], local=[])
    clean = CachedImages.build(folder_samples, data, masks=MaskTarget(8), progress=False)
    half = CachedImages.build(folder_samples, data, masks=MaskTarget(8), progress=False,
                              perturb=Perturbation("resize", 0.5))
    assert half.masks.shape == clean.masks.shape == (3, 8, 8)
    assert half.masks.sum() > 0 and np.abs(half.masks.astype(int) - clean.masks).sum() <= 8  # same square
