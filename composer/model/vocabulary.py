"""Tokens: the vocabulary learned from training data, and events to token ids and back.

Every event becomes one row of four token ids, one per field (:data:`FIELDS`). Each field's ids
start with the same three markers (padding, start, end) followed by the values seen in training.
A value never seen in training maps to the nearest known one and is counted, never an error.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from composer.events import VELOCITY_LEVELS, Event

FIELDS = ("pitch", "duration", "ioi", "velocity")
PAD, START, END = 0, 1, 2
MARKERS = 3
"""Ids below this are markers; real values start at id ``MARKERS``."""
NEAREST_CACHE = 65_536
"""Unknown values whose nearest known one is remembered (a few MB at most)."""


@dataclass
class Encoded:
    """A piece as token ids (``rows``: shape ``(n, 4)``) and how many values were mapped."""

    rows: np.ndarray
    unknown: int = 0


@dataclass(frozen=True)
class Vocabulary:
    """The values each field can take, in id order (after the markers), and the style names."""

    pitch_sets: tuple[tuple[int, ...], ...]
    durations: tuple[int, ...]
    iois: tuple[int, ...]
    velocities: tuple[int, ...] = tuple(range(VELOCITY_LEVELS))
    styles: tuple[str, ...] = ("default",)

    def __post_init__(self) -> None:
        if not self.pitch_sets or not self.durations or not self.iois or not self.styles:
            raise ValueError("a vocabulary needs at least one value in every field and a style")
        index = {
            "pitch": {v: i + MARKERS for i, v in enumerate(self.pitch_sets)},
            "duration": {v: i + MARKERS for i, v in enumerate(self.durations)},
            "ioi": {v: i + MARKERS for i, v in enumerate(self.iois)},
            "velocity": {v: i + MARKERS for i, v in enumerate(self.velocities)},
        }
        object.__setattr__(self, "_index", index)
        notes = np.zeros((len(self.pitch_sets), max(map(len, self.pitch_sets))), np.int64)
        mask = np.zeros(notes.shape, bool)
        for i, chord in enumerate(self.pitch_sets):
            notes[i, : len(chord)] = chord
            mask[i, : len(chord)] = True
        object.__setattr__(self, "_notes", notes)
        object.__setattr__(self, "_mask", mask)
        outlines = np.full((len(self.pitch_sets) + MARKERS, 2), -1000, dtype=np.int64)
        outlines[MARKERS:] = [(min(chord), max(chord)) for chord in self.pitch_sets]
        object.__setattr__(self, "_outlines", outlines)
        # A piece repeats its chords, and a bot reads many pieces: each value is looked up once.
        object.__setattr__(self, "_mapped", functools.lru_cache(maxsize=NEAREST_CACHE)(self._find_nearest))

    @classmethod
    def build(
        cls,
        pieces: Iterable[Sequence[Event]],
        styles: Sequence[str] = ("default",),
        max_pitch_sets: int = 4000,
        min_count: int = 1,
    ) -> Vocabulary:
        """Collect the values of every field from training pieces, most frequent pitch sets first."""
        chords: Counter = Counter()
        durations: Counter = Counter()
        iois: Counter = Counter()
        for events in pieces:
            for e in events:
                chords[e.pitches] += 1
                durations[e.duration] += 1
                iois[e.ioi] += 1
        kept = [c for c, n in chords.most_common(max_pitch_sets) if n >= min_count]
        return cls(
            pitch_sets=tuple(sorted(kept)),
            durations=tuple(sorted(durations)),
            iois=tuple(sorted(iois)),
            styles=tuple(styles),
        )

    @property
    def outlines(self) -> np.ndarray:
        """Each pitch id's lowest and highest note, ``(ids, 2)``, markers far below any note: what
        :func:`composer.generation.sampling.motion_bias` compares one chord with the next by."""
        return self._outlines  # type: ignore[attr-defined]

    @property
    def chord_notes(self) -> tuple[np.ndarray, np.ndarray]:
        """The notes of every pitch set as one array, ``(sets, widest)``, padded with 0, and the
        mask of real notes: for sums over all chords at once instead of a loop over thousands."""
        return self._notes, self._mask  # type: ignore[attr-defined]

    @property
    def sizes(self) -> dict[str, int]:
        """Number of ids per field, markers included: the size of each embedding and head."""
        return {
            "pitch": len(self.pitch_sets) + MARKERS,
            "duration": len(self.durations) + MARKERS,
            "ioi": len(self.iois) + MARKERS,
            "velocity": len(self.velocities) + MARKERS,
        }

    def style_id(self, style: str | None) -> int:
        """The id of a style name (the first style when ``None``); ``KeyError`` if unknown."""
        if style is None:
            return 0
        return self.styles.index(style)

    # -- events to ids -------------------------------------------------------------------------

    def encode(self, events: Sequence[Event], start: bool = True, end: bool = True) -> Encoded:
        """Token rows for ``events``, framed by start and end rows when asked."""
        rows = [[START] * 4] if start else []
        unknown = 0
        for e in events:
            row, mapped = self.encode_event(e)
            rows.append(row)
            unknown += mapped
        if end:
            rows.append([END] * 4)
        return Encoded(np.asarray(rows, dtype=np.int32).reshape(-1, 4), unknown)

    def encode_event(self, event: Event) -> tuple[list[int], int]:
        """One event's ids and how many of its four values had to be mapped to a neighbour."""
        mapped = 0
        ids = []
        for name, value in zip(
            FIELDS, (event.pitches, event.duration, event.ioi, event.velocity), strict=True
        ):
            token = self._index[name].get(value)
            if token is None:
                token = self._mapped(name, value)
                mapped += 1
            ids.append(token)
        return ids, mapped

    def nearest(self, name: str, value: int | tuple[int, ...]) -> int:
        """The id of ``value`` in field ``name``, or of the nearest known value."""
        token = self._index[name].get(value)
        return token if token is not None else self._mapped(name, value)

    def _find_nearest(self, name: str, value: int | tuple[int, ...]) -> int:
        if name == "pitch":
            return int(np.argmin(self._chord_distances(value))) + MARKERS
        values = np.asarray({"duration": self.durations, "ioi": self.iois, "velocity": self.velocities}[name])
        if name == "velocity":
            return int(np.argmin(np.abs(values - value))) + MARKERS
        # Rhythm values compare by ratio: 5 ticks is nearer to 6 than 7 is to 9.
        return int(np.argmin(np.abs(np.log((values + 1) / (value + 1))))) + MARKERS

    def _chord_distances(self, chord: tuple[int, ...]) -> np.ndarray:
        """Symmetric chamfer distance in semitones from ``chord`` to every known pitch set: each
        of its notes to the nearest note of the known set, and each known note to the nearest
        of its notes. Both halves are table lookups, so a piece full of unknown chords maps fast."""
        notes, mask = self.chord_notes
        query = np.asarray(chord, dtype=np.int64)
        forward = self._nearest_note_table()[:, query].sum(axis=1, dtype=np.int64)
        to_query = np.abs(np.arange(128)[:, None] - query[None, :]).min(axis=1)  # for every MIDI note
        backward = np.where(mask, to_query[notes], 0).sum(axis=1)
        return forward + backward

    def _nearest_note_table(self) -> np.ndarray:
        """``(sets, 128)``: how far every MIDI note is from each known pitch set's nearest note
        (built at the first unknown chord, then kept)."""
        table = getattr(self, "_near_table", None)
        if table is None:
            notes, mask = self.chord_notes
            apart = np.abs(notes[:, :, None].astype(np.int16) - np.arange(128, dtype=np.int16))
            table = np.where(mask[:, :, None], apart, 255).min(axis=1).astype(np.uint8)
            object.__setattr__(self, "_near_table", table)
        return table

    def steady_rhythm(self, ticks: int, velocity: int = 5) -> dict[str, int]:
        """Ids of the fields a pitch-only network (the seed's) does not predict: every note
        ``ticks`` long and as far apart, at one loudness."""
        _, duration, ioi, level = self.encode_event(Event((60,), ticks, ticks, velocity))[0]
        return {"duration": duration, "ioi": ioi, "velocity": level}

    # -- ids to events -------------------------------------------------------------------------

    def decode_event(self, row: Sequence[int]) -> Event:
        """The event for one row of value ids (markers are not events)."""
        p, d, i, v = (int(x) - MARKERS for x in row)
        if min(p, d, i, v) < 0:
            raise ValueError(f"row {list(row)} holds a marker, not an event")
        return Event(self.pitch_sets[p], self.durations[d], self.iois[i], self.velocities[v])

    def decode(self, rows: np.ndarray) -> list[Event]:
        """Events for token rows, skipping start rows and stopping at the first end row."""
        events = []
        for row in np.asarray(rows).reshape(-1, 4):
            if row[0] == END:
                break
            if row[0] < MARKERS:
                continue
            events.append(self.decode_event(row))
        return events

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """A JSON-ready form; :meth:`from_dict` restores an equal vocabulary."""
        return {
            "pitch_sets": [list(c) for c in self.pitch_sets],
            "durations": list(self.durations),
            "iois": list(self.iois),
            "velocities": list(self.velocities),
            "styles": list(self.styles),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        """Rebuild a vocabulary saved with :meth:`to_dict`."""
        return cls(
            pitch_sets=tuple(tuple(int(p) for p in c) for c in data["pitch_sets"]),
            durations=tuple(int(v) for v in data["durations"]),
            iois=tuple(int(v) for v in data["iois"]),
            velocities=tuple(int(v) for v in data["velocities"]),
            styles=tuple(str(s) for s in data["styles"]),
        )
