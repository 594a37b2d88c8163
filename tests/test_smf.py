"""The MIDI codec and timeline against mido, a second opinion on every message and every second."""

from __future__ import annotations

import io
from pathlib import Path

import mido
import music21
import pytest

from composer.midi.smf import encode_smf, parse_smf
from composer.midi.timeline import Timeline
from tests import midi_corpus

M21_MIDI = sorted((Path(music21.__file__).parent / "midi" / "testPrimitive").glob("test*.mid"))
FILES = dict(midi_corpus.CORPUS)
FILES.update({f"music21-{p.stem}": (lambda p=p: p.read_bytes()) for p in M21_MIDI})


def messages(data: bytes) -> list[list[tuple[int, object]]]:
    """Every track's (absolute tick, message) pairs as mido reads them, end-of-track left out."""
    out = []
    for track in mido.MidiFile(file=io.BytesIO(data)).tracks:
        tick, kept = 0, []
        for msg in track:
            tick += msg.time
            if msg.type != "end_of_track":
                kept.append((tick, msg.copy(time=0)))
        out.append(kept)
    return out


@pytest.mark.parametrize("name", sorted(FILES))
def test_written_back_mido_reads_the_same_messages(name):
    data = FILES[name]()
    midi = parse_smf(data)
    again = encode_smf(midi)
    assert messages(again) == messages(data)
    assert parse_smf(again) == midi


@pytest.mark.parametrize("name", ["tempo_ramp", "accelerando", "two_tempos_at_one_tick", "pedalled_piano"])
def test_seconds_follow_the_tempo_map_as_mido_plays_it(name):
    data = FILES[name]()
    midi = parse_smf(data)
    timeline = Timeline.of(midi)
    ticks = sorted({tick for track in midi.tracks for tick, raw in track.messages if raw[0] & 0xF0 == 0x90})
    played, now = [], 0.0
    for msg in mido.MidiFile(file=io.BytesIO(data)):  # merged tracks, times in seconds
        now += msg.time
        if msg.type == "note_on" and (not played or now - played[-1] > 1e-9):
            played.append(now)
    assert timeline.seconds(ticks) == pytest.approx(played, abs=1e-6)


def test_what_is_in_force_at_a_tick():
    timeline = Timeline.of(parse_smf(midi_corpus.accelerando()))
    assert timeline.tempo_at(0) == pytest.approx(70)
    assert timeline.tempo_at(480 * 10 + 1) == pytest.approx(90)
    assert timeline.time_signature_at(16 * 480 - 1) == (4, 4)
    assert timeline.time_signature_at(16 * 480) == (3, 4)
    assert timeline.key_signature_at(0) == (2, False)
    assert timeline.key_signature_at(16 * 480) == (2, True)


def test_tracks_beyond_the_headers_count_are_left_out_as_players_do():
    data = midi_corpus.resolution(480)()
    body = b"\x00\x90\x3c\x40\x60\x80\x3c\x00\x00\xff\x2f\x00"
    extra = b"MTrk" + len(body).to_bytes(4, "big") + body
    midi = parse_smf(data + extra)
    assert len(midi.tracks) == len(mido.MidiFile(file=io.BytesIO(data + extra)).tracks) == 2
