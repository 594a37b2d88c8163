"""From pieces to training batches: vocabulary, split by piece, windows, ``tf.data``.

Each piece becomes token rows framed by start and end markers; the network sees a window of
rows and learns the row after each one. The split is by piece, so no piece is in both the
training and the validation set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from composer.events import TICKS_PER_QUARTER
from composer.keys import detect_key
from composer.model.vocabulary import FIELDS, PAD, Vocabulary
from training.sources import Piece

if TYPE_CHECKING:
    import tensorflow as tf

PIANO_RANGE = (21, 108)


@dataclass
class Windows:
    """Training windows: ``inputs[f]`` and ``targets[f]`` shaped ``(n, length)`` per field, plus style."""

    inputs: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.inputs["style"])

    @property
    def events(self) -> int:
        """Number of real (non-padding) target events."""
        return int((self.targets["pitch"] != PAD).sum())


def split_by_piece(
    pieces: Sequence[Piece], validation: float, seed: int = 0
) -> tuple[list[Piece], list[Piece]]:
    """Shuffle pieces with ``seed`` and hold out a share of them (at least one when there are two)."""
    order = np.random.default_rng(seed).permutation(len(pieces))
    held = round(len(pieces) * validation)
    if validation > 0 and len(pieces) >= 2:
        held = max(1, held)
    held_out = {int(i) for i in order[:held]}
    train = [p for i, p in enumerate(pieces) if i not in held_out]
    valid = [p for i, p in enumerate(pieces) if i in held_out]
    return train, valid


def transpositions(piece: Piece, semitones: Sequence[int]) -> list[Piece]:
    """Copies of ``piece`` moved by each shift that keeps every pitch on the piano."""
    low = min(min(e.pitches) for e in piece.events)
    high = max(max(e.pitches) for e in piece.events)
    out = []
    for shift in semitones:
        if shift == 0:
            out.append(piece)
        elif PIANO_RANGE[0] <= low + shift and high + shift <= PIANO_RANGE[1]:
            moved = tuple(e.transposed(shift) for e in piece.events)
            out.append(Piece(f"{piece.name}{shift:+d}", piece.style, moved, piece.tempo))
    return out


def build_vocabulary(pieces: Sequence[Piece], styles: Sequence[str], max_pitch_sets: int) -> Vocabulary:
    """The vocabulary of the training pieces."""
    return Vocabulary.build((p.events for p in pieces), styles=styles, max_pitch_sets=max_pitch_sets)


def encode_pieces(pieces: Sequence[Piece], vocabulary: Vocabulary) -> tuple[list[np.ndarray], list[int], int]:
    """Token rows per piece, style id per piece, and how many values had to be mapped."""
    rows, styles, unknown = [], [], 0
    for piece in pieces:
        encoded = vocabulary.encode(list(piece.events))
        rows.append(encoded.rows)
        styles.append(vocabulary.style_id(piece.style))
        unknown += encoded.unknown
    return rows, styles, unknown


def windows(
    rows: Sequence[np.ndarray], styles: Sequence[int], length: int, stride: int | None = None
) -> Windows:
    """Cut every piece into windows of ``length`` steps (the last one padded), ``stride`` apart."""
    stride = stride or length
    xs, ys, ss = [], [], []
    for piece, style in zip(rows, styles, strict=True):
        last_start = max(0, len(piece) - 1 - length)
        starts = list(range(0, last_start + 1, stride))
        if starts[-1] != last_start:
            starts.append(last_start)
        for start in starts:
            x = np.full((length, 4), PAD, np.int32)
            y = np.full((length, 4), PAD, np.int32)
            chunk = piece[start : start + length + 1]
            x[: len(chunk) - 1] = chunk[:-1]
            y[: len(chunk) - 1] = chunk[1:]
            xs.append(x)
            ys.append(y)
            ss.append(np.full(length, style, np.int32))
    x = np.stack(xs)
    y = np.stack(ys)
    inputs = {name: x[:, :, i] for i, name in enumerate(FIELDS)}
    inputs["style"] = np.stack(ss)
    targets = {name: y[:, :, i] for i, name in enumerate(FIELDS)}
    return Windows(inputs, targets)


def _tensors(
    data: Windows, heads: Sequence[str], given: Sequence[str] = ()
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The network's inputs and the targets of its ``heads``, keyed as the model names them; the
    ``given`` fields of the predicted event are inputs too (chained heads, teacher forcing)."""
    targets = {f"next_{name}": data.targets[name] for name in heads}
    inputs = dict(data.inputs) if "duration" in heads else {"pitch": data.inputs["pitch"]}
    inputs.update({f"given_{name}": data.targets[name] for name in given})
    return inputs, targets


def to_tf_dataset(
    data: Windows, heads: Sequence[str], batch: int, given: Sequence[str] = ()
) -> tf.data.Dataset:
    """A ``tf.data`` pipeline of ``(inputs, targets)`` batches in order (for validation), prefetched."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(_tensors(data, heads, given))
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)


def training_batches(
    data: Windows, heads: Sequence[str], batch: int, seed: int, epochs: range, given: Sequence[str] = ()
) -> tf.data.Dataset:
    """The shuffled batches of every epoch in ``epochs``, one epoch after the other.

    Each epoch's order is a stateless shuffle seeded by ``(seed, epoch)``, so it depends on nothing
    else: a run resumed at epoch 5 sees the same batches as one that never stopped. Fit with
    ``steps_per_epoch=batches_per_epoch(...)`` so Keras keeps reading the one stream.
    """
    import tensorflow as tf

    inputs, targets = ({k: tf.constant(v) for k, v in part.items()} for part in _tensors(data, heads, given))
    count = len(data)

    def epoch_batches(epoch: tf.Tensor) -> tf.data.Dataset:
        key = tf.stack([tf.constant(seed, tf.int64), epoch])
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=key)
        return (
            tf.data.Dataset.from_tensor_slices(order)
            .batch(batch)
            .map(lambda ids: tf.nest.map_structure(lambda t: tf.gather(t, ids), (inputs, targets)))
        )

    ds = tf.data.Dataset.range(epochs.start, epochs.stop).flat_map(epoch_batches)
    return ds.prefetch(tf.data.AUTOTUNE)


def batches_per_epoch(data: Windows, batch: int) -> int:
    """Training steps in one epoch (the last batch may be short)."""
    return -(-len(data) // batch)


def typical_tempo(pieces: Sequence[Piece]) -> float:
    """The median tempo of the pieces, the default for new pieces in their style."""
    return float(np.median([p.tempo for p in pieces])) if pieces else 100.0


def quarters_per_event(pieces: Sequence[Piece]) -> float:
    """The mean time from one event to the next, in quarter notes: with the tempo, how long N
    events of this music last."""
    iois = [event.ioi for piece in pieces for event in piece.events]
    return float(np.mean(iois)) / TICKS_PER_QUARTER if iois else 1.0


def tempo_defaults(pieces: Sequence[Piece]) -> dict:
    """The artifact's tempo defaults: overall, and per style (a folk tune and a chorale move at
    different speeds), with each style's quarter notes per event, so that the command line can
    say how long a piece of N notes and chords lasts."""
    styles = sorted({p.style for p in pieces})
    by_style = {s: [p for p in pieces if p.style == s] for s in styles}
    return {
        "tempo": round(typical_tempo(pieces), 1),
        "tempo_by_style": {s: round(typical_tempo(group), 1) for s, group in by_style.items()},
        "quarters_per_event_by_style": {
            s: round(quarters_per_event(group), 3) for s, group in by_style.items()
        },
    }


def key_defaults(pieces: Sequence[Piece]) -> dict:
    """The artifact's key spread per style (key name -> share of pieces), from the pieces as they
    were written (before transposed copies), for new pieces to spread over keys the same way."""
    found: dict[str, Counter] = {}
    for piece in pieces:
        found.setdefault(piece.style, Counter())[str(detect_key(piece.events))] += 1
    return {
        "keys_by_style": {
            style: {key: round(n / sum(counts.values()), 4) for key, n in sorted(counts.items())}
            for style, counts in sorted(found.items())
        }
    }


def count_events(pieces: Sequence[Piece]) -> int:
    """Total events in ``pieces``."""
    return sum(len(p.events) for p in pieces)
