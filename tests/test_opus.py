"""The Ogg Opus writer, read back by libsndfile (an independent Ogg and Opus decoder)."""

from __future__ import annotations

import numpy as np
import pytest

from composer.render import opus
from composer.render.opus import OggOpusWriter, ogg_crc
from composer.render.system_libsndfile import soundfile as sf

pytestmark = pytest.mark.skipif(not opus.available(), reason="libopus is not installed")


def _chord(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    left = 0.2 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 660 * t)
    right = 0.2 * np.sin(2 * np.pi * 550 * t)
    return np.stack([left, right], axis=1).astype(np.float32)


def _write(path, samples: np.ndarray, rate: int, kbps: int, block: int = 4096) -> None:
    with OggOpusWriter(path, rate, 2, kbps) as writer:
        for start in range(0, len(samples), block):
            writer.write(samples[start : start + block])


def test_the_ogg_checksum_is_crc32_with_zero_initial_value_and_no_final_xor():
    # CRC-32/CKSUM of "123456789" is 0x765E7680; it differs from Ogg's only by the final xor.
    assert ogg_crc(b"123456789") == 0x765E7680 ^ 0xFFFFFFFF
    assert ogg_crc(b"") == 0


@pytest.mark.parametrize("frames", [1, 479, 480, 481, 24000 * 3 + 17])
def test_the_decoded_length_is_exactly_what_was_written(tmp_path, frames):
    samples = _chord(frames / 24000, 24000)[:frames]
    _write(tmp_path / "a.ogg", samples, 24000, 96, block=1000)
    decoded, rate = sf.read(tmp_path / "a.ogg", dtype="float32")
    assert rate == 24000
    assert decoded.shape == (frames, 2)


def test_the_decoded_sound_is_the_sound_written(tmp_path):
    samples = _chord(2.0, 24000)
    _write(tmp_path / "a.ogg", samples, 24000, 96)
    decoded, _ = sf.read(tmp_path / "a.ogg", dtype="float32")
    middle = slice(2400, len(samples) - 2400)
    error = decoded[middle] - samples[middle]
    snr = 10 * np.log10((samples[middle] ** 2).sum() / (error**2).sum())
    assert snr > 20


def test_pages_that_need_more_than_255_lacing_values_are_split(tmp_path):
    samples = (np.random.default_rng(0).standard_normal((48000 * 3, 2)) * 0.3).astype(np.float32)
    _write(tmp_path / "noise.ogg", samples, 48000, 510)
    data = (tmp_path / "noise.ogg").read_bytes()
    pages, at = [], 0
    while at < len(data):
        assert data[at : at + 4] == b"OggS"
        count = data[at + 26]
        size = 27 + count + sum(data[at + 27 : at + 27 + count])
        page = bytearray(data[at : at + size])
        stored = int.from_bytes(page[22:26], "little")
        page[22:26] = bytes(4)
        assert ogg_crc(bytes(page)) == stored
        pages.append(count)
        at += size
    assert len(pages) > 3 + 3  # header pages, and more than one page a second of audio
    assert max(pages) <= 255
    decoded, _ = sf.read(tmp_path / "noise.ogg", dtype="float32")
    assert len(decoded) == len(samples)


def test_an_error_inside_the_block_leaves_no_half_flushed_stream_open(tmp_path):
    with pytest.raises(RuntimeError), OggOpusWriter(tmp_path / "a.ogg", 24000, 2, 96) as writer:
        writer.write(_chord(0.5, 24000))
        raise RuntimeError("the renderer failed")
    assert writer._encoder is None
