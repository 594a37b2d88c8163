"""Phrase dynamics and the final ritardando: loudness and tempo change, the notes do not."""

from __future__ import annotations

import itertools

import pytest

from composer.events import Event, notes_from_events
from composer.generation.expression import FINAL_SLOWING, perform, phrase_starts


def phrased(phrases: int = 4) -> list[Event]:
    """Phrases of seven quarter-note chords and a held half note, all at one loudness."""
    events = []
    for _ in range(phrases):
        events += [Event((48, 55, 64, 72 + i % 3), 12, 12, 5) for i in range(7)]
        events.append(Event((48, 55, 64, 72), 24, 24, 5))
    return events


def test_phrases_start_after_each_held_note():
    assert phrase_starts(phrased(4)) == [0.0, 9.0, 18.0, 27.0]


def test_a_long_stretch_without_a_breath_is_split():
    events = [Event((60 + i % 5,), 6, 6, 5) for i in range(200)]  # 100 beats of running eighths
    starts = phrase_starts(events)
    assert len(starts) >= 5
    assert all(b - a <= 24 for a, b in zip(starts, [*starts[1:], 100.0], strict=True))


def test_perform_shapes_loudness_and_tempo_only():
    events = phrased(4)
    notes = notes_from_events(events)
    shaped, curve = perform(events, notes, 90.0)
    assert [(n.pitch, n.start, n.end) for n in shaped] == [(n.pitch, n.start, n.end) for n in notes]
    # The top voice sings over the others; the phrase's middle is louder than its start.
    first = [n for n in shaped if n.start == 0.0]
    assert max(first, key=lambda n: n.pitch).velocity > min(n.velocity for n in first)
    middle = [n for n in shaped if n.start == 5.0]
    assert max(n.velocity for n in middle) > max(n.velocity for n in first)
    # The piece ends softer than it began, and slower.
    last = [n for n in shaped if n.start == shaped[-1].start]
    assert max(n.velocity for n in last) < max(n.velocity for n in first)
    assert curve[0] == (0.0, pytest.approx(90.0, rel=0.005))
    assert curve[-1][1] == pytest.approx(90.0 * FINAL_SLOWING, rel=0.05)
    assert all(later > earlier for (earlier, _), (later, _) in itertools.pairwise(curve))


def test_nothing_to_perform():
    assert perform([], [], 100.0) == ([], [(0.0, 100.0)])
