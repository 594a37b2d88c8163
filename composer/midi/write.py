"""Writing MIDI: new pieces from scratch, and continuations that keep the user's file exactly.

A new piece is a type-1 file at :data:`RESOLUTION` ticks a quarter: a conductor track (title,
tempo, meter, key) and one named instrument track with a single program change.

A continuation is the user's file plus one track: every message of the user's file stays at its
tick, on its track and channel (drums, pedal, tempo map, lyrics and all), at the file's own
resolution. The new track plays on the channel of the part that ended the piece, so the pedal,
volume, pan and effects the user set there go on sounding; it lifts a pedal left down at the end,
starts at the tempo, meter and key in force there, and changes program only when asked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from composer.events import Note
from composer.midi.smf import (
    CONTROL_CHANGE,
    NOTE_OFF,
    NOTE_ON,
    PROGRAM_CHANGE,
    Message,
    MidiFile,
    Track,
    encode_smf,
    key_signature_event,
    tempo_event,
    time_signature_event,
    track_name_event,
)
from composer.midi.timeline import Timeline

RESOLUTION = 480
"""Ticks a quarter note in the files Cadenza writes: what sequencers and notation programs use."""

SUSTAIN = 64
KEPT_CONTROLLERS = (0, 7, 10, 11, 32, 91, 93)
"""Controllers a new-part-only file copies from the channel it continues: bank select, volume,
pan, expression and the reverb and chorus sends."""


def piece_midi(
    notes: Sequence[Note],
    timeline: Timeline,
    *,
    program: int,
    name: str = "Cadenza",
    title: str = "",
    channel: int = 0,
    controllers: Iterable[tuple[int, int]] = (),
) -> MidiFile:
    """A new type-1 file: a conductor track and one instrument track playing ``notes``.

    ``timeline`` gives the resolution and the tempo, meter and key written at the start.
    """
    conductor: list[Message] = []
    if title:
        conductor.append((0, track_name_event(title)))
    conductor.append((0, time_signature_event(*timeline.time_signature_at(0))))
    key = timeline.key_signature_at(0)
    if key is not None:
        conductor.append((0, key_signature_event(*key)))
    conductor.extend((tick, tempo_event(60_000_000 / us)) for tick, us in timeline.tempos)
    setup: list[Message] = [(0, track_name_event(name)), (0, bytes((PROGRAM_CHANGE | channel, program)))]
    setup.extend((0, bytes((CONTROL_CHANGE | channel, number, value))) for number, value in controllers)
    part = _note_track(setup, notes, timeline, channel)
    return MidiFile(1, timeline.division, (Track(tuple(conductor), 0), part))


def parts_midi(
    parts: Sequence[tuple[str, Sequence[Note]]], timeline: Timeline, *, program: int, title: str = ""
) -> MidiFile:
    """A new type-1 file with a conductor track and one named track per part, each on its own
    channel (the drum channel skipped) with ``program``, so every voice can be heard or edited alone."""
    conductor = piece_midi((), timeline, program=program, title=title).tracks[0]
    channels = [c for c in range(16) if c != 9]
    tracks = []
    for (name, notes), channel in zip(parts, channels, strict=False):
        setup: list[Message] = [(0, track_name_event(name)), (0, bytes((PROGRAM_CHANGE | channel, program)))]
        tracks.append(_note_track(setup, notes, timeline, channel))
    return MidiFile(1, timeline.division, (conductor, *tracks))


def continuation_midi(
    source: MidiFile,
    notes: Sequence[Note],
    *,
    timeline: Timeline,
    start: int,
    channel: int,
    state: dict[int, int],
    program: int | None = None,
    tempo: float | None = None,
    name: str = "Cadenza continuation",
) -> MidiFile:
    """``source`` unchanged plus a track named ``name`` playing ``notes`` on ``channel`` from tick
    ``start``.

    ``notes`` are in beats from the start of the file (``timeline`` is the file's); ``state`` is
    the channel's :func:`channel_state` at ``start``. ``program`` is written only when it differs
    from the one in force there; ``tempo`` (quarter notes a minute), when given, is set at ``start``.
    """
    setup: list[Message] = [(start, track_name_event(name))]
    if tempo is not None:
        setup.append((start, tempo_event(tempo)))
    if program is not None and program != state.get(PROGRAM_CHANGE, 0):
        setup.append((start, bytes((PROGRAM_CHANGE | channel, program))))
    if state.get(SUSTAIN, 0) >= 64:  # a pedal still down would blur the new part into the old
        setup.append((start, bytes((CONTROL_CHANGE | channel, SUSTAIN, 0))))
    track = _note_track(setup, notes, timeline, channel)
    return MidiFile(max(1, source.format), source.division, (*source.tracks, track))


def channel_state(midi: MidiFile, channel: int, tick: int) -> dict[int, int]:
    """The controller values (by number) and program (under key ``PROGRAM_CHANGE``) in force on
    ``channel`` just before ``tick``, as a synthesizer playing the file would have them."""
    changes: list[tuple[int, int, int, int]] = []  # tick, track, position, then key and value
    state: dict[int, int] = {}
    for number, track in enumerate(midi.tracks):
        for position, (at, raw) in enumerate(track.messages):
            if at >= tick or raw[0] & 0x0F != channel or raw[0] >= 0xF0:
                continue
            if raw[0] & 0xF0 == CONTROL_CHANGE:
                changes.append((at, number, position, raw[1] << 8 | raw[2]))
            elif raw[0] & 0xF0 == PROGRAM_CHANGE:
                changes.append((at, number, position, PROGRAM_CHANGE << 8 | raw[1]))
    for *_, packed in sorted(changes):
        state[packed >> 8] = packed & 0xFF
    return state


def new_part_controllers(state: dict[int, int]) -> list[tuple[int, int]]:
    """The controllers of ``state`` worth repeating at the start of a file of the new part alone."""
    return [(number, state[number]) for number in KEPT_CONTROLLERS if number in state]


def write_midi_file(midi: MidiFile, path: str | Path) -> Path:
    """Write ``midi`` to ``path``; the file appears whole or not at all."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(encode_smf(midi))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _note_track(setup: list[Message], notes: Sequence[Note], timeline: Timeline, channel: int) -> Track:
    """A track of ``setup`` messages then ``notes``; at one tick, note-offs come before note-ons."""
    timed: list[tuple[int, int, bytes]] = []
    for n in notes:
        on = timeline.tick(n.start)
        off = max(on + 1, timeline.tick(n.end))
        timed.append((on, 1, bytes((NOTE_ON | channel, n.pitch, max(1, min(127, n.velocity))))))
        timed.append((off, 0, bytes((NOTE_OFF | channel, n.pitch, 0))))
    timed.sort(key=lambda item: (item[0], item[1]))
    messages = [*setup, *((tick, raw) for tick, _, raw in timed)]
    end = max((tick for tick, _ in messages), default=0)
    return Track(tuple(messages), end)
