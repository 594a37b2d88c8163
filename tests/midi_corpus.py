"""Real-world-shaped MIDI files, made here with mido (or byte by byte where mido would not write
them): what sequencers, notation programs and phone apps save, rather than what a corpus holds.

Each builder returns the file's bytes. ``CORPUS`` names them all for parametrized tests.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Callable

import mido

Meta = mido.MetaMessage
Msg = mido.Message


def save(mid: mido.MidiFile) -> bytes:
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


def timed(events: list[tuple[int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    """A track from (absolute tick, message) pairs, kept in the given order at equal ticks."""
    track = mido.MidiTrack()
    now = 0
    for tick, message in sorted(events, key=lambda item: item[0]):
        track.append(message.copy(time=tick - now))
        now = tick
    return track


def melody(
    channel: int = 0,
    *,
    count: int = 48,
    step: int = 240,
    base: int = 60,
    velocity: int = 80,
    start: int = 0,
) -> list[tuple[int, Msg]]:
    """A scale-like tune with chords every fourth note, as note_on/note_off pairs."""
    scale = [0, 2, 4, 5, 7, 9, 11, 12, 11, 9, 7, 5, 4, 2]
    events = []
    for i in range(count):
        tick = start + i * step
        pitches = [base + scale[i % len(scale)]]
        if i % 4 == 0:
            pitches += [base - 12, base - 5]
        for p in pitches:
            events.append((tick, Msg("note_on", channel=channel, note=p, velocity=velocity + i % 20)))
            events.append((tick + step - 10, Msg("note_off", channel=channel, note=p, velocity=64)))
    return events


def piano_file(
    extra: list[tuple[int, mido.Message | mido.MetaMessage]],
    *,
    ticks_per_beat: int = 480,
    step: int | None = None,
    count: int = 48,
) -> bytes:
    """Type 1: a conductor track of ``extra`` meta events and one piano track."""
    step = step or ticks_per_beat // 2
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    conductor = timed([(0, Meta("track_name", name="Conductor")), *extra])
    piano = timed(
        [
            (0, Meta("track_name", name="Piano")),
            (0, Msg("program_change", program=0)),
            *melody(count=count, step=step),
        ]
    )
    mid.tracks += [conductor, piano]
    return save(mid)


# ----------------------------------------------------------------------------- the files


def tempo_ramp() -> bytes:
    """Rubato played in: 480 tempo changes, one every sixteenth, swinging between 60 and 140 bpm."""
    changes = [
        (i * 120, Meta("set_tempo", tempo=mido.bpm2tempo(100 + 40 * math.sin(i / 9)))) for i in range(480)
    ]
    return piano_file(changes, count=96, step=120 * 5)


def accelerando() -> bytes:
    """35 tempo steps from 70 to 140 bpm, a time-signature change and a key change."""
    changes = [(i * 480, Meta("set_tempo", tempo=mido.bpm2tempo(70 + 2 * i))) for i in range(35)]
    changes += [
        (0, Meta("time_signature", numerator=4, denominator=4)),
        (0, Meta("key_signature", key="D")),
        (16 * 480, Meta("time_signature", numerator=3, denominator=4)),
        (16 * 480, Meta("key_signature", key="Bm")),
    ]
    return piano_file(changes, count=64)


def two_tempos_at_one_tick() -> bytes:
    """Two tempo events at tick 0: the second (130 bpm) is the one in force."""
    first, second = (Meta("set_tempo", tempo=round(mido.bpm2tempo(bpm))) for bpm in (120, 130))
    return piano_file([(0, first), (0, second)])


def pedalled_piano() -> bytes:
    """A piano part with sustain pedal, volume, pan, expression, sends and pitch bends."""
    setup = [
        (0, Msg("control_change", control=7, value=100)),
        (0, Msg("control_change", control=10, value=40)),
        (0, Msg("control_change", control=91, value=70)),
        (0, Msg("control_change", control=93, value=30)),
        (0, Msg("control_change", control=11, value=110)),
        (0, Msg("program_change", program=1)),
    ]
    pedal = []
    for bar in range(12):
        pedal.append((bar * 960 + 5, Msg("control_change", control=64, value=127)))
        pedal.append((bar * 960 + 940, Msg("control_change", control=64, value=0)))
    bends = [(i * 37, Msg("pitchwheel", pitch=(i * 613) % 8000 - 4000)) for i in range(60)]
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    mid.tracks.append(timed([(0, Meta("set_tempo", tempo=mido.bpm2tempo(72)))]))
    mid.tracks.append(timed([(0, Meta("track_name", name="Grand")), *setup, *pedal, *bends, *melody()]))
    return save(mid)


def general_midi_type0() -> bytes:
    """Type 0: twelve channels on one track (strings, brass, bass... and drums on channel 10)."""
    events: list[tuple[int, mido.Message | mido.MetaMessage]] = [
        (0, Meta("set_tempo", tempo=mido.bpm2tempo(96))),
        (0, Meta("time_signature", numerator=4, denominator=4)),
        (0, Meta("copyright", text="(c) a sequencer user")),
    ]
    for channel in range(12):
        if channel != 9:
            events.append((0, Msg("program_change", channel=channel, program=(channel * 11) % 128)))
            events.append((0, Msg("control_change", channel=channel, control=7, value=60 + channel * 5)))
            events += melody(channel, count=16, step=480, base=40 + channel * 4, start=channel * 7)
    for beat in range(32):
        events.append((beat * 240, Msg("note_on", channel=9, note=36 + beat % 3 * 2, velocity=100)))
        events.append((beat * 240 + 60, Msg("note_off", channel=9, note=36 + beat % 3 * 2)))
    mid = mido.MidiFile(type=0, ticks_per_beat=192)
    mid.tracks.append(timed(events))
    return save(mid)


def hands_on_one_channel() -> bytes:
    """Right and left hand on two tracks, both channel 1, with hairpin-like velocities."""
    mid = mido.MidiFile(type=1, ticks_per_beat=960)
    mid.tracks.append(timed([(0, Meta("set_tempo", tempo=mido.bpm2tempo(66)))]))
    right = timed([(0, Meta("track_name", name="RH")), *melody(count=40, step=480, base=72, velocity=40)])
    left = timed([(0, Meta("track_name", name="LH")), *melody(count=20, step=960, base=48, velocity=95)])
    mid.tracks += [right, left]
    return save(mid)


def overlaps_and_unreleased() -> bytes:
    """The same pitch struck again before its release (first in, first out), note-on with velocity 0
    as note-off, and notes never released at all."""
    events = [
        (0, Msg("note_on", note=60, velocity=90)),
        (240, Msg("note_on", note=60, velocity=50)),
        (480, Msg("note_off", note=60)),
        (720, Msg("note_on", note=60, velocity=0)),
        (720, Msg("note_on", note=64, velocity=70)),
        (960, Msg("note_on", note=64, velocity=0)),
        *melody(count=24, start=960),
        (960 + 24 * 240, Msg("note_on", note=48, velocity=60)),  # never released
        (960 + 24 * 240, Msg("note_on", note=55, velocity=60)),  # never released
    ]
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    mid.tracks.append(timed(events))
    return save(mid)


def running_status() -> bytes:
    """Byte by byte: note-ons in running status, carried across a lyric meta event, as some
    programs write them (and mido, FluidSynth and others read them)."""
    body = bytearray(b"\x00\xff\x03\x05Voice")
    body += b"\x00\x90\x3c\x50"  # note on C4
    for i, pitch in enumerate(range(62, 62 + 40, 2)):
        body += b"\x60" + bytes((pitch - 2, 0))  # running status: previous note off (velocity 0)
        if i % 5 == 0:
            body += b"\x00\xff\x05\x02la"  # lyric between running-status events
        body += b"\x00" + bytes((pitch, 0x50))  # running status: next note on
    body += b"\x60" + bytes((pitch, 0))
    body += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96)
    return header + b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def resolution(ticks_per_beat: int) -> Callable[[], bytes]:
    def build() -> bytes:
        return piano_file([(0, Meta("set_tempo", tempo=mido.bpm2tempo(110)))], ticks_per_beat=ticks_per_beat)

    build.__name__ = f"resolution_{ticks_per_beat}"
    return build


def smpte() -> bytes:
    """SMPTE time division: 25 frames a second, 40 ticks a frame (1,000 ticks a second)."""
    notes = melody(count=24, step=250)
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    mid.tracks.append(timed([(0, Meta("track_name", name="Timecode")), *notes]))
    data = bytearray(save(mid))
    data[12:14] = struct.pack(">H", 0xE728)
    return bytes(data)


def lyrics_and_markers() -> bytes:
    """A song file: lyrics, markers, cue points, text and a GM reset in system exclusive."""
    words = ["Hap-", "py", "birth-", "day", "to", "you"]
    extra = [(0, Msg("sysex", data=[0x7E, 0x7F, 0x09, 0x01]))]
    extra += [(i * 960, Meta("marker", text=f"Verse {i + 1}")) for i in range(4)]
    extra += [(i * 240, Meta("lyrics", text=words[i % len(words)])) for i in range(40)]
    extra += [(1200, Meta("cue_marker", text="Solo")), (0, Meta("text", text="Made on a phone"))]
    return piano_file(extra)


def band_in_unison() -> bytes:
    """Game music on five channels: a lead doubled in unison and an octave below, a string pad in
    triads, a bass in octaves; six to eight notes on every beat, in C major."""
    roots = [48, 53, 55, 48, 57, 53, 55, 55]  # C F G C A F G G
    tune = [72, 74, 76, 77, 79, 77, 76, 74]
    events: list[tuple[int, Msg]] = []
    for channel, program in enumerate((80, 81, 80, 48, 33)):
        events.append((0, Msg("program_change", channel=channel, program=program)))
    for beat in range(64):
        root, top = roots[beat // 4 % 8], tune[beat % 8]
        third = 4 if root % 12 in (0, 5, 7) else 3
        pad, bass = [root, root + third, root + 7], [root - 24, root - 12]
        parts = {0: [top], 1: [top], 2: [top - 12], 3: pad, 4: bass}
        for channel, pitches in parts.items():
            for pitch in pitches:
                events.append((beat * 480, Msg("note_on", channel=channel, note=pitch, velocity=90)))
                events.append((beat * 480 + 440, Msg("note_off", channel=channel, note=pitch, velocity=0)))
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    mid.tracks.append(timed([(0, Meta("set_tempo", tempo=mido.bpm2tempo(140))), *events]))
    return save(mid)


CORPUS: dict[str, Callable[[], bytes]] = {
    build.__name__: build
    for build in (
        tempo_ramp,
        accelerando,
        two_tempos_at_one_tick,
        pedalled_piano,
        general_midi_type0,
        hands_on_one_channel,
        overlaps_and_unreleased,
        running_status,
        resolution(96),
        resolution(480),
        resolution(960),
        resolution(15360),
        smpte,
        lyrics_and_markers,
        band_in_unison,
    )
}
