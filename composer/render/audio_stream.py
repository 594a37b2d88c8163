"""Rendering and encoding at once: FluidSynth's samples go to the Opus encoder while it renders.

The two-pass way (:func:`composer.render.audio.render_audio` with ``streaming=False``) renders the whole
piece to a file, measures its peak, then encodes, so the encoder waits for the renderer and the
machine's second core idles. Here FluidSynth writes raw float samples to a pipe and each block
is encoded as it arrives, so the encode hides behind the render.

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
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from composer.render import opus
from composer.render.audio import encoder_settings
from composer.render.opus import OggOpusWriter, ogg_crc
from composer.render.system_libsndfile import soundfile as sf

CHANNELS = 2
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
    command: list[str],
    target: Path,
    sample_rate: int,
    kbps: int,
    peak_db: float,
    silence_db: float,
    tail_seconds: float,
    fade_seconds: float,
    timeout_s: float,
) -> Streamed:
    """Run FluidSynth ``command`` (raw little-endian float stereo on stdout), encode it as Ogg Opus
    at ``kbps`` into ``target``, and set the header's gain so the decoded peak
    is ``peak_db``; sound more than ``silence_db`` under the peak at the end is trimmed after
    ``tail_seconds`` of ring-out, with a ``fade_seconds`` fade."""
    window = max(1, round(sample_rate * WINDOW_SECONDS))
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        frames = None
        try:
            frames = _Frames(process, started + timeout_s)
            trim = _Trim(
                10 ** (silence_db / 20), round(tail_seconds * sample_rate), round(fade_seconds * sample_rate)
            )
            with _opus_file(target, sample_rate, kbps) as sink:
                while (block := frames.take(window * 50)) is not None:
                    block *= np.float32(LEVEL)
                    np.clip(block, -1.0, 1.0, out=block)
                    for ready in trim.feed(block, window):
                        sink.write(ready)
                for ready in trim.finish():
                    sink.write(ready)
            code = process.wait(timeout=max(1.0, started + timeout_s - time.perf_counter()))
        except subprocess.TimeoutExpired as error:
            raise StreamFailed(f"FluidSynth took longer than {timeout_s:.0f} s and was stopped") from error
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if frames is not None:
                frames.close()
            if process.stdout is not None:
                process.stdout.close()
        if code != 0:
            errors.seek(0)
            said = errors.read().decode(errors="replace").strip().splitlines()
            raise StreamFailed(f"FluidSynth failed (exit status {code}): {said[-1] if said else 'no output'}")
    if trim.peak <= 1e-7 * LEVEL:
        raise StreamFailed("FluidSynth rendered only silence")
    set_output_gain(target, peak_db - 20 * np.log10(trim.peak))
    finished = time.perf_counter()
    return Streamed(trim.written, frames.done_at - started, finished - frames.done_at)


class _Frames:
    """Reads whole stereo frames from FluidSynth's stdout.

    A thread drains the pipe into a bounded queue, so FluidSynth never waits while a block is
    being encoded: the renderer and the encoder each keep a core busy.
    """

    def __init__(self, process: subprocess.Popen, deadline: float) -> None:
        self.deadline = deadline
        self.pending = b""
        self.done_at = time.perf_counter()
        self.ended = False
        self.chunks: queue.Queue[bytes] = queue.Queue(maxsize=_QUEUED_CHUNKS)
        self.reader = threading.Thread(target=self._drain, args=(process.stdout,), daemon=True)
        self.reader.start()

    def _drain(self, stream: IO[bytes]) -> None:
        """Copy the pipe into the queue; an empty chunk marks its end."""
        while chunk := os.read(stream.fileno(), _READ_BYTES):
            self.chunks.put(chunk)
        self.done_at = time.perf_counter()
        self.chunks.put(b"")

    def close(self) -> None:
        """Let the reading thread end (after FluidSynth has): empty the queue it may wait on."""
        while self.reader.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:
                    self.chunks.get_nowait()
            self.reader.join(0.05)

    def take(self, count: int) -> np.ndarray | None:
        """Up to ``count`` frames (``(n, 2)`` float32), None once the stream has ended."""
        wanted = count * CHANNELS * 4
        chunks = [self.pending]
        have = len(self.pending)
        while have < wanted and not self.ended:
            left = self.deadline - time.perf_counter()
            try:
                chunk = self.chunks.get(timeout=max(0.01, left))
            except queue.Empty:
                raise subprocess.TimeoutExpired("fluidsynth", 0) from None
            if not chunk:
                self.ended = True
                break
            chunks.append(chunk)
            have += len(chunk)
        data = b"".join(chunks)
        usable = min(len(data), wanted) // (CHANNELS * 4) * (CHANNELS * 4)
        self.pending = data[usable:]
        if usable == 0:
            return None
        return np.frombuffer(data[:usable], dtype="<f4").reshape(-1, CHANNELS).copy()


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
