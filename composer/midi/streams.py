"""music21 streams (MusicXML, ABC, the training corpus) as plain, picklable values.

:func:`score_from_stream` converts any music21 stream into a :class:`~composer.events.Score`,
dropping and counting drum notes and keeping exact note times; :func:`stream_to_midi` writes it
as MIDI with music21's own translation, for a user's score to be kept whole like a MIDI file.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from composer.errors import InputFileError
from composer.events import Note, Part, Score
from composer.midi.checks import quoted_name
from composer.midi.smf import DRUM_CHANNEL

_MIN_TEMPO, _MAX_TEMPO = 10.0, 1000.0
"""Tempo marks outside this range (BPM) are clamped: a hostile file can say anything."""

OTHER_DEFAULT_TEMPO = 100.0
"""The tempo of a score with no tempo mark."""


def stream_to_midi(stream: Any, tempo: float) -> bytes:
    """The MIDI bytes music21 writes for ``stream``, with tempo changes, dynamics and ties.

    A score without a tempo mark gets one at ``tempo`` (quarter notes a minute) first, so that it
    plays at the tempo :func:`score_from_stream` judged for it rather than music21's 120.
    """
    from music21 import midi
    from music21 import stream as m21stream
    from music21 import tempo as m21tempo

    if isinstance(stream, m21stream.Opus):
        stream = next(iter(stream.scores), stream)
    if not _earliest(stream, m21tempo.MetronomeMark):
        first = next(iter(stream.getElementsByClass(m21stream.Part)), stream)
        first.insert(0, m21tempo.MetronomeMark(number=round(tempo, 3)))
    return midi.translate.music21ObjectToMidiFile(stream).writestr()


def score_from_stream(stream: Any, source: str = "", *, default_tempo: float = OTHER_DEFAULT_TEMPO) -> Score:
    """Convert a parsed music21 stream into a :class:`Score` of plain, picklable values.

    Drum parts and unpitched notes are dropped (Cadenza composes pitches) and counted in
    ``dropped_drum_notes``; ties are merged; grace notes are skipped. An :class:`Opus`
    contributes its first score. ``default_tempo`` applies when the piece has no tempo mark
    (pass 120 for MIDI, the MIDI standard's default), as beats a minute: a piece written mostly
    in half notes counts the half note as its beat. Also used in-process by training on trusted
    corpus files.
    """
    from music21 import stream as m21stream

    if isinstance(stream, m21stream.Opus):
        scores = list(stream.scores)
        if not scores:
            raise InputFileError(f"{quoted_name(source)} holds no pieces.")
        stream = scores[0]
    if isinstance(stream, m21stream.Score):
        containers = list(stream.parts) or [stream]
    else:
        containers = list(stream.getElementsByClass(m21stream.Part)) or [stream]

    notes: list[Note] = []
    parts: list[Part] = []
    drums = 0
    for container in containers:
        part_notes, part_drums, part = _convert_part(container, len(parts))
        drums += part_drums
        if part_notes:
            notes.extend(part_notes)
            parts.append(part)
    if not notes:
        what = "only drums" if drums else "no notes"
        raise InputFileError(f"{quoted_name(source)} has {what}: Cadenza needs pitched notes.")
    notes.sort(key=lambda n: (n.start, n.pitch, n.part, n.end))
    return Score(
        notes=tuple(notes),
        parts=tuple(parts),
        tempo=_first_tempo(stream, default_tempo * _beat_in_quarters(notes)),
        time_signature=_first_time_signature(stream),
        dropped_drum_notes=drums,
        source=source,
        metadata=_metadata(stream) | fermata_onsets(containers),
    )


def _convert_part(container: Any, index: int) -> tuple[list[Note], int, Part]:
    """The pitched notes of one part (as part ``index``), its count of drum notes, and its Part.

    Tied notes are merged into one, like music21's ``stripTies(matchByPitch=True)`` but in one
    linear pass over a flattened view: ``stripTies`` deep-copies the part and re-sorts it,
    which took most of the reading time on large MIDI files (13 s of 23 s on a 6,000-note one).
    """
    from music21 import chord, instrument, note, percussion

    inst = container.recurse().getElementsByClass(instrument.Instrument).first()
    if _is_drum_instrument(inst):
        return [], _count_sounding(container), Part()

    flat = container.flatten()
    held: list[list[Any]] = []  # [pitch, start, end, velocity] per sounding note
    open_ties: dict[int, int] = {}  # pitch -> index in ``held`` of the note a tie continues
    drums = 0
    for element in flat.notes:
        if element.duration.isGrace:
            continue
        if isinstance(element, note.Unpitched | percussion.PercussionChord):
            drums += _count_sounding(element)
            continue
        if isinstance(element, chord.Chord):
            fallback = _velocity(element, 80)
            members = [m for m in element.notes if isinstance(m, note.Note)]
        elif isinstance(element, note.Note):
            fallback, members = 80, [element]
        else:
            continue
        start = float(flat.elementOffset(element))
        end = start + max(0.0, float(element.quarterLength))
        for member in members:
            pitch = _midi(member.pitch)
            tie = member.tie.type if member.tie is not None else None
            earlier = open_ties.get(pitch)
            if earlier is not None and (
                tie in ("continue", "stop") or (tie is None and abs(held[earlier][2] - start) < 1e-6)
            ):  # a tie goes on into the next note of its pitch, even one whose "stop" is missing
                del open_ties[pitch]
                held[earlier][2] = max(held[earlier][2], end)
                position = earlier
            else:
                position = len(held)
                held.append([pitch, start, end, _velocity(member, fallback)])
            if tie in ("start", "continue"):
                open_ties[pitch] = position
    notes = [Note(pitch, start, end, velocity, index) for pitch, start, end, velocity in held]
    return notes, drums, Part(_part_name(container, inst), _program(inst))


def _is_drum_instrument(inst: Any) -> bool:
    """A drum kit: unpitched percussion, the generic Percussion class, or MIDI channel 10.

    Pitched percussion (marimba, timpani, vibraphone...) subclasses ``Percussion`` too and is
    kept, so the generic class is matched exactly.
    """
    if inst is None:
        return False
    from music21 import instrument

    return (
        isinstance(inst, instrument.UnpitchedPercussion)
        or type(inst) is instrument.Percussion
        or inst.midiChannel == DRUM_CHANNEL
    )


def _count_sounding(obj: Any) -> int:
    """How many sounding notes a part or element holds (a chord counts each of its notes)."""
    elements = [obj] if not hasattr(obj, "recurse") else obj.recurse().notes
    total = 0
    for element in elements:
        if element.duration.isGrace:
            continue
        members = getattr(element, "notes", None)
        total += len(members) if members else 1
    return total


def _midi(pitch: Any) -> int:
    """A pitch's MIDI number, folded by octaves into 0-127."""
    value = int(pitch.midi)
    while value > 127:
        value -= 12
    while value < 0:
        value += 12
    return value


def _velocity(element: Any, fallback: int) -> int:
    """An element's MIDI velocity if it has one (1-127), else ``fallback``."""
    if not element.hasVolumeInformation():
        return fallback
    velocity = element.volume.velocity
    if not velocity:
        return fallback
    return min(127, max(1, int(velocity)))


def _part_name(container: Any, inst: Any) -> str:
    """A part's name: its own, else its instrument's."""
    for candidate in (
        getattr(container, "partName", None),
        getattr(inst, "partName", None),
        getattr(inst, "instrumentName", None),
    ):
        if isinstance(candidate, str) and candidate.strip():
            return "".join(ch for ch in candidate.strip() if ch.isprintable())[:100]
    return ""


def _program(inst: Any) -> int:
    """The General MIDI program of an instrument (0, acoustic grand piano, when unknown)."""
    program = getattr(inst, "midiProgram", None)
    return program if isinstance(program, int) and 0 <= program <= 127 else 0


def _earliest(stream: Any, cls: type) -> list[Any]:
    """The elements of class ``cls`` anywhere in ``stream``, earliest first."""
    found = []
    for element in stream.recurse().getElementsByClass(cls):
        try:
            offset = float(Fraction(element.getOffsetInHierarchy(stream)))
        except Exception:  # an element the hierarchy cannot place: treat as late
            offset = math.inf
        found.append((offset, len(found), element))
    return [element for _, _, element in sorted(found, key=lambda item: item[:2])]


def _beat_in_quarters(notes: Sequence[Note]) -> float:
    """The beat of a piece without a tempo mark, judged from how its onsets move: 1 (a quarter)
    normally, up to 2 when the typical gap between onsets is a half note or longer.

    Many old songs are written in half notes (the Essen collection's ``M:4/2`` tunes); played at
    a quarter-note tempo they would crawl at half speed.
    """
    onsets = sorted({n.start for n in notes})
    if len(onsets) < 9:  # too few to judge
        return 1.0
    gaps = [b - a for a, b in itertools.pairwise(onsets)]
    return float(min(2.0, max(1.0, statistics.median(gaps))))


def _first_tempo(stream: Any, default: float) -> float:
    """The quarter-note BPM of the first metronome mark, clamped to a sane range."""
    from music21 import tempo

    for mark in _earliest(stream, tempo.MetronomeMark):
        try:
            bpm = mark.getQuarterBPM()
        except Exception:
            continue
        if bpm and math.isfinite(bpm) and bpm > 0:
            return float(min(_MAX_TEMPO, max(_MIN_TEMPO, bpm)))
    return float(default)


def _first_time_signature(stream: Any) -> tuple[int, int]:
    """The first time signature as (beats, beat unit); (4, 4) when absent or nonsensical."""
    from music21 import meter

    for ts in _earliest(stream, meter.TimeSignature):
        numerator, denominator = ts.numerator, ts.denominator
        if isinstance(numerator, int) and 1 <= numerator <= 64 and denominator in (1, 2, 4, 8, 16, 32, 64):
            return numerator, denominator
    return 4, 4


def fermata_onsets(containers: Sequence[Any], expand_repeats: bool = False) -> dict[str, str]:
    """Where notes under a fermata start (quarter notes, space-separated, under ``"fermatas"``): the
    phrase ends a harmonization cadences on. MIDI has no fermatas, so they are kept here; with
    ``expand_repeats``, at their times with the repeats played out, as in music21's MIDI."""
    from music21 import expressions

    onsets = set()
    for container in containers:
        flat = container.flatten()
        if expand_repeats:
            with contextlib.suppress(Exception):  # repeats music21 cannot expand are written as they stand
                flat = container.expandRepeats().flatten()
        for element in flat.notes:
            if any(isinstance(e, expressions.Fermata) for e in element.expressions):
                onsets.add(float(flat.elementOffset(element)))
    return {"fermatas": " ".join(f"{x:g}" for x in sorted(onsets))} if onsets else {}


def _metadata(stream: Any) -> dict[str, str]:
    """Title and composer, when the file names them."""
    md = getattr(stream, "metadata", None)
    if md is None:
        return {}
    found: dict[str, str] = {}
    for key in ("title", "composer"):
        try:
            value = getattr(md, key)
        except Exception:
            continue
        if isinstance(value, str) and value.strip():
            found[key] = "".join(ch for ch in value.strip() if ch.isprintable())[:200]
    return found
