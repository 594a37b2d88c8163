"""Keras callbacks for training runs (imported only when training, so the CLI starts fast)."""

from __future__ import annotations

import logging
import time

import keras

log = logging.getLogger(__name__)


class TimeBudget(keras.callbacks.Callback):
    """Stop fitting before an epoch that would overrun ``seconds`` of fitting.

    Gives two networks the same time budget (the seed baseline against ours). The next epoch is
    estimated by the slowest one so far, so the budget is kept, not overrun by most of an epoch.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.started = self.epoch_started = time.monotonic()
        self.slowest = 0.0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.started = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.monotonic()
        self.slowest = max(self.slowest, now - self.epoch_started)
        if now - self.started + self.slowest > self.seconds:
            log.info("time budget of %.1f min reached after epoch %d", self.seconds / 60, epoch + 1)
            self.model.stop_training = True
