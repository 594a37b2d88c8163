"""Chords into voices: each lower voice a line of its own, as a singer would read it.

At a melody onset every voice sings: the chord's notes below the melody go to the voices from the
bottom up (the chords come from four-part writing, so they keep its spacing and never cross). In
the middle of a held melody note only some voices move; each moving note goes to the voice it
leaves the least far, and the others hold on.
"""

from __future__ import annotations

from dataclasses import dataclass

from composer.harmonize.decode import Decoded, moving_voices
from composer.harmonize.melody import Melody


@dataclass(frozen=True, slots=True)
class VoiceNote:
    """One note of one voice: onset and duration in quarter notes, MIDI pitch."""

    onset: float
    duration: float
    pitch: int

    @property
    def end(self) -> float:
        """When the note stops, in quarter notes."""
        return self.onset + self.duration


def split_voices(melody: Melody, decoded: Decoded, voices: int) -> list[list[VoiceNote]]:
    """The ``voices - 1`` lower voices of a decoded harmonization, highest first."""
    lines: list[list[list[float]]] = [[] for _ in range(voices - 1)]  # bottom up: [onset, end, pitch]
    for index, middle, pitches in decoded.events:
        note = melody.notes[index]
        end = note.onset + note.duration
        if not middle:
            lower = sorted(pitches)[: voices - 1]
            for line, pitch in zip(lines, lower, strict=True):
                line.append([note.onset, end, pitch])
            continue
        at = note.onset + note.duration / 2
        moving = sorted(pitches)
        for v, pitch in zip(moving_voices([line[-1][2] for line in lines], moving), moving, strict=True):
            lines[v][-1][1] = at
            lines[v].append([at, end, pitch])
    return [[VoiceNote(on, off - on, int(p)) for on, off, p in line] for line in reversed(lines)]
