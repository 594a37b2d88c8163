"""Training a model from sources to an exported artifact.

``train()`` collects pieces, splits them by piece, builds the vocabulary from the training part
(with optional transposition copies), fits the network on windows with a checkpoint every epoch
(:mod:`training.resume`, so ``--resume`` goes on after a kill) and early stopping on validation
loss, and exports one ``.cadenza`` artifact that records how it was made.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from composer.model import artifact
from composer.model.network import ModelConfig, build_model
from composer.model.vocabulary import PAD
from training import dataset, finetune
from training.corpora import corpus_set
from training.sources import Piece, collect, styles_of

if TYPE_CHECKING:
    import keras

    from composer.model.artifact import Artifact
    from training.resume import RunState

log = logging.getLogger(__name__)

LOSS_WEIGHTS = {"pitch": 1.0, "duration": 0.5, "ioi": 0.5, "velocity": 0.25}


@dataclass
class TrainOptions:
    """Everything a training run needs; defaults fit a 2-core CPU in well under an hour."""

    out: Path
    corpus: tuple[str, ...] = ()
    midi_dirs: tuple[Path, ...] = ()
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 30
    batch_size: int = 64
    sequence_length: int = 64
    learning_rate: float = 2e-3
    validation: float = 0.1
    transpose: tuple[int, ...] = (0,)
    max_pitch_sets: int = 3000
    patience: int = 4
    seed: int = 0
    max_files: dict[str, int] = field(default_factory=dict)
    """First N files per source name; ``\"*\"`` for every source not named."""
    max_minutes: float | None = None
    """Time budget for fitting: no epoch starts that would not finish within it."""
    base: Path | None = None
    """A model to fine-tune (:mod:`training.finetune`): its network size replaces ``model`` (which
    can only add line moves to it)."""
    runs_dir: Path | None = None
    """Folder of run folders (``RUNS/NAME``); None: ``runs`` beside the artifact (:func:`run_folder`)."""
    resume: bool = False
    """Go on from the last epoch saved in the run folder instead of starting afresh."""
    tensorboard: bool = True
    """Write TensorBoard logs to the run folder's ``tensorboard``."""
    verbose: int = 1
    """0: silent; 1: a progress bar per epoch; 2: one line per epoch."""
    workers: int | None = None
    command: str = ""


@dataclass
class TrainReport:
    """What a run produced: the artifact and the figures saved in it."""

    path: Path
    training: dict


def artifact_path(out: Path) -> Path:
    """``models/NAME`` or ``models/NAME.cadenza`` -> ``models/NAME.cadenza``."""
    out = Path(out)
    return out if out.suffix == artifact.SUFFIX else out.with_name(out.name + artifact.SUFFIX)


def run_folder(options: TrainOptions) -> Path:
    """Where a run keeps its checkpoints, state and TensorBoard logs: ``RUNS/NAME``, with ``RUNS``
    the ``--runs-dir`` or else ``runs`` beside the artifact (``models/runs/mine`` for ``models/mine``),
    never relative to the working folder alone."""
    target = artifact_path(options.out)
    return (options.runs_dir or target.parent / "runs") / target.stem


def train(options: TrainOptions, pieces: Sequence[Piece] | None = None) -> TrainReport:
    """Train and export. ``pieces`` skips collection (used by tests and by callers with data in hand)."""
    import keras

    from training import resume

    started = time.monotonic()
    keras.utils.set_random_seed(options.seed)
    failures: list[tuple[str, str]] = []
    if pieces is None:
        collected = collect(
            options.corpus,
            options.midi_dirs,
            options.workers,
            options.max_files or None,
            show_progress=options.verbose > 0,
        )
        pieces, failures = collected.pieces, collected.failures
    pieces = list(pieces)
    if not pieces:
        raise ValueError("no usable pieces were found in the given sources")
    parse_seconds = time.monotonic() - started
    train_pieces, valid_pieces = dataset.split_by_piece(pieces, options.validation, options.seed)
    augmented = [t for p in train_pieces for t in dataset.transpositions(p, options.transpose)]
    styles = styles_of(pieces)
    base = artifact.load(options.base) if options.base else None
    if base is not None:
        # The base's network, given line moves where this run asks for them and it has none.
        moves = base.config.line_moves or options.model.line_moves
        options = replace(options, model=replace(base.config, line_moves=moves))
        vocabulary = finetune.extended_vocabulary(
            base.vocabulary, (p.events for p in augmented), styles, options.max_pitch_sets
        )
    else:
        vocabulary = dataset.build_vocabulary(augmented, styles, options.max_pitch_sets)
    rows, style_ids, unknown_train = dataset.encode_pieces(augmented, vocabulary)
    train_windows = dataset.windows(rows, style_ids, options.sequence_length, options.sequence_length // 2)
    valid_windows, unknown_valid = None, 0
    if valid_pieces:
        rows, style_ids, unknown_valid = dataset.encode_pieces(valid_pieces, vocabulary)
        valid_windows = dataset.windows(rows, style_ids, options.sequence_length)
    log.info(
        "%d pieces (%d for validation), %d training windows, vocabulary %s",
        len(pieces),
        len(valid_pieces),
        len(train_windows),
        vocabulary.sizes,
    )

    target = artifact_path(options.out)
    run_dir = run_folder(options)
    windows = [w for w in (train_windows, valid_windows) if w is not None]
    data = resume.data_digest(a for w in windows for part in (w.inputs, w.targets) for a in part.values())
    state = resume.start(run_dir, {"options": _fit_options(options), "data": data}, options.resume)
    model = build_model(options.model, vocabulary.sizes, len(vocabulary.styles), vocabulary.outlines)
    if base is not None:
        finetune.transplant(base, vocabulary, model)
    model.compile(
        optimizer=keras.optimizers.Adam(options.learning_rate, clipnorm=1.0),
        loss={
            f"next_{name}": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD)
            for name in options.model.heads
        },
        loss_weights={f"next_{name}": LOSS_WEIGHTS[name] for name in options.model.heads},
    )
    best = resume.restore(model, run_dir, state) if state.epochs_done else None
    _fit(model, options, train_windows, valid_windows, run_dir, state, best)
    losses = {k: [round(v, 5) for v in vals] for k, vals in state.history.items()}
    monitor = "val_loss" if valid_windows is not None else "loss"
    best_epoch = int(min(range(len(losses[monitor])), key=losses[monitor].__getitem__))
    training = {
        "command": options.command,
        "sources": {
            "corpus": list(options.corpus),
            "midi_dirs": [str(d) for d in options.midi_dirs],
            "licences": _licences(options.corpus, base),
        },
        "fine_tuned_from": None
        if base is None
        else {"model": str(options.base), "sources": base.training.get("sources", {})},
        "pieces": {"train": len(train_pieces), "validation": len(valid_pieces), "skipped": len(failures)},
        "validation_pieces": sorted(p.name for p in valid_pieces),
        "events": {
            "train": dataset.count_events(augmented),
            "validation": dataset.count_events(valid_pieces),
        },
        "mapped_values": {"train": unknown_train, "validation": unknown_valid},
        "options": {
            "epochs": options.epochs,
            "batch_size": options.batch_size,
            "sequence_length": options.sequence_length,
            "learning_rate": options.learning_rate,
            "validation": options.validation,
            "transpose": list(options.transpose),
            "max_pitch_sets": options.max_pitch_sets,
            "patience": options.patience,
            "seed": options.seed,
            "max_files": options.max_files,
            "max_minutes": options.max_minutes,
        },
        "epochs_run": state.epochs_done,
        "best_epoch": best_epoch + 1,
        "history": losses,
        "resumed": {"times": len(state.resumed_after), "after_epochs": state.resumed_after},
        "events_per_second": round(train_windows.events * state.epochs_done / max(state.seconds, 1e-9)),
        "seconds": {"parse": round(parse_seconds, 1), "fit": round(state.seconds, 1)},
        "machine": _machine(),
        "versions": _versions(),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    defaults = dataset.tempo_defaults(pieces) | dataset.key_defaults(train_pieces) | {"program": 0}
    path = artifact.save(target, model, vocabulary, options.model, training=training, defaults=defaults)
    return TrainReport(path, training)


def _licences(corpus: Sequence[str], base: Artifact | None) -> list[dict]:
    """The licence of every set this model learnt from, its base's included, each set once."""
    inherited = base.training.get("sources", {}).get("licences", []) if base is not None else []
    named = [corpus_set(name).to_dict(name) for name in corpus]
    seen = {entry["name"] for entry in named}
    return named + [entry for entry in inherited if entry.get("name") not in seen]


def _fit(
    model: keras.Model,
    options: TrainOptions,
    train_windows: dataset.Windows,
    valid_windows: dataset.Windows | None,
    run_dir: Path,
    state: RunState,
    best: list | None,
) -> None:
    """Fit from the epoch ``state`` has reached to the last one (or until a callback stops it),
    saving the run after every epoch; the model ends with the best epoch's weights."""
    import keras

    from training import resume
    from training.callbacks import Progress, TimeBudget

    heads, batch = options.model.heads, options.batch_size
    monitor = "val_loss" if valid_windows is not None else "loss"
    stopping = keras.callbacks.EarlyStopping(
        monitor=monitor, patience=options.patience, restore_best_weights=True
    )
    budget = None
    if options.max_minutes is not None:
        slowest = max(state.epoch_seconds, default=0.0)
        budget = TimeBudget(options.max_minutes * 60, spent=state.seconds, slowest=slowest)
    if (
        state.stopped_early
        or state.epochs_done >= options.epochs
        or (budget is not None and not budget.fits_another(state.seconds))
    ):
        log.info("%s has no epochs left to fit (%d done)", run_dir, state.epochs_done)
        if best is not None:
            model.set_weights(best)
        return
    callbacks = [stopping, *([budget] if budget is not None else [])]
    callbacks.append(resume.Checkpoint(run_dir, state, stopping, best))  # after what it records
    if options.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(run_dir / resume.TENSORBOARD))
    steps = dataset.batches_per_epoch(train_windows, batch)
    if options.verbose:
        left = budget.seconds - state.seconds if budget is not None else None
        callbacks.append(Progress(options.epochs, steps, train_windows.events, options.verbose > 1, left))
    epochs = range(state.epochs_done, options.epochs)
    given = options.model.given
    valid_ds = None if valid_windows is None else dataset.to_tf_dataset(valid_windows, heads, batch, given)
    model.fit(
        dataset.training_batches(train_windows, heads, batch, options.seed, epochs, given),
        validation_data=valid_ds,
        initial_epoch=epochs.start,
        epochs=epochs.stop,
        steps_per_epoch=steps,
        shuffle=False,  # each epoch's batches come shuffled
        callbacks=callbacks,
        verbose=0,
    )


def _fit_options(options: TrainOptions) -> dict:
    """The options that change what fitting gives: a resume must use the same ones."""
    return {
        "model": options.model.to_dict(),
        "batch_size": options.batch_size,
        "sequence_length": options.sequence_length,
        "learning_rate": options.learning_rate,
        "patience": options.patience,
        "seed": options.seed,
    }


def _machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def _versions() -> dict[str, str]:
    import keras
    import music21
    import tensorflow as tf

    return {"keras": keras.__version__, "tensorflow": tf.__version__, "music21": music21.__version__}
