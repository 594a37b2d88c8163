"""Live audio: pieces, one after another, as a steady stream of 20 ms PCM frames for a voice connection.

A voice connection (Discord's, through discord.py's own Opus encoder) takes 48 kHz stereo signed
16-bit little-endian PCM, one 20 ms frame of 3,840 bytes every 20 ms, and must never wait for
it. The data flow of one :class:`LiveStream`:

1. ``next_piece()``, a function of the caller's, composes a piece and returns its :class:`Cue`
   (the MIDI file and whatever the caller wants back when it starts playing). It runs in its
   own thread one piece ahead: piece N+1 is composed while piece N plays.
2. The producer thread runs FluidSynth on the piece (``-F -``: raw float samples on a pipe),
   scales them to 16-bit, cuts them into exact frames, drops the silence before the first note
   and after a short ring-out at the end, and puts the frames in a buffer of a few seconds.
   FluidSynth renders far faster than real time, so it renders in chunks ahead of playback and
   then waits on its full pipe while the buffer drains. Once a piece's last frames are buffered,
   seconds before they play, FluidSynth starts on the next piece: one process a stream at a time.
3. :meth:`LiveStream.read` (called by the voice connection's player thread every 20 ms) takes
   one frame from the buffer without waiting; the next piece's frames follow the last one's
   directly, so nothing is missing between pieces. If a frame is ever not ready in time the
   reader gets 20 ms of silence and ``stats.underruns`` counts it.

:meth:`LiveStream.skip` drops the rest of the piece playing now (its FluidSynth is killed) and
:meth:`LiveStream.close` ends everything: FluidSynth processes killed, threads joined. The
module knows nothing of Discord; it only depends on a FluidSynth binary and a SoundFont.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from composer.render.audio import ON_DEMAND, AudioUnavailable
from composer.render.soundfont import effect_options, parse_quietly

log = logging.getLogger(__name__)

SAMPLE_RATE = 48_000
CHANNELS = 2
FRAME_SECONDS = 0.02
FRAME_SAMPLES = round(SAMPLE_RATE * FRAME_SECONDS)
FRAME_BYTES = FRAME_SAMPLES * CHANNELS * 2
"""3,840 bytes: what discord.py's Opus encoder takes for one 20 ms packet."""
SILENT_FRAME = bytes(FRAME_BYTES)
GAIN = 0.5
"""FluidSynth's own gain (``-g``); its float samples are then scaled by :data:`LEVEL` and clipped."""
LEVEL = 0.8
"""Peaks of dense pieces at FluidSynth's gain 0.5 reach about full scale; this leaves headroom."""
SILENCE = 10 ** (-60 / 20)
"""A frame whose loudest sample is under -60 dBFS counts as silent."""
TAIL_SECONDS = 0.5
"""Ring-out kept after a piece's last sound before the next piece starts."""
READY_SECONDS = 0.5
"""Audio buffered before playback starts: FluidSynth renders it in milliseconds, and it carries the
first reads while FluidSynth's output comes up to speed."""
_READ_BYTES = 1 << 16
_PERIOD = 2048
"""Samples FluidSynth writes at a time: its default, 64, costs a system call every 1.3 ms of audio."""


@dataclass(frozen=True)
class Cue:
    """A piece to play: its MIDI file, and ``tag``, handed back when its first frame is read."""

    midi: Path
    tag: Any = None


@dataclass
class StreamStats:
    """What a stream has done so far, for logs, tests and the bench."""

    frames: int = 0
    """Frames read, silence for underruns included."""
    underruns: int = 0
    """Reads that found no frame ready and got silence instead."""
    pieces: int = 0
    """Pieces whose first frame has been read."""
    first_frame_at: float | None = None
    """``time.perf_counter()`` when the first frame was ready in the buffer."""
    gaps: list[float] = field(default_factory=list)
    """Seconds of silence between each piece's last sound and the next one's first, as played."""


class LiveStream:
    """Pieces from ``next_piece`` rendered by FluidSynth into a buffer of exact 20 ms PCM frames.

    ``next_piece`` returns ``None`` when there is nothing more to play; the stream then ends
    after the last frame; it ends too, after logging why, if composing or rendering fails.
    ``on_start(cue)`` is called in the reading thread when a piece's first frame is read, so it
    must only hand the news on (to an event loop, say). Start the threads with :meth:`start`.
    """

    def __init__(
        self,
        next_piece: Callable[[], Cue | None],
        soundfont: Path,
        *,
        buffer_seconds: float = 4.0,
        on_start: Callable[[Cue], None] | None = None,
    ) -> None:
        binary = shutil.which("fluidsynth")
        if binary is None:
            raise AudioUnavailable("FluidSynth is not installed (apt-get install fluidsynth)")
        self.binary = binary
        self.soundfont = Path(soundfont)
        self.next_piece = next_piece
        self.on_start = on_start
        self.capacity = max(2, round(buffer_seconds / FRAME_SECONDS))
        self.stats = StreamStats()
        self._frames: deque[tuple[int, bytes | Cue]] = deque()
        self._ready = threading.Condition()
        self._closed = threading.Event()
        self._ended = False
        """The producer has put the last frame it will put."""
        self._piece = 0
        """Index of the piece the producer is rendering."""
        self._skip_below = 0
        """Frames of pieces with a lower index are dropped (skipped)."""
        self._reading = 0
        """Index of the piece the reader is playing."""
        self._renders: set[_Render] = set()
        self._process_lock = threading.Lock()
        self._ahead = ThreadPoolExecutor(1, thread_name_prefix="live-compose")
        self._upcoming: Future[Cue | None] | None = None
        self._producer = threading.Thread(target=self._produce, name="live-render", daemon=True)
        self._silent_run = 0
        """Silent frames read since the last sound, for :attr:`StreamStats.gaps`."""
        self._heard = False

    # -- control, from any thread ------------------------------------------------------------

    def start(self) -> LiveStream:
        """Compose the first piece and start rendering; returns at once."""
        self._upcoming = self._ahead.submit(self.next_piece)
        self._producer.start()
        return self

    def wait_ready(self, timeout: float, seconds: float = READY_SECONDS) -> bool:
        """Wait until ``seconds`` of audio are buffered (or the stream ended); False on timeout."""
        frames = min(round(seconds / FRAME_SECONDS), self.capacity - 1)
        with self._ready:
            return self._ready.wait_for(lambda: len(self._frames) > frames or self._ended, timeout)

    def skip(self) -> None:
        """Drop the rest of the piece playing now; the next one follows at once."""
        with self._ready:
            self._skip_below = max(self._skip_below, self._reading + 1)
            while self._frames and self._frames[0][0] < self._skip_below:
                self._frames.popleft()
            self._ready.notify_all()

    def refresh_upcoming(self) -> Cue | None:
        """Ask ``next_piece`` again for the piece after this one (its settings changed); returns the
        piece dropped, if one was ready, so the caller can clean up after it.

        Has no effect on a piece being composed or rendered already.
        """
        with self._ready:
            waiting = self._upcoming
            if waiting is None or self._closed.is_set() or not (waiting.cancel() or waiting.done()):
                return None
            self._upcoming = self._ahead.submit(self.next_piece)
        if waiting.cancelled() or waiting.exception() is not None:
            return None
        return waiting.result()

    def close(self) -> None:
        """Stop: FluidSynth killed, the threads ended; :meth:`read` returns ``b""`` from now on."""
        self._closed.set()
        with self._ready:
            self._frames.clear()
            self._ready.notify_all()
        self._end_all()
        if self._producer.is_alive() and self._producer is not threading.current_thread():
            self._producer.join()
        self._ahead.shutdown(wait=True, cancel_futures=True)

    @property
    def ended(self) -> bool:
        """Whether the last frame has been read (or the stream was closed)."""
        with self._ready:
            return self._closed.is_set() or (self._ended and not self._frames)

    def buffered_seconds(self) -> float:
        """Seconds of audio in the buffer now."""
        with self._ready:
            return sum(1 for _, item in self._frames if isinstance(item, bytes)) * FRAME_SECONDS

    # -- the reader: the voice connection's player thread --------------------------------------

    def read(self) -> bytes:
        """The next 20 ms frame; silence if none is ready (an underrun); ``b""`` once the stream ended."""
        started: list[Cue] = []
        with self._ready:
            while True:
                if self._closed.is_set():
                    return b""
                if not self._frames:
                    if self._ended:
                        return b""
                    self.stats.underruns += 1
                    frame = SILENT_FRAME
                    break
                index, item = self._frames.popleft()
                self._reading = index
                if isinstance(item, Cue):
                    started.append(item)
                    continue
                frame = item
                break
            self.stats.frames += 1
            self._ready.notify_all()
        for cue in started:
            self._piece_started(cue)
        self._track_gap(frame)
        return frame

    def _piece_started(self, cue: Cue) -> None:
        self.stats.pieces += 1
        if self.stats.pieces > 1 and self._heard:
            self.stats.gaps.append(self._silent_run * FRAME_SECONDS)
        if self.on_start is not None:
            try:
                self.on_start(cue)
            except Exception:
                log.exception("the piece-started callback failed")

    def _track_gap(self, frame: bytes) -> None:
        if frame is SILENT_FRAME or isinstance(frame, _Quiet):
            self._silent_run += 1
        else:
            self._silent_run = 0
            self._heard = True

    # -- the producer ---------------------------------------------------------------------------

    def _spawn(self, cue: Cue) -> _Render:
        """Start FluidSynth on ``cue``; it renders into its pipe until the pipe is full."""
        command = [
            *(self.binary, "-ni", *ON_DEMAND, "-g", str(GAIN)),
            *("-z", str(_PERIOD), "-r", str(SAMPLE_RATE), "-O", "float", "-T", "raw", "-E", "little"),
            *effect_options(self.soundfont, parse_quietly(cue.midi)),
            *("-F", "-", str(self.soundfont), str(cue.midi)),
        ]
        errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed with its process, in _end_render
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)
        render = _Render(cue, process, errors)
        with self._process_lock:
            self._renders.add(render)
        return render

    def _produce(self) -> None:
        """Render piece after piece into the buffer until there are no more or the stream closes."""
        try:
            while not self._closed.is_set():
                with self._ready:  # taken, so refresh_upcoming leaves it alone from now on
                    upcoming, self._upcoming = self._upcoming, None
                cue = upcoming.result() if upcoming is not None else None
                if cue is None or self._closed.is_set():
                    break
                with self._ready:
                    self._piece += 1
                    self._upcoming = self._ahead.submit(self.next_piece)
                # The piece before has all its frames buffered (seconds of music): FluidSynth starts
                # well before they run out, and only one FluidSynth process runs at a time.
                render = self._spawn(cue)
                try:
                    self._render(render, self._piece)
                finally:
                    self._end_render(render)
        except Exception:  # the stream ends; the reader hears the end of it
            if not self._closed.is_set():
                log.exception("live audio stopped")
        finally:
            with self._ready:
                self._ended = True
                self._ready.notify_all()

    def _render(self, render: _Render, index: int) -> None:
        """Put the piece's frames in the buffer, its :class:`Cue` first, as FluidSynth renders them."""
        cutter = _Cutter()
        if not self._put(index, [render.cue]):
            return
        fd = render.process.stdout.fileno()
        while chunk := os.read(fd, _READ_BYTES):
            if not self._put(index, cutter.feed(chunk)):
                return
        if not self._put(index, cutter.finish()):
            return
        code = render.process.wait()
        if code != 0 or cutter.sounded == 0:
            render.errors.seek(0)
            said = render.errors.read().decode(errors="replace").strip().splitlines()
            log.warning(
                "FluidSynth (exit status %d) gave no sound for %s: %s",
                code,
                render.cue.midi.name,
                said[-1] if said else "",
            )

    def _put(self, index: int, items: list[bytes | Cue]) -> bool:
        """Buffer ``items`` as room frees up; False once the piece is skipped or the stream closed."""
        with self._ready:
            at = 0
            while at < len(items):
                self._ready.wait_for(
                    lambda: (
                        len(self._frames) < self.capacity or self._closed.is_set() or index < self._skip_below
                    )
                )
                if self._closed.is_set() or index < self._skip_below:
                    return False
                room = self.capacity - len(self._frames)
                self._frames.extend((index, item) for item in items[at : at + room])
                at += room
                if self.stats.first_frame_at is None and any(isinstance(i, bytes) for i in items):
                    self.stats.first_frame_at = time.perf_counter()
                self._ready.notify_all()
            return True

    def _end_render(self, render: _Render) -> None:
        """Kill and reap a FluidSynth process (if it still runs) and close its files."""
        if render.process.poll() is None:
            render.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            render.process.wait(timeout=5)
        render.process.stdout.close()
        render.errors.close()
        with self._process_lock:
            self._renders.discard(render)

    def _end_all(self) -> None:
        """Kill the FluidSynth process of this stream, if one runs."""
        with self._process_lock:
            renders = list(self._renders)
        for render in renders:
            if render.process.poll() is None:
                render.process.kill()


@dataclass(eq=False)
class _Render:
    """A piece and the FluidSynth process rendering it into a pipe."""

    cue: Cue
    process: subprocess.Popen
    errors: IO[bytes]


class _Cutter:
    """Turns FluidSynth's float samples into exact 16-bit frames, leaving out the silence before the
    first sound and all but :data:`TAIL_SECONDS` of it after the last."""

    def __init__(self) -> None:
        self.pending = b""
        self.quiet: list[_Quiet] = []
        """Silent frames held back until sound follows them (or the piece ends)."""
        self.sounded = 0
        self.tail = round(TAIL_SECONDS / FRAME_SECONDS)
        self.carry = np.zeros((0, CHANNELS), dtype=np.int16)

    def feed(self, chunk: bytes) -> list[bytes]:
        """The frames that can be sent now, from the next piece of raw output."""
        data = self.pending + chunk
        usable = len(data) // (CHANNELS * 4) * (CHANNELS * 4)
        self.pending = data[usable:]
        samples = np.frombuffer(data[:usable], dtype="<f4").reshape(-1, CHANNELS)
        pcm = np.clip(samples * (LEVEL * 32767), -32768, 32767).astype("<i2")
        pcm = np.concatenate([self.carry, pcm]) if len(self.carry) else pcm
        whole = len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES
        self.carry = pcm[whole:]
        frames = pcm[:whole].reshape(-1, FRAME_SAMPLES, CHANNELS)
        loud = np.abs(frames.astype(np.int32)).max(axis=(1, 2)) >= SILENCE * 32767
        out: list[bytes] = []
        for frame, is_loud in zip(frames, loud, strict=True):
            if not is_loud:
                if self.sounded:
                    self.quiet.append(_Quiet(frame.tobytes()))
                continue
            data = frame.tobytes()
            out.extend(self.quiet)
            self.quiet.clear()
            out.append(data)
            self.sounded += 1
        return out

    def finish(self) -> list[bytes]:
        """The ring-out after the last sound, the last partial frame padded with silence."""
        rest = self.quiet[: self.tail]
        if len(self.carry) and self.sounded and len(rest) < self.tail:
            padded = np.zeros((FRAME_SAMPLES, CHANNELS), dtype="<i2")
            padded[: len(self.carry)] = self.carry
            rest.append(_Quiet(padded.tobytes()))
        return rest


class _Quiet(bytes):
    """A frame under :data:`SILENCE`, marked so the reader can measure gaps without looking inside."""
