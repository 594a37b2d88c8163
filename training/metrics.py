"""Figures of musical quality, as pure functions of a piece's events, so they can be checked by hand.

Every figure works on one piece (a list of :class:`~composer.events.Event`); :mod:`training.evaluate`
averages them over generated pieces and over the held-out pieces for reference. Choices that
change a number are fixed here and documented once:

- a *note* is one pitch of one event, so a four-voice chord is four notes;
- loops compare pitch sets only: a phrase whose pitches cycle is heard as stuck whatever its
  rhythm does, and that is also what the generator's loop guard watches;
- scale consistency counts notes (not their length), so a short wrong note counts as much as a
  long right one;
- pitch-class histograms weigh notes by duration, as key detection in :mod:`composer.keys` does;
- entropies are in bits over the values that occur in the piece.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from composer.events import Event
from composer.keys import Key, pitch_class_histogram

LOOP_TAIL = 200
"""How many final events must repeat for a piece to count as looping."""
LOOP_PATTERN = 16
"""The longest pattern, in events, whose repetition counts as a loop."""
ENDING_TOLERANCE = 0.1
"""A proper ending is the end marker within this share of the requested length."""
SCALES = tuple(Key(tonic, minor) for tonic in range(12) for minor in (False, True))
"""All 24 major and minor keys, each with the scale :mod:`composer.keys` gives it."""


def loops(events: Sequence[Event], tail: int = LOOP_TAIL, longest: int = LOOP_PATTERN) -> bool:
    """Whether the last ``tail`` events (all of a shorter piece) repeat one pattern of at most
    ``longest`` pitch sets, at least twice over."""
    last = [e.pitches for e in events[-tail:]]
    return any(last[period:] == last[:-period] for period in range(1, min(longest, len(last) // 2) + 1))


def scale_consistency(events: Sequence[Event]) -> float:
    """Share of notes in the best-fitting major or minor scale (1.0 for an empty piece)."""
    counts = Counter(p % 12 for e in events for p in e.pitches)
    total = sum(counts.values())
    if not total:
        return 1.0
    return max(sum(counts[pc] for pc in key.scale) for key in SCALES) / total


def pitch_class_distribution(pieces: Iterable[Sequence[Event]]) -> np.ndarray:
    """The duration-weighted pitch-class histogram of all ``pieces`` together, summing to 1
    (all zeros when there are no notes)."""
    total = np.zeros(12)
    for events in pieces:
        total += pitch_class_histogram(events)
    return total / total.sum() if total.any() else total


def histogram_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of two histograms after normalising each: the sum of their minima, 1 when identical
    in shape and 0 when they share nothing."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if not a.any() or not b.any():
        return 0.0
    return float(np.minimum(a / a.sum(), b / b.sum()).sum())


def entropy(values: Iterable[int]) -> float:
    """Shannon entropy in bits of the values' frequencies (0 for one repeated value or none)."""
    counts = np.array(list(Counter(values).values()), float)
    if counts.size < 2:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def ioi_entropy(events: Sequence[Event]) -> float:
    """Entropy in bits of the piece's inter-onset intervals: how varied its rhythm is."""
    return entropy(e.ioi for e in events)


def duration_entropy(events: Sequence[Event]) -> float:
    """Entropy in bits of the piece's note lengths."""
    return entropy(e.duration for e in events)


def polyphony(events: Sequence[Event]) -> float:
    """Mean number of notes struck together per onset (0 for an empty piece)."""
    return float(np.mean([len(e.pitches) for e in events])) if events else 0.0


def pitch_range(events: Sequence[Event]) -> int:
    """Semitones from the lowest to the highest note (0 for an empty piece)."""
    pitches = [p for e in events for p in e.pitches]
    return max(pitches) - min(pitches) if pitches else 0


def proper_ending(count: int, ended_naturally: bool, requested: int) -> bool:
    """Whether a generated piece of ``count`` events chose the end marker itself (the generator's
    ``ended_naturally``) within :data:`ENDING_TOLERANCE` of the ``requested`` length."""
    return ended_naturally and abs(count - requested) <= ENDING_TOLERANCE * requested


def piece_figures(events: Sequence[Event]) -> dict[str, float]:
    """The per-piece figures that do not need a reference or the generator's flags."""
    return {
        "loop": float(loops(events)),
        "scale_consistency": scale_consistency(events),
        "ioi_entropy": ioi_entropy(events),
        "duration_entropy": duration_entropy(events),
        "polyphony": polyphony(events),
        "pitch_range": float(pitch_range(events)),
    }


def ioi_distribution(pieces: Iterable[Sequence[Event]]) -> dict[int, float]:
    """Share of onsets at each inter-onset interval (ticks), over all ``pieces`` together."""
    counts = Counter(e.ioi for events in pieces for e in events)
    total = sum(counts.values())
    return {ioi: n / total for ioi, n in sorted(counts.items())}
