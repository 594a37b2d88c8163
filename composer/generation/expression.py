"""Playing a new piece as a musician would: phrase arches of loudness and tempo, a louder melody,
and a softer, slower ending.

The training music (chorales, tune books) carries no dynamics, so the model writes every note at
much the same loudness and the file would play like a machine. These rules, after the KTH rules
for music performance (phrase arch, final ritardando, melodic emphasis), shape it: each phrase
grows louder and a little faster towards its middle and relaxes at its end; the top voice sings
over the inner ones; the last phrase fades and slows as a player ends a piece. Phrases end at a
rest or a long note; the rules change loudness and tempo, never which notes are played or when
in the bar they fall.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from composer.events import TICKS_PER_QUARTER, Event, Note

ARCH_VELOCITY = 10
"""How many velocity steps a phrase's peak lies above its start and end."""
MELODY_VELOCITY = 6
"""How much louder the top note of a chord is than the notes under it."""
ENDING_VELOCITY = 14
"""How much softer the last note is than the loudness the last phrase started at."""
ARCH_TEMPO = 0.04
"""A phrase's middle is this much faster than its ends (4%), which are at the tempo asked for."""
FINAL_SLOWING = 0.62
"""The last beat is played at this share of the tempo (the final ritardando)."""
FINAL_BEATS = 4.0
"""The final ritardando lasts this many beats."""
PHRASE_BEATS = (4.0, 24.0)
"""Shortest and longest phrase, in beats: longer stretches are split at their longest gap."""


def phrase_starts(events: Sequence[Event]) -> list[float]:
    """Where the phrases of ``events`` start, in beats: after a rest or a note much longer than
    the piece's usual gap, never less than :data:`PHRASE_BEATS` [0] apart."""
    onsets = _onsets(events)
    if not events:
        return []
    usual = float(np.median([e.ioi for e in events])) or 1.0
    shortest, longest = (b * TICKS_PER_QUARTER for b in PHRASE_BEATS)
    starts = [0]
    for i, event in enumerate(events[:-1]):
        breath = event.ioi > event.duration + 1 or event.ioi >= max(2 * usual, TICKS_PER_QUARTER * 2)
        if breath and onsets[i + 1] - starts[-1] >= shortest:
            starts.append(onsets[i + 1])
    bounded = []
    for begin, end in itertools.pairwise([*starts, onsets[-1] + events[-1].ioi]):
        bounded += _split(begin, end, onsets, events, longest)
    return [b / TICKS_PER_QUARTER for b in bounded]


def _onsets(events: Sequence[Event]) -> list[int]:
    """Each event's onset in grid ticks."""
    return list(itertools.accumulate((e.ioi for e in events[:-1]), initial=0))[: len(events)]


def _split(begin: int, end: int, onsets: list[int], events: Sequence[Event], longest: float) -> list[int]:
    """``[begin]``, plus starts inside a stretch longer than ``longest``, at its longest gaps."""
    if end - begin <= longest:
        return [begin]
    inside = [i for i, at in enumerate(onsets) if begin + longest / 4 < at < end - longest / 4]
    if not inside:
        return [begin]
    cut = max(inside, key=lambda i: (events[i - 1].ioi, -abs(onsets[i] - (begin + end) / 2)))
    return _split(begin, onsets[cut], onsets, events, longest) + _split(
        onsets[cut], end, onsets, events, longest
    )


def _arch(position: np.ndarray, starts: Sequence[float], end: float) -> np.ndarray:
    """For each position (beats): -1 at its phrase's ends, +1 at the phrase's peak (60% through)."""
    bounds = np.array([*starts, end], dtype=float)
    index = np.clip(np.searchsorted(bounds, position, side="right") - 1, 0, len(starts) - 1)
    length = np.maximum(bounds[index + 1] - bounds[index], 1e-9)
    x = np.clip((position - bounds[index]) / length, 0.0, 1.0)
    return np.where(x < 0.6, -1 + 2 * x / 0.6, 1 - 2 * (x - 0.6) / 0.4)


def perform(
    events: Sequence[Event], notes: Sequence[Note], bpm: float
) -> tuple[list[Note], list[tuple[float, float]]]:
    """``notes`` (played from ``events``) with phrase dynamics, and the tempo as (beat, bpm) changes."""
    if not events or not notes:
        return list(notes), [(0.0, bpm)]
    starts = phrase_starts(events)
    end = max(n.end for n in notes)
    velocities = _velocities(notes, starts, end)
    shaped = [replace(n, velocity=v) for n, v in zip(notes, velocities, strict=True)]
    return shaped, _tempo_curve(starts, end, bpm)


def _velocities(notes: Sequence[Note], starts: Sequence[float], end: float) -> list[int]:
    """Each note's velocity: its own, moved by the phrase arch, the melody and the ending."""
    position = np.array([n.start for n in notes])
    offset = ARCH_VELOCITY / 2 * _arch(position, starts, end)
    last = starts[-1]
    fade = np.clip((position - last) / max(end - last, 1e-9), 0.0, 1.0)
    offset -= ENDING_VELOCITY * fade
    top = {}
    for n in notes:
        top[n.start] = max(top.get(n.start, 0), n.pitch)
    chords = {}
    for n in notes:
        chords[n.start] = chords.get(n.start, 0) + 1
    melody = np.array(
        [
            MELODY_VELOCITY / 2 if chords[n.start] == 1 or n.pitch == top[n.start] else -MELODY_VELOCITY / 2
            for n in notes
        ]
    )
    base = np.array([n.velocity for n in notes], dtype=float)
    return [int(v) for v in np.clip(np.round(base + offset + melody), 1, 127)]


def _tempo_curve(starts: Sequence[float], end: float, bpm: float) -> list[tuple[float, float]]:
    """Tempo changes, one a beat: a gentle arch over each phrase and the final ritardando."""
    beats = np.arange(0.0, np.ceil(end))
    factor = 1 + ARCH_TEMPO * (_arch(beats, starts, end) + 1) / 2  # the ends at the tempo asked for
    into_ending = np.clip((beats + 1 - (end - FINAL_BEATS)) / FINAL_BEATS, 0.0, 1.0)
    factor *= np.sqrt(1 + (FINAL_SLOWING**2 - 1) * into_ending)  # the KTH final ritardando, q = 2
    curve = [(float(b), round(bpm * f, 2)) for b, f in zip(beats, factor, strict=True)]
    return [c for i, c in enumerate(curve) if i == 0 or c[1] != curve[i - 1][1]]
