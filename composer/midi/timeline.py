"""A MIDI file's timeline: where its ticks fall in beats and in seconds, and which tempo, meter
and key are in force at any tick.

The model hears beats, which do not depend on tempo; listeners hear seconds, which follow every
tempo change. Both come from here, so the picture, the seam and the durations people are told all
follow the file's real tempo map. When several tempo (or meter, or key) events share a tick, the
one written last is the one in force, as sequencers play it. An SMPTE-timed file has no beats of
its own; it counts two beats a second (120 a minute).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from composer.midi.smf import KEY_SIGNATURE, SET_TEMPO, TIME_SIGNATURE, MidiFile, meta_payload

DEFAULT_MICROSECONDS = 500_000
"""A quarter note lasts half a second (120 a minute) until a file says otherwise."""
SMPTE_BEATS_PER_SECOND = 2.0


@dataclass(frozen=True)
class Timeline:
    """Tempo, meter and key changes of one file, as (tick, value) pairs sorted by tick."""

    division: int
    """Ticks per quarter note (for an SMPTE file: ticks per half second)."""
    tempos: tuple[tuple[int, int], ...] = ((0, DEFAULT_MICROSECONDS),)
    """Microseconds per quarter note from each tick on; the first is at tick 0."""
    time_signatures: tuple[tuple[int, tuple[int, int]], ...] = ()
    key_signatures: tuple[tuple[int, tuple[int, bool]], ...] = ()
    """(sharps, minor), sharps from -7 to 7."""
    smpte: bool = False

    @classmethod
    def constant(cls, bpm: float, division: int = 480) -> Timeline:
        """One tempo throughout, for a piece Cadenza writes itself."""
        return cls(division, ((0, round(60_000_000 / bpm)),))

    @classmethod
    def of(cls, midi: MidiFile) -> Timeline:
        """Read the tempo map, meters and keys of ``midi`` (from any of its tracks)."""
        found: dict[int, dict[int, object]] = {SET_TEMPO: {}, TIME_SIGNATURE: {}, KEY_SIGNATURE: {}}
        for track in midi.tracks:  # file order: a later track's event at the same tick wins
            for tick, raw in track.messages:
                parsed = meta_payload(raw)
                if parsed is None or parsed[0] not in found:
                    continue
                kind, data = parsed
                value = _meta_value(kind, data)
                if value is not None:
                    found[kind][tick] = value  # the last one written at a tick is in force
        if midi.smpte:
            # ticks per half second: a beat is half a second, whatever tempo events say
            division = round(midi.ticks_per_second / SMPTE_BEATS_PER_SECOND) or 1
            return cls(division, ((0, DEFAULT_MICROSECONDS),), smpte=True, **_signatures(found))
        tempos = sorted(found[SET_TEMPO].items())
        if not tempos or tempos[0][0] != 0:
            tempos.insert(0, (0, DEFAULT_MICROSECONDS))
        return cls(midi.division, tuple(tempos), **_signatures(found))  # type: ignore[arg-type]

    # -- beats ---------------------------------------------------------------------------------

    def quarters(self, tick: int) -> float:
        """Where ``tick`` falls in quarter notes (beats) from the start."""
        return tick / self.division

    def tick(self, quarters: float) -> int:
        """The tick nearest to ``quarters`` beats from the start."""
        return round(quarters * self.division)

    # -- seconds -------------------------------------------------------------------------------

    def seconds(self, ticks: Sequence[int] | np.ndarray) -> np.ndarray:
        """Where each tick falls in seconds, through every tempo change."""
        ticks = np.asarray(ticks, dtype=float)
        starts = np.array([t for t, _ in self.tempos], dtype=float)
        rates = np.array([us for _, us in self.tempos], dtype=float) / 1e6 / self.division
        offsets = np.concatenate(([0.0], np.cumsum(np.diff(starts) * rates[:-1])))
        index = np.clip(np.searchsorted(starts, ticks, side="right") - 1, 0, None)
        return offsets[index] + (ticks - starts[index]) * rates[index]

    def seconds_at(self, quarters: Sequence[float] | np.ndarray) -> np.ndarray:
        """Where each position in beats falls in seconds."""
        return self.seconds(np.asarray(quarters, dtype=float) * self.division)

    # -- what is in force ----------------------------------------------------------------------

    def tempo_at(self, tick: int) -> float:
        """The tempo in force at ``tick``, in quarter notes a minute."""
        return 60_000_000 / _in_force(self.tempos, tick, DEFAULT_MICROSECONDS)

    def time_signature_at(self, tick: int) -> tuple[int, int]:
        """The time signature in force at ``tick``; 4/4 before any."""
        return _in_force(self.time_signatures, tick, (4, 4))

    def key_signature_at(self, tick: int) -> tuple[int, bool] | None:
        """The key signature (sharps, minor) in force at ``tick``; None before any."""
        return _in_force(self.key_signatures, tick, None)


def _in_force(changes: Sequence[tuple[int, object]], tick: int, default: object) -> object:
    """The value of the last change at or before ``tick``."""
    index = bisect.bisect_right(changes, tick, key=lambda change: change[0]) - 1
    return changes[index][1] if index >= 0 else default


def _meta_value(kind: int, data: bytes) -> object:
    """The value of a tempo, time-signature or key-signature event; None when it makes no sense."""
    if kind == SET_TEMPO:
        value = int.from_bytes(data[:3], "big") if len(data) >= 3 else 0
        return value if value > 0 else None
    if kind == TIME_SIGNATURE:
        if len(data) < 2 or not 1 <= data[0] <= 64 or data[1] > 6:
            return None
        return (data[0], 2 ** data[1])
    if len(data) < 2:
        return None
    sharps = data[0] - 256 if data[0] > 127 else data[0]
    return (sharps, bool(data[1])) if -7 <= sharps <= 7 and data[1] in (0, 1) else None


def _signatures(found: dict[int, dict[int, object]]) -> dict[str, tuple]:
    """The meter and key changes, sorted by tick."""
    return {
        "time_signatures": tuple(sorted(found[TIME_SIGNATURE].items())),
        "key_signatures": tuple(sorted(found[KEY_SIGNATURE].items())),
    }
