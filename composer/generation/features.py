"""Key-free, tempo-free figures of a piece: what its melody, rhythm and texture are like.

The same figures serve the critic that chooses among candidate pieces
(:mod:`composer.generation.critic`) and the classifiers of ``python -m training evaluate
--tell-apart`` that judge whether new pieces pass for real ones.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from composer.events import TICKS_PER_QUARTER, Event
from composer.keys import pitch_class_histogram

INTERVAL_BINS = (("unison", 0, 0), ("step", 1, 2), ("third", 3, 4), ("4th-5th", 5, 7), ("6th-7th", 8, 11))
INTERVAL_BINS += (("octave", 12, 12), ("beyond octave", 13, 127))
TIME_BINS = (("≤ 16th", 0, 3), ("8th", 4, 6), ("dotted 8th", 7, 9), ("quarter", 10, 12), ("≤ half", 13, 24))
TIME_BINS += (("longer", 25, 10_000),)


def features(events: Sequence[Event]) -> dict[str, float]:
    """Key-free, tempo-free figures of one piece: what its melody, rhythm and texture are like."""
    found: dict[str, float] = {}
    histogram = pitch_class_histogram(events)
    if histogram.any():
        rotated = np.roll(histogram, -int(histogram.argmax())) / histogram.sum()
    else:
        rotated = np.zeros(12)
    found.update({f"pitch class +{i}": float(v) for i, v in enumerate(rotated)})
    for line, pick in (("top", max), ("bass", min)):
        moves = [abs(pick(b.pitches) - pick(a.pitches)) for a, b in itertools.pairwise(events)]
        for name, low, high in INTERVAL_BINS:
            found[f"{line} line: {name}"] = _share(moves, low, high)
        found[f"{line} line: mean move"] = float(np.mean(moves)) if moves else 0.0
    iois = [e.ioi for e in events[:-1]]
    durations = [e.duration for e in events]
    for name, low, high in TIME_BINS:
        found[f"onset gap: {name}"] = _share(iois, low, high)
        found[f"duration: {name}"] = _share(durations, low, high)
    sizes = [len(e.pitches) for e in events]
    found["notes per onset"] = float(np.mean(sizes)) if sizes else 0.0
    for size in (1, 2, 3, 4):
        found[f"onsets of {size} notes"] = _share(sizes, size, size)
    found["rests"] = float(np.mean([e.ioi > e.duration for e in events[:-1]])) if len(events) > 1 else 0.0
    pitches = [p for e in events for p in e.pitches]
    if pitches:
        low, high = np.percentile(pitches, [5, 95])
        found["range (5th-95th percentile)"] = float(high - low)
    else:
        found["range (5th-95th percentile)"] = 0.0
    found["beats per onset"] = float(np.mean(iois)) / TICKS_PER_QUARTER if iois else 0.0
    return found


def _share(values: Sequence[int], low: int, high: int) -> float:
    """The share of ``values`` from ``low`` to ``high``, inclusive (0 for none)."""
    if not values:
        return 0.0
    return sum(low <= v <= high for v in values) / len(values)
