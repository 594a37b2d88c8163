"""The model artifact: one file that holds everything needed to compose.

A ``.cadenza`` file is a zip with two members: ``model.keras`` (the network in Keras' own
format) and ``artifact.json`` (format version, encoding settings, vocabulary, network config,
training metadata and defaults). A model and its vocabulary can never drift apart, and a file
made for another encoding or format version is refused with a message that says so.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from composer import events
from composer.errors import ModelError
from composer.model import ModelConfig
from composer.vocabulary import Vocabulary

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

    @property
    def default_tempo(self) -> float:
        """Tempo (quarter notes a minute) for new pieces when none is asked for."""
        return float(self.defaults.get("tempo", 90.0))


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
    with tempfile.TemporaryDirectory() as tmp:
        keras_path = Path(tmp) / "model.keras"
        model.save(keras_path)
        partial = path.with_name(path.name + ".partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("artifact.json", json.dumps(document, indent=1))
            archive.write(keras_path, "model.keras")
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

    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(path) as archive:
        archive.extract("model.keras", tmp)
        return keras.saving.load_model(Path(tmp) / "model.keras", compile=False)


def load(path: str | Path) -> Artifact:
    """Load an artifact for generation, checking that the network matches its vocabulary."""
    from composer.stepper import weights_from_keras

    document = read_document(path)
    try:
        vocabulary = Vocabulary.from_dict(document["vocabulary"])
        config = ModelConfig.from_dict(document["model"])
        weights = weights_from_keras(load_keras(path))
    except (KeyError, ValueError, TypeError, OSError) as error:
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
