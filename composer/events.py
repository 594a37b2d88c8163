"""Music as the model sees it: one :class:`Event` per onset, and the pure transforms to and from notes.

A piece is read into :class:`Note` records (exact times, any number of parts), merged into
events on a fixed grid (:data:`TICKS_PER_QUARTER`), and after generation turned back into notes.
Nothing here touches files or the model: these are plain values and pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from composer.midi.smf import MidiFile

TICKS_PER_QUARTER = 12
"""Grid resolution: 12 ticks a quarter note holds sixteenths (3), eighth triplets (4) and
sixteenth triplets (2)."""

MAX_TICKS = 8 * TICKS_PER_QUARTER
"""Longest duration or gap an event can carry (two whole notes); longer values are clipped."""

VELOCITY_LEVELS = 8
"""Coarse loudness: MIDI velocity 0-127 in eight steps (pp to ff)."""

MAX_CHORD_SIZE = 10
"""Most simultaneous pitches in one event; the lowest and highest are kept first."""


def velocity_to_level(velocity: int) -> int:
    """Map a MIDI velocity (1-127) to a coarse loudness level."""
    return min(VELOCITY_LEVELS - 1, max(0, int(velocity)) * VELOCITY_LEVELS // 128)


def level_to_velocity(level: int) -> int:
    """The MIDI velocity written for a loudness level: the middle of its range."""
    step = 128 // VELOCITY_LEVELS
    return min(127, level * step + step // 2)


def quarters_to_ticks(quarters: float) -> int:
    """Round a length in quarter notes to the grid."""
    return round(quarters * TICKS_PER_QUARTER)


@dataclass(frozen=True, slots=True)
class Event:
    """One onset: the pitches sounding from it, how long they last and when the next onset comes.

    ``ioi`` (inter-onset interval) larger than ``duration`` is a rest; smaller is an overlap
    (the notes are still held when the next ones start).
    """

    pitches: tuple[int, ...]
    duration: int
    ioi: int
    velocity: int

    def __post_init__(self) -> None:
        if not self.pitches or len(self.pitches) > MAX_CHORD_SIZE:
            raise ValueError(f"an event needs 1 to {MAX_CHORD_SIZE} pitches, got {self.pitches}")
        if list(self.pitches) != sorted(set(self.pitches)):
            raise ValueError(f"pitches must be ascending and distinct: {self.pitches}")
        if not all(0 <= p <= 127 for p in self.pitches):
            raise ValueError(f"pitches must be MIDI numbers 0-127: {self.pitches}")
        if not 1 <= self.duration <= MAX_TICKS:
            raise ValueError(f"duration must be 1-{MAX_TICKS} ticks: {self.duration}")
        if not 0 <= self.ioi <= MAX_TICKS:
            raise ValueError(f"ioi must be 0-{MAX_TICKS} ticks: {self.ioi}")
        if not 0 <= self.velocity < VELOCITY_LEVELS:
            raise ValueError(f"velocity level must be 0-{VELOCITY_LEVELS - 1}: {self.velocity}")

    def transposed(self, semitones: int) -> Event:
        """The same event moved by ``semitones``, clamped octave-wise into 0-127."""
        moved = []
        for p in self.pitches:
            q = p + semitones
            while q > 127:
                q -= 12
            while q < 0:
                q += 12
            moved.append(q)
        return Event(tuple(sorted(set(moved))), self.duration, self.ioi, self.velocity)


@dataclass(frozen=True, slots=True)
class Note:
    """One sounding note with exact times in quarter notes, as read from a file."""

    pitch: int
    start: float
    end: float
    velocity: int = 80
    part: int = 0


@dataclass(frozen=True, slots=True)
class Part:
    """A pitched part of an input piece: its name, General MIDI program and MIDI channel."""

    name: str = ""
    program: int = 0
    channel: int = 0


@dataclass(frozen=True)
class Score:
    """Everything the composer keeps of an input piece: notes, parts and the global settings.

    The notes are what the model hears: drum parts are gone (``dropped_drum_notes`` says how many
    notes that was). ``midi`` is the file itself, every message as it was, for writing it back
    exactly; ``tempo`` and ``time_signature`` are the ones in force at the first note.
    """

    notes: tuple[Note, ...]
    parts: tuple[Part, ...] = (Part(),)
    tempo: float = 100.0
    time_signature: tuple[int, int] = (4, 4)
    dropped_drum_notes: int = 0
    source: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    midi: MidiFile | None = field(default=None, repr=False)

    @property
    def length(self) -> float:
        """The end of the last note, in quarter notes."""
        return max((n.end for n in self.notes), default=0.0)


def events_from_notes(notes: Iterable[Note]) -> list[Event]:
    """Merge notes into one event per grid onset (all parts together, voicing kept).

    A chord's duration is its longest note; its loudness its loudest note. Notes shorter than
    the grid still last one tick. A pitch struck again while it still sounds is cut at the new
    onset, as a piano key would be (MIDI cannot hold one pitch twice on one channel). The last
    event's gap is its own duration.
    """
    spans: dict[int, list[tuple[int, int, int]]] = {}
    for n in notes:
        onset = quarters_to_ticks(n.start)
        spans.setdefault(n.pitch, []).append((onset, max(onset + 1, quarters_to_ticks(n.end)), n.velocity))
    by_onset: dict[int, dict[int, tuple[int, int]]] = {}
    for pitch, strikes in spans.items():
        strikes.sort()
        for i, (onset, end, velocity) in enumerate(strikes):
            following = next((s[0] for s in strikes[i + 1 :] if s[0] > onset), None)
            if following is not None:
                end = min(end, following)
            slot = by_onset.setdefault(onset, {})
            old = slot.get(pitch)
            if old is None or end - onset > old[0]:
                slot[pitch] = (end - onset, max(velocity, old[1] if old else 0))
    onsets = sorted(by_onset)
    events: list[Event] = []
    for i, onset in enumerate(onsets):
        slot = by_onset[onset]
        pitches = _limit_chord(sorted(slot))
        duration = min(MAX_TICKS, max(slot[p][0] for p in pitches))
        ioi = onsets[i + 1] - onset if i + 1 < len(onsets) else duration
        velocity = velocity_to_level(max(slot[p][1] for p in pitches))
        events.append(Event(tuple(pitches), duration, min(ioi, MAX_TICKS), velocity))
    return events


def _limit_chord(pitches: list[int]) -> list[int]:
    """Keep at most :data:`MAX_CHORD_SIZE` pitches: outer voices first, then from the top."""
    if len(pitches) <= MAX_CHORD_SIZE:
        return pitches
    inner = pitches[1:-1][::-1][: MAX_CHORD_SIZE - 2]
    return sorted([pitches[0], pitches[-1], *inner])


def notes_from_events(events: Sequence[Event], start: float = 0.0, part: int = 0) -> list[Note]:
    """Lay events out in time from ``start`` (quarter notes) and return their notes.

    A pitch struck again while it still sounds is cut at the new onset, as in
    :func:`events_from_notes`, so the two are inverses on the grid.
    """
    spans: list[list[int]] = []  # [pitch, onset, end, velocity] in ticks
    sounding: dict[int, list[int]] = {}
    tick = 0
    for event in events:
        velocity = level_to_velocity(event.velocity)
        for pitch in event.pitches:
            previous = sounding.get(pitch)
            if previous is not None and previous[2] > tick:
                previous[2] = tick
            span = [pitch, tick, tick + event.duration, velocity]
            spans.append(span)
            sounding[pitch] = span
        tick += event.ioi
    to_quarters = 1 / TICKS_PER_QUARTER
    return [
        Note(p, start + on * to_quarters, start + end * to_quarters, v, part)
        for p, on, end, v in spans
        if end > on
    ]


def events_length(events: Sequence[Event]) -> float:
    """Where the events end, in quarter notes: the last onset plus the longest ring-out."""
    tick, end = 0, 0
    for event in events:
        end = max(end, tick + event.duration)
        tick += event.ioi
    return end / TICKS_PER_QUARTER
