"""The networks, built with the Keras functional API.

``lstm`` (the default): an embedding per event field and for the style, concatenated, stacked
LSTMs, one softmax head per field. With ``chained`` heads (every model trained since they came),
each field is predicted knowing the fields of the same event chosen before it: the duration
knows the chord, the gap knows chord and duration, the loudness all three. Independent heads
drew a gap that did not fit the duration (rests where the music has none) and a duration that did
not fit the chord; in training the chosen fields are the targets themselves (teacher forcing).

``seed``: the original tutorial's network, kept as a baseline
for comparison: the pitch id scaled to a float, three LSTMs of 512, a dense layer of 256 and a
pitch head only (everything else is an eighth note).

Layer names are part of the artifact format: :mod:`composer.model.stepper` reads weights by name.
Heads output logits; the softmax is applied in the loss and in sampling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from composer.model.vocabulary import FIELDS

if TYPE_CHECKING:
    import keras

ARCHITECTURES = ("lstm", "seed")


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

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.arch!r}; choose one of {ARCHITECTURES}")
        if self.units < 1 or self.layers < 1 or not 0 <= self.dropout < 1:
            raise ValueError("units and layers must be positive and dropout in [0, 1)")

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
        heads existed has independent ones)."""
        known = {f.name for f in fields(cls)}
        return cls(**{"chained": False, **{k: v for k, v in data.items() if k in known}})

    @property
    def given(self) -> tuple[str, ...]:
        """The fields a training step is given from the event it predicts (teacher forcing)."""
        return tuple(dict.fromkeys(f for name in self.heads for f in self.conditions(name)))

    def conditions(self, name: str) -> tuple[str, ...]:
        """The fields of the same event that the head of ``name`` sees (none when not chained)."""
        if not self.chained or self.arch == "seed":
            return ()
        return FIELDS[: FIELDS.index(name)]


def build_model(config: ModelConfig, sizes: dict[str, int], n_styles: int) -> keras.Model:
    """Build the training network: inputs are id sequences per field plus ``style``, shape ``(batch, time)``.

    Returns a ``keras.Model`` whose outputs are per-field logits for the next event, named
    ``next_<field>``, shape ``(batch, time, vocab)``.
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
        outputs[f"next_{name}"] = layers.Dense(sizes[name], name=f"next_{name}")(joined)
    return keras.Model(inputs=inputs, outputs=outputs, name="composer_lstm")


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
