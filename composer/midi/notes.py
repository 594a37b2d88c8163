"""The notes a MIDI file plays, as the model hears them: pitches, exact beat positions, loudness.

Notes are paired the way synthesizers pair them: a note-on with velocity 0 is a note-off, a
note-off ends the earliest still-sounding note of its pitch on its track and channel (first in,
first out), and a note never released ends with the file. Positions are in beats (ticks over
the resolution), which no tempo change moves. One part per track and channel; drums (channel 10)
are counted, not heard, yet stay in the file for everything that writes it back.
"""

from __future__ import annotations

from collections import Counter

from composer.errors import InputFileError
from composer.events import Note, Part, Score
from composer.midi.smf import (
    DRUM_CHANNEL,
    META,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM_CHANGE,
    TRACK_NAME,
    MidiFile,
    meta_payload,
)
from composer.midi.timeline import Timeline


def score_from_smf(
    midi: MidiFile, source: str = "", label: str = "The file", metadata: dict[str, str] | None = None
) -> Score:
    """The :class:`Score` of ``midi``: its pitched notes in beats, its parts, and the file itself."""
    timeline = Timeline.of(midi)
    end = midi.end
    found: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
    programs: dict[int, tuple[int, int]] = {}  # channel -> (tick, program) of its first program change
    names: dict[int, str] = {}
    drums = 0
    for number, track in enumerate(midi.tracks):
        sounding: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for tick, raw in track.messages:
            status = raw[0]
            kind, channel = status & 0xF0, status & 0x0F
            if kind == NOTE_ON and raw[2]:
                if channel == DRUM_CHANNEL:
                    drums += 1
                else:
                    sounding.setdefault((channel, raw[1]), []).append((tick, raw[2]))
            elif kind in (NOTE_ON, NOTE_OFF):
                started = sounding.get((channel, raw[1]))
                if started:
                    onset, velocity = started.pop(0)
                    found.setdefault((number, channel), []).append((raw[1], onset, tick, velocity))
            elif kind == PROGRAM_CHANGE:
                if channel not in programs or tick < programs[channel][0]:
                    programs[channel] = (tick, raw[1])
            elif status == META and number not in names:
                parsed = meta_payload(raw)
                if parsed is not None and parsed[0] == TRACK_NAME:
                    names[number] = _printable(parsed[1].decode("latin-1"))
        for (channel, pitch), started in sounding.items():  # never released: they ring to the end
            for onset, velocity in started:
                found.setdefault((number, channel), []).append((pitch, onset, max(end, onset + 1), velocity))
    notes: list[Note] = []
    parts: list[Part] = []
    for track_number, channel in sorted(found):
        index = len(parts)
        program = programs.get(channel, (0, 0))[1]
        parts.append(Part(names.get(track_number) or program_name(program), program, channel))
        notes.extend(
            Note(pitch, timeline.quarters(on), timeline.quarters(off), velocity, index)
            for pitch, on, off, velocity in found[(track_number, channel)]
        )
    if not notes:
        what = "only drums" if drums else "no notes"
        raise InputFileError(f"{label} has {what}: Cadenza needs pitched notes.")
    notes.sort(key=lambda n: (n.start, n.pitch, n.part, n.end))
    first = timeline.tick(notes[0].start)
    return Score(
        notes=tuple(notes),
        parts=tuple(parts),
        tempo=round(timeline.tempo_at(first), 3),
        time_signature=timeline.time_signature_at(first),
        dropped_drum_notes=drums,
        source=source,
        metadata=metadata or {},
        midi=midi,
    )


def last_onset(midi: MidiFile) -> int:
    """The tick of the last note-on in the file, drums included."""
    onsets = (t for track in midi.tracks for t, raw in track.messages if raw[0] & 0xF0 == NOTE_ON and raw[2])
    return max(onsets, default=0)


def main_channel(score: Score, last: int = 64) -> int:
    """The channel of the part that plays most of the last ``last`` notes: the one to continue."""
    counts = Counter(score.parts[n.part].channel for n in score.notes[-last:])
    return counts.most_common(1)[0][0]


def program_name(program: int) -> str:
    """The General MIDI instrument name of a program, as music21 knows it."""
    from music21 import instrument

    try:
        return instrument.instrumentFromMidiProgram(program).instrumentName or ""
    except instrument.InstrumentException:
        return ""


def _printable(text: str) -> str:
    """A track name without control characters, at most 60 characters."""
    return "".join(ch for ch in text if ch.isprintable()).strip()[:60]
