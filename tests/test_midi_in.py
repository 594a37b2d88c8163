"""Tests for composer.midi_in: real files in, Scores or friendly errors out (no mocks)."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import mido
import music21
import pytest
from music21 import chord, corpus, instrument, meter, note, stream, tempo, tie

from composer.errors import InputFileError, InputLimitError
from composer.events import Score
from composer.midi.checks import MidiScan, ReadLimits, detect_format, scan_midi
from composer.midi.read import read_score
from composer.midi.streams import score_from_stream

MIDI_DIR = Path(music21.__file__).parent / "midi" / "testPrimitive"
MIDI_FILES = sorted(MIDI_DIR.glob("test*.mid"))
BACH = [Path(p) for p in corpus.getComposer("bach")[:3]]
ESSEN = Path(corpus.getComposer("essenFolksong")[0])


# ----------------------------------------------------------------------------- helpers


def midi_bytes(mid: mido.MidiFile) -> bytes:
    buffer = io.BytesIO()
    mid.save(file=buffer)
    return buffer.getvalue()


def band_midi() -> bytes:
    """Type 1: a conductor track, piano (with a chord at 1.37 quarters), violin, and drums on channel 10."""
    mid = mido.MidiFile(type=1, ticks_per_beat=1000)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=600_000, time=0),  # 100 BPM
            mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
        ]
    )
    piano = mido.MidiTrack(
        [
            mido.MetaMessage("track_name", name="Piano", time=0),
            mido.Message("program_change", program=0, channel=0, time=0),
            mido.Message("note_on", note=60, velocity=90, channel=0, time=0),
            mido.Message("note_off", note=60, velocity=0, channel=0, time=1000),
            mido.Message("note_on", note=64, velocity=70, channel=0, time=370),
            mido.Message("note_on", note=67, velocity=70, channel=0, time=0),
            mido.Message("note_off", note=64, velocity=0, channel=0, time=500),
            mido.Message("note_off", note=67, velocity=0, channel=0, time=0),
        ]
    )
    violin = mido.MidiTrack(
        [
            mido.Message("program_change", program=40, channel=1, time=0),
            mido.Message("note_on", note=72, velocity=100, channel=1, time=500),
            mido.Message("note_on", note=72, velocity=0, channel=1, time=2000),  # velocity 0 = off
        ]
    )
    drums = mido.MidiTrack()
    for i in range(4):
        drums.append(mido.Message("note_on", note=36, velocity=100, channel=9, time=0 if i == 0 else 900))
        drums.append(mido.Message("note_off", note=36, velocity=0, channel=9, time=100))
    mid.tracks.extend([conductor, piano, violin, drums])
    return midi_bytes(mid)


def drum_only_midi() -> bytes:
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    track = mido.MidiTrack()
    for pitch in (36, 38, 42, 46):
        track.append(mido.Message("note_on", note=pitch, velocity=100, channel=9, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, channel=9, time=240))
    mid.tracks.append(track)
    return midi_bytes(mid)


def raw_midi(track_body: bytes, *, fmt: int = 0, tracks: int = 1, division: int = 96) -> bytes:
    """A hand-made Standard MIDI File with one MTrk chunk holding ``track_body``."""
    header = b"MThd" + struct.pack(">IHHH", 6, fmt, tracks, division)
    return header + b"MTrk" + struct.pack(">I", len(track_body)) + track_body


END_OF_TRACK = b"\x00\xff\x2f\x00"


def mido_counts(path: Path) -> tuple[int, int, float]:
    """Note-ons, drum note-ons and longest track (quarters) as mido sees them: a second opinion."""
    mid = mido.MidiFile(path)
    notes = drums = 0
    longest = 0
    for track in mid.tracks:
        ticks = 0
        for msg in track:
            ticks += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                notes += 1
                drums += msg.channel == 9
        longest = max(longest, ticks)
    return notes, drums, longest / mid.ticks_per_beat


def assert_well_formed(score: Score) -> None:
    assert score.notes, "a score must have notes"
    assert len(score.parts) >= 1
    assert all(0 <= n.pitch <= 127 for n in score.notes)
    assert all(0 <= n.start <= n.end for n in score.notes)
    assert all(1 <= n.velocity <= 127 for n in score.notes)
    assert all(0 <= n.part < len(score.parts) for n in score.notes)
    assert {n.part for n in score.notes} == set(range(len(score.parts))), "every kept part has notes"
    keys = [(n.start, n.pitch) for n in score.notes]
    assert keys == sorted(keys)
    assert 10 <= score.tempo <= 1000
    assert score.time_signature[0] >= 1 and score.time_signature[1] >= 1


# ----------------------------------------------------------------------------- good input


@pytest.mark.parametrize("path", MIDI_FILES, ids=[p.name for p in MIDI_FILES])
def test_scan_agrees_with_mido_on_bundled_midi(path: Path):
    scan = scan_midi(path.read_bytes(), ReadLimits())
    notes, drums, quarters = mido_counts(path)
    assert isinstance(scan, MidiScan)
    assert (scan.notes, scan.drum_notes) == (notes, drums)
    assert scan.quarters == pytest.approx(quarters)
    assert scan.format in (0, 1) and scan.tracks >= 1 and scan.division > 0


# test04 (6,000 notes, 18 tracks) alone takes ~10 s in music21's MIDI reader: it is scanned
# above but left out of the full read to keep this file fast.
READ_FILES = [p for p in MIDI_FILES if p.name != "test04.mid"]


@pytest.mark.parametrize("path", READ_FILES, ids=[p.name for p in READ_FILES])
def test_read_bundled_midi(path: Path):
    score = read_score(path)
    assert_well_formed(score)
    assert score.source == path.name
    assert score.dropped_drum_notes == 0
    assert len(score.notes) <= scan_midi(path.read_bytes(), ReadLimits()).notes


@pytest.mark.parametrize("path", BACH, ids=[p.name for p in BACH])
def test_read_corpus_mxl(path: Path):
    assert detect_format(path.read_bytes()) == "mxl"
    score = read_score(path)
    assert_well_formed(score)
    assert len(score.parts) >= 4  # chorales: soprano, alto, tenor, bass
    assert score.time_signature == (4, 4)


def test_read_uncompressed_musicxml_from_bytes():
    with zipfile.ZipFile(BACH[0]) as archive:
        member = next(n for n in archive.namelist() if "META-INF" not in n and n.endswith(".xml"))
        xml = archive.read(member)
    assert detect_format(xml) == "musicxml"
    score = read_score(xml, name="chorale.xml")
    assert_well_formed(score)
    assert score.source == "chorale.xml"
    assert score.tempo == read_score(BACH[0]).tempo


def test_read_essen_abc_takes_the_first_tune():
    data = ESSEN.read_bytes()
    assert detect_format(data) == "abc"
    score = read_score(ESSEN)
    assert_well_formed(score)
    assert len(score.parts) == 1
    assert score.metadata.get("title")
    assert score.tempo == 200.0  # no tempo mark, written in half notes: 100 half notes a minute


def test_band_midi_drops_drums_and_keeps_exact_times():
    data = band_midi()
    scan = scan_midi(data, ReadLimits())
    assert (scan.format, scan.tracks, scan.division) == (1, 4, 1000)
    assert (scan.notes, scan.drum_notes) == (8, 4)
    assert scan.quarters == pytest.approx(3.1)  # the drum track is the longest

    score = read_score(data, name="band.mid")
    assert score.dropped_drum_notes == 4
    assert [(p.name, p.program) for p in score.parts] == [("Piano", 0), ("Violin", 40)]
    assert score.tempo == pytest.approx(100.0)
    assert score.time_signature == (3, 4)
    assert score.source == "band.mid"
    got = [(n.pitch, n.start, n.end, n.velocity, n.part) for n in score.notes]
    expected = [
        (60, 0.0, 1.0, 90, 0),
        (72, 0.5, 2.5, 100, 1),
        (64, 1.37, 1.87, 70, 0),  # off the grid: quantizePost=False keeps it exact
        (67, 1.37, 1.87, 70, 0),
    ]
    assert len(got) == len(expected)
    for (pitch, start, end, vel, part), want in zip(got, expected, strict=True):
        assert (pitch, vel, part) == (want[0], want[3], want[4])
        assert start == pytest.approx(want[1]) and end == pytest.approx(want[2])


def test_path_and_bytes_read_the_same(tmp_path: Path):
    path = tmp_path / "band.mid"
    path.write_bytes(band_midi())
    assert read_score(path) == read_score(path.read_bytes(), name="band.mid")
    assert read_score(str(path)).notes == read_score(path).notes


def test_format_is_decided_by_content_not_name(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_bytes(band_midi())
    assert detect_format(path.read_bytes()) == "midi"
    assert read_score(path).dropped_drum_notes == 4


def test_user_file_name_is_only_shown_never_used(tmp_path: Path):
    with pytest.raises(InputFileError) as caught:
        read_score(b"not music at all", name="../../etc/passwd\x1b[31m")
    message = str(caught.value)
    assert '"passwd[31m"' in message and "/" not in message and "\x1b" not in message


# ----------------------------------------------------------------------------- score_from_stream


def test_score_from_stream_merges_ties_skips_grace_and_drums():
    melody = stream.Part()
    melody.partName = "Flute"
    melody.insert(0, instrument.Flute())
    melody.insert(0, tempo.MetronomeMark(number=90))
    melody.insert(0, meter.TimeSignature("6/8"))
    first, second = note.Note("C5", quarterLength=1.5), note.Note("C5", quarterLength=1.5)
    first.tie, second.tie = tie.Tie("start"), tie.Tie("stop")
    first.volume.velocity = 100
    grace = note.Note("D5").getGrace()
    melody.append([first, second, grace, chord.Chord(["E4", "G4"], quarterLength=1.0), note.Unpitched()])

    kit = stream.Part()
    kit.insert(0, instrument.BassDrum())
    kit.append([note.Unpitched(), note.Unpitched(), note.Unpitched()])

    marimba = stream.Part()
    marimba.insert(0, instrument.Marimba())  # pitched percussion is kept
    marimba.append(note.Note("A3", quarterLength=2.0))

    score = score_from_stream(stream.Score([melody, kit, marimba]), "made.xml")
    assert score.dropped_drum_notes == 4  # three in the kit, one unpitched note in the flute part
    assert [(p.name, p.program) for p in score.parts] == [("Flute", 73), ("Marimba", 12)]
    assert [(n.pitch, n.start, n.end, n.velocity, n.part) for n in score.notes] == [
        (57, 0.0, 2.0, 80, 1),
        (72, 0.0, 3.0, 100, 0),  # the tied pair became one note, the grace note vanished
        (64, 3.0, 4.0, 80, 0),
        (67, 3.0, 4.0, 80, 0),
    ]
    assert score.tempo == 90.0
    assert score.time_signature == (6, 8)
    assert score.source == "made.xml"


def test_score_from_stream_accepts_a_bare_stream_and_defaults():
    bare = stream.Stream([note.Note("G4"), note.Rest(), note.Note("A4")])
    score = score_from_stream(bare)
    assert [(n.pitch, n.start) for n in score.notes] == [(67, 0.0), (69, 2.0)]
    assert (score.tempo, score.time_signature, score.parts[0].program) == (100.0, (4, 4), 0)
    assert score_from_stream(bare, default_tempo=120.0).tempo == 120.0


def test_a_piece_without_tempo_mark_written_in_half_notes_counts_halves_as_beats():
    def tune(length: float) -> stream.Stream:
        return stream.Stream([note.Note(60 + i % 5, quarterLength=length) for i in range(12)])

    assert score_from_stream(tune(2.0)).tempo == 200.0  # half notes at 100 beats a minute
    assert score_from_stream(tune(1.0)).tempo == 100.0
    assert score_from_stream(tune(0.5)).tempo == 100.0  # quarters stay the beat
    marked = tune(2.0)
    marked.insert(0, tempo.MetronomeMark(number=90))
    assert score_from_stream(marked).tempo == 90.0  # a tempo mark always wins


def test_score_from_stream_rejects_drums_only():
    kit = stream.Part([instrument.UnpitchedPercussion(), note.Unpitched(), note.Unpitched()])
    with pytest.raises(InputFileError, match="only drums"):
        score_from_stream(stream.Score([kit]))


# ----------------------------------------------------------------------------- bad input


def test_text_file_named_mid(tmp_path: Path):
    path = tmp_path / "song.mid"
    path.write_text("Hello! This is definitely a MIDI file, trust me.\n")
    with pytest.raises(InputFileError, match=r'"song.mid" is not a MIDI, MusicXML or ABC file') as caught:
        read_score(path)
    assert not isinstance(caught.value, InputLimitError)


def test_empty_input(tmp_path: Path):
    with pytest.raises(InputFileError, match="empty"):
        read_score(b"")
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(InputFileError, match=r'"empty\.mid" is empty'):
        read_score(tmp_path / "empty.mid")


def test_missing_file(tmp_path: Path):
    with pytest.raises(InputFileError, match="could not be opened"):
        read_score(tmp_path / "nowhere.mid")


def test_truncated_midi():
    data = (MIDI_DIR / "test03.mid").read_bytes()
    with pytest.raises(InputFileError, match="truncated or damaged") as caught:
        read_score(data[: len(data) // 2], name="half.mid")
    assert not isinstance(caught.value, InputLimitError)
    assert str(caught.value).startswith('"half.mid" is truncated or damaged')


def test_header_only_midi():
    header = b"MThd" + struct.pack(">IHHH", 6, 1, 1, 480)
    with pytest.raises(InputFileError, match="truncated or damaged: the header announces 1 tracks"):
        read_score(header)
    with pytest.raises(InputFileError, match="truncated or damaged"):
        read_score(header[:10])


def test_drum_only_midi():
    data = drum_only_midi()
    with pytest.raises(InputFileError, match="only drums: Cadenza needs pitched notes"):
        read_score(data)


def test_midi_without_notes():
    data = raw_midi(b"\x00\xff\x03\x04Solo" + END_OF_TRACK)
    with pytest.raises(InputFileError, match="has no notes"):
        read_score(data)


def test_too_many_notes():
    data = (MIDI_DIR / "test01.mid").read_bytes()  # 18 notes
    with pytest.raises(InputLimitError, match="more than 5 notes"):
        read_score(data, ReadLimits(max_notes=5))


def test_enormous_delta_time_breaks_the_length_limit():
    # note on, then a note off 0x0FFFFFFF ticks (the largest delta there is) later: ~2.8 million beats
    body = b"\x00\x90\x3c\x64" + b"\xff\xff\xff\x7f\x80\x3c\x00" + END_OF_TRACK
    data = raw_midi(body)
    assert len(data) < 100
    with pytest.raises(InputLimitError, match="longer than 20,000 beats"):
        scan_midi(data, ReadLimits())


def test_oversize_file(tmp_path: Path):
    data = (MIDI_DIR / "test03.mid").read_bytes()
    with pytest.raises(InputLimitError, match="the limit is 1,000 bytes"):
        read_score(data, ReadLimits(max_bytes=1000))
    path = tmp_path / "big.mid"
    path.write_bytes(data)
    with pytest.raises(InputLimitError, match=r'"big\.mid" is 12,349 bytes'):
        read_score(path, ReadLimits(max_bytes=1000))


def test_parse_timeout():
    data = BACH[0].read_bytes()  # MIDI is read in-process; MusicXML goes to music21 in a child
    with pytest.raises(InputLimitError, match=r"took longer than 0.001 s to read"):
        read_score(data, ReadLimits(parse_seconds=0.001))


def test_parse_memory_limit():
    data = BACH[0].read_bytes()  # MusicXML goes through music21's full parser, which needs memory
    with pytest.raises(InputLimitError, match="MB of memory"):
        read_score(data, ReadLimits(parse_memory_mb=1))


def test_too_many_tracks():
    data = (MIDI_DIR / "test02.mid").read_bytes()  # 5 tracks
    with pytest.raises(InputLimitError, match="5 tracks; the limit is 2"):
        read_score(data, ReadLimits(max_tracks=2))


def test_smpte_division_counts_two_beats_a_second():
    # 25 frames a second, 40 ticks a frame: 1,000 ticks a second; a note of 500 ticks after 1,000
    body = b"\x87\x68\x90\x3c\x64\x83\x74\x80\x3c\x00" + END_OF_TRACK
    data = raw_midi(body, division=0xE728)
    assert scan_midi(data, ReadLimits()).quarters == 3.0
    score = read_score(data)
    assert [(n.pitch, n.start, n.end) for n in score.notes] == [(60, 2.0, 3.0)]
    assert score.midi is not None and score.midi.division == 0xE728


def test_bad_smpte_rate_is_damaged():
    data = raw_midi(b"\x00\x90\x3c\x64\x10\x80\x3c\x00" + END_OF_TRACK, division=0xEC28)  # 20 fps
    with pytest.raises(InputFileError, match="SMPTE time division"):
        scan_midi(data, ReadLimits())


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"\x00\x3c\x64" + END_OF_TRACK, "data bytes before any status byte"),
        (b"\xff\xff\xff\xff\x7f\x90\x3c\x64" + END_OF_TRACK, "longer than 4 bytes"),
        (b"\x00\x90\x3c\xe4" + END_OF_TRACK, "bad data byte"),
        (b"\x00\xf2\x00\x00" + END_OF_TRACK, "unknown event"),
        (b"\x00\x90\x3c", "ends in the middle"),
        (b"\x00\xff\x03\x7fabc", "ends in the middle of a meta event"),
    ],
    ids=["no-status", "long-vlq", "bad-data", "system-common", "cut-message", "cut-meta"],
)
def test_damaged_tracks(body: bytes, why: str):
    with pytest.raises(InputFileError, match=f"truncated or damaged: track 1 .*{why}"):
        scan_midi(raw_midi(body), ReadLimits())


def test_running_status_unknown_chunks_and_trailing_junk_are_accepted():
    # two notes via running status, inside a file with an unknown chunk and trailing padding
    body = b"\x00\x90\x3c\x64\x60\x3c\x00\x00\x3e\x64\x60\x3e\x00" + END_OF_TRACK + b"\x00\x90\x40\x64"
    data = raw_midi(body)
    header, track = data[:14], data[14:]
    data = header + b"XFIH" + struct.pack(">I", 3) + b"abc" + track + b"\x00\x00"
    scan = scan_midi(data, ReadLimits())
    assert (scan.notes, scan.drum_notes, scan.quarters) == (2, 0, 2.0)  # nothing after end-of-track counts
    score = read_score(data)
    assert [(n.pitch, n.start, n.end) for n in score.notes] == [(60, 0.0, 1.0), (62, 1.0, 2.0)]
    assert score.tempo == 120.0  # no tempo event: the MIDI default


def test_format_2_midi_is_refused_clearly():
    data = raw_midi(b"\x00\x90\x3c\x64\x60\x3c\x00" + END_OF_TRACK, fmt=2)
    for read in (scan_midi, read_score):
        with pytest.raises(InputFileError, match="format-2"):
            read(data)


def test_zip_bomb_mxl():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("score.xml", b"<score-partwise>" + b" " * 3_000_000 + b"</score-partwise>")
    data = buffer.getvalue()
    assert detect_format(data) == "mxl"
    with pytest.raises(InputLimitError, match="unpacks to"):
        read_score(data, ReadLimits(max_bytes=50_000))


def test_detect_format_rejects_other_content():
    for data in (
        b"PK\x03\x04 not really a zip",
        b"\x00\x01\x02binary",
        b"<html><body>hi</body></html>",
        b"K: C\n",
    ):
        with pytest.raises(InputFileError, match="is not a MIDI, MusicXML or ABC file"):
            detect_format(data)


def test_broken_musicxml_is_a_friendly_file_error():
    with pytest.raises(InputFileError, match="could not be read as MusicXML") as caught:
        read_score(b"<?xml version='1.0'?><score-partwise><part id='P1'><measure", name="bad.musicxml")
    assert not isinstance(caught.value, InputLimitError)
    assert "cadenza-in-" not in str(caught.value)  # no temporary paths leak into messages
