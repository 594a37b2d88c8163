"""Telling generated pieces from real ones: the features, and classifiers that can and cannot."""

from __future__ import annotations

import numpy as np
import pytest

from composer.events import Event
from composer.generation.features import features
from training.tell_apart import CLASSIFIERS, tell_apart


def stepwise(rng: np.random.Generator, length: int = 40) -> list[Event]:
    """A melody that mostly moves by step, in quarter notes, with a three-note chord now and then."""
    pitch, events = 67, []
    for i in range(length):
        pitch = int(np.clip(pitch + rng.choice([-2, -1, 1, 2, 0], p=[0.3, 0.2, 0.2, 0.2, 0.1]), 55, 80))
        chord = (pitch - 12, pitch - 8, pitch) if i % 4 == 0 else (pitch,)
        events.append(Event(chord, 12, 12, 5))
    return events


def leaping(rng: np.random.Generator, length: int = 40) -> list[Event]:
    """A melody of leaps in eighth notes with rests."""
    events = []
    for _ in range(length):
        pitch = int(rng.integers(48, 84))
        events.append(Event((pitch,), 4, 6, 5))
    return events


def test_features_are_key_free_and_tempo_free():
    rng = np.random.default_rng(0)
    piece = stepwise(rng)
    moved = [e.transposed(5) for e in piece]
    assert features(moved) == pytest.approx(features(piece))
    found = features(piece)
    assert found["top line: step"] > 0.5
    assert found["onsets of 3 notes"] == pytest.approx(0.25)
    assert found["onset gap: quarter"] == 1.0
    assert found["rests"] == 0.0
    assert features(leaping(rng))["rests"] == 1.0


def test_different_music_is_told_apart_and_the_same_is_not():
    rng = np.random.default_rng(1)
    real = [stepwise(rng) for _ in range(30)]
    unlike = tell_apart(real, [leaping(rng) for _ in range(30)])
    assert set(unlike["accuracy"]) == set(CLASSIFIERS)
    assert all(a["mean"] > 0.95 for a in unlike["accuracy"].values())
    assert unlike["telling"][0]["feature"] in features(real[0])
    alike = tell_apart(real, [stepwise(rng) for _ in range(30)])
    assert all(a["mean"] < 0.75 for a in alike["accuracy"].values())


def test_too_few_pieces_is_a_clear_error():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="at least 5"):
        tell_apart([stepwise(rng)] * 3, [leaping(rng)] * 3)
