"""FluidSynth in this process, through its C library: the same render as the ``fluidsynth`` command,
without starting a process, writing a file or passing samples through a pipe.

The command (``fluidsynth -ni -F``) spends about a third of a 500-event piece's render on things
other than synthesis: starting, and moving 35 MB of samples through a pipe or a WAV file. Here the
library renders into numpy arrays that go straight to the encoder. ``ctypes`` releases the GIL
for every call into the library, so the encoder's thread runs beside it on the other core.

FluidSynth's MIDI player is kept (it is what the command uses, so every file plays exactly as it
does there: tempo maps, running status, SMPTE division, whatever a sequencer wrote). The player is
driven by the synthesizer's sample timer, which FluidSynth runs once per 64-sample block, but a
note it starts during a longer write is mixed from the start of that write; the command writes 64
samples at a time, so its notes start on the right block. Writing 64 samples a call from Python
would cost more than the process does. So before each write the render asks the player which tick
it is at and at what tempo, and writes at once as many blocks as surely pass before the file's
next message (one block when the next message is close): sample for sample the command's output,
at a few thousand calls a piece instead of tens of thousands.

Where the library cannot be loaded, :func:`available` is false and callers run the command.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np

from composer.midi.smf import MidiFile

log = logging.getLogger(__name__)

BLOCK = 64
"""FluidSynth's internal block (``FLUID_BUFSIZE``): its timers and its player run once per block."""
SAFETY_TICKS = 2
SAFETY_SECONDS = 0.003
"""How much sooner than the tempo says the player may send its next message: it rounds its
position to the nearest tick, counts whole milliseconds, and moves on a block at a time."""
LONGEST_WRITE = 8192
"""Frames in one call where nothing happens: large enough that the calls cost nothing, small
enough that the encoder gets the samples as they come."""
_PLAYING = 1
"""``FLUID_PLAYER_PLAYING``"""
_FAILED = -1
_ERR = 1
_LOG = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class SynthFailed(Exception):
    """The library could not load the SoundFont or read the MIDI file; ``str()`` says why."""


class _Said(threading.local):
    """What FluidSynth last reported as an error on this thread."""

    last = ""


_said = _Said()


@_LOG
def _log_message(level: int, message: bytes | None, _data: object) -> None:
    """FluidSynth's messages: errors kept for :class:`SynthFailed`, both into this module's log
    (the library would otherwise print them on the process's standard error)."""
    text = (message or b"").decode(errors="replace").strip()
    if level <= _ERR:
        _said.last = text
    log.debug("fluidsynth: %s", text)


@cache
def _library() -> ctypes.CDLL | None:
    """libfluidsynth with the signatures used here, or None where it is not installed."""
    name = ctypes.util.find_library("fluidsynth") or "libfluidsynth.so.3"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    pointer, text, integer = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    signatures = {
        "new_fluid_settings": ([], pointer),
        "delete_fluid_settings": ([pointer], None),
        "fluid_settings_setnum": ([pointer, text, ctypes.c_double], integer),
        "fluid_settings_setint": ([pointer, text, integer], integer),
        "fluid_settings_setstr": ([pointer, text, text], integer),
        "new_fluid_synth": ([pointer], pointer),
        "delete_fluid_synth": ([pointer], None),
        "fluid_synth_sfload": ([pointer, text, integer], integer),
        "new_fluid_player": ([pointer], pointer),
        "delete_fluid_player": ([pointer], None),
        "fluid_player_add_mem": ([pointer, ctypes.c_char_p, ctypes.c_size_t], integer),
        "fluid_player_play": ([pointer], integer),
        "fluid_player_get_status": ([pointer], integer),
        "fluid_player_get_current_tick": ([pointer], integer),
        "fluid_player_get_midi_tempo": ([pointer], integer),
        "fluid_set_log_function": ([integer, _LOG, pointer], pointer),
    }
    try:
        for function, (arguments, result) in signatures.items():
            getattr(lib, function).argtypes = arguments
            getattr(lib, function).restype = result
        lib.fluid_synth_write_float.restype = integer  # arguments passed as ready-made ctypes values
    except AttributeError:  # a FluidSynth older than 2.0
        return None
    for level in range(5):
        lib.fluid_set_log_function(level, _log_message, None)
    return lib


def available() -> bool:
    """Whether FluidSynth's library (2.x) can be loaded in this process."""
    return _library() is not None


def render(
    soundfont: Path,
    midi: bytes,
    parsed: MidiFile | None,
    sample_rate: int,
    gain: float,
    *,
    chorus: bool = True,
    deadline: float = float("inf"),
) -> Iterator[np.ndarray]:
    """Render ``midi`` (the file's bytes; ``parsed``, the same file read by
    :func:`composer.midi.smf.parse_smf`, or None) with ``soundfont`` as ``(frames, 2)`` float32
    blocks, as ``fluidsynth -ni -g GAIN -r RATE -o synth.dynamic-sample-loading=1 [-C 0] -F``
    would. Raises :class:`SynthFailed` when the SoundFont or the file cannot be read, and
    :class:`TimeoutError` once ``deadline`` (a :func:`time.perf_counter` value) has passed."""
    lib = _library()
    if lib is None:
        raise SynthFailed("FluidSynth's library (libfluidsynth 2.x) is not installed")
    settings = lib.new_fluid_settings()
    synth = player = None
    try:
        lib.fluid_settings_setnum(settings, b"synth.sample-rate", float(sample_rate))
        lib.fluid_settings_setnum(settings, b"synth.gain", float(gain))
        lib.fluid_settings_setint(settings, b"synth.dynamic-sample-loading", 1)
        lib.fluid_settings_setint(settings, b"synth.chorus.active", int(chorus))
        lib.fluid_settings_setint(settings, b"synth.lock-memory", 0)
        lib.fluid_settings_setstr(settings, b"player.timing-source", b"sample")
        synth = lib.new_fluid_synth(settings)
        if not synth:
            raise SynthFailed(f"FluidSynth could not start: {_said.last or 'no reason given'}")
        _said.last = ""
        if lib.fluid_synth_sfload(synth, str(soundfont).encode(), 1) == _FAILED:
            raise SynthFailed(f"FluidSynth could not load the SoundFont {soundfont}: {_said.last}")
        if midi[:4] != b"MThd":  # what the command checks first (fluid_is_midifile)
            raise SynthFailed("FluidSynth could not play the MIDI file: it does not start like one")
        player = lib.new_fluid_player(synth)
        if lib.fluid_player_add_mem(player, midi, len(midi)) == _FAILED or lib.fluid_player_play(player):
            raise SynthFailed(f"FluidSynth could not play the MIDI file: {_said.last or 'unreadable'}")
        division = parsed.division if parsed is not None else 0
        yield from _blocks(lib, synth, player, _message_ticks(parsed), division, sample_rate, deadline)
        if _said.last:
            log.info("FluidSynth reported while playing: %s", _said.last)
    finally:
        if player:
            lib.delete_fluid_player(player)
        if synth:
            lib.delete_fluid_synth(synth)
        lib.delete_fluid_settings(settings)


def _message_ticks(parsed: MidiFile | None) -> np.ndarray | None:
    """The sorted, distinct ticks at which the player sends something to the synthesizer (every
    message and every track's end); None when the file could not be read here or counts SMPTE
    time, and then every block is written alone."""
    if parsed is None or parsed.smpte:
        return None
    ticks = [tick for track in parsed.tracks for tick, _ in track.messages]
    ticks += [track.end for track in parsed.tracks]
    return np.unique(np.asarray(ticks, dtype=np.int64))


def _blocks(
    lib: ctypes.CDLL,
    synth: int,
    player: int,
    ticks: np.ndarray | None,
    division: int,
    sample_rate: int,
    deadline: float,
) -> Iterator[np.ndarray]:
    """Write blocks until the player stops: as many at once as surely pass before the player's
    next message (from the tick the player is at and the tempo it plays, so rounding cannot add
    up over a long tempo map), one at a time otherwise and after the last message (the player
    stops once the last notes have died away, which it checks block by block)."""
    write, status = lib.fluid_synth_write_float, lib.fluid_player_get_status
    current_tick, tempo = lib.fluid_player_get_current_tick, lib.fluid_player_get_midi_tempo
    longest = LONGEST_WRITE // BLOCK
    buffer = np.empty((LONGEST_WRITE, 2), dtype=np.float32)
    starts = [ctypes.c_void_p(buffer.ctypes.data + b * BLOCK * 8) for b in range(longest)]
    handle, zero, one, two = ctypes.c_void_p(synth), ctypes.c_int(0), ctypes.c_int(1), ctypes.c_int(2)
    sizes = [ctypes.c_int(n * BLOCK) for n in range(longest + 1)]
    blocks_a_second = sample_rate / BLOCK
    started = False  # the player reads its file in the first block, and may stop there
    while status(player) == _PLAYING:
        if time.perf_counter() > deadline:
            raise TimeoutError("FluidSynth's render ran past its deadline")
        filled = 0
        while filled < longest and status(player) == _PLAYING:
            run = 1
            if ticks is not None and started:
                now = current_tick(player)
                following = int(np.searchsorted(ticks, now, side="right"))
                if following < len(ticks):
                    tick_seconds = tempo(player) / 1e6 / division
                    sure = (ticks[following] - now - SAFETY_TICKS) * tick_seconds - SAFETY_SECONDS
                    run = max(1, min(longest - filled, int(sure * blocks_a_second)))
            if write(handle, sizes[run], starts[filled], zero, two, starts[filled], one, two):
                raise SynthFailed(f"FluidSynth could not render: {_said.last or 'no reason given'}")
            filled += run
            started = True
        yield buffer[: filled * BLOCK].copy()
