"""Read a user's piece (MIDI, MusicXML, compressed MusicXML or ABC) into a :class:`~composer.events.Score`.

Every input is treated as hostile. The data flow is:

1. :func:`read_score` takes a path or raw bytes, refuses empty and over-size input before
   anything else, and :func:`~composer.midi.checks.detect_format` decides the format from the
   *content*.
2. MIDI is read in this process by :mod:`composer.midi.smf`, a pure-Python reader that keeps
   every message and enforces the limits as it walks (bounded work, no parser to sandbox), and
   :mod:`composer.midi.notes` pairs its notes as a synthesizer would.
3. MusicXML and ABC go to music21 in a *separate process* (forkserver with music21 preloaded,
   spawn where forkserver is missing) under an address-space limit and a wall-clock deadline;
   a child that overruns either is killed. The child turns the score into a MIDI file with
   music21's own translation (tempo changes and dynamics included) and reads that file back the
   same way as an uploaded one, so every format reaches the composer as a MIDI file kept whole.

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
import math
import multiprocessing
import os
import re
import signal
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Any

from composer.errors import ComposerError, InputFileError, InputLimitError
from composer.events import Score
from composer.midi.checks import (
    DEFAULT_LIMITS,
    FORMAT_NAMES,
    MXL_MAX_EXPANSION,
    ReadLimits,
    clean_name,
    detect_format,
    mxl_members,
    quoted_name,
    read_midi,
)
from composer.midi.notes import score_from_smf
from composer.midi.streams import OTHER_DEFAULT_TEMPO, fermata_onsets, score_from_stream, stream_to_midi

__all__ = ["ReadLimits", "read_score"]

_SUFFIXES = {"musicxml": ".musicxml", "mxl": ".mxl", "abc": ".abc"}
_M21_FORMATS = {"musicxml": "musicxml", "mxl": "musicxml", "abc": "abc"}

_STARTUP_SECONDS = 60.0
"""How long the parsing process may take to start (import music21) before the parse clock runs."""

_SIGXCPU = int(getattr(signal, "SIGXCPU", 24))


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
    label = quoted_name(name)
    if not data:
        raise InputFileError(f"{label} is empty.")
    if len(data) > limits.max_bytes:
        raise InputLimitError(f"{label} is {len(data):,} bytes; the limit is {limits.max_bytes:,} bytes.")
    fmt = detect_format(data, name)
    if fmt == "midi":
        return score_from_smf(read_midi(data, limits, name), clean_name(name), label)
    if fmt == "mxl":
        unpacked = sum(info.file_size for info in mxl_members(data))
        if unpacked > MXL_MAX_EXPANSION * limits.max_bytes:
            raise InputLimitError(
                f"{label} unpacks to {unpacked:,} bytes; the limit is "
                f"{MXL_MAX_EXPANSION * limits.max_bytes:,} bytes."
            )
    return _parse_isolated(data, fmt, limits, clean_name(name))


def _read_bounded(path: Path, limits: ReadLimits, name: str) -> bytes:
    """Read at most ``max_bytes + 1`` bytes: enough to tell an over-size file, never more."""
    label = quoted_name(name)
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
    label = quoted_name(source)
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
    label = quoted_name(source)
    warnings.simplefilter("ignore")  # music21 warns freely about odd files; the answer says enough
    try:
        _limit_resources(limits)
        import music21.converter  # noqa: F401  (before "ready": import time is not parse time)

        conn.send(("ready", None))
        score = _parse_file(path, fmt, source, limits)
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
        if isinstance(exc, zlib.error) and str(exc).startswith("Error -4 "):  # Z_MEM_ERROR: out of memory
            _send_quietly(conn, ("memory", None))
            return
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


def _parse_file(path: str, fmt: str, source: str, limits: ReadLimits) -> Score:
    """Parse the temporary file with music21 (no pickle cache) and read it back as MIDI."""
    from music21 import converter

    keywords: dict[str, Any] = {"forceSource": True, "storePickle": False}
    if fmt == "abc":
        keywords["number"] = _first_abc_tune(path)  # a song book would otherwise be parsed whole
    parsed = converter.parseFile(path, format=_M21_FORMATS[fmt], **keywords)
    notation = score_from_stream(parsed, source, default_tempo=OTHER_DEFAULT_TEMPO)
    midi = read_midi(stream_to_midi(parsed, notation.tempo), limits, source)
    metadata = notation.metadata | fermata_onsets(_parts_of(parsed), expand_repeats=True)
    return score_from_smf(midi, source, quoted_name(source), metadata)


def _parts_of(parsed: Any) -> list[Any]:
    """The parts of a parsed score (of an opus, its first score's), or the stream itself."""
    from music21 import stream as m21stream

    if isinstance(parsed, m21stream.Opus):
        parsed = next(iter(parsed.scores), parsed)
    return list(parsed.getElementsByClass(m21stream.Part)) or [parsed]


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
