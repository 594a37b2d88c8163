"""The model artifact: one file that holds everything needed to compose.

A ``.cadenza`` file is a zip with two members: ``model.keras`` (the network in Keras' own
format) and ``artifact.json`` (format version, encoding settings, vocabulary, network config,
training metadata and defaults). A model and its vocabulary can never drift apart, and a file
made for another encoding or format version is refused with a message that says so.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from composer import events
from composer.errors import ModelError
from composer.generation.critic import Critic
from composer.generation.sampling import SamplingOptions
from composer.keys import Key, draw_key, key_fit, tonic_chords
from composer.model.network import ModelConfig
from composer.model.vocabulary import MARKERS, Vocabulary

if TYPE_CHECKING:
    import keras

FORMAT = "cadenza-model"
FORMAT_VERSION = 1
SUFFIX = ".cadenza"


def encoding_settings() -> dict:
    """The event encoding this code reads and writes; saved in every artifact and compared on load."""
    return {
        "ticks_per_quarter": events.TICKS_PER_QUARTER,
        "max_ticks": events.MAX_TICKS,
        "velocity_levels": events.VELOCITY_LEVELS,
        "max_chord_size": events.MAX_CHORD_SIZE,
    }


@dataclass
class Artifact:
    """A loaded model: its vocabulary, config, metadata and the weights the stepper uses."""

    vocabulary: Vocabulary
    config: ModelConfig
    weights: dict[str, list[np.ndarray]]
    training: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    path: Path | None = None
    _key_fits: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    """:meth:`key_guide`'s fits, by key: computed once per key."""
    _critics: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    """:meth:`critic_for`'s critics, by style: read once per style."""

    @property
    def default_tempo(self) -> float:
        """Tempo (quarter notes a minute) for new pieces when none is asked for."""
        return float(self.defaults.get("tempo", 90.0))

    def tempo_for(self, style: str) -> float:
        """The typical tempo of the training pieces of ``style`` (models from before styles had
        their own tempo: the overall one)."""
        return float(self.defaults.get("tempo_by_style", {}).get(style, self.default_tempo))

    def sampling_for(self, style: str) -> SamplingOptions | None:
        """The sampling measured best for new pieces of ``style`` (``sampling_by_style`` in the
        defaults, set after evaluation with :func:`set_defaults`); None where the model has none,
        and the composer's defaults apply."""
        found = self.defaults.get("sampling_by_style", {}).get(style)
        return None if found is None else SamplingOptions.from_dict(found)

    def critic_for(self, style: str) -> Critic | None:
        """The critic that chooses among candidates for a new piece of ``style``
        (``critic_by_style`` in the defaults, fitted with ``evaluate --fit-critic``); None where
        the model has none, and the network's likeliest candidate is kept."""
        if style not in self._critics:
            found = self.defaults.get("critic_by_style", {}).get(style)
            try:
                self._critics[style] = None if found is None else Critic.from_dict(found)
            except (KeyError, TypeError, ValueError) as error:
                raise ModelError(f"the {style} critic in the model file is damaged: {error}") from None
        return self._critics[style]

    def keys_for(self, style: str) -> dict[str, float]:
        """How the training pieces of ``style`` spread over keys (name -> share); empty for models
        from before this was recorded."""
        return dict(self.defaults.get("keys_by_style", {}).get(style, {}))

    def drawn_key(self, style: str, seed: int, candidate: int = 0) -> Key | None:
        """The key a new piece of ``style`` with ``seed`` (and candidate) is written in when none
        is asked for (:func:`composer.keys.draw_key` from the style's spread)."""
        return draw_key(self.keys_for(style), seed, candidate)

    def key_guide(
        self, style: str, seed: int, key: Key | None = None, candidate: int = 0
    ) -> dict[str, object]:
        """What steers a new piece of ``style`` into ``key``, or else into the key its seed draws
        from the style's spread (:func:`composer.keys.draw_key`, the key the piece is then moved
        into; a candidate after the first draws its own with ``candidate``): the tonic chords it
        opens on and each pitch id's fit to the key, as
        :class:`~composer.generation.generate.PieceRequest` takes them; nothing where there is no
        key to draw."""
        key = key or self.drawn_key(style, seed, candidate)
        if key is None or self.config.arch == "seed":
            return {}
        if key not in self._key_fits:
            fit = np.zeros(len(self.vocabulary.pitch_sets) + MARKERS, np.float32)
            fit[MARKERS:] = key_fit(self.vocabulary.pitch_sets, key)
            self._key_fits[key] = fit
        opening = tuple(MARKERS + i for i in tonic_chords(self.vocabulary.pitch_sets, key))
        return {"opening": opening, "key_fit": self._key_fits[key]}


def save(
    path: str | Path, model: keras.Model, vocabulary: Vocabulary, config: ModelConfig, **meta: dict
) -> Path:
    """Write ``model`` (a Keras model) with its vocabulary and metadata to one ``.cadenza`` file.

    ``meta`` may hold ``training`` (how it was made) and ``defaults`` (tempo, program). The file
    appears whole or not at all.
    """
    path = Path(path)
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "encoding": encoding_settings(),
        "vocabulary": vocabulary.to_dict(),
        "model": config.to_dict(),
        "training": meta.get("training", {}),
        "defaults": meta.get("defaults", {}),
    }
    import keras

    # An uncompiled copy: the optimizer's state would double the file and is not needed to compose.
    slim = keras.models.clone_model(model)
    slim.set_weights(model.get_weights())
    with tempfile.TemporaryDirectory() as tmp:
        keras_path = Path(tmp) / "model.keras"
        slim.save(keras_path)
        partial = path.with_name(path.name + ".partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("artifact.json", json.dumps(document, indent=1))
            archive.write(keras_path, "model.keras")
        os.replace(partial, path)
    return path


def set_defaults(path: str | Path, **defaults: object) -> Path:
    """Add to or replace entries of a model file's ``defaults`` (such as ``sampling_by_style``,
    chosen by evaluation after training); the network is copied byte for byte. The file is
    replaced whole or not at all."""
    path = Path(path)
    document = read_document(path)
    document["defaults"] = {**document.get("defaults", {}), **defaults}
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(partial, "w") as archive:
        for info in source.infolist():
            if info.filename == "artifact.json":
                archive.writestr(info, json.dumps(document, indent=1))
            else:
                archive.writestr(info, source.read(info))
    os.replace(partial, path)
    return path


def read_document(path: str | Path) -> dict:
    """The artifact's JSON, checked for format, version and encoding (no weights are read)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"No model at {path}. Train one with `python -m training --corpus bach --out models/NAME`, "
            "or point COMPOSER_MODEL at a .cadenza file."
        )
    try:
        with zipfile.ZipFile(path) as archive:
            document = json.loads(archive.read("artifact.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(f"{path.name} is not a Cadenza model file ({error}).") from None
    if document.get("format") != FORMAT:
        raise ModelError(f"{path.name} is not a Cadenza model file.")
    version = document.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{path.name} uses model format version {version}; this Cadenza reads version "
            f"{FORMAT_VERSION}. Retrain it with this version's `python -m training`."
        )
    if document.get("encoding") != encoding_settings():
        raise ModelError(
            f"{path.name} was trained with a different event encoding ({document.get('encoding')}); "
            "retrain it with this version's `python -m training`."
        )
    return document


def load_keras(path: str | Path) -> keras.Model:
    """The Keras model inside an artifact (for training, evaluation and checks)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the console
    import keras

    from composer.model.network import line_moves_layer

    line_moves_layer()  # registered, for a network that has line moves
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as archive:
        archive.extract("model.keras", tmp)
        return keras.saving.load_model(Path(tmp) / "model.keras", compile=False)


def read_weights(path: str | Path) -> dict[str, list[np.ndarray]] | None:
    """The network's weights by layer name, read from ``model.keras`` without TensorFlow.

    Importing TensorFlow takes seconds and hundreds of megabytes; generation only needs the
    arrays. Keras stores each layer's variables in HDF5 under a name made from its class
    (``dense``, ``dense_1``, ... in layer order), so the layer list in ``config.json`` maps them
    back to layer names. Returns ``None`` when the file is laid out another way (another Keras
    version), and the caller loads it through Keras instead.
    """
    import h5py

    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(io.BytesIO(archive.read("model.keras"))) as model:
        layers = json.loads(model.read("config.json"))["config"]["layers"]
        store = h5py.File(io.BytesIO(model.read("model.weights.h5")), "r")
    with store:
        used: dict[str, int] = {}
        weights = {}
        for layer in layers:
            key = _snake_case(layer["class_name"])
            used[key] = used.get(key, -1) + 1
            unique = key if used[key] == 0 else f"{key}_{used[key]}"
            group = {
                "LSTM": f"layers/{unique}/cell/vars",
                "Dense": f"layers/{unique}/vars",
                "Embedding": f"layers/{unique}/vars",
                "LineMoves": f"layers/{unique}/vars",
            }.get(layer["class_name"])
            if group is None:
                continue
            if group not in store:
                return None
            variables = store[group]
            weights[layer["config"]["name"]] = [np.asarray(variables[k]) for k in sorted(variables, key=int)]
    return weights


def _snake_case(name: str) -> str:
    """Keras' own ``naming.to_snake_case``: ``LSTM`` -> ``lstm``, ``InputLayer`` -> ``input_layer``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def load(path: str | Path) -> Artifact:
    """Load an artifact for generation, checking that the network matches its vocabulary."""
    document = read_document(path)
    try:
        vocabulary = Vocabulary.from_dict(document["vocabulary"])
        config = ModelConfig.from_dict(document["model"])
        weights = read_weights(path)
        if weights is None or not _fits(weights, config):
            from composer.model.stepper import weights_from_keras

            weights = weights_from_keras(load_keras(path))
    except (KeyError, ValueError, TypeError, OSError, zipfile.BadZipFile) as error:
        raise ModelError(f"{Path(path).name} is damaged: {error}") from None
    sizes = vocabulary.sizes
    for name in config.heads:
        head = weights.get(f"next_{name}")
        if head is None or head[1].shape[0] != sizes[name]:
            raise ModelError(
                f"{Path(path).name} does not match its vocabulary: the {name} head does not have "
                f"{sizes[name]} outputs."
            )
    return Artifact(
        vocabulary,
        config,
        weights,
        training=document.get("training", {}),
        defaults=document.get("defaults", {}),
        path=Path(path),
    )


def _fits(weights: dict[str, list[np.ndarray]], config: ModelConfig) -> bool:
    """Whether weights read from the file have every layer the network config names."""
    needed = [f"lstm_{i}" for i in range(config.layers)] + [f"next_{name}" for name in config.heads]
    needed += ["moves", "line_moves"] if config.line_moves else []
    return all(name in weights for name in needed)
