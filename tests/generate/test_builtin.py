"""The built-in benchmark: diffusion-made fakes on the shipped models, read back through the DOLOS loader,
pixels outside the masks as documented, byte-identical rebuilds, nothing redone, shipped weights that sample."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import TINY
from weakloc.config import DataConfig
from weakloc.data.images import read_mask
from weakloc.data.load import load_samples
from weakloc.generate.builtin import build_builtin, spec_from
from weakloc.generate.builtin.build import LOCAL_GENERATORS, split_counts
from weakloc.generate.builtin.models import SHIPPED, shipped_model

pytestmark = pytest.mark.usefixtures("one_thread")


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_quick_benchmark_reads_back_through_the_dolos_loader(tiny_root):
    notes: list[str] = []
    data, samples = load_samples(DataConfig(layout="builtin", root=str(tiny_root), builtin_preset="quick"), notes)
    assert data.dataset == "photos-a" and data.local == ["repaint"] and data.full == ["ddpm"]
    counts = split_counts(TINY["n"])
    for kind in ("real", "local", "full"):
        for split, n in counts.items():
            assert sum(s.kind == kind and s.split == split for s in samples) == n, (kind, split)
    other = load_samples(DataConfig(layout="builtin", root=str(tiny_root), dataset="photos-b",
                                     local=["repaint", "telea", "biharmonic"]))[1]
    assert sum(s.kind == "local" for s in other) == 3 * TINY["n"]
    base = tiny_root / "builtin"
    contents = json.loads((base / "contents.json").read_text())
    assert contents["counts"]["photos-a"]["repaint-ldm"]["test"] == counts["test"]
    assert contents["counts"]["photos-b"]["real"]["train"] == counts["train"]
    assert "repaint-ldm" not in contents["counts"]["photos-b"]  # as in the paper: LDM on the main source only
    assert (base / "mask-areas.png").is_file() and "| repaint |" in (base / "contents.md").read_text()
    assert sum(contents["mask_areas"]["photos-a"]["bins"].values()) == TINY["n"]


@pytest.mark.parametrize("source", ["photos-a", "photos-b"])
def test_every_generator_changes_pixels_only_as_documented(tiny_root, source):
    base = tiny_root / "builtin"
    rows = [json.loads(line) for line in (base / source / "manifest.jsonl").read_text().splitlines()]
    local = [r for r in rows if r["mask"]]
    assert {r["generator"] for r in local} == set(LOCAL_GENERATORS[source])
    decoded_outside, reconstruction = [], []
    for row in local:
        fake, truth = pixels(base / source / row["path"]), read_mask(base / source / row["mask"])
        original = pixels(Path(row["source_image"]))
        plan_mask = read_mask(row["plan_mask"])
        assert np.array_equal(truth, plan_mask), row["path"]  # the truth is the inpainting mask, every generator
        outside = np.abs(fake - original)[~truth]
        if row["generator"] == "repaint-ldm":  # decoded: every pixel went through the autoencoder
            assert row["settings"]["policy"] == "decoded" and outside.mean() > 0, row["path"]
            decoded_outside.append(outside.mean())
            reconstruction.append(_reconstruction_error(original))
        else:  # pasted back exactly
            assert outside.max() == 0, row["path"]
        assert np.abs(fake - original)[truth].mean() > 0, row["path"]  # the masked region was regenerated
    if decoded_outside:  # outside the mask: the autoencoder's error, plus the decoder's spread of the new latents
        assert np.mean(decoded_outside) <= 3 * np.mean(reconstruction) + 5, (decoded_outside, reconstruction)


@functools.lru_cache(maxsize=1)
def _autoencoder():
    from weakloc.generate.generators.loading import load_autoencoder

    return load_autoencoder(shipped_model("ldm-photos-a"))


def _reconstruction_error(image: np.ndarray) -> float:
    from weakloc.generate.generators.tensors import decode, encode, to_tensor, to_uint8

    autoencoder = _autoencoder()
    rebuilt = to_uint8(decode(autoencoder, encode(autoencoder, to_tensor(image[None].astype(np.uint8)))))[0]
    return float(np.abs(rebuilt.astype(np.int16) - image).mean())


def test_same_seed_gives_byte_identical_files_and_a_rebuild_redoes_nothing(tmp_path):
    spec = spec_from(10, 32, 5, "quick")
    first, second = build_builtin(tmp_path / "a", spec, progress=False), build_builtin(tmp_path / "b", spec,
                                                                                         progress=False)

    def tree(root: Path) -> dict[str, bytes]:  # every image and mask (settings files name their own folder)
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))
                if p.name != "mask-areas.png"}

    a, b = tree(first), tree(second)
    assert a.keys() == b.keys() and len(a) > 100
    assert all(a[k] == b[k] for k in a)
    stamps = {p: p.stat().st_mtime_ns for p in first.rglob("*.png")}
    build_builtin(tmp_path / "a", spec, progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    from weakloc.errors import InputError

    build_builtin(tmp_path, spec_from(10, 32, 0, "quick"), progress=False)
    with pytest.raises(InputError, match="images: 10 -> 12"):
        build_builtin(tmp_path, spec_from(12, 32, 0, "quick"), progress=False)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_models_load_and_sample(name):
    from weakloc.generate.generators.loading import load_diffusion
    from weakloc.generate.generators.sampling import DiffusionSampler

    folder = shipped_model(name)
    card = json.loads((folder / "card.json").read_text())
    assert card["command"].startswith("weakloc generate train-") and card["step"] > 0 and card["final_loss"] > 0
    assert not (folder / "checkpoint").exists()
    unet, config, autoencoder, device = load_diffusion(str(folder), None, "cpu", "float32", latent=None)
    assert (autoencoder is not None) == name.startswith("ldm")
    images = DiffusionSampler(unet, config, str(folder), sampler="ddpm", steps=5,
                              autoencoder=autoencoder).generate([0, 1])
    assert images.shape == (2, 32, 32, 3) and images.std() > 1


def test_total_shipped_weights_stay_under_25_mb():
    from weakloc.generate.builtin.models import models_folder

    total = sum(p.stat().st_size for p in models_folder().rglob("*.safetensors"))
    assert 0 < total <= 25 * 2 ** 20, total


def test_full_fakes_are_sdedit_of_their_own_source_crops(tiny_root):
    """The default full fakes: every pixel regenerated by the source's DDPM from a photograph's crop (strength
    0.5), so they keep its layout (closer to it than to other crops) but differ from it everywhere."""
    base = tiny_root / "builtin" / "photos-a"
    rows = [json.loads(line) for line in (base / "manifest.jsonl").read_text().splitlines()]
    full = [r for r in rows if r["generator"] == "ddpm"]
    assert full and all(r["settings"]["strength"] == 0.5 and r["source_image"] for r in full)
    own, other = [], []
    for k, row in enumerate(full):
        fake, source = pixels(base / row["path"]), pixels(Path(row["source_image"]))
        assert Path(row["source_image"]).parent.parent.name == "sources" and row["split"] in row["source_image"]
        assert (np.abs(fake - source).mean(axis=2) > 0).mean() > 0.9  # nearly every pixel is the model's
        own.append(np.abs(fake - source).mean())
        other.append(np.abs(fake - pixels(Path(full[k - 1]["source_image"]))).mean())
    assert np.mean(own) < 0.6 * np.mean(other), (np.mean(own), np.mean(other))


def test_sdedit_needs_sources_and_strength_one_samples_from_noise():
    from weakloc.errors import ConfigError
    from weakloc.generate.generators.loading import load_diffusion
    from weakloc.generate.generators.sampling import DiffusionSampler

    folder = str(shipped_model("ddpm-photos-a"))
    unet, config, _, _ = load_diffusion(folder, None, "cpu", "float32", latent=False)
    sources = np.zeros((2, 32, 32, 3), np.uint8) + np.array([200, 40, 40], np.uint8)
    sdedit = DiffusionSampler(unet, config, folder, steps=5, strength=0.4)
    with pytest.raises(ConfigError, match="one source image per seed"):
        sdedit.generate([0, 1])
    near = sdedit.generate([0, 1], sources).astype(float)
    assert near.shape == (2, 32, 32, 3) and np.abs(near.mean(axis=(1, 2)) - [200, 40, 40]).max() < 40
    assert sdedit.settings()["strength"] == 0.4
    again = DiffusionSampler(unet, config, folder, steps=5, strength=0.4).generate([0, 1], sources)
    assert np.array_equal(near, again)  # seeded
    with pytest.raises(ConfigError, match="strength"):
        DiffusionSampler(unet, config, folder, steps=5, strength=0.0)


def test_flat_crops_are_redrawn_deterministically():
    from weakloc.generate.builtin.photos import SOURCES, detail, source_crop
    from weakloc.generate.seeds import numpy_rng

    source = SOURCES["photos-a"]
    plain = [detail(source_crop(source, "train", 32, numpy_rng(0, "t", i))) for i in range(60)]
    picky = [detail(source_crop(source, "train", 32, numpy_rng(0, "t", i), 4.0)) for i in range(60)]
    assert min(plain) < 4.0 <= min(picky)  # some plain crops are flat (sky, walls); none of the filtered ones
    first = source_crop(source, "test", 32, numpy_rng(1, "x"), 4.0)
    assert np.array_equal(first, source_crop(source, "test", 32, numpy_rng(1, "x"), 4.0))
