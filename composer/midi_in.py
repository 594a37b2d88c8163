"""Read a user's piece (MIDI, MusicXML, compressed MusicXML or ABC) into a :class:`~composer.events.Score`.

Every input is treated as hostile. The data flow is:

1. :func:`read_score` takes a path or raw bytes, refuses empty and over-size input before
   anything else, and :func:`detect_format` decides the format from the *content* (the file
   name is only ever used in messages, never as a path component).
2. MIDI bytes are walked by :func:`scan_midi`, a small pure-Python reader that checks the
   structure (header, chunks, every event) and counts notes and length before music21 sees
   a single byte. The walk also yields a normalized copy (known chunks only, each cut at its
   end-of-track) so that music21 parses exactly what was checked.
3. The bytes go to a private temporary file and music21 parses them in a *separate process*
   (forkserver with music21 preloaded, spawn where forkserver is missing) that runs under an
   address-space limit and a wall-clock deadline; a child that overruns either is killed.
4. In the child, :func:`score_from_stream` turns the music21 stream into plain
   :class:`~composer.events.Note`/:class:`~composer.events.Part` values (drums dropped and
   counted), the note count and length are checked once more, and the picklable
   :class:`~composer.events.Score` comes back through a pipe.

Every failure a user can cause is an :class:`~composer.errors.InputFileError` (or its
subclass :class:`~composer.errors.InputLimitError` for broken limits) with a one-line message.
A parsing process that cannot even start is a deployment fault, not the user's: RuntimeError.

As with any forkserver/spawn child, each parsing process re-imports the program's main
*script* (not a ``python -m package`` main): keep entry scripts guarded by
``if __name__ == "__main__":`` and cheap to import.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import multiprocessing
import os
import re
import signal
import struct
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from composer.errors import ComposerError, InputFileError, InputLimitError
from composer.events import Note, Part, Score

__all__ = [
    "MidiScan",
    "ReadLimits",
    "detect_format",
    "read_score",
    "scan_midi",
    "score_from_stream",
]


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

_SUFFIXES = {"midi": ".mid", "musicxml": ".musicxml", "mxl": ".mxl", "abc": ".abc"}
_M21_FORMATS = {"midi": "midi", "musicxml": "musicxml", "mxl": "musicxml", "abc": "abc"}

_SNIFF_BYTES = 65_536
"""How much of the start of a file the format detection looks at."""

_MXL_MAX_EXPANSION = 25
"""A compressed MusicXML file may unpack to at most this many times ``max_bytes`` (zip bombs)."""

_STARTUP_SECONDS = 60.0
"""How long the parsing process may take to start (import music21) before the parse clock runs."""

_MIN_TEMPO, _MAX_TEMPO = 10.0, 1000.0
"""Tempo marks outside this range (BPM) are clamped: a hostile file can say anything."""

_MIDI_DEFAULT_TEMPO = 120.0
_OTHER_DEFAULT_TEMPO = 100.0

_PERCUSSION_CHANNEL = 9

_SIGXCPU = int(getattr(signal, "SIGXCPU", 24))


# ----------------------------------------------------------------------------- names


def _clean_name(name: str) -> str:
    """The user's file name reduced to something safe to print: last component, printable, short."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in "`\"'")
    return base.strip()[:80]


def _label(name: str) -> str:
    """How messages refer to the file: its (cleaned) name in quotes, or "The file"."""
    clean = _clean_name(name)
    return f'"{clean}"' if clean else "The file"


# ----------------------------------------------------------------------------- format


_XML_ROOT = re.compile(rb"<\s*score-(?:partwise|timewise)\b")
_ABC_FIELD = re.compile(r"^[ \t]*([A-Za-z]):", re.MULTILINE)


def detect_format(data: bytes, name: str = "") -> str:
    """Tell MIDI, MusicXML, compressed MusicXML and ABC apart by content alone.

    File names lie (and are chosen by the user), so only the bytes count. Returns ``"midi"``,
    ``"musicxml"``, ``"mxl"`` or ``"abc"``; anything else is an :class:`InputFileError`.
    """
    label = _label(name)
    not_music = InputFileError(f"{label} is not a MIDI, MusicXML or ABC file.")
    if data[:4] == b"MThd":
        return "midi"
    if data[:4] == b"PK\x03\x04":
        if _mxl_members(data):
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


def _mxl_members(data: bytes) -> list[zipfile.ZipInfo]:
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
    scan, _ = _walk_midi(data, limits, name)
    return scan


def _walk_midi(data: bytes, limits: ReadLimits, name: str) -> tuple[MidiScan, bytes]:
    """:func:`scan_midi`'s work; also returns the normalized file music21 will be given."""
    label = _label(name)
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
            if status & 0x0F == _PERCUSSION_CHANNEL:
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


# ----------------------------------------------------------------------------- read_score


def read_score(source: str | Path | bytes, limits: ReadLimits = DEFAULT_LIMITS, name: str = "") -> Score:
    """Read a user's piece from a path or raw bytes into a :class:`Score`, enforcing ``limits``.

    ``name`` is the file name the user gave (shown in messages only; a path's own name is
    used when it is empty). music21 runs in a child process so that the time and memory
    limits hold even when the parser misbehaves.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        path = Path(source)
        name = name or path.name
        data = _read_bounded(path, limits, name)
    label = _label(name)
    if not data:
        raise InputFileError(f"{label} is empty.")
    if len(data) > limits.max_bytes:
        raise InputLimitError(f"{label} is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes.")
    fmt = detect_format(data, name)
    if fmt == "midi":
        scan, data = _walk_midi(data, limits, name)
        if scan.format == 2:
            raise InputFileError(
                f"{label} is a format-2 MIDI file (independent sequences), which Cadenza cannot read."
            )
    elif fmt == "mxl":
        unpacked = sum(info.file_size for info in _mxl_members(data))
        if unpacked > _MXL_MAX_EXPANSION * limits.max_bytes:
            raise InputLimitError(
                f"{label} unpacks to {unpacked:,} bytes; the limit is "
                f"{_MXL_MAX_EXPANSION * limits.max_bytes:,} bytes."
            )
    return _parse_isolated(data, fmt, limits, _clean_name(name))


def _read_bounded(path: Path, limits: ReadLimits, name: str) -> bytes:
    """Read at most ``max_bytes + 1`` bytes: enough to tell an over-size file, never more."""
    label = _label(name)
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limits.max_bytes:
                raise InputLimitError(f"{label} is {size:,} bytes; the limit is {limits.max_bytes:,} bytes.")
            return handle.read(limits.max_bytes + 1)
    except OSError:
        raise InputFileError(f"{label} could not be opened.") from None


@functools.cache
def _context() -> multiprocessing.context.BaseContext:
    """The process context for parsing: forkserver with music21 preloaded, else spawn.

    Forkserver children start in milliseconds from a clean server that already imported
    music21, and never inherit the caller's threads, model or sockets (as fork would).
    """
    try:
        ctx = multiprocessing.get_context("forkserver")
    except ValueError:
        return multiprocessing.get_context("spawn")
    ctx.set_forkserver_preload(["music21"])
    return ctx


def _parse_isolated(data: bytes, fmt: str, limits: ReadLimits, source: str) -> Score:
    """Parse ``data`` with music21 in a child process under the time and memory limits."""
    label = _label(source)
    ctx = _context()
    with tempfile.TemporaryDirectory(prefix="cadenza-in-") as folder:
        path = Path(folder) / f"input{_SUFFIXES[fmt]}"
        path.write_bytes(data)
        receiver, sender = ctx.Pipe(duplex=False)
        process = ctx.Process(
            target=_child_main,
            args=(sender, str(path), fmt, limits, source),
            name="cadenza-parse",
            daemon=True,
        )
        started = False
        try:
            try:
                process.start()
                started = True
            finally:
                sender.close()
            kind, payload = _receive(receiver, _STARTUP_SECONDS)
            if kind == "ready":
                kind, payload = _receive(receiver, limits.parse_seconds)
            elif kind in ("timeout", "died"):
                kind = "no start"
        finally:
            receiver.close()
            exit_code = None
            if started:
                if process.is_alive():
                    process.kill()
                process.join(10)
                exit_code = process.exitcode
                with contextlib.suppress(ValueError):
                    process.close()  # frees the sentinel now, not at garbage collection
    if kind == "ok" and isinstance(payload, Score):
        return payload
    if kind == "no start":  # not the user's doing: a broken environment or main module
        raise RuntimeError(f"the music21 parsing process did not start (exit code {exit_code})")
    if kind == "timeout" or (kind == "died" and exit_code == -_SIGXCPU):
        raise InputLimitError(f"{label} took longer than {limits.parse_seconds:g} s to read (the limit).")
    if kind in ("memory", "died"):
        raise InputLimitError(
            f"{label} needed more than {limits.parse_memory_mb:,} MB of memory to read (the limit)."
        )
    if kind == "limit":
        raise InputLimitError(str(payload))
    if kind == "file":
        raise InputFileError(str(payload))
    raise InputFileError(f"{label} could not be read.")


def _receive(conn: Any, timeout: float) -> tuple[str, Any]:
    """One message from the child, ("timeout", None) after ``timeout`` s, ("died", None) on EOF."""
    if not conn.poll(max(0.0, timeout)):
        return "timeout", None
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return "died", None
    if isinstance(message, tuple) and len(message) == 2 and isinstance(message[0], str):
        return message
    return "died", None


# ----------------------------------------------------------------------------- child process


def _child_main(conn: Any, path: str, fmt: str, limits: ReadLimits, source: str) -> None:
    """Entry point of the parsing process: limit itself, parse, convert, check, answer."""
    label = _label(source)
    warnings.simplefilter("ignore")  # music21 warns freely about odd files; the answer says enough
    try:
        _limit_resources(limits)
        import music21.converter  # noqa: F401  (before "ready": import time is not parse time)

        conn.send(("ready", None))
        score = _parse_file(path, fmt, source)
        if len(score.notes) > limits.max_notes:
            raise InputLimitError(
                f"{label} has {len(score.notes):,} notes; the limit is {limits.max_notes:,}."
            )
        if score.length > limits.max_quarters:
            raise InputLimitError(
                f"{label} is {score.length:,.0f} beats long; the limit is {limits.max_quarters:,g} beats."
            )
        conn.send(("ok", score))
    except MemoryError:
        _send_quietly(conn, ("memory", None))
    except InputLimitError as exc:
        _send_quietly(conn, ("limit", str(exc)))
    except ComposerError as exc:
        _send_quietly(conn, ("file", str(exc)))
    except RecursionError:
        _send_quietly(
            conn, ("file", f"{label} could not be read as {FORMAT_NAMES[fmt]}: it is nested too deeply.")
        )
    except Exception as exc:
        reason = _short_reason(exc, path, source)
        _send_quietly(conn, ("file", f"{label} could not be read as {FORMAT_NAMES[fmt]}: {reason}"))
    finally:
        conn.close()


def _limit_resources(limits: ReadLimits) -> None:
    """Cap this process's address space (and, as a backstop, its CPU time)."""
    try:
        import resource
    except ImportError:  # not on POSIX: only the wall-clock deadline applies
        return
    wanted = [
        (resource.RLIMIT_AS, limits.parse_memory_mb * 1024 * 1024),
        (resource.RLIMIT_CPU, math.ceil(limits.parse_seconds) + 30),
    ]
    for which, value in wanted:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (value, hard))


def _parse_file(path: str, fmt: str, source: str) -> Score:
    """Parse the temporary file with music21 (no pickle cache) and convert it."""
    from music21 import converter

    if fmt == "midi":
        return score_from_midi(Path(path).read_bytes(), source)
    keywords: dict[str, Any] = {"forceSource": True, "storePickle": False}
    if fmt == "abc":
        keywords["number"] = _first_abc_tune(path)  # a song book would otherwise be parsed whole
    parsed = converter.parseFile(path, format=_M21_FORMATS[fmt], **keywords)
    return score_from_stream(parsed, source, default_tempo=_OTHER_DEFAULT_TEMPO)


_ABC_REFERENCE = re.compile(rb"^[ \t]*X:[ \t]*(\d{1,9})[ \t]*\r?$", re.MULTILINE)


def _first_abc_tune(path: str) -> int | None:
    """The reference number (``X:``) of the first tune in an ABC file, None when it has none."""
    match = _ABC_REFERENCE.search(Path(path).read_bytes())
    return int(match.group(1)) if match else None


def _short_reason(exc: BaseException, path: str, source: str) -> str:
    """One short line about a parser exception, with the temporary path replaced by the name."""
    text = str(exc).replace(path, source or "the file").strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    return (text[:150] + "…") if len(text) > 150 else text


def _send_quietly(conn: Any, message: tuple[str, Any]) -> None:
    """Send to the parent, ignoring a parent that is already gone."""
    with contextlib.suppress(OSError, ValueError, MemoryError):
        conn.send(message)


# ----------------------------------------------------------------------------- conversion


def score_from_midi(data: bytes, source: str = "") -> Score:
    """Read MIDI bytes with music21's MIDI parser into a :class:`Score`, note times exact.

    This takes music21's own event reader (``music21.midi.MidiFile``) and pairs note-ons with
    note-offs itself, skipping music21's notation step (bars, voices, ties, rests) that a MIDI
    performance does not need: that step is most of music21's MIDI reading time and can move
    a held chord's end across a barline. One part per track and channel; channel 10 is drums.
    """
    from music21 import midi

    midi_file = midi.MidiFile()
    midi_file.readstr(data)
    per_quarter = midi_file.ticksPerQuarterNote
    tempo: float | None = None
    time_signature: tuple[int, int] | None = None
    found: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
    programs: dict[tuple[int, int], int] = {}
    names: dict[int, str] = {}
    drums = 0
    for number, track in enumerate(midi_file.tracks):
        tick = 0
        sounding: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for event in track.events:
            if event.isDeltaTime():
                tick += event.time
            elif event.isNoteOn():
                if event.channel == _PERCUSSION_CHANNEL + 1:
                    drums += 1
                else:
                    sounding.setdefault((event.channel, event.pitch), []).append((tick, event.velocity))
            elif event.isNoteOff():
                started = sounding.get((event.channel, event.pitch))
                if started:
                    start, velocity = started.pop(0)
                    found.setdefault((number, event.channel), []).append((event.pitch, start, tick, velocity))
            elif event.type == midi.ChannelVoiceMessages.PROGRAM_CHANGE:
                programs.setdefault((number, event.channel), int(event.data))
            elif event.type == midi.MetaEvents.SET_TEMPO and tempo is None and len(event.data) >= 3:
                tempo = 60_000_000 / max(1, int.from_bytes(event.data[:3], "big"))
            elif (
                event.type == midi.MetaEvents.TIME_SIGNATURE
                and time_signature is None
                and len(event.data) >= 2
            ):
                time_signature = (event.data[0], 2 ** min(event.data[1], 6))
            elif event.type == midi.MetaEvents.SEQUENCE_TRACK_NAME and number not in names:
                names[number] = _printable(bytes(event.data).decode("latin-1"))
        for (channel, pitch), started in sounding.items():  # never released: they end with the track
            for start, velocity in started:
                found.setdefault((number, channel), []).append((pitch, start, max(tick, start + 1), velocity))
    notes: list[Note] = []
    parts: list[Part] = []
    for key in sorted(found):
        index = len(parts)
        program = programs.get(key, 0)
        parts.append(Part(names.get(key[0]) or _program_name(program), program))
        notes.extend(
            Note(pitch, start / per_quarter, end / per_quarter, velocity, index)
            for pitch, start, end, velocity in found[key]
        )
    if not notes:
        what = "only drums" if drums else "no notes"
        raise InputFileError(f"{_label(source)} has {what}: Cadenza needs pitched notes.")
    notes.sort(key=lambda n: (n.start, n.pitch, n.part, n.end))
    numerator, denominator = time_signature or (4, 4)
    if not 1 <= numerator <= 64:
        numerator, denominator = 4, 4
    return Score(
        notes=tuple(notes),
        parts=tuple(parts),
        tempo=min(_MAX_TEMPO, max(_MIN_TEMPO, tempo or _MIDI_DEFAULT_TEMPO)),
        time_signature=(numerator, denominator),
        dropped_drum_notes=drums,
        source=source,
    )


def _program_name(program: int) -> str:
    """The General MIDI instrument name of a program, as music21 knows it."""
    from music21 import instrument

    try:
        return instrument.instrumentFromMidiProgram(program).instrumentName or ""
    except instrument.InstrumentException:
        return ""


def _printable(text: str) -> str:
    """A track name without control characters, at most 60 characters."""
    return "".join(ch for ch in text if ch.isprintable()).strip()[:60]


def score_from_stream(stream: Any, source: str = "", *, default_tempo: float = _OTHER_DEFAULT_TEMPO) -> Score:
    """Convert a parsed music21 stream into a :class:`Score` of plain, picklable values.

    Drum parts and unpitched notes are dropped (Cadenza composes pitches) and counted in
    ``dropped_drum_notes``; ties are merged; grace notes are skipped. An :class:`Opus`
    contributes its first score. ``default_tempo`` applies when the piece has no tempo mark
    (pass 120 for MIDI, the MIDI standard's default). Also used in-process by training on
    trusted corpus files.
    """
    from music21 import stream as m21stream

    if isinstance(stream, m21stream.Opus):
        scores = list(stream.scores)
        if not scores:
            raise InputFileError(f"{_label(source)} holds no pieces.")
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
        raise InputFileError(f"{_label(source)} has {what}: Cadenza needs pitched notes.")
    notes.sort(key=lambda n: (n.start, n.pitch, n.part, n.end))
    return Score(
        notes=tuple(notes),
        parts=tuple(parts),
        tempo=_first_tempo(stream, default_tempo),
        time_signature=_first_time_signature(stream),
        dropped_drum_notes=drums,
        source=source,
        metadata=_metadata(stream),
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
        or inst.midiChannel == _PERCUSSION_CHANNEL
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
