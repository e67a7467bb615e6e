"""Faithful by default: every method/setup default equals the official value (REFERENCE.md), so a test fails
when one drifts; the improvements are options that must be asked for."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import make_dolos
from weakloc.config import DataConfig, TrainConfig
from weakloc.data.load import load_samples
from weakloc.data.samples import select, training_selection
from weakloc.methods import METHODS, build_model, training_preprocessing
from weakloc.train.loop import resolve, resolve_preprocessing

# (method, setup) -> (resize, hflip, lr, batch, epochs): the official loaders and training scripts
OFFICIAL = {
    ("patches", "A"): ("lanczos", True, 1e-3, 64, 100),
    ("patches", "B"): ("lanczos", True, 1e-3, 64, 100),
    ("patches", "C"): ("bilinear", False, 1e-3, 16, 50),
    ("gradcam", "A"): ("lanczos", True, 1e-3, 32, 100),
    ("gradcam", "B"): ("lanczos", True, 1e-3, 32, 100),
    ("gradcam", "C"): ("bilinear", False, 1e-3, 16, 50),
    ("attention", "A"): ("bilinear", False, 1e-4, 16, 15),
    ("attention", "B"): ("bilinear", False, 1e-4, 16, 15),
    ("attention", "C"): ("bilinear", False, 3e-4, 16, 15),
}


@pytest.mark.parametrize(("method", "setup"), sorted(OFFICIAL))
def test_each_method_and_setup_defaults_to_the_official_training(method, setup):
    resize, hflip, lr, batch, epochs = OFFICIAL[(method, setup)]
    pre = training_preprocessing(method, setup)
    assert (pre.resize, pre.hflip) == (resize, hflip)
    cfg = resolve(TrainConfig(method=method, setup=setup))
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.iters_per_epoch, cfg.keep_best) == (lr, batch, epochs, 500, 5)
    data = resolve_preprocessing(DataConfig(), cfg)
    assert (data.resize, data.hflip, data.input_size, data.mean, data.std) == (resize, hflip, 299, 0.5, 0.5)


def test_every_registered_method_is_in_the_table():
    assert {m for m, _ in OFFICIAL} == set(METHODS)


def test_preprocessing_given_by_the_user_wins_over_the_official_one():
    cfg = TrainConfig(method="patches", setup="C")
    data = resolve_preprocessing(DataConfig(resize="lanczos", hflip=True), cfg)
    assert (data.resize, data.hflip) == ("lanczos", True)
    data = resolve_preprocessing(DataConfig(hflip=False), TrainConfig(method="gradcam", setup="A"))
    assert (data.resize, data.hflip) == ("lanczos", False)


def _conv_std(model) -> float:
    return float(model.block1.rep[0].pointwise.weight.detach().std())  # a 64 -> 128 pointwise convolution


def test_patches_init_names_what_it_does():
    torch.manual_seed(0)
    fan_in, fan_out = 64, 128  # the pointwise convolution's fans (1x1 kernel)
    xavier = 0.02 * math.sqrt(2 / (fan_in + fan_out))
    pytorch = 1 / math.sqrt(fan_in) / math.sqrt(3)  # kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), ...)
    timm = math.sqrt(2 / fan_out)  # kaiming_normal, fan_out
    expected = {"xavier": xavier, "pytorch": pytorch, "timm": timm}
    for init, std in expected.items():
        assert _conv_std(build_model("patches", "A", {"init": init})) == pytest.approx(std, rel=0.05), init
    # the official choice per setup: patch-forensics' Xavier for the weak setups, PyTorch's own layer init for C
    assert _conv_std(build_model("patches", "A")) == pytest.approx(xavier, rel=0.05)
    assert _conv_std(build_model("patches", "B")) == pytest.approx(xavier, rel=0.05)
    assert _conv_std(build_model("patches", "C")) == pytest.approx(pytorch, rel=0.05)
    assert build_model("patches", "A", {"init": "default"}).init == "timm"  # the old name of timm's init
    with pytest.raises(Exception, match="xavier, pytorch, timm"):
        build_model("patches", "A", {"init": "kaiming"})


def test_setup_b_trains_on_the_9k_subset_and_is_tested_on_repaint_p2(tmp_path):
    root = make_dolos(tmp_path, "celebahq", local=("repaint-p2", "repaint-p2-9k"), full=("p2",), per_split=3)
    notes: list[str] = []
    data, samples = load_samples(DataConfig(root=str(root)), notes, setup="B")
    assert (data.local, data.train_local) == (["repaint-p2"], ["repaint-p2-9k"])
    assert any("repaint-p2-9k" in n and "9k" in n for n in notes)
    train = training_selection(samples, "B", "train", root)
    assert {s.generator for s in train if s.kind == "local"} == {"repaint-p2-9k"}
    assert {s.generator for s in training_selection(samples, "B", "valid", root) if s.kind == "local"} == {
        "repaint-p2-9k"}
    assert {s.generator for s in select(samples, "test", ["local"])} == {"repaint-p2"}
    # other setups, and a --local the user gave, are untouched
    for setup in ("A", "C", None):
        data, samples = load_samples(DataConfig(root=str(root)), [], setup=setup)
        assert data.train_local is None
        assert {s.generator for s in samples if s.kind == "local"} == {"repaint-p2"}
    data, _ = load_samples(DataConfig(root=str(root), local=["repaint-p2"]), [], setup="B")
    assert data.train_local is None
    # asked for by name, any setup
    data, samples = load_samples(DataConfig(root=str(root), train_local=["repaint-p2-9k"]), [], setup="C")
    assert {s.generator for s in training_selection(samples, "C", "train", root)} == {"repaint-p2-9k"}


def test_setup_b_without_the_subset_trains_on_local(tmp_path):
    root = make_dolos(tmp_path, "celebahq", local=("repaint-p2",), per_split=2)
    data, samples = load_samples(DataConfig(root=str(root)), [], setup="B")
    assert data.train_local is None
    assert {s.generator for s in samples if s.kind == "local"} == {"repaint-p2"}


def test_the_card_records_the_preprocessing_and_prediction_uses_it(trained_checkpoint, tiny_data):
    import numpy as np
    from PIL import Image

    from weakloc.data.cache import preprocess_image
    from weakloc.predict.batch import preprocessing_of
    from weakloc.train.checkpoint import read_card

    card = read_card(trained_checkpoint)  # Patches, setup C, data.resize / hflip unset
    assert (card["resize"], card["hflip"], card["official_preprocessing"]) == ("bilinear", False, True)
    assert preprocessing_of(card).resize == "bilinear"
    # the detector (API, predict, serve) resizes like the card says: bilinear, not LANCZOS
    import weakloc

    detector = weakloc.load(trained_checkpoint)
    _, samples = tiny_data
    image = Image.open(samples[0].path).convert("RGB")
    image = image.resize((40, 40))  # not the input size, so the filter matters
    array, _, _ = detector._prepare(image)
    assert np.array_equal(array, preprocess_image(image, card["input_size"], "bilinear"))
    assert not np.array_equal(array, preprocess_image(image, card["input_size"], "lanczos"))



@pytest.mark.parametrize(("method", "setup"), [("gradcam", "A"), ("gradcam", "B"), ("attention", "A"), ("attention", "B")])
def test_weak_classifier_scores_rank_as_the_official_raw_fake_logit(method, setup):
    """The official A/B score is the raw fake logit: the default score is its sigmoid (same order, so the
    same AP/AUC), not softmax p(fake), which orders images differently."""
    torch.manual_seed(0)
    model = build_model(method, setup).eval()
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)["logits"].float()
    score = model.localize(x).score
    torch.testing.assert_close(score, torch.sigmoid(logits[:, 1]), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(score, logits.softmax(1)[:, 1], atol=1e-4)
