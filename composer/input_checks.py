"""Checks on a user's file before any parser sees it: what format it is, and for MIDI, whether
its structure is sound and within the limits.

:func:`detect_format` decides by content alone (the file name is only used in messages).
:func:`scan_midi` walks a Standard MIDI File event by event in pure Python: header, chunk
lengths, every event, note count and length in beats, so a damaged or absurd file is refused
with a clear message before any parsing cost is paid. Nothing here imports music21.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from composer.errors import InputFileError, InputLimitError


@dataclass(frozen=True)
class ReadLimits:
    """Safety limits for reading one user file; every one of them is enforced, not advisory."""

    max_bytes: int = 2_000_000
    max_tracks: int = 64
    max_notes: int = 50_000
    max_quarters: float = 20_000.0
    """Length limit in beats (quarter notes)."""
    parse_seconds: float = 30.0
    """Wall-clock time music21 may take to parse the file (process start-up not included)."""
    parse_memory_mb: int = 2048
    """Address-space limit of the parsing process."""


DEFAULT_LIMITS = ReadLimits()


@dataclass(frozen=True)
class MidiScan:
    """What :func:`scan_midi` learnt about a Standard MIDI File without music21."""

    format: int
    tracks: int
    division: int
    """Ticks per quarter note."""
    notes: int
    """Note-ons with velocity > 0, drums included."""
    drum_notes: int
    """Of those, the ones on MIDI channel 10 (index 9)."""
    quarters: float
    """Length of the longest track in quarter notes."""


FORMAT_NAMES = {"midi": "MIDI", "musicxml": "MusicXML", "mxl": "compressed MusicXML", "abc": "ABC"}
"""Readable names of the formats :func:`detect_format` returns."""

_SNIFF_BYTES = 65_536
"""How much of the start of a file the format detection looks at."""

MXL_MAX_EXPANSION = 25
"""A compressed MusicXML file may unpack to at most this many times ``max_bytes`` (zip bombs)."""

DRUM_CHANNEL = 9
"""MIDI channel 10 (counted from 0): General MIDI drums."""


# ----------------------------------------------------------------------------- names


def clean_name(name: str) -> str:
    """The user's file name reduced to something safe to print: last component, printable, short."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in "`\"'")
    return base.strip()[:80]


def quoted_name(name: str) -> str:
    """How messages refer to the file: its (cleaned) name in quotes, or "The file"."""
    clean = clean_name(name)
    return f'"{clean}"' if clean else "The file"


# ----------------------------------------------------------------------------- format


_XML_ROOT = re.compile(rb"<\s*score-(?:partwise|timewise)\b")
_ABC_FIELD = re.compile(r"^[ \t]*([A-Za-z]):", re.MULTILINE)


def detect_format(data: bytes, name: str = "") -> str:
    """Tell MIDI, MusicXML, compressed MusicXML and ABC apart by content alone.

    File names lie (and are chosen by the user), so only the bytes count. Returns ``"midi"``,
    ``"musicxml"``, ``"mxl"`` or ``"abc"``; anything else is an :class:`InputFileError`.
    """
    label = quoted_name(name)
    not_music = InputFileError(f"{label} is not a MIDI, MusicXML or ABC file.")
    if data[:4] == b"MThd":
        return "midi"
    if data[:4] == b"PK\x03\x04":
        if mxl_members(data):
            return "mxl"
        raise not_music
    head = _sniff_text(data[:_SNIFF_BYTES])
    if head is None:
        raise not_music
    stripped = head.lstrip()
    if stripped.startswith("<"):
        if _XML_ROOT.search(stripped.encode("utf-8", "replace")):
            return "musicxml"
        raise not_music
    fields = {m.group(1) for m in _ABC_FIELD.finditer(head)}
    if "K" in fields and fields & {"X", "T", "M", "L"}:
        return "abc"
    raise not_music


def check_music(data: bytes, name: str = "", limits: ReadLimits = DEFAULT_LIMITS) -> str:
    """The format of a piece a user sent, once its bytes are known to be usable music.

    A quick check in pure Python (a MIDI file is walked event by event); the full read happens
    later, under the composer's own limits. Raises :class:`InputFileError` with a friendly reason.
    """
    kind = detect_format(data, name)
    if kind == "midi":
        scan_midi(data, limits, name)
    return kind


def _sniff_text(head: bytes) -> str | None:
    """Decode the start of a text file (UTF-8 or UTF-16 with a BOM, lenient), or None for binary."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return head[: len(head) // 2 * 2].decode("utf-16", errors="replace")
        except UnicodeError:
            return None
    if b"\x00" in head:
        return None
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    return head.decode("utf-8", errors="replace")


def mxl_members(data: bytes) -> list[zipfile.ZipInfo]:
    """The zip entries of a compressed MusicXML file, or [] when it is not a readable one."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        return []
    has_score = any(
        "META-INF" not in info.filename and Path(info.filename).suffix.lower() in (".xml", ".musicxml")
        for info in infos
    )
    return infos if has_score else []


# ----------------------------------------------------------------------------- MIDI scan


class _Damaged(Exception):
    """Internal: the MIDI structure is broken; the text says where."""


def scan_midi(data: bytes, limits: ReadLimits = DEFAULT_LIMITS, name: str = "") -> MidiScan:
    """Walk a Standard MIDI File event by event, without music21, and enforce the limits.

    music21's own reader trusts the header's track count, silently skips events it cannot
    read and has no notion of size limits; this walk rejects damaged files with a clear
    message and stops absurd ones (millions of notes, a delta time of days) before any
    parsing cost is paid.
    """
    scan, _ = walk_midi(data, limits, name)
    return scan


def walk_midi(data: bytes, limits: ReadLimits, name: str) -> tuple[MidiScan, bytes]:
    """:func:`scan_midi`'s work; also returns the normalized file music21 will be given."""
    label = quoted_name(name)
    try:
        return _walk_midi_checked(data, limits, label)
    except _Damaged as exc:
        raise InputFileError(f"{label} is truncated or damaged: {exc}.") from None


def _walk_midi_checked(data: bytes, limits: ReadLimits, label: str) -> tuple[MidiScan, bytes]:
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
    if declared == 0:
        raise InputFileError(f"{label} has no tracks.")
    if declared > limits.max_tracks:
        raise InputLimitError(f"{label} has {declared} tracks; the limit is {limits.max_tracks}.")
    if division & 0x8000:
        raise InputFileError(f"{label} is timed in SMPTE frames; Cadenza needs a file timed in beats.")
    if division == 0:
        raise _Damaged("its time division is 0 ticks per beat")

    max_ticks = limits.max_quarters * division
    notes = drum_notes = longest = 0
    chunks: list[bytes] = []
    pos = 8 + header_len
    while pos < size:
        if size - pos < 8 or not data[pos : pos + 4].isalnum():
            if len(chunks) >= declared:
                break  # trailing padding or junk after the last track: ignored
            raise _Damaged(f"chunk {len(chunks) + 1} is cut short")
        chunk_id = data[pos : pos + 4]
        (length,) = struct.unpack_from(">I", data, pos + 4)
        body, end = pos + 8, pos + 8 + length
        if end > size:
            raise _Damaged(f"a chunk claims {length:,} bytes but only {size - body:,} remain")
        if chunk_id == b"MTrk":
            if len(chunks) >= limits.max_tracks:
                raise InputLimitError(f"{label} has more than {limits.max_tracks} tracks (the limit).")
            used, ticks, on, drums = _walk_track(data, body, end, len(chunks) + 1)
            notes += on
            drum_notes += drums
            longest = max(longest, ticks)
            if notes > limits.max_notes:
                raise InputLimitError(f"{label} has more than {limits.max_notes:,} notes (the limit).")
            if longest > max_ticks:
                raise InputLimitError(
                    f"{label} is longer than {limits.max_quarters:,g} beats (the limit); "
                    "it may hold an extreme delta time or a note held for hours."
                )
            chunks.append(b"MTrk" + struct.pack(">I", used - body) + data[body:used])
        pos = end
    if len(chunks) < declared:
        raise _Damaged(f"the header announces {declared} tracks but the file holds {len(chunks)}")
    if notes == 0:
        raise InputFileError(f"{label} has no notes.")
    if notes == drum_notes:
        raise InputFileError(f"{label} has only drums: Cadenza needs pitched notes.")
    scan = MidiScan(fmt, len(chunks), division, notes, drum_notes, longest / division)
    header = b"MThd" + struct.pack(">IHHH", 6, fmt, len(chunks), division)
    return scan, header + b"".join(chunks)


def _walk_track(data: bytes, pos: int, end: int, number: int) -> tuple[int, int, int, int]:
    """Parse one MTrk body; return (where it ended, its length in ticks, note-ons, drum note-ons)."""
    ticks = notes = drums = 0
    status = 0
    where = f"track {number}"
    while pos < end:
        delta, pos = _read_vlq(data, pos, end, where)
        ticks += delta
        if pos >= end:
            raise _Damaged(f"{where} ends in the middle of an event")
        byte = data[pos]
        if byte == 0xFF:  # meta event: type, length, data
            if pos + 1 >= end:
                raise _Damaged(f"{where} ends in the middle of a meta event")
            meta_type = data[pos + 1]
            length, pos = _read_vlq(data, pos + 2, end, where)
            pos += length
            if pos > end:
                raise _Damaged(f"{where} ends in the middle of a meta event")
            if meta_type == 0x2F:  # end of track: anything after it is not part of the track
                return pos, ticks, notes, drums
            continue
        if byte in (0xF0, 0xF7):  # system exclusive: length, data
            length, pos = _read_vlq(data, pos + 1, end, where)
            pos += length
            if pos > end:
                raise _Damaged(f"{where} ends in the middle of a system-exclusive message")
            continue
        if byte >= 0xF0:
            raise _Damaged(f"{where} holds an unknown event (status {byte:#04x})")
        if byte & 0x80:
            status = byte
            pos += 1
        elif not status:
            raise _Damaged(f"{where} has data bytes before any status byte")
        kind = status & 0xF0
        size = 1 if kind in (0xC0, 0xD0) else 2
        if pos + size > end:
            raise _Damaged(f"{where} ends in the middle of a channel message")
        if data[pos] & 0x80 or (size == 2 and data[pos + 1] & 0x80):
            raise _Damaged(f"{where} holds a channel message with a bad data byte")
        if kind == 0x90 and data[pos + 1] > 0:
            notes += 1
            if status & 0x0F == DRUM_CHANNEL:
                drums += 1
        pos += size
    return pos, ticks, notes, drums


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
