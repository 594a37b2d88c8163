"""Standard MIDI Files, byte for byte: a reader that keeps every message and a writer that puts
them back at the same ticks.

A user's file is the one thing Cadenza must never change, so it is read into plain values that
hold each message's raw bytes (running status expanded) and absolute tick, and written back from
them. Reading treats the bytes as hostile: every length is checked, limits are enforced while
walking, and a damaged file is an :class:`~composer.errors.InputFileError` that says where.

Rules some programs bend are read as the tolerant programs read them: running status goes on
across meta and system-exclusive events, data after a track's end-of-track and unknown chunks
are skipped, a missing end-of-track is supplied, and chunks after the header's count of tracks
are left out, as players leave them out. Nothing here knows about notes or music.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from composer.errors import InputFileError, InputLimitError

DRUM_CHANNEL = 9
"""MIDI channel 10 (counted from 0): General MIDI drums."""

NOTE_OFF, NOTE_ON, CONTROL_CHANGE, PROGRAM_CHANGE, PITCH_BEND = 0x80, 0x90, 0xB0, 0xC0, 0xE0
META, SYSEX, ESCAPE = 0xFF, 0xF0, 0xF7
TRACK_NAME, END_OF_TRACK, SET_TEMPO, TIME_SIGNATURE, KEY_SIGNATURE = 0x03, 0x2F, 0x51, 0x58, 0x59

Message = tuple[int, bytes]
"""One message: its absolute tick and its raw bytes with the status byte (for a meta event
``FF type length data``, for system exclusive ``F0/F7 length data``)."""


@dataclass(frozen=True)
class Track:
    """One ``MTrk`` chunk: its messages in file order and the tick of its end-of-track."""

    messages: tuple[Message, ...]
    end: int


@dataclass(frozen=True)
class MidiFile:
    """A Standard MIDI File as plain, picklable values.

    ``division`` is the header's raw time division: ticks per quarter note, or with the top bit
    set an SMPTE rate (frames a second and ticks a frame); see :attr:`ticks_per_second`.
    """

    format: int
    division: int
    tracks: tuple[Track, ...]

    @property
    def smpte(self) -> bool:
        """Whether ticks are fractions of SMPTE frames (absolute time) rather than of a beat."""
        return bool(self.division & 0x8000)

    @property
    def ticks_per_second(self) -> float:
        """For an SMPTE file, ticks in a second (29 frames a second means 29.97, drop frame)."""
        fps = 256 - (self.division >> 8)
        return (29.97 if fps == 29 else fps) * (self.division & 0xFF)

    @property
    def end(self) -> int:
        """The tick where the last track ends."""
        return max((t.end for t in self.tracks), default=0)


@dataclass(frozen=True)
class ReadBudget:
    """How much a file may hold; the walk stops as soon as one is broken."""

    max_tracks: int = 64
    max_messages: int = 400_000
    max_notes: int = 50_000
    max_quarters: float = 20_000.0
    """Longest track in beats (an SMPTE file counts two beats a second)."""


class _Damaged(Exception):
    """Internal: the structure is broken; the text says where."""


def parse_smf(data: bytes, budget: ReadBudget = ReadBudget(), label: str = "The file") -> MidiFile:
    """Read a Standard MIDI File's bytes into a :class:`MidiFile`, or refuse it in one line.

    ``label`` names the file in messages (already quoted). Format 2 is refused, as is a file
    with no note at all; the caller judges the notes themselves.
    """
    try:
        return _parse(data, budget, label)
    except _Damaged as exc:
        raise InputFileError(f"{label} is truncated or damaged: {exc}.") from None


def _parse(data: bytes, budget: ReadBudget, label: str) -> MidiFile:
    size = len(data)
    if data[:4] != b"MThd":
        raise InputFileError(f"{label} is not a MIDI file (it does not start with MThd).")
    if size < 14:
        raise _Damaged("the MIDI header is cut short")
    (header_len,) = struct.unpack_from(">I", data, 4)
    if header_len < 6:
        raise _Damaged(f"the MIDI header is {header_len} bytes long, at least 6 are needed")
    if 8 + header_len > size:
        raise _Damaged("the MIDI header is cut short")
    fmt, declared, division = struct.unpack_from(">HHH", data, 8)
    if fmt not in (0, 1, 2):
        raise _Damaged(f"it claims MIDI format {fmt}, but only formats 0, 1 and 2 exist")
    if fmt == 2:
        raise InputFileError(
            f"{label} is a format-2 MIDI file (independent sequences), which Cadenza cannot read."
        )
    if declared == 0:
        raise InputFileError(f"{label} has no tracks.")
    if declared > budget.max_tracks:
        raise InputLimitError(f"{label} has {declared} tracks; the limit is {budget.max_tracks}.")
    if division & 0x8000:
        if (256 - (division >> 8)) not in (24, 25, 29, 30) or not division & 0xFF:
            raise _Damaged(f"its SMPTE time division {division:#06x} names no real frame rate")
    elif division == 0:
        raise _Damaged("its time division is 0 ticks per beat")

    walk = _Walk(budget, label, division)
    tracks: list[Track] = []
    pos = 8 + header_len
    while pos < size and len(tracks) < declared:  # tracks beyond the header's count are not played
        if size - pos < 8 or not data[pos : pos + 4].isalnum():
            raise _Damaged(f"chunk {len(tracks) + 1} is cut short")
        chunk_id = data[pos : pos + 4]
        (length,) = struct.unpack_from(">I", data, pos + 4)
        body, end = pos + 8, pos + 8 + length
        if end > size:
            raise _Damaged(f"a chunk claims {length:,} bytes but only {size - body:,} remain")
        if chunk_id == b"MTrk":
            tracks.append(walk.track(data, body, end, len(tracks) + 1))
        pos = end
    if len(tracks) < declared:
        raise _Damaged(f"the header announces {declared} tracks but the file holds {len(tracks)}")
    if walk.notes == 0:
        raise InputFileError(f"{label} has no notes.")
    return MidiFile(fmt, division, tuple(tracks))


class _Walk:
    """Walks tracks one after another, counting against the budget."""

    def __init__(self, budget: ReadBudget, label: str, division: int) -> None:
        self.budget, self.label = budget, label
        self.notes = self.messages = 0
        if division & 0x8000:
            self.max_ticks = budget.max_quarters / 2 * MidiFile(1, division, ()).ticks_per_second
        else:
            self.max_ticks = budget.max_quarters * division

    def track(self, data: bytes, pos: int, end: int, number: int) -> Track:
        """Parse one ``MTrk`` body into a :class:`Track`."""
        where = f"track {number}"
        messages: list[Message] = []
        tick = status = 0
        budget = self.budget
        while pos < end:
            delta, pos = _read_vlq(data, pos, end, where)
            tick += delta
            if tick > self.max_ticks:
                raise InputLimitError(
                    f"{self.label} is longer than {budget.max_quarters:,g} beats (the limit); "
                    "it may hold an extreme delta time or a note held for hours."
                )
            if pos >= end:
                raise _Damaged(f"{where} ends in the middle of an event")
            byte = data[pos]
            start = pos
            if byte == META:
                if pos + 1 >= end:
                    raise _Damaged(f"{where} ends in the middle of a meta event")
                length, pos = _read_vlq(data, pos + 2, end, where)
                pos += length
                if pos > end:
                    raise _Damaged(f"{where} ends in the middle of a meta event")
                if data[start + 1] == END_OF_TRACK:  # anything after it is not part of the track
                    return Track(tuple(messages), tick)
                messages.append((tick, data[start:pos]))
            elif byte in (SYSEX, ESCAPE):
                length, pos = _read_vlq(data, pos + 1, end, where)
                pos += length
                if pos > end:
                    raise _Damaged(f"{where} ends in the middle of a system-exclusive message")
                messages.append((tick, data[start:pos]))
            elif byte > 0xF0:
                raise _Damaged(f"{where} holds an unknown event (status {byte:#04x})")
            else:
                if byte & 0x80:
                    status = byte
                    pos += 1
                elif not status:
                    raise _Damaged(f"{where} has data bytes before any status byte")
                kind = status & 0xF0
                size = 1 if kind in (PROGRAM_CHANGE, 0xD0) else 2
                if pos + size > end:
                    raise _Damaged(f"{where} ends in the middle of a channel message")
                payload = data[pos : pos + size]
                if any(b & 0x80 for b in payload):
                    raise _Damaged(f"{where} holds a channel message with a bad data byte")
                pos += size
                messages.append((tick, bytes((status,)) + payload))
                if kind == NOTE_ON and payload[1]:
                    self.notes += 1
                    if self.notes > budget.max_notes:
                        raise InputLimitError(
                            f"{self.label} has more than {budget.max_notes:,} notes (the limit)."
                        )
            self.messages += 1
            if self.messages > budget.max_messages:
                raise InputLimitError(
                    f"{self.label} holds more than {budget.max_messages:,} MIDI events (the limit)."
                )
        return Track(tuple(messages), tick)


def _read_vlq(data: bytes, pos: int, end: int, where: str) -> tuple[int, int]:
    """Read a MIDI variable-length number (at most 4 bytes); return (value, next position)."""
    value = 0
    for _ in range(4):
        if pos >= end:
            raise _Damaged(f"{where} ends in the middle of a number")
        byte = data[pos]
        pos += 1
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos
    raise _Damaged(f"{where} holds a variable-length number longer than 4 bytes")


# ----------------------------------------------------------------------------- writing


def encode_smf(midi: MidiFile) -> bytes:
    """The bytes of ``midi``: every message at its tick, no running status, an end-of-track each."""
    chunks = [b"MThd" + struct.pack(">IHHH", 6, midi.format, len(midi.tracks), midi.division)]
    for track in midi.tracks:
        body = bytearray()
        tick = 0
        for at, raw in track.messages:
            body += _vlq(at - tick)
            body += raw
            tick = at
        body += _vlq(max(0, track.end - tick)) + b"\xff\x2f\x00"
        chunks.append(b"MTrk" + struct.pack(">I", len(body)) + bytes(body))
    return b"".join(chunks)


def _vlq(value: int) -> bytes:
    """A MIDI variable-length number."""
    if not 0 <= value < 1 << 28:
        raise ValueError(f"a MIDI delta time must be 0 to 2^28 - 1, not {value}")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def meta(kind: int, payload: bytes) -> bytes:
    """The raw bytes of a meta event."""
    return bytes((META, kind)) + _vlq(len(payload)) + payload


def meta_payload(raw: bytes) -> tuple[int, bytes] | None:
    """A meta event's type and data, or None when ``raw`` is not a meta event."""
    if len(raw) < 3 or raw[0] != META:
        return None
    pos, length = 2, 0
    while pos < len(raw):
        byte = raw[pos]
        pos += 1
        length = (length << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return raw[1], raw[pos : pos + length]


def tempo_event(bpm: float) -> bytes:
    """A set-tempo meta event for ``bpm`` quarter notes a minute."""
    return meta(SET_TEMPO, round(60_000_000 / bpm).to_bytes(3, "big"))


def time_signature_event(numerator: int, denominator: int) -> bytes:
    """A time-signature meta event (24 clocks a click, 8 thirty-seconds a quarter)."""
    return meta(TIME_SIGNATURE, bytes((numerator, max(0, denominator.bit_length() - 1), 24, 8)))


def key_signature_event(sharps: int, minor: bool) -> bytes:
    """A key-signature meta event: ``sharps`` from -7 (seven flats) to 7."""
    return meta(KEY_SIGNATURE, bytes((sharps & 0xFF, int(minor))))


def track_name_event(name: str) -> bytes:
    """A track-name meta event."""
    return meta(TRACK_NAME, name.encode("latin-1", "replace"))
