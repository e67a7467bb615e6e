"""The one training loop: learning, checkpoints, resume after a kill, run-folder safety, DDP on CPU."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY, tiny_train_config
from weakloc.train.checkpoint import load_checkpoint, read_card
from weakloc.data.cache import CachedImages
from weakloc.data.samples import select
from weakloc.errors import ConfigError, InputError
from weakloc.predict.batch import predict_cache, preprocessing_of
from weakloc.train.loop import STATE_FILE, train

TESTS = Path(__file__).parent


def test_training_lowers_the_loss_and_checkpoint_reloads_identically(tiny_data, tmp_path):
    data, samples = tiny_data
    cfg = tiny_train_config(setup="C", epochs=3, iters_per_epoch=8, batch_size=8, lr=3e-3)
    result = train(tmp_path / "run", data, cfg, samples, progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert len(losses) == 3 and losses[-1] < losses[0]

    card = read_card(result.best_checkpoint)
    best_epoch = min(result.history, key=lambda h: h["val_loss"])["epoch"]
    assert card["method"] == "patches" and card["setup"] == "C" and card["epoch"] == best_epoch
    assert card["input_size"] == 48 and card["resize"] == "bilinear" and card["map_size"] == 6  # setup C: official bilinear
    assert card["data"]["n_train"] == 28 and card["seed"] == 0
    # the training scale: tiny built-in crops are 32 px, resized to the 48-px input
    assert card["train_scale"] == {"mode": "resize", "input_size": 48, "native_median": [32, 32],
                                   "native_min": [32, 32], "native_max": [32, 32], "sampled": 28}
    assert card["metrics"]["val_loss"] == pytest.approx(min(h["val_loss"] for h in result.history))
    kept = sorted(p.name for p in (tmp_path / "run").glob("epoch-*.safetensors"))
    assert len(kept) == 2  # keep_best

    model, _ = load_checkpoint(result.best_checkpoint)
    best_state = load_file(str(tmp_path / "run" / f"epoch-{best_epoch:03d}.safetensors"))
    assert all(torch.equal(v, best_state[k]) for k, v in model.state_dict().items())
    test = select(samples, "test", ["real", "local"])
    cache = CachedImages.build(test, preprocessing_of(card), progress=False)
    first = predict_cache(model, cache, progress=False)
    again, _ = load_checkpoint(result.best_checkpoint)
    second = predict_cache(again, cache, progress=False)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


def test_finished_run_is_reused_and_a_different_run_is_refused(tiny_data, tmp_path):
    data, samples = tiny_data
    cfg = tiny_train_config(epochs=1, iters_per_epoch=2)
    first = train(tmp_path / "run", data, cfg, samples, progress=False)
    stamp = first.best_checkpoint.stat().st_mtime_ns
    again = train(tmp_path / "run", data, cfg, samples, progress=False)
    assert again.resumed_from_epoch == 1 and again.best_checkpoint.stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match=r"holds a different run; changed settings \(there -> now\):\n    train.lr: 0.001 -> 0.5"):
        train(tmp_path / "run", data, tiny_train_config(epochs=1, iters_per_epoch=2, lr=0.5), samples, progress=False)
    assert first.best_checkpoint.exists()  # nothing was deleted
    more = train(tmp_path / "run", data, tiny_train_config(epochs=2, iters_per_epoch=2), samples, progress=False)
    assert [h["epoch"] for h in more.history] == [1, 2]  # more epochs continue the run


def test_a_setting_added_since_a_run_reads_as_its_default_there(tiny_data, tmp_path):
    data, samples = tiny_data
    cfg = tiny_train_config(epochs=1, iters_per_epoch=2)
    train(tmp_path / "run", data, cfg, samples, progress=False)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    del config["data"]["rot90"], config["data"]["split_ratios"], config["train"]["lr_schedule"]  # as before them
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    assert train(tmp_path / "run", data, cfg, samples, progress=False).resumed_from_epoch == 1
    with pytest.raises(ConfigError, match=r"train.lr_schedule: 'constant' -> 'cosine'"):
        train(tmp_path / "run", data, tiny_train_config(epochs=1, iters_per_epoch=2, lr_schedule="cosine"), samples,
              progress=False)


def test_the_same_init_path_holding_other_weights_is_another_run(tiny_data, tmp_path):
    data, samples = tiny_data
    source = train(tmp_path / "source", data, tiny_train_config(epochs=1, iters_per_epoch=2), samples, progress=False)
    init = tmp_path / "init.safetensors"
    init.write_bytes(source.best_checkpoint.read_bytes())
    cfg = tiny_train_config(epochs=1, iters_per_epoch=2, init=str(init))
    first = train(tmp_path / "run", data, cfg, samples, progress=False)
    assert first.init is not None and first.init.complete
    assert train(tmp_path / "run", data, cfg, samples, progress=False).resumed_from_epoch == 1
    other = train(tmp_path / "other", data, tiny_train_config(epochs=1, iters_per_epoch=2, seed=1), samples,
                  progress=False)
    init.write_bytes(other.best_checkpoint.read_bytes())  # e.g. the source run retrained with --overwrite
    with pytest.raises(ConfigError, match=r"holds a different run; changed settings .*\n    init_digest: "):
        train(tmp_path / "run", data, cfg, samples, progress=False)


def test_a_missing_init_file_is_named_with_its_fix(tiny_data, tmp_path):
    data, samples = tiny_data
    missing = tmp_path / "nowhere" / "best.safetensors"
    with pytest.raises(InputError, match="nowhere") as caught:
        train(tmp_path / "run", data, tiny_train_config(epochs=1, iters_per_epoch=2, init=str(missing)), samples,
              progress=False)
    assert "fix" in str(caught.value).lower()


def _cli_train(root: Path, out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "weakloc.cli", "train", "--out", str(out), "--method", "patches", "--setup", "B",
            "--layout", "builtin", "--root", str(root), "--set", f"data.builtin_images={TINY['n']}",
            "--set", f"data.builtin_size={TINY['size']}", "--set", f"data.builtin_seed={TINY['seed']}", "--set", "data.builtin_preset=quick",
            "--set", "data.input_size=48", "--set", f"train.epochs={epochs}", "--set", "train.iters_per_epoch=25",
            "--set", "train.batch_size=4", "--set", "train.precision=fp32", "--set", "train.options={init='default'}"]


def _final_weights(run: Path) -> dict:
    return torch.load(run / STATE_FILE, weights_only=True)["model"]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_end_state(tiny_root, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    straight = subprocess.run(_cli_train(tiny_root, tmp_path / "straight", 4), env=env, capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr

    proc = subprocess.Popen(_cli_train(tiny_root, tmp_path / "killed", 4), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    history = tmp_path / "killed" / "history.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(json.loads(history.read_text() or "[]")) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; make epochs longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = torch.load(tmp_path / "killed" / STATE_FILE, weights_only=True)["epoch"]
    assert 1 <= done_before < 4

    resumed = subprocess.run(_cli_train(tiny_root, tmp_path / "killed", 4), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {tmp_path / 'killed'} after epoch {done_before}" in resumed.stderr + resumed.stdout
    a, b = _final_weights(tmp_path / "straight"), _final_weights(tmp_path / "killed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not list((tmp_path / "killed").glob("*.tmp*"))  # no half-written files


@pytest.mark.slow
def test_two_process_ddp_on_cpu_stays_in_sync(tiny_root, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONPATH": str(TESTS)}
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port),
           str(TESTS / "ddp_worker.py"), str(tiny_root), str(tmp_path / "ddp")]
    # its own process group, so that a hang kills torchrun's workers too, not only torchrun
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("2-process training did not finish in 240 s")
    assert proc.returncode == 0, stderr[-3000:]
    ranks = [json.loads((tmp_path / "ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == "2" and ranks[0]["sha"] == ranks[1]["sha"]  # identical weights and buffers
    losses = [[(h["train_loss"], h["val_loss"]) for h in r["history"]] for r in ranks]
    assert losses[0] == losses[1] and len(losses[0]) == 2  # the same all-reduced losses
    assert (tmp_path / "ddp" / "best.safetensors").exists()


def test_the_training_bar_moves_with_the_iterations(tiny_data, tmp_path, monkeypatch):
    """The bar shows iterations as they happen, not 0/N until the epoch ends."""
    import weakloc.train.loop as loop

    seen: list[tuple[int, int]] = []  # (bar count, total) each time the bar shows the loss

    class Bar:
        def __init__(self, *args, total=None, disable=False, **kwargs):
            self.n, self.total = 0, total

        def set_postfix(self, *args, **kwargs):
            seen.append((self.n, self.total))

        def update(self, k=1):
            self.n += k

        def close(self):
            pass

        @staticmethod
        def write(text):
            pass

    monkeypatch.setattr(loop, "tqdm", Bar)
    data, samples = tiny_data
    train(tmp_path / "run", data, tiny_train_config(epochs=1, iters_per_epoch=11), samples, progress=True)
    assert seen == [(0, 11), (5, 11), (10, 11)]  # iterations 1, 6 and 11 of 11


def test_cosine_schedule_and_quarter_turns_are_settings_of_a_run(tiny_data, tmp_path):
    from weakloc.train.loop import step_lr

    constant = tiny_train_config(epochs=2, iters_per_epoch=5, lr=1e-3)
    cosine = tiny_train_config(epochs=2, iters_per_epoch=5, lr=1e-3, lr_schedule="cosine")
    assert [step_lr(constant, s) for s in range(10)] == [1e-3] * 10
    rates = [step_lr(cosine, s) for s in range(10)]
    assert rates[0] == 1e-3 and rates[5] == pytest.approx(5e-4) and rates[-1] > 0
    assert all(a > b for a, b in zip(rates, rates[1:]))
    with pytest.raises(ConfigError, match="lr_schedule must be one of constant, cosine"):
        tiny_train_config(lr_schedule="linear")

    import dataclasses
    data, samples = tiny_data
    turned = dataclasses.replace(data, rot90=True)
    cfg = tiny_train_config(setup="C", epochs=1, iters_per_epoch=2, lr_schedule="cosine")
    result = train(tmp_path / "run", turned, cfg, samples, progress=False)
    card = read_card(result.best_checkpoint)
    assert card["rot90"] is True and card["official_preprocessing"] is False
    plain = train(tmp_path / "plain", data, cfg, samples, progress=False)
    assert read_card(plain.best_checkpoint)["official_preprocessing"] is True
    a, b = _final_weights(tmp_path / "run"), _final_weights(tmp_path / "plain")
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the turns changed what was learned
