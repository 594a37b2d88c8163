"""Resuming a training run that was killed with SIGKILL ends where an uninterrupted run ends."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from composer.model import artifact
from tests.conftest import TINY, scale_piece
from training import resume
from training.train import TrainOptions, train

EPOCHS, KILLED_AFTER = 4, 2
REPO = Path(__file__).resolve().parents[1]

# The child trains, and after the checkpoint of epoch KILLED_AFTER is on disk it says so and waits
# to be killed.
CHILD = f"""
import time
from training.resume import Checkpoint
from training.train import train
from tests.test_training_resume import options, pieces

save = Checkpoint.on_epoch_end
def save_then_wait(self, epoch, logs=None):
    save(self, epoch, logs)
    if epoch + 1 == {KILLED_AFTER}:
        print("saved", flush=True)
        time.sleep(300)
Checkpoint.on_epoch_end = save_then_wait
train(options("killed"), pieces())
"""


def pieces():
    return [scale_piece(f"p{i}", 55 + i, "bach" if i % 2 else "folk", length=32) for i in range(6)]


def options(name, resume=False):
    return TrainOptions(
        out=Path("models") / name,
        model=dataclasses.replace(TINY, layers=1, dropout=0.3),  # dropout: random state must resume too
        epochs=EPOCHS,
        batch_size=8,
        sequence_length=16,
        validation=0.25,
        learning_rate=1e-2,
        patience=2,
        resume=resume,
        verbose=0,
    )


def start_child(cwd):
    """The child run, which trains and waits to be killed once its epoch-2 checkpoint is saved."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    return subprocess.Popen([sys.executable, "-c", CHILD], cwd=cwd, env=env, **pipes)


def kill_after_checkpoint(child):
    guard = threading.Timer(180, child.kill)
    guard.start()
    try:
        line = child.stdout.readline()
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        guard.cancel()
    assert line == "saved\n", child.stderr.read()[-3000:]
    assert child.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run killed after epoch 2 and resumed, and the same run uninterrupted; their folder."""
    root = tmp_path_factory.mktemp("resume")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        child = start_child(root)
        straight = train(options("straight"), pieces())  # meanwhile
        kill_after_checkpoint(child)
        state = json.loads((root / "models" / "runs" / "killed" / "state.json").read_text())
        assert state["epochs_done"] == KILLED_AFTER and not (root / "models" / "killed.cadenza").exists()
        resumed = train(options("killed", resume=True), pieces())
    return root, root / straight.path, root / resumed.path


def test_a_killed_run_resumes_to_the_same_network(runs):
    root, straight, resumed = (runs[0], artifact.load(runs[1]), artifact.load(runs[2]))
    assert resumed.training["resumed"] == {"times": 1, "after_epochs": [KILLED_AFTER]}
    assert straight.training["resumed"]["times"] == 0
    assert resumed.training["epochs_run"] == straight.training["epochs_run"] > KILLED_AFTER
    assert resumed.training["history"] == straight.training["history"]
    full = json.loads((root / "models" / "runs" / "straight" / "state.json").read_text())
    again = json.loads((root / "models" / "runs" / "killed" / "state.json").read_text())
    assert again["history"] == full["history"]  # unrounded floats: bit for bit
    assert again["early_stopping"] == full["early_stopping"]
    a, b = straight.weights, resumed.weights
    assert a.keys() == b.keys()
    for name in a:
        for x, y in zip(a[name], b[name], strict=True):
            np.testing.assert_array_equal(x, y, err_msg=name)


def test_tensorboard_gets_one_event_file_per_session(runs):
    root = runs[0]
    for name, sessions in (("straight", 1), ("killed", 2)):
        for part in ("train", "validation"):
            files = list((root / "models" / "runs" / name / "tensorboard" / part).glob("events.out.*"))
            assert len(files) == sessions, (name, part)


def test_resume_refuses_other_options_or_data(runs, monkeypatch):
    monkeypatch.chdir(runs[0])
    with pytest.raises(ValueError, match="differs in batch_size"):
        train(dataclasses.replace(options("killed", resume=True), batch_size=4), pieces())
    with pytest.raises(ValueError, match="differs in training data"):
        train(options("killed", resume=True), pieces()[:-1])


def test_without_resume_an_earlier_run_is_cleared_even_if_damaged(runs, tmp_path, caplog):
    folder = tmp_path / "killed"
    shutil.copytree(runs[0] / "models" / "runs" / "killed", folder)
    identity = json.loads((folder / "state.json").read_text())["identity"]
    (folder / "state.json").write_text('{"identity": ')  # damaged: refused for a resume, cleared otherwise
    with pytest.raises(ValueError, match="cannot be read"):
        resume.start(folder, identity, resume=True)
    caplog.set_level("INFO")
    state = resume.start(folder, identity, resume=False)
    assert "starting afresh" in caplog.text
    assert state.epochs_done == 0 and state.history == {}
    assert sorted(p.name for p in folder.iterdir()) == []  # checkpoints, state and TensorBoard logs
    assert resume.start(tmp_path / "new", identity, resume=True).epochs_done == 0
    assert "nothing to resume" in caplog.text
