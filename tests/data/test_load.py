"""From a data configuration to samples: unset settings decided from what is on disk (and said), given ones
used as given; loading never generates data."""

from __future__ import annotations

import pytest

from conftest import make_dolos
from weakloc.config import DataConfig
from weakloc.data.load import found_generators, load_samples
from weakloc.data.samples import training_selection
from weakloc.errors import ConfigError, InputError


def test_a_local_only_dataset_needs_no_generator_list(tmp_path):
    root = make_dolos(tmp_path, "mine", local=("repaint",))
    notes: list[str] = []
    data, samples = load_samples(DataConfig(root=str(root)), notes)
    assert (data.dataset, data.full, data.local) == ("mine", [], ["repaint"])
    assert any("'mine'" in n and "--dataset" in n for n in notes)
    assert any("repaint" in n and "--local" in n for n in notes)  # says what it found and how to choose
    assert len(training_selection(samples, "C", "train", root)) == 4  # setup C has what it needs
    with pytest.raises(InputError, match="no full images in split 'train'"):  # setup A says what is missing
        training_selection(samples, "A", "train", root)


def test_the_papers_generators_are_the_default_when_present(tmp_path):
    root = make_dolos(tmp_path, "celebahq", local=("repaint-p2", "lama"), full=("p2", "ldm"))
    notes: list[str] = []
    data, _ = load_samples(DataConfig(root=str(root)), notes)
    assert (data.full, data.local) == (["p2"], ["repaint-p2"])
    assert found_generators(root / "celebahq") == {"full": ["ldm", "p2"], "local": ["lama", "repaint-p2"]}


def test_generator_lists_take_commas_and_repeats_alike(tmp_path):
    root = make_dolos(tmp_path, "mine", local=("repaint", "telea"))
    commas = DataConfig(root=str(root), local=["repaint,telea"])
    repeated = DataConfig(root=str(root), local=["repaint", "telea"])
    assert commas.local == repeated.local == ["repaint", "telea"]
    assert load_samples(commas)[1] == load_samples(repeated)[1]
    with pytest.raises(InputError, match="(?s)generator folder does not exist.*repaint, telea"):
        load_samples(DataConfig(root=str(root), local=["ldm"]))  # a given name must exist
    assert DataConfig(layout="folder", local=["a,b"]).local == ["a,b"]  # folder layout: a path, not names


def test_the_dataset_folder_is_inferred_or_asked_for(tmp_path):
    make_dolos(tmp_path / "two", "celebahq")
    make_dolos(tmp_path / "two", "ffhq")
    notes: list[str] = []
    assert load_samples(DataConfig(root=str(tmp_path / "two")), notes)[0].dataset == "celebahq"
    assert any("ffhq" in n for n in notes)
    make_dolos(tmp_path / "other", "a")
    make_dolos(tmp_path / "other", "b")
    with pytest.raises(InputError, match="several dataset folders \\(a, b\\)"):
        load_samples(DataConfig(root=str(tmp_path / "other")))
    assert load_samples(DataConfig(root=str(tmp_path / "other"), dataset="b"))[0].dataset == "b"


def test_loading_never_builds_the_builtin_benchmark(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="weakloc data builtin"):
        load_samples(DataConfig(layout="builtin", root=str(tmp_path)))
    assert not (tmp_path / "builtin").exists()
    monkeypatch.chdir(tmp_path)  # no data.root: the same default folder that ensure_builtin builds in
    with pytest.raises(InputError, match="weakloc data builtin data`"):
        load_samples(DataConfig(layout="builtin"))
    with pytest.raises(ConfigError, match="data.root is required"):
        load_samples(DataConfig())
