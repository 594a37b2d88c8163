"""Steering a continuation towards the piece it continues: its key, chord size and register.

The network hears the user's piece, but a piano piece with six-note voicings in A major is far
from the chorales and tunes it learnt from, and left alone it drifts to what it knows. Steering
adds a bias to the network's chord logits before sampling: chords whose pitch classes the piece
uses, whose size and width (lowest to highest note) are the piece's usual ones and whose notes
lie in the piece's range become likelier, in proportion to ``strength``. The network still
chooses; steering leans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from composer.events import Event
from composer.keys import pitch_class_histogram
from composer.model.vocabulary import MARKERS, Vocabulary

RECENT_EVENTS = 64
"""How much of the end of the piece sets the texture to steer towards."""
FLOOR = 0.02
"""The smallest share a pitch class counts for, so a chromatic passing note is unlikely, not banned."""


@dataclass(frozen=True)
class Texture:
    """What the end of a piece sounds like: its pitch-class shares, chord size, range and width."""

    pitch_classes: np.ndarray
    notes_per_onset: float
    low: float
    high: float
    """The 5th and 95th percentiles of its pitches."""
    width: float
    """The median distance from an onset's lowest note to its highest."""


def texture_of(events: Sequence[Event]) -> Texture:
    """The texture of the last :data:`RECENT_EVENTS` events."""
    recent = list(events[-RECENT_EVENTS:])
    histogram = pitch_class_histogram(recent)
    shares = histogram / histogram.sum() if histogram.any() else np.full(12, 1 / 12)
    low, high = np.percentile([p for e in recent for p in e.pitches], [5, 95])
    return Texture(
        pitch_classes=shares,
        notes_per_onset=float(np.mean([len(e.pitches) for e in recent])),
        low=float(low),
        high=float(high),
        width=float(np.median([e.pitches[-1] - e.pitches[0] for e in recent])),
    )


def chord_bias(vocabulary: Vocabulary, texture: Texture, strength: float = 1.0) -> np.ndarray:
    """A bias (in logits) for every pitch id of ``vocabulary``: 0 for the markers, most for chords
    in the texture's key, of its size and width, within its range."""
    fit = np.log(np.maximum(texture.pitch_classes, FLOOR) * 12)  # 0 for an even share, up for the key
    bias = np.zeros(len(vocabulary.pitch_sets) + MARKERS, np.float32)
    for i, chord in enumerate(vocabulary.pitch_sets):
        notes = np.array(chord, dtype=float)
        key = float(np.mean(fit[notes.astype(int) % 12]))
        size = -2 * abs(len(chord) - texture.notes_per_onset) / max(1.0, texture.notes_per_onset)
        outside = np.maximum(0.0, np.maximum(texture.low - notes, notes - texture.high))
        within = -float(np.mean((outside / 6) ** 2))
        width = -abs(notes[-1] - notes[0] - texture.width) / max(6.0, texture.width)
        bias[MARKERS + i] = strength * (key + size + within + width)
    return bias
