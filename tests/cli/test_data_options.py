"""The data options shared by train / evaluate / predict / data summary, on data made the way
`weakloc generate` makes it (local fakes only, no p2), as a new user meets them."""

from __future__ import annotations

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from conftest import make_dolos
from weakloc.cli import app

runner = CliRunner()
SMALL = ["--set", "data.input_size=32", "--set", "train.epochs=1", "--set", "train.iters_per_epoch=2",
         "--set", "train.batch_size=4", "--set", "train.precision=fp32", "--set", "train.options={init='default'}"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _options(*path: str) -> set[str]:
    command = get_command(app)
    for name in path:
        command = command.commands[name]
    return {opt for param in command.params for opt in param.opts}


def test_the_data_options_are_the_same_everywhere():
    shared = {"--layout", "--root", "--dataset", "--real", "--full", "--local", "--masks", "--manifest", "--data",
              "--set"}
    for path in (("train",), ("evaluate",), ("predict",), ("data", "summary")):
        assert shared <= _options(*path), path


@pytest.fixture(scope="module")
def mine(tmp_path_factory):
    return make_dolos(tmp_path_factory.mktemp("mine"), "mine", local=("repaint", "telea"))


def test_summary_and_setup_c_need_no_generator_flags(mine, tmp_path):
    result = invoke("data", "summary", "--root", mine)
    assert result.exit_code == 0, result.output
    assert "using dataset 'mine'" in result.output and "repaint, telea" in result.output
    assert "train\t4\t0\t8" in result.output  # 4 real, no full fakes, 4 + 4 local fakes
    one = invoke("data", "summary", "--root", mine, "--local", "repaint,telea")
    two = invoke("data", "summary", "--root", mine, "--local", "repaint", "--local", "telea")
    assert one.exit_code == two.exit_code == 0 and "train\t4\t0\t8" in one.output and "train\t4\t0\t8" in two.output
    result = invoke("train", "--out", tmp_path / "c", "--setup", "C", "--root", mine, *SMALL)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c" / "best.safetensors").exists()


def test_evaluate_a_checkpoint_on_its_own_data(mine, tmp_path):
    run = tmp_path / "run"
    assert invoke("train", "--out", run, "--setup", "C", "--root", mine, "--local", "repaint", *SMALL).exit_code == 0
    result = invoke("evaluate", run / "best.safetensors", "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    assert "evaluating on the checkpoint's own data" in result.output and "local repaint" in result.output
    assert "4 manipulated test images" in result.output  # repaint's test split only, as trained
    assert (tmp_path / "eval" / "metrics.json").exists()


def test_a_refused_run_names_only_what_changed(mine, tmp_path, monkeypatch):
    monkeypatch.chdir(mine)
    args = ["train", "--out", "runs/b", "--setup", "B", "--local", "repaint", *SMALL]
    assert invoke(*args, "--root", ".").exit_code == 0
    again = invoke(*args[:2], str(mine / "runs" / "b"), *args[3:], "--root", str(mine))  # same run, absolute paths
    assert again.exit_code == 0, again.output
    refused = invoke(*args, "--root", ".", "--set", "train.lr=0.5")
    assert refused.exit_code == 2
    assert "train.lr: 0.001 -> 0.5" in refused.output and "--overwrite" in refused.output
    assert "data.root" not in refused.output and "{" not in refused.output  # no settings dictionaries
