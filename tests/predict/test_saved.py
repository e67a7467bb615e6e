"""Saved predictions are matched to dataset images by id, else by an unambiguous file name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from weakloc.data.samples import Sample
from weakloc.errors import InputError
from weakloc.predict.saved import Predictions


def _sample(id_: str) -> Sample:
    return Sample(id_, Path("/data") / id_, 1, "local", "test")


def test_align_by_id_then_by_unique_file_name(tmp_path):
    maps = np.stack([np.full((2, 2), v, np.float32) for v in (0.1, 0.2, 0.3)])
    preds = Predictions(["fake/a.png", "b.png", "other/c.png"], np.array([0.1, 0.2, 0.3]), maps)
    scores, aligned = preds.align([_sample("b.png"), _sample("fake/a.png"), _sample("x/c.png")], "here")
    assert scores.tolist() == [0.2, 0.1, 0.3] and [m[0, 0] for m in aligned] == pytest.approx([0.2, 0.1, 0.3])
    preds.save_npz(tmp_path / "p.npz")
    again = Predictions.load(tmp_path / "p.npz")
    assert again.ids == preds.ids and np.allclose(again.maps, maps)


def test_ambiguous_or_missing_names_are_errors():
    maps = np.zeros((2, 2, 2), np.float32)
    preds = Predictions(["real/a.png", "fake/a.png"], np.zeros(2), maps)
    with pytest.raises(InputError, match="matches several predictions by file name"):
        preds.align([_sample("x/a.png")], "here")
    with pytest.raises(InputError, match="has no prediction"):
        preds.align([_sample("x/zzz.png")], "here")
    assert preds.align([_sample("fake/a.png")], "here")[0].tolist() == [0.0]  # exact id still wins
