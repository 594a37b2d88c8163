"""The networks, built with the Keras functional API.

``lstm`` (the default): an embedding per event field and for the style, concatenated, stacked
LSTMs, one softmax head per field. With ``chained`` heads (every model trained since they came),
each field is predicted knowing the fields of the same event chosen before it: the duration
knows the chord, the gap knows chord and duration, the loudness all three. Independent heads
drew a gap that did not fit the duration (rests where the music has none) and a duration that did
not fit the chord; in training the chosen fields are the targets themselves (teacher forcing).

With ``line_moves``, the chord head also scores every candidate chord by how its lowest and
highest notes move from the chord just played: a small dense layer gives, from the LSTM's state,
a logit for each move of the bass and of the top line (-13 to +13 semitones, the ends standing for
anything wider), and the ``LineMoves`` layer adds the two logits that fit each chord. With chords as
4,000 unrelated ids, "the bass steps down from D" has to be learnt for every D chord apart;
here it is one number for all of them, so smooth voice leading is cheap to learn.

``seed``: the original tutorial's network, kept as a baseline
for comparison: the pitch id scaled to a float, three LSTMs of 512, a dense layer of 256 and a
pitch head only (everything else is an eighth note).

Layer names are part of the artifact format: :mod:`composer.model.stepper` reads weights by name.
Heads output logits; the softmax is applied in the loss and in sampling.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from composer.model.vocabulary import FIELDS

if TYPE_CHECKING:
    import keras

ARCHITECTURES = ("lstm", "seed")
MOVE_REACH = 13
"""The widest move of a line that the ``LineMoves`` layer tells apart, in semitones (an octave and one)."""
MOVES = 2 * MOVE_REACH + 1
"""Logits per line: moves from ``-MOVE_REACH`` to ``+MOVE_REACH``."""


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a network. ``arch`` picks the family; the rest sizes it."""

    arch: str = "lstm"
    units: int = 256
    layers: int = 2
    dropout: float = 0.2
    pitch_embedding: int = 96
    rhythm_embedding: int = 16
    velocity_embedding: int = 8
    style_embedding: int = 8
    dense_units: int = 0
    chained: bool = True
    """Each field's head also sees the fields of the same event chosen before it (see above)."""
    line_moves: bool = False
    """The chord head also scores each chord by how its bass and top line move (see above)."""

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; choose one of {ARCHITECTURES}")
        if self.units < 1 or self.layers < 1 or not 0 <= self.dropout < 1:
            raise ValueError("units and layers must be positive and dropout in [0, 1)")
        if self.line_moves and self.arch == "seed":
            raise ValueError("line moves need the lstm network; the seed network has one head of its own")

    @classmethod
    def seed(cls) -> ModelConfig:
        """The original tutorial's network size."""
        return cls(arch="seed", units=512, layers=3, dropout=0.3, dense_units=256)

    @property
    def heads(self) -> tuple[str, ...]:
        """The fields this network predicts."""
        return ("pitch",) if self.arch == "seed" else FIELDS

    def embedding_size(self, name: str) -> int:
        """Embedding width for an input field or ``"style"``."""
        return {
            "pitch": self.pitch_embedding,
            "duration": self.rhythm_embedding,
            "ioi": self.rhythm_embedding,
            "velocity": self.velocity_embedding,
            "style": self.style_embedding,
        }[name]

    def to_dict(self) -> dict:
        """JSON-ready form; :meth:`from_dict` restores an equal config."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Rebuild a config, ignoring keys this version does not know (a model saved before chained
        heads or line moves existed has neither)."""
        known = {f.name for f in fields(cls)}
        return cls(**{"chained": False, "line_moves": False, **{k: v for k, v in data.items() if k in known}})

    @property
    def given(self) -> tuple[str, ...]:
        """The fields a training step is given from the event it predicts (teacher forcing)."""
        return tuple(dict.fromkeys(f for name in self.heads for f in self.conditions(name)))

    def conditions(self, name: str) -> tuple[str, ...]:
        """The fields of the same event that the head of ``name`` sees (none when not chained)."""
        if not self.chained or self.arch == "seed":
            return ()
        return FIELDS[: FIELDS.index(name)]


def build_model(
    config: ModelConfig, sizes: dict[str, int], n_styles: int, outlines: np.ndarray | None = None
) -> keras.Model:
    """Build the training network: inputs are id sequences per field plus ``style``, shape ``(batch, time)``.

    Returns a ``keras.Model`` whose outputs are per-field logits for the next event, named
    ``next_<field>``, shape ``(batch, time, vocab)``. ``outlines`` (``Vocabulary.outlines``: each
    pitch id's lowest and highest note) is needed for ``line_moves``.
    """
    import keras
    from keras import layers

    if config.arch == "seed":
        return _build_seed(config, sizes)
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in (*FIELDS, "style")}
    embeddings = {
        name: layers.Embedding(sizes[name], config.embedding_size(name), name=f"embed_{name}")
        for name in FIELDS
    }
    embedded = [embeddings[name](inputs[name]) for name in FIELDS]
    embedded.append(
        layers.Embedding(n_styles, config.embedding_size("style"), name="embed_style")(inputs["style"])
    )
    x = layers.Concatenate(name="events")(embedded)
    for i in range(config.layers):
        x = layers.LSTM(config.units, return_sequences=True, name=f"lstm_{i}")(x)
        x = layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    if config.dense_units:
        x = layers.Dense(config.dense_units, activation="relu", name="hidden")(x)
    outputs = {}
    for name in FIELDS:
        seen = config.conditions(name)
        for field in seen:
            if f"given_{field}" not in inputs:
                inputs[f"given_{field}"] = keras.Input(shape=(None,), dtype="int32", name=f"given_{field}")
        features = [x] + [embeddings[field](inputs[f"given_{field}"]) for field in seen]
        joined = layers.Concatenate(name=f"sees_{name}")(features) if seen else x
        head = layers.Dense(sizes[name], name=f"next_{name}")(joined)
        if name == "pitch" and config.line_moves:
            if outlines is None or len(outlines) != sizes["pitch"]:
                raise ValueError("line moves need the outline of every pitch id")
            # Zeros to start with, so a model given line moves to fine-tune starts where it was.
            moves = layers.Dense(2 * MOVES, kernel_initializer="zeros", name="moves")(joined)
            head = layers.Add(name="next_pitch_moved")(
                [head, line_moves_layer()(outlines, name="line_moves")([moves, inputs["pitch"]])]
            )
        outputs[f"next_{name}"] = head
    return keras.Model(inputs=inputs, outputs=outputs, name="composer_lstm")


@functools.cache
def line_moves_layer() -> type[keras.layers.Layer]:
    """The ``LineMoves`` layer class, registered with Keras for loading; defined on first use so
    that generation, which reads the weights without Keras, never imports it."""
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="cadenza", name="LineMoves")
    class LineMoves(keras.layers.Layer):
        """Each chord's move logits: for every pitch id, the logit of its bass's move plus that of
        its top line's move from the chord just played (0 after a marker, and for the markers).
        Inputs: the move logits ``(batch, time, 2 * MOVES)`` and the pitch ids just played."""

        def __init__(self, outlines: np.ndarray | None = None, size: int | None = None, **kwargs) -> None:
            super().__init__(**kwargs)
            self.size = int(size if size is not None else len(outlines))
            self._initial = None if outlines is None else np.asarray(outlines, np.float32)

        def build(self, input_shape: tuple) -> None:
            # The outlines are a weight (not trainable) so they are saved with the model.
            self.outlines = self.add_weight(
                shape=(self.size, 2), initializer="zeros", trainable=False, name="outlines"
            )
            if self._initial is not None:
                self.outlines.assign(self._initial)

        def call(self, inputs: list) -> keras.KerasTensor:
            moves, previous = inputs
            before = ops.take(self.outlines, ops.cast(previous, "int32"), axis=0)  # (batch, time, 2)
            found = 0.0
            for line in (0, 1):
                move = self.outlines[:, line] - before[..., line : line + 1]  # (batch, time, ids)
                index = ops.clip(move, -MOVE_REACH, MOVE_REACH) + (MOVE_REACH + line * MOVES)
                found = found + ops.take_along_axis(moves, ops.cast(index, "int32"), axis=-1)
            known = ops.logical_and(before[..., :1] >= 0, self.outlines[:, 0] >= 0)
            return ops.where(known, found, 0.0)

        def get_config(self) -> dict:
            return {**super().get_config(), "size": self.size}

    return LineMoves


def move_logits(moves: np.ndarray, outlines: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """What the ``LineMoves`` layer computes, in numpy, for one step: ``moves`` ``(batch, 2 * MOVES)``,
    ``previous`` the pitch id each piece just played; returns ``(batch, ids)``."""
    before = outlines[previous]
    found = np.zeros((len(previous), len(outlines)), np.float32)
    # A move's logit depends only on the note moved to: look each of the 128 up once per piece,
    # then gather by every chord's note (a twentieth of the work of clipping thousands of moves).
    notes = np.clip(outlines, 0, 127)  # the markers read note 0, and are zeroed below
    pitches = np.arange(128)
    for line in (0, 1):
        move = pitches[None, :] - before[:, line : line + 1]
        index = np.clip(move, -MOVE_REACH, MOVE_REACH) + MOVE_REACH + line * MOVES
        found += np.take_along_axis(moves, index, axis=1)[:, notes[:, line]]
    found[before[:, 0] < 0] = 0.0
    found[:, outlines[:, 0] < 0] = 0.0
    return found


def _build_seed(config: ModelConfig, sizes: dict[str, int]) -> keras.Model:
    """The tutorial's network: a float input (id / vocabulary size), no embedding."""
    import keras
    from keras import layers

    pitch = keras.Input(shape=(None,), dtype="float32", name="pitch")
    x = layers.Reshape((-1, 1), name="as_feature")(pitch)
    x = layers.Rescaling(1.0 / sizes["pitch"], name="scale")(x)
    for i in range(config.layers):
        x = layers.LSTM(config.units, return_sequences=True, name=f"lstm_{i}")(x)
        x = layers.Dropout(config.dropout, name=f"dropout_{i}")(x)
    x = layers.Dense(config.dense_units, name="hidden")(x)
    x = layers.Dropout(config.dropout, name="dropout_hidden")(x)
    outputs = {"next_pitch": layers.Dense(sizes["pitch"], name="next_pitch")(x)}
    return keras.Model(inputs={"pitch": pitch}, outputs=outputs, name="seed_lstm")
