"""Ogg Opus written straight from libopus, at an encoder complexity we choose.

libsndfile encodes Opus at libopus' highest complexity (10) and offers no way to lower it. At
96 kbit/s the lowest complexity, 0, costs a third of the encoder's CPU time and its coding error is
as small: ``bench/opus_complexity.py`` encodes the same renders at 10, 5, 3 and 0 and compares the
decoded files with what went in, band by band (complexity 0's error in any third-octave band is
within 0.6 dB of complexity 10's, as 5's is within 0.7) and over 20 ms segments (the worst 5% of
segments as clean at every setting). Below complexity 5 libopus skips its pitch pre-filter and
some of its analysis, which buys little at this bitrate. Encoding is the largest share of a
piece's CPU after FluidSynth itself.

The container follows RFC 7845: an ``OpusHead`` page, an ``OpusTags`` page, then audio pages of
about a second whose granule positions count 48 kHz samples; the last page's granule trims the
padding the encoder needed to flush. libopus is loaded with ``ctypes`` (Debian's ``libopus0``,
which libsndfile and discord.py's voice also use); :func:`available` says whether it was found.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np

COMPLEXITY = 0
"""libopus' encoder complexity, 0-10 (see the module docstring for what it costs and saves)."""
FRAME_SECONDS = 0.02
_APPLICATION_AUDIO = 2049
_SET_BITRATE, _SET_COMPLEXITY, _GET_LOOKAHEAD = 4002, 4010, 4027
_MAX_PACKET = 4000
_PAGE_SECONDS = 1.0
_GRANULE_RATE = 48000
_VENDOR = b"Cadenza (libopus)"


class OpusError(Exception):
    """libopus is missing or refused the settings; ``str()`` says which."""


@lru_cache(maxsize=1)
def _libopus() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("opus")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [
        ctypes.c_int32,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
    ]
    lib.opus_encode_float.restype = ctypes.c_int32
    lib.opus_encode_float.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_int32,
    ]
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    return lib


def available() -> bool:
    """Whether libopus could be loaded."""
    return _libopus() is not None


class OggOpusWriter:
    """Encodes float samples (frames of ``channels``, -1..1) into an Ogg Opus file as they come.

    Use as a context manager, like ``soundfile.SoundFile``: :meth:`write` blocks of any length,
    and leaving the block flushes the last frame and closes the stream.
    """

    def __init__(self, path: Path, sample_rate: int, channels: int, kbps: int, complexity: int = COMPLEXITY):
        lib = _libopus()
        if lib is None:
            raise OpusError("libopus is not installed (apt-get install libopus0)")
        error = ctypes.c_int()
        self._lib, self._channels = lib, channels
        self._encoder = lib.opus_encoder_create(
            sample_rate, channels, _APPLICATION_AUDIO, ctypes.byref(error)
        )
        if error.value != 0 or not self._encoder:
            raise OpusError(
                f"libopus refused {sample_rate} Hz with {channels} channels (error {error.value})"
            )
        ctl = lib.opus_encoder_ctl
        if ctl(ctypes.c_void_p(self._encoder), _SET_BITRATE, ctypes.c_int32(kbps * 1000)) != 0:
            raise OpusError(f"libopus refused {kbps} kbit/s")
        ctl(ctypes.c_void_p(self._encoder), _SET_COMPLEXITY, ctypes.c_int32(complexity))
        lookahead = ctypes.c_int32()
        ctl(ctypes.c_void_p(self._encoder), _GET_LOOKAHEAD, ctypes.byref(lookahead))
        self._scale = _GRANULE_RATE // sample_rate
        self._pre_skip = lookahead.value * self._scale
        self._frame = round(sample_rate * FRAME_SECONDS)
        self._pending = np.zeros((0, channels), np.float32)
        self._samples = 0
        self._granule = 0  # granule positions count the pre-skip samples too (RFC 7845, 4.1)
        self._packets: list[tuple[bytes, int]] = []
        """Encoded packets not yet on a page, each with the granule position at its end."""
        self._buffer = ctypes.create_string_buffer(_MAX_PACKET)
        self._serial = zlib.crc32(str(path).encode()) & 0x7FFFFFFF
        self._sequence = 0
        self._file = path.open("wb")
        head = struct.pack("<8sBBHIhB", b"OpusHead", 1, channels, self._pre_skip, sample_rate, 0, 0)
        tags = b"OpusTags" + struct.pack("<I", len(_VENDOR)) + _VENDOR + struct.pack("<I", 0)
        self._page([(head, 0)], flags=0x02)
        self._page([(tags, 0)])

    def __enter__(self) -> OggOpusWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(flush=exc[0] is None)

    def write(self, block: np.ndarray) -> None:
        """Encode every whole 20 ms frame in what has come so far; keep the rest for later."""
        data = np.concatenate([self._pending, np.asarray(block, np.float32).reshape(-1, self._channels)])
        self._samples += len(data) - len(self._pending)
        whole = len(data) // self._frame * self._frame
        for start in range(0, whole, self._frame):
            self._encode(data[start : start + self._frame])
        self._pending = data[whole:]
        if len(self._packets) * FRAME_SECONDS >= _PAGE_SECONDS:
            self._page(self._packets)
            self._packets = []

    def close(self, flush: bool = True) -> None:
        """Encode what is left (padded with silence past the encoder's look-ahead), write the last
        page with the granule that trims the padding, and release the encoder."""
        if self._encoder is None:
            return
        try:
            if flush:
                padding = self._pre_skip // self._scale + self._frame
                tail = np.concatenate([self._pending, np.zeros((padding, self._channels), np.float32)])
                for start in range(0, len(tail) - self._frame + 1, self._frame):
                    self._encode(tail[start : start + self._frame])
                end = self._pre_skip + self._samples * self._scale
                last, granule = self._packets.pop()
                self._page([*self._packets, (last, min(end, granule))], flags=0x04)
        finally:
            self._lib.opus_encoder_destroy(ctypes.c_void_p(self._encoder))
            self._encoder = None
            self._file.close()

    def _encode(self, frame: np.ndarray) -> None:
        samples = np.ascontiguousarray(frame, np.float32)
        size = self._lib.opus_encode_float(
            ctypes.c_void_p(self._encoder), samples.ctypes.data, self._frame, self._buffer, _MAX_PACKET
        )
        if size < 0:
            raise OpusError(f"libopus failed to encode a frame (error {size})")
        self._granule += self._frame * self._scale
        self._packets.append((self._buffer.raw[:size], self._granule))

    def _page(self, packets: list[tuple[bytes, int]], flags: int = 0) -> None:
        """Write ``packets`` as Ogg pages, as many as their lacing values need (255 a page); each
        page carries the granule position of the last packet that ends on it."""
        lacing: list[int] = []
        body = bytearray()
        granule = 0
        for packet, end in packets:
            values = [255] * (len(packet) // 255) + [len(packet) % 255]
            if lacing and len(lacing) + len(values) > 255:
                self._emit(lacing, body, granule, flags & 0x02)  # the stream's flags go on its last page
                lacing, body, flags = [], bytearray(), flags & ~0x02
            lacing += values
            body += packet
            granule = end
        self._emit(lacing, body, granule, flags)

    def _emit(self, lacing: list[int], body: bytes, granule: int, flags: int) -> None:
        header = struct.pack(
            "<4sBBqIIIB", b"OggS", 0, flags, granule, self._serial, self._sequence, 0, len(lacing)
        )
        page = bytearray(header + bytes(lacing) + body)
        page[22:26] = ogg_crc(bytes(page)).to_bytes(4, "little")
        self._file.write(page)
        self._sequence += 1


_BIT_REVERSED = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], np.uint8)


def ogg_crc(data: bytes) -> int:
    """Ogg's page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, initial value 0).

    zlib computes the reflected form of the same CRC in C; with every byte's bits reversed going in
    and the result's bits reversed coming out, the two agree, thousands of times faster than a
    byte-by-byte loop in Python.
    """
    reflected = zlib.crc32(_BIT_REVERSED[np.frombuffer(data, np.uint8)].tobytes(), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)
