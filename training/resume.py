"""A run's progress in ``runs/NAME``, saved after every epoch so that a killed run can go on.

After each epoch :class:`Checkpoint` writes the network with its optimizer state
(``epoch-NNNN.keras``), keeps the best epoch's file for early stopping, and then replaces
``state.json``: epochs done, history, early stopping's counters, fitting time spent, the dropout
layers' random state, and what the run was made from. The JSON names the files it belongs to and
is replaced in one step, so a run killed at any moment goes on from one consistent epoch. The
batches of an epoch depend only on the seed and the epoch (:func:`training.dataset.training_batches`),
so a resumed run ends with the same network as one that never stopped. Imported only when
training, like :mod:`training.callbacks`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np

log = logging.getLogger(__name__)

STATE = "state.json"
TENSORBOARD = "tensorboard"
"""TensorBoard's folder inside the run folder."""


@dataclass
class RunState:
    """Everything besides the checkpoint files that a run needs to go on where it stopped."""

    identity: dict
    """``{"options": ..., "data": digest}``: what the run was made from; a resume must match it."""
    epochs_done: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    """Fitting time of the epochs done, over all sessions (the time budget counts this)."""
    early_stopping: dict = field(default_factory=dict)
    """Early stopping's ``wait``, ``best``, ``best_epoch`` and whether it ``stopped`` the run."""
    seeds: list[list[int]] = field(default_factory=list)
    """Each dropout layer's random state, which the ``.keras`` format does not keep."""
    checkpoint: str | None = None
    best_checkpoint: str | None = None
    resumed_after: list[int] = field(default_factory=list)
    """The epoch count at each resume."""

    @property
    def stopped_early(self) -> bool:
        """Whether early stopping ended the run: a resume then fits nothing more."""
        return bool(self.early_stopping.get("stopped"))


def data_digest(arrays: Iterable[np.ndarray]) -> str:
    """A hash of the training and validation windows, so a resume on other data is noticed."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str((array.dtype, array.shape)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def start(folder: Path, identity: dict, resume: bool) -> RunState:
    """The saved state to go on from (with ``resume``), or a fresh one after clearing an earlier
    run's files. A saved run made from other options or data is refused, not mixed in."""
    identity = json.loads(json.dumps(identity))  # tuples become lists, as in the saved JSON
    path = folder / STATE
    if resume and path.is_file():
        saved = _read(path)
        _check_same_run(folder, saved.identity, identity)
        missing = [n for n in (saved.checkpoint, saved.best_checkpoint) if n and not (folder / n).is_file()]
        if missing:
            raise ValueError(f"{path} names {', '.join(missing)}, which is missing; start afresh")
        log.info("resuming %s after epoch %d", folder, saved.epochs_done)
        saved.resumed_after.append(saved.epochs_done)
        return saved
    if resume:
        log.info("nothing to resume in %s: starting afresh", folder)
    elif path.is_file() or any(folder.glob("epoch-*.keras")):
        log.info("%s holds an earlier run: starting afresh (--resume would go on with it)", folder)
    _clear(folder)
    return RunState(identity)


def restore(model: keras.Model, folder: Path, state: RunState) -> list[np.ndarray] | None:
    """Put the last checkpoint's weights, optimizer state and dropout random state into ``model``
    (compiled, as for a fresh run); return the best epoch's weights for early stopping."""
    model.optimizer.build(model.trainable_variables)
    best = None
    if state.best_checkpoint:
        model.load_weights(folder / state.best_checkpoint)
        best = model.get_weights()
    model.load_weights(folder / state.checkpoint)
    for variable, value in zip(_seed_states(model), state.seeds, strict=True):
        variable.assign(np.asarray(value, dtype=variable.dtype))
    return best


def _check_same_run(folder: Path, saved: dict, wanted: dict) -> None:
    options = sorted(set(saved["options"]) | set(wanted["options"]))
    differ = [k for k in options if saved["options"].get(k) != wanted["options"].get(k)]
    if saved["data"] != wanted["data"]:
        differ.append("training data")  # other sources, --max-files, --transpose, --validation...
    if differ:
        raise ValueError(
            f"cannot resume {folder}: the saved run differs in {', '.join(differ)}. "
            "Run without --resume to start afresh, or use another --out."
        )


def _read(path: Path) -> RunState:
    try:
        return RunState(**json.loads(path.read_text()))
    except (ValueError, TypeError) as error:  # not JSON, or not this version's fields
        raise ValueError(f"{path} cannot be read ({error}); start afresh without --resume") from None


def _write(folder: Path, state: RunState) -> None:
    """Replace ``state.json`` in one step, then delete checkpoints it no longer names."""
    partial = folder / f".{STATE}.partial"
    partial.write_text(json.dumps(asdict(state), indent=1))
    os.replace(partial, folder / STATE)
    keep = {state.checkpoint, state.best_checkpoint}
    for old in folder.glob("epoch-*.keras"):
        if old.name not in keep:
            old.unlink()


def _clear(folder: Path) -> None:
    """Remove the files an earlier run left (checkpoints, state, TensorBoard logs)."""
    (folder / STATE).unlink(missing_ok=True)
    for old in folder.glob("epoch-*.keras"):
        old.unlink()
    shutil.rmtree(folder / TENSORBOARD, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def _seed_states(model: keras.Model) -> list:
    """The random-state variables of the model's dropout layers, in layer order."""
    return [v for v in model.variables if v.name == "seed_generator_state"]


class Checkpoint(keras.callbacks.Callback):
    """Save the run after every epoch, and give early stopping back its counters on a resume.

    List it after early stopping and any time budget, so it records what they decided. ``best``
    is the best epoch's weights that :func:`restore` returned.
    """

    def __init__(
        self,
        folder: Path,
        state: RunState,
        early_stopping: keras.callbacks.EarlyStopping,
        best: list[np.ndarray] | None = None,
    ) -> None:
        super().__init__()
        self.folder, self.state, self.early_stopping, self.best = folder, state, early_stopping, best
        self.began = self.epoch_began = time.monotonic()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.began = time.monotonic() - self.state.seconds
        saved, stopping = self.state.early_stopping, self.early_stopping
        if saved:
            stopping.wait, stopping.best = saved["wait"], saved["best"]
            stopping.best_epoch, stopping.best_weights = saved["best_epoch"], self.best

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_began = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now, state, stopping = time.monotonic(), self.state, self.early_stopping
        state.epochs_done = epoch + 1
        state.seconds = now - self.began
        state.epoch_seconds.append(now - self.epoch_began)
        for key, value in (logs or {}).items():
            state.history.setdefault(key, []).append(float(value))
        state.early_stopping = {
            "wait": stopping.wait,
            "best": None if stopping.best is None else float(stopping.best),
            "best_epoch": stopping.best_epoch,
            "stopped": stopping.stopped_epoch > 0,
        }
        state.checkpoint = f"epoch-{epoch + 1:04d}.keras"
        self.model.save(self.folder / state.checkpoint)
        if stopping.best_epoch == epoch:
            state.best_checkpoint = state.checkpoint
        state.seeds = [np.asarray(v).tolist() for v in _seed_states(self.model)]
        _write(self.folder, state)
