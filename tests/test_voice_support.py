"""Helpers for the voice tests: a tiny SoundFont, short MIDI pieces, and the voice connection faked.

:func:`sine_soundfont` writes a real SoundFont 2 file (one looped sine wave for every program)
that FluidSynth loads in a few milliseconds instead of FluidR3's 150 MB, so an hour of music can
be rendered in a test. :class:`FakeVoiceClient` stands in for :class:`discord.VoiceClient` at
the network edge only: it is a :class:`discord.VoiceProtocol` that discord.py's own
``channel.connect(cls=...)`` makes and registers, and while it plays, a thread pulls 20 ms
frames from the source as discord.py's ``AudioPlayer`` does, at ``speed`` times real time.

This module holds no tests; it is named ``test_voice_*`` only because the voice test files are.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import io
import math
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any

import discord
import mido

FRAME_BYTES = 3840


def _chunk(name: bytes, data: bytes) -> bytes:
    return name + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")


def _list(kind: bytes, *chunks: bytes) -> bytes:
    return _chunk(b"LIST", kind + b"".join(chunks))


def sine_soundfont(path: Path) -> Path:
    """A SoundFont whose only instrument, on every bank 0 program, is a looped 441 Hz sine."""
    rate, period, periods = 44100, 100, 100
    wave = [round(12000 * math.sin(2 * math.pi * i / period)) for i in range(period * periods)]
    smpl = struct.pack(f"<{len(wave) + 46}h", *wave, *([0] * 46))
    name = lambda text: text.encode().ljust(20, b"\0")  # noqa: E731
    phdr = (
        b"".join(
            name(f"sine {program}") + struct.pack("<HHHIII", program, 0, program, 0, 0, 0)
            for program in range(128)
        )
        + name("EOP")
        + struct.pack("<HHHIII", 0, 0, 128, 0, 0, 0)
    )
    pbag = b"".join(struct.pack("<HH", program, 0) for program in range(129))
    pgen = b"".join(struct.pack("<HH", 41, 0) for _ in range(128)) + struct.pack("<HH", 0, 0)
    inst = name("sine") + struct.pack("<H", 0) + name("EOI") + struct.pack("<H", 1)
    ibag = struct.pack("<HHHH", 0, 0, 3, 0)
    # Loop continuously (54 = sampleModes), the sample's pitch is MIDI 69 (58), sample 0 (53).
    igen = struct.pack("<HHHHHHHH", 54, 1, 58, 69, 53, 0, 0, 0)
    shdr = name("sine") + struct.pack(
        "<IIIIIBbHH", 0, len(wave), period, len(wave) - period, rate, 69, 0, 0, 1
    )
    shdr += name("EOS") + bytes(26)
    body = b"sfbk" + _list(
        b"INFO",
        _chunk(b"ifil", struct.pack("<HH", 2, 1)),
        _chunk(b"isng", b"EMU8000\0"),
        _chunk(b"INAM", b"sine\0\0"),
    )
    body += _list(b"sdta", _chunk(b"smpl", smpl))
    body += _list(
        b"pdta",
        _chunk(b"phdr", phdr),
        _chunk(b"pbag", pbag),
        _chunk(b"pmod", bytes(10)),
        _chunk(b"pgen", pgen),
        _chunk(b"inst", inst),
        _chunk(b"ibag", ibag),
        _chunk(b"imod", bytes(10)),
        _chunk(b"igen", igen),
        _chunk(b"shdr", shdr),
    )
    path.write_bytes(_chunk(b"RIFF", body))
    return path


def melody(path: Path, notes: int, *, seconds_each: float = 0.25, first: int = 60) -> Path:
    """A MIDI file of ``notes`` notes one after another, at 120 bpm; it plays ``notes * seconds_each``."""
    ticks = round(480 * seconds_each / 0.5)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000)])
    for i in range(notes):
        pitch = first + (i * 7) % 12
        track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=ticks))
    song = mido.MidiFile(ticks_per_beat=480)
    song.tracks.append(track)
    out = io.BytesIO()
    song.save(file=out)
    path.write_bytes(out.getvalue())
    return path


def fluidsynth_children() -> list[int]:
    """Process ids of this process's FluidSynth children that still exist (zombies too)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == os.getpid() and comm.startswith("fluidsynth"):
            found.append(int(entry))
    return found


def rss_bytes() -> int:
    """This process's resident memory now, once freed memory is given back to the system: what is
    held, not what the allocator keeps for later (which other tests in the same process vary)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


class FakeVoiceClient(discord.VoiceProtocol):
    """A voice connection without the network: joins, moves, plays by pulling frames in a thread.

    Every instance is kept in ``FakeVoiceClient.made`` so tests can read what was played.
    """

    made: list[FakeVoiceClient] = []  # noqa: RUF012 - shared on purpose, reset by the fixture
    speed = 50.0
    """How many times faster than real time the player pulls frames."""

    def __init__(self, client: discord.Client, channel: discord.abc.Connectable) -> None:
        super().__init__(client, channel)
        self.connected = False
        self.frames = 0
        self.sizes: set[int] = set()
        self.late = 0
        self.source: discord.AudioSource | None = None
        self._player: threading.Thread | None = None
        self._end = threading.Event()
        self.moves: list[int] = []
        FakeVoiceClient.made.append(self)

    @property
    def guild(self) -> discord.Guild:
        return self.channel.guild

    async def connect(self, *, timeout: float, reconnect: bool, self_deaf: bool = False, **_: Any) -> None:
        self.connected = True
        self._set_voice_state(self.channel.id)

    async def disconnect(self, *, force: bool = False) -> None:
        self.stop()
        self.connected = False
        self._set_voice_state(None)
        self.cleanup()

    async def move_to(self, channel: discord.abc.Snowflake | None, **_: Any) -> None:
        self.moves.append(channel.id)
        self.channel = channel
        self._set_voice_state(channel.id)

    def _set_voice_state(self, channel_id: int | None) -> None:
        """What Discord's gateway would say about the bot's own voice state (the voice client itself
        is registered by discord.py's ``channel.connect``)."""
        me = self.guild.me
        data = {
            "guild_id": str(self.guild.id),
            "channel_id": str(channel_id) if channel_id else None,
            "user_id": str(me.id),
            "session_id": "fake",
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": False,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }
        self.guild._update_voice_state(data, int(channel_id) if channel_id else None)

    def is_connected(self) -> bool:
        return self.connected

    def is_playing(self) -> bool:
        return self._player is not None and self._player.is_alive()

    def is_paused(self) -> bool:
        return False

    def play(self, source: discord.AudioSource, *, after: Any = None, **_: Any) -> None:
        if self.is_playing():
            raise discord.ClientException("Already playing audio.")
        self.source = source
        self._end = threading.Event()
        self._player = threading.Thread(target=self._run, args=(source, after, self._end), daemon=True)
        self._player.start()

    def _run(self, source: discord.AudioSource, after: Any, end: threading.Event) -> None:
        """Like discord.py's AudioPlayer: a frame every 20 ms (scaled), until the source is empty."""
        delay = 0.02 / self.speed
        started = time.perf_counter()
        loops = 0
        error = None
        try:
            while not end.is_set():
                data = source.read()
                if not data:
                    break
                self.sizes.add(len(data))
                self.frames += 1
                loops += 1
                wait = started + delay * loops - time.perf_counter()
                if wait < -delay:
                    self.late += 1
                time.sleep(max(0.0, wait))
        except Exception as exc:
            error = exc
        finally:
            if after is not None:
                after(error)
            source.cleanup()

    def stop(self) -> None:
        self._end.set()
        if self._player is not None and self._player is not threading.current_thread():
            self._player.join(10)
