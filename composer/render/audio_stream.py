"""Rendering and encoding at once: FluidSynth's samples go to the Opus encoder while it renders.

The two-pass way (:func:`composer.render.audio.render_audio` with ``streaming=False``) renders the whole
piece to a file, measures its peak, then encodes, so the encoder waits for the renderer and the
machine's second core idles. Here FluidSynth's float samples come block by block, from its library
in this process (:mod:`composer.render.synth`) or, where the library cannot be loaded, from the
``fluidsynth`` command through a pipe, and each block is encoded as it arrives, so the encode
hides behind the render.

Normalising needs the peak of the whole piece, which is only known at the end. Ogg Opus carries
an output gain in its header (RFC 7845, section 5.1: decoders must apply it), so the samples are
encoded at a fixed level with headroom and, once the peak is known, the header's gain is set to
bring that peak to the target: the decoded result is normalised exactly as the two-pass way's,
and the header page's checksum is computed again. The silent tail is trimmed as it streams.
"""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from composer.midi.smf import MidiFile
from composer.render import opus, synth
from composer.render.audio import encoder_settings
from composer.render.opus import OggOpusWriter, ogg_crc
from composer.render.system_libsndfile import soundfile as sf

CHANNELS = 2
GAIN = 0.5
"""FluidSynth's own gain (``-g``)."""
LEVEL = 0.25
"""FluidSynth's samples are scaled by this before encoding (-12 dB): headroom for dense pieces,
which at FluidSynth's gain of 0.5 can pass full scale; the header's gain restores the level."""
WINDOW_SECONDS = 0.01
"""The silence detector's resolution."""
_READ_BYTES = 1 << 16
_QUEUED_CHUNKS = 512
"""At most this many chunks (32 MB) wait for the encoder before FluidSynth is held back."""
_OPUS_HEAD = b"OpusHead"


@dataclass(frozen=True)
class Streamed:
    """What :func:`render_streaming` wrote."""

    frames: int
    render_seconds: float
    """Until FluidSynth finished."""
    encode_seconds: float
    """After FluidSynth finished: the encoder's last blocks, closing the file, the header's gain."""


class StreamFailed(Exception):
    """FluidSynth failed or gave no sound; ``str()`` says why."""


def render_streaming(
    source: FrameSource,
    target: Path,
    sample_rate: int,
    kbps: int,
    peak_db: float,
    silence_db: float,
    tail_seconds: float,
    fade_seconds: float,
) -> Streamed:
    """Encode what ``source`` renders as Ogg Opus at ``kbps`` into ``target``, and set the header's
    gain so the decoded peak is ``peak_db``; sound more than ``silence_db`` under the peak at the
    end is trimmed after ``tail_seconds`` of ring-out, with a ``fade_seconds`` fade."""
    window = max(1, round(sample_rate * WINDOW_SECONDS))
    trim = _Trim(
        10 ** (silence_db / 20), round(tail_seconds * sample_rate), round(fade_seconds * sample_rate)
    )
    with source, _opus_file(target, sample_rate, kbps) as sink:
        while (block := source.take(window * 50)) is not None:
            block *= np.float32(LEVEL)
            np.clip(block, -1.0, 1.0, out=block)
            for ready in trim.feed(block, window):
                sink.write(ready)
        for ready in trim.finish():
            sink.write(ready)
    if trim.peak <= 1e-7 * LEVEL:
        raise StreamFailed("FluidSynth rendered only silence")
    set_output_gain(target, peak_db - 20 * np.log10(trim.peak))
    finished = time.perf_counter()
    return Streamed(trim.written, source.done_at - source.started, finished - source.done_at)


class FrameSource(ABC):
    """Stereo float frames from a renderer running in its own thread.

    The thread puts ``(n, 2)`` float32 blocks in a bounded queue, so the renderer never waits
    while a block is being encoded: the renderer and the encoder each keep a core busy. Used as a
    context manager; leaving it stops the renderer and raises :class:`StreamFailed` if it failed.
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.started = time.perf_counter()
        self.deadline = self.started + timeout_s
        self.done_at = self.started
        self.pending = np.empty((0, CHANNELS), dtype=np.float32)
        self.ended = False
        self.failure: BaseException | None = None
        self.stopping = threading.Event()
        self.chunks: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=_QUEUED_CHUNKS)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FrameSource:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.stopping.set()
        if kind is not None:
            self.abort()
        while self.thread.is_alive():  # it may wait on a full queue: empty it
            with contextlib.suppress(queue.Empty):
                while True:
                    self.chunks.get_nowait()
            self.thread.join(0.05)
        self.finish()
        if kind is None and self.failure is not None:
            raise StreamFailed(str(self.failure)) from self.failure

    def too_long(self) -> str:
        """What a render past its time limit says."""
        return f"FluidSynth took longer than {self.timeout_s:.0f} s and was stopped"

    @abstractmethod
    def produce(self, put: Callable[[np.ndarray], None]) -> None:
        """Render, handing each block to ``put``; runs in the source's thread."""

    @abstractmethod
    def abort(self) -> None:
        """Stop the renderer early: the encoding side failed."""

    @abstractmethod
    def finish(self) -> None:
        """Release what the renderer held, once its thread has ended; may set :attr:`failure`."""

    def _run(self) -> None:
        try:
            self.produce(self._put)
        except _Stopped:
            pass
        except Exception as error:  # reported to the encoding thread by __exit__
            self.failure = error
        self.done_at = time.perf_counter()
        with contextlib.suppress(_Stopped):
            self._put(None)

    def _put(self, block: np.ndarray | None) -> None:
        while not self.stopping.is_set():
            with contextlib.suppress(queue.Full):
                self.chunks.put(block, timeout=0.05)
                return
        raise _Stopped

    def take(self, count: int) -> np.ndarray | None:
        """Up to ``count`` frames (a ``(n, 2)`` float32 array of its own), None once the stream
        has ended."""
        parts, have = [self.pending], len(self.pending)
        while have < count and not self.ended:
            left = self.deadline - time.perf_counter()
            try:
                chunk = self.chunks.get(timeout=max(0.01, left))
            except queue.Empty:
                raise StreamFailed(self.too_long()) from None
            if chunk is None:
                self.ended = True
                break
            parts.append(chunk)
            have += len(chunk)
        data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self.pending = data[count:]
        if not len(data):
            return None
        return data[:count].copy()


class _Stopped(Exception):
    """The encoding side has stopped taking frames."""


class LibrarySource(FrameSource):
    """FluidSynth's library rendering in this process (:mod:`composer.render.synth`)."""

    def __init__(
        self,
        soundfont: Path,
        midi: Path,
        parsed: MidiFile | None,
        sample_rate: int,
        chorus: bool,
        timeout_s: float,
    ) -> None:
        super().__init__(timeout_s)
        self.args = (soundfont, midi, parsed, sample_rate, chorus)

    def produce(self, put: Callable[[np.ndarray], None]) -> None:
        soundfont, midi, parsed, sample_rate, chorus = self.args
        blocks = synth.render(
            soundfont, midi.read_bytes(), parsed, sample_rate, GAIN, chorus=chorus, deadline=self.deadline
        )
        try:
            for block in blocks:
                put(block)
        except TimeoutError:
            raise StreamFailed(self.too_long()) from None
        finally:
            blocks.close()

    def abort(self) -> None:
        """Nothing to do: the render stops at its next block, which the queue refuses."""

    def finish(self) -> None:
        """Nothing to release: the render's generator freed the synthesizer when it closed."""


class CommandSource(FrameSource):
    """The ``fluidsynth`` command writing raw little-endian float stereo to a pipe (``-F -``)."""

    def __init__(self, command: list[str], timeout_s: float) -> None:
        super().__init__(timeout_s)
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by finish, once the process ends)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=self.errors)

    def produce(self, put: Callable[[np.ndarray], None]) -> None:
        assert self.process.stdout is not None
        frame = CHANNELS * 4
        rest = b""
        while chunk := os.read(self.process.stdout.fileno(), _READ_BYTES):
            data = rest + chunk
            usable = len(data) // frame * frame
            rest = data[usable:]
            if usable:
                put(np.frombuffer(data[:usable], dtype="<f4").reshape(-1, CHANNELS))

    def abort(self) -> None:
        self.process.kill()

    def finish(self) -> None:
        try:
            code = self.process.wait(timeout=max(1.0, self.deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
            self.failure = self.failure or StreamFailed(self.too_long())
        if self.process.stdout is not None:
            self.process.stdout.close()
        if code != 0 and self.failure is None:
            self.errors.seek(0)
            said = self.errors.read().decode(errors="replace").strip().splitlines()
            last = said[-1] if said else "no output"
            self.failure = StreamFailed(f"FluidSynth failed (exit status {code}): {last}")
        self.errors.close()


class _Trim:
    """Writes sound as it comes but holds back quiet stretches (quiet against the loudest so far)
    until sound follows them; at the end keeps a faded ring-out of the held-back tail."""

    def __init__(self, silence: float, tail: int, fade: int) -> None:
        self.silence = silence
        self.tail = tail
        self.fade = fade
        self.quiet: list[np.ndarray] = []
        self.peak = 0.0
        self.written = 0

    def feed(self, block: np.ndarray, window: int) -> list[np.ndarray]:
        """The parts of ``block`` (and of earlier quiet stretches) that can be written now."""
        loudest = np.abs(block).max(axis=1)
        self.peak = max(self.peak, float(loudest.max(initial=0.0)))
        loud = np.nonzero(loudest > self.peak * self.silence)[0]
        if not len(loud):
            self.quiet.append(block)
            return []
        cut = min(len(block), (int(loud[-1]) // window + 1) * window)
        ready = [*self.quiet, block[:cut]]
        self.quiet = [block[cut:]] if cut < len(block) else []
        self.written += sum(len(r) for r in ready)
        return ready

    def finish(self) -> list[np.ndarray]:
        """The ring-out after the last sound, faded."""
        if not self.quiet:
            return []
        rest = np.concatenate(self.quiet)[: self.tail].copy()
        fade = min(len(rest), self.fade)
        if fade:
            rest[len(rest) - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)[:, None]
        self.written += len(rest)
        return [rest] if len(rest) else []


def _opus_file(target: Path, sample_rate: int, kbps: int) -> OggOpusWriter | sf.SoundFile:
    """The encoder: libopus directly at :data:`composer.render.opus.COMPLEXITY`, or libsndfile's
    Opus (complexity 10, a third more CPU) where libopus cannot be loaded on its own."""
    if opus.available():
        return OggOpusWriter(target, sample_rate, CHANNELS, kbps)
    return sf.SoundFile(str(target), "w", sample_rate, CHANNELS, **encoder_settings("ogg", kbps, CHANNELS))


def set_output_gain(path: Path, gain_db: float) -> None:
    """Set the output gain of the Ogg Opus file at ``path`` (its first page holds the OpusHead
    packet alone) and compute that page's checksum again."""
    with path.open("r+b") as f:
        head = bytearray(f.read(4096))
        if head[:4] != b"OggS" or head[28:36] != _OPUS_HEAD:
            raise StreamFailed("the encoder did not write an Ogg Opus header where expected")
        segments = head[26]
        page_length = 27 + segments + sum(head[27 : 27 + segments])
        q78 = max(-32768, min(32767, round(gain_db * 256)))
        head[28 + 16 : 28 + 18] = q78.to_bytes(2, "little", signed=True)
        head[22:26] = b"\0\0\0\0"
        head[22:26] = ogg_crc(bytes(head[:page_length])).to_bytes(4, "little")
        f.seek(0)
        f.write(head[:page_length])
