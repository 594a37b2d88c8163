"""Training callbacks: the time budget and the progress display, on a clock the test moves."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from tests.conftest import TINY, scale_piece
from training import callbacks
from training.callbacks import Progress, TimeBudget, duration
from training.train import TrainOptions, train


class Clock:
    def __init__(self, now=100.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(callbacks.time, "monotonic", fake)
    return fake


def test_time_budget_counts_earlier_sessions_and_the_slowest_epoch(clock):
    budget = TimeBudget(10, spent=4, slowest=2)
    budget.set_model(SimpleNamespace(stop_training=False))
    budget.on_train_begin()
    budget.on_epoch_begin(0)
    clock.now += 3  # 7 s spent, slowest epoch 3 s: one more still fits in 10
    budget.on_epoch_end(0)
    assert not budget.model.stop_training
    budget.on_epoch_begin(1)
    clock.now += 1  # 8 s spent: a 3 s epoch would end at 11
    budget.on_epoch_end(1)
    assert budget.model.stop_training


def test_quiet_progress_logs_one_line_per_epoch(clock, caplog):
    caplog.set_level("INFO")
    progress = Progress(epochs=3, steps=4, events=400, quiet=True)
    progress.on_train_begin()
    progress.on_epoch_begin(0)
    for step in range(4):
        clock.now += 0.5
        progress.on_train_batch_end(step, {"loss": 2.0})
    clock.now += 1  # validation
    progress.on_epoch_end(0, {"loss": 1.5, "val_loss": 2.25})
    # 400 events in 2 s of batches; 3 s an epoch leaves 6 s for the other two.
    assert caplog.messages == ["epoch 1/3: loss 1.5000, val_loss 2.2500, 200 events/s, 3 s, 6 s left"]


def test_progress_bar_shows_rate_loss_and_the_whole_run_left(clock, capsys):
    progress = Progress(epochs=2, steps=4, events=400)
    progress.on_train_begin()
    progress.on_epoch_begin(0)
    clock.now += 5  # the first batch builds the training step
    progress.on_train_batch_end(0, {"loss": 3.0})
    progress.bar.refresh()
    assert "1/4" in capsys.readouterr().err
    # 100 events in 5 s; 3 more batches and 4 of the next epoch at that pace.
    assert progress.bar.postfix == "20 events/s, loss 3.0000, 35 s left"
    clock.now += 1
    progress.on_train_batch_end(1, {"loss": 2.0})
    assert progress.bar.postfix == "100 events/s, loss 2.0000, 6 s left"  # without the first batch
    progress.seconds_left = 8  # a time budget caps the estimate: 8 s less the 6 s spent
    progress.on_train_batch_end(1, {"loss": 2.0})
    assert progress.bar.postfix.endswith(", 2 s left")
    for step in (2, 3):
        clock.now += 1
        progress.on_train_batch_end(step, {"loss": 2.0})
    progress.on_epoch_end(0, {"loss": 2.0})
    assert "4/4" in capsys.readouterr().err and progress.bar is None


def test_durations():
    seconds = (4.4, 59, 61, 3000, 3599, 3600 + 5 * 60)
    assert [duration(s) for s in seconds] == ["4 s", "59 s", "1 min", "50 min", "1 h 00 min", "1 h 05 min"]


def test_a_tiny_budget_stops_after_one_epoch_and_a_resume_fits_nothing(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    caplog.set_level("INFO")
    pieces = [scale_piece(f"p{i}", 55 + i, "x", length=32) for i in range(4)]
    options = TrainOptions(
        out=tmp_path / "budget",
        model=dataclasses.replace(TINY, layers=1),
        epochs=5,
        batch_size=8,
        sequence_length=16,
        max_minutes=1e-4,
        tensorboard=False,
        verbose=2,
    )
    report = train(options, pieces)
    assert report.training["epochs_run"] == 1 and len(report.training["history"]["loss"]) == 1
    assert report.training["options"]["max_minutes"] == 1e-4
    assert report.training["events_per_second"] > 0
    assert "time budget of 0.0 min reached after epoch 1" in caplog.text
    assert "events/s" in next(m for m in caplog.messages if m.startswith("epoch 1/5: loss"))
    again = train(dataclasses.replace(options, resume=True), pieces)
    assert "no epochs left to fit" in caplog.text
    assert again.training["epochs_run"] == 1 and again.training["history"] == report.training["history"]
