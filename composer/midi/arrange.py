"""From generated events to the file people get: a new piece, or the user's file plus a new part.

A new piece is played with phrase dynamics and a final ritardando. The new part of a
continuation starts where the user's music ends on the model's grid (after the last drum hit
too), in the beats of the user's file, so it follows the file's tempo map; its loudness is matched to the
last notes of the user's piece, so the seam does not sound like another recording.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import fmean

from composer.events import TICKS_PER_QUARTER, Event, Note, Score, notes_from_events
from composer.generation.expression import perform
from composer.keys import Key
from composer.midi.notes import last_onset, main_channel
from composer.midi.smf import PROGRAM_CHANGE, MidiFile
from composer.midi.timeline import Timeline
from composer.midi.write import (
    RESOLUTION,
    channel_state,
    continuation_midi,
    new_part_controllers,
    piece_midi,
)

SEAM_NOTES = 16
"""How many notes either side of the seam set the loudness the new part starts at."""
SETTLE_NOTES = 16
"""Over how many notes after those the new part moves to the piece's usual loudness."""
LEVEL_SECONDS = 30.0
"""The stretch at the end of the piece whose mean loudness is its usual loudness."""


@dataclass(frozen=True)
class Arrangement:
    """The output file and what is needed to show it: every pitched note, the timeline, the seam."""

    midi: MidiFile
    notes: tuple[Note, ...]
    """Pitched notes in beats, the user's first (for the picture)."""
    timeline: Timeline
    new_from: float | None
    """Where the new part starts, in beats, when it follows the user's piece in the same file."""
    tempo: float
    """The tempo the new part starts at."""
    program: int
    """The General MIDI program the new part plays."""

    @property
    def seconds(self) -> float:
        """How long the piece plays, through every tempo change."""
        end = max(n.end for n in self.notes)
        return float(self.timeline.seconds_at([end])[0])


def new_piece(
    events: Sequence[Event], *, tempo: float, key: Key, program: int, title: str = ""
) -> Arrangement:
    """A new piece in 4/4 with the key's signature, played with phrase dynamics and a final
    ritardando (:mod:`composer.generation.expression`) around ``tempo``."""
    notes, curve = perform(events, notes_from_events(events), tempo)
    timeline = Timeline(
        RESOLUTION,
        tuple((round(beat * RESOLUTION), round(60_000_000 / bpm)) for beat, bpm in curve),
        ((0, (4, 4)),),
        ((0, key.signature),),
    )
    midi = piece_midi(notes, timeline, program=program, title=title)
    return Arrangement(midi, tuple(notes), timeline, None, tempo, program)


def continuation(
    source: Score,
    primer: Sequence[Event],
    events: Sequence[Event],
    *,
    program: int | None,
    tempo: float | None,
    new_part_only: bool,
) -> Arrangement:
    """The user's file plus a new track playing ``events``, or (``new_part_only``) that part alone.

    ``program`` and ``tempo`` are the ones asked for (None keeps what is in force at the seam).
    """
    if source.midi is None:
        raise ValueError("a continuation needs the user's MIDI file")
    timeline = Timeline.of(source.midi)
    start = max(n.start for n in source.notes) + primer[-1].ioi / TICKS_PER_QUARTER
    drums = timeline.quarters(last_onset(source.midi))  # drums the model did not hear may go on
    if drums >= start:
        start = math.floor(drums) + 1.0  # the beat after the last of them
    start_tick = timeline.tick(start)
    channel = main_channel(source)
    state = channel_state(source.midi, channel, start_tick)
    bpm = tempo or timeline.tempo_at(start_tick)
    new_notes = _match_loudness(source.notes, notes_from_events(events, start=start), timeline)
    if program is None:
        program = state.get(PROGRAM_CHANGE, 0)
    if new_part_only:
        shifted = tuple(replace(n, start=n.start - start, end=n.end - start, part=0) for n in new_notes)
        key = timeline.key_signature_at(start_tick)
        alone = Timeline(
            RESOLUTION,
            Timeline.constant(bpm).tempos,
            ((0, timeline.time_signature_at(start_tick)),),
            ((0, key),) if key is not None else (),
        )
        midi = piece_midi(
            shifted,
            alone,
            program=program,
            name="Cadenza continuation",
            channel=channel,
            controllers=new_part_controllers(state),
        )
        return Arrangement(midi, shifted, alone, None, bpm, program)
    midi = continuation_midi(
        source.midi,
        new_notes,
        timeline=timeline,
        start=start_tick,
        channel=channel,
        state=state,
        program=program,
        tempo=tempo,
    )
    part = len(source.parts)
    notes = (*source.notes, *(replace(n, part=part) for n in new_notes))
    played = Timeline.of(midi) if tempo is not None else timeline  # only a tempo asked for changes it
    return Arrangement(midi, notes, played, start, bpm, program)


def _match_loudness(before: Sequence[Note], after: list[Note], timeline: Timeline) -> list[Note]:
    """``after`` made as loud at its start as ``before`` is at its end, then as loud as ``before``
    is over its last half-minute (the same shape, shifted): a piece that ends on a loud final
    chord is picked up at that loudness, and goes on at the loudness it is usually played at."""
    if not before or not after:
        return after
    before = sorted(before, key=lambda n: n.start)
    after = sorted(after, key=lambda n: n.start)
    seam = fmean(n.velocity for n in before[-SEAM_NOTES:]) - fmean(n.velocity for n in after[:SEAM_NOTES])
    seconds = timeline.seconds_at([n.start for n in before])
    recent = [n.velocity for n, t in zip(before, seconds, strict=True) if t >= seconds[-1] - LEVEL_SECONDS]
    level = fmean(recent) - fmean(n.velocity for n in after)
    shifted = []
    for i, n in enumerate(after):
        settled = min(1.0, max(0.0, (i - SEAM_NOTES + 1) / (SETTLE_NOTES + 1)))
        shift = round((1 - settled) * seam + settled * level)
        shifted.append(replace(n, velocity=max(1, min(127, n.velocity + shift))))
    return shifted
