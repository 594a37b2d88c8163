"""Checks on a user's file before any parser sees it: what format it is, and for MIDI, whether
its structure is sound and within the limits.

:func:`detect_format` decides by content alone (the file name is only used in messages).
:func:`read_midi` reads a Standard MIDI File with :mod:`composer.midi.smf` under the limits
(chunk lengths, every event, note count and length in beats), so a damaged or absurd file is
refused with a clear message; :func:`scan_midi` also says what it holds. Nothing here imports
music21.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from composer.errors import InputFileError
from composer.midi.smf import DRUM_CHANNEL, NOTE_ON, MidiFile, ReadBudget, parse_smf
from composer.midi.timeline import Timeline


@dataclass(frozen=True)
class ReadLimits:
    """Safety limits for reading one user file; every one of them is enforced, not advisory."""

    max_bytes: int = 2_000_000
    max_tracks: int = 64
    max_notes: int = 50_000
    max_quarters: float = 20_000.0
    """Length limit in beats (quarter notes)."""
    max_events: int = 400_000
    """Most MIDI events (notes, controllers, meta events...) in one file."""
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
    """The header's time division: ticks per quarter note, or an SMPTE rate (top bit set)."""
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

    A quick check in pure Python (a MIDI file is read whole, which takes milliseconds); the
    full read happens later, under the composer's own limits. Raises :class:`InputFileError`
    with a friendly reason.
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


def scan_midi(data: bytes, limits: ReadLimits = DEFAULT_LIMITS, name: str = "") -> MidiScan:
    """Read a Standard MIDI File under the limits and say what it holds, or refuse it in one line.

    A file with only drums is refused: Cadenza needs pitched notes to continue.
    """
    return scan_of(read_midi(data, limits, name), name)


def read_midi(data: bytes, limits: ReadLimits = DEFAULT_LIMITS, name: str = "") -> MidiFile:
    """Parse MIDI bytes under ``limits`` (see :func:`composer.midi.smf.parse_smf`)."""
    budget = ReadBudget(
        max_tracks=limits.max_tracks,
        max_messages=limits.max_events,
        max_notes=limits.max_notes,
        max_quarters=limits.max_quarters,
    )
    return parse_smf(data, budget, quoted_name(name))


def scan_of(midi: MidiFile, name: str = "") -> MidiScan:
    """The :class:`MidiScan` of a parsed file; refuses a file whose only notes are drums."""
    notes = drums = 0
    for track in midi.tracks:
        for _, raw in track.messages:
            if raw[0] & 0xF0 == NOTE_ON and raw[0] < 0xF0 and raw[2]:
                notes += 1
                drums += raw[0] & 0x0F == DRUM_CHANNEL
    if notes == drums:
        raise InputFileError(f"{quoted_name(name)} has only drums: Cadenza needs pitched notes.")
    longest = max((t.end for t in midi.tracks), default=0)
    quarters = Timeline.of(midi).quarters(longest)
    return MidiScan(midi.format, len(midi.tracks), midi.division, notes, drums, quarters)
