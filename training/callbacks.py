"""Keras callbacks for training runs (imported only when training, so the CLI starts fast)."""

from __future__ import annotations

import logging
import time

import keras
from tqdm import tqdm

log = logging.getLogger(__name__)


class TimeBudget(keras.callbacks.Callback):
    """Stop fitting before an epoch that would overrun ``seconds`` of fitting.

    Gives two networks the same time budget (the seed baseline against ours). The next epoch is
    estimated by the slowest one so far, so the budget is kept, not overrun by most of an epoch.
    A resumed run passes the time its earlier sessions ``spent`` and their ``slowest`` epoch.
    """

    def __init__(self, seconds: float, spent: float = 0.0, slowest: float = 0.0) -> None:
        super().__init__()
        self.seconds = seconds
        self.spent = spent
        self.started = self.epoch_started = time.monotonic()
        self.slowest = slowest

    def fits_another(self, spent: float) -> bool:
        """Whether an epoch as slow as the slowest so far still ends within the budget."""
        return spent + self.slowest <= self.seconds

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.started = time.monotonic() - self.spent

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.monotonic()
        self.slowest = max(self.slowest, now - self.epoch_started)
        if not self.fits_another(now - self.started):
            log.info("time budget of %.1f min reached after epoch %d", self.seconds / 60, epoch + 1)
            self.model.stop_training = True


class Progress(keras.callbacks.Callback):
    """Show each epoch's batches with events per second, loss and the whole run's time left.

    Replaces Keras' own bar (fit with ``verbose=0``). ``events`` is the real (not padding) target
    events of one epoch; a batch is credited with an equal share, so the rate is exact at the end
    of an epoch and close during it. The session's first batch, which includes building the
    training step, is left out of the rate and the estimates. ``quiet`` gives one log line per
    epoch instead of a bar. ``seconds_left`` is what a time budget leaves, which caps the estimate.
    """

    def __init__(
        self, epochs: int, steps: int, events: int, quiet: bool = False, seconds_left: float | None = None
    ) -> None:
        super().__init__()
        self.epochs, self.steps, self.events, self.quiet = epochs, steps, events, quiet
        self.seconds_left = seconds_left
        self.last_epoch = 0.0
        self.began = self.epoch_began = self.clock_from = self.fitted = time.monotonic()
        self.epoch = self.steps_from = 0
        self.warm = False
        self.bar: tqdm | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.began = time.monotonic()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch, self.steps_from = epoch, 0
        self.epoch_began = self.clock_from = self.fitted = time.monotonic()
        if not self.quiet:
            desc = f"epoch {epoch + 1}/{self.epochs}"
            self.bar = tqdm(total=self.steps, desc=desc, unit="batch", dynamic_ncols=True)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.fitted = time.monotonic()
        done = batch + 1
        if not self.warm:
            self.warm, self.clock_from, self.steps_from = True, self.fitted, done
        if self.bar is None:
            return
        per_step = self._per_step(done)
        per_epoch = self.last_epoch or per_step * self.steps
        left = (self.steps - done) * per_step + per_epoch * (self.epochs - self.epoch - 1)
        loss = f"loss {float(logs['loss']):.4f}, " if logs and "loss" in logs else ""
        rate = self._rate(per_step)
        self.bar.set_postfix_str(f"{rate} events/s, {loss}{self._left(left)} left", refresh=False)
        self.bar.update(done - self.bar.n)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.last_epoch = time.monotonic() - self.epoch_began
        logs = logs or {}
        losses = ", ".join(f"{k} {float(logs[k]):.4f}" for k in ("loss", "val_loss") if k in logs)
        rate = self._rate(self._per_step(self.steps))
        left = self._left(self.last_epoch * (self.epochs - epoch - 1))
        summary = f"{losses}, {rate} events/s, {self.last_epoch:.0f} s, {left} left"
        if self.bar is None:
            log.info("epoch %d/%d: %s", epoch + 1, self.epochs, summary)
            return
        self.bar.set_postfix_str(summary, refresh=False)
        self.bar.close()
        self.bar = None

    def _per_step(self, done: int) -> float:
        """Seconds a batch takes, after the warm-up batch where there are others to go by."""
        if done > self.steps_from:
            return (self.fitted - self.clock_from) / (done - self.steps_from)
        return (self.fitted - self.epoch_began) / done

    def _rate(self, per_step: float) -> str:
        return f"{self.events / self.steps / max(per_step, 1e-9):,.0f}"

    def _left(self, seconds: float) -> str:
        if self.seconds_left is not None:
            seconds = min(seconds, max(0.0, self.seconds_left - (time.monotonic() - self.began)))
        return duration(seconds)


def duration(seconds: float) -> str:
    """``42 s``, ``12 min``, ``2 h 05 min``: short enough for a progress bar."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
