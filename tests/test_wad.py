"""Freedoom's music: MIDI lumps out of WAD files, hand-made and Debian's own."""

from __future__ import annotations

import struct

import pytest

from composer.midi.smf import parse_smf
from tests import midi_corpus
from training.wad import FREEDOOM_WADS, extract_freedoom, music_lumps


def wad(lumps: list[tuple[str, bytes]]) -> bytes:
    body, directory, offset = b"", b"", 12
    for name, data in lumps:
        directory += struct.pack("<ii8s", offset + len(body), len(data), name.encode())
        body += data
    return b"IWAD" + struct.pack("<ii", len(lumps), 12 + len(body)) + body + directory


def test_music_lumps_are_the_midi_ones(tmp_path):
    song = midi_corpus.resolution(96)()
    path = tmp_path / "mine.wad"
    path.write_bytes(wad([("MAP01", b"\0" * 20), ("D_RUNNIN", song), ("D_OLDMUS", b"MUS\x1a" + b"\0" * 8)]))
    assert music_lumps(path) == {"D_RUNNIN": song}


def test_not_a_wad(tmp_path):
    path = tmp_path / "x.wad"
    path.write_bytes(b"PK\x03\x04 not a wad")
    with pytest.raises(ValueError, match="not a WAD"):
        music_lumps(path)


@pytest.mark.skipif(not FREEDOOM_WADS[1].is_file(), reason="Debian's freedoom package is not installed")
def test_freedoom_tracks_are_read(tmp_path):
    paths = extract_freedoom(tmp_path)
    assert len(paths) >= 60
    for path in paths:
        midi = parse_smf(path.read_bytes())
        assert midi.tracks
