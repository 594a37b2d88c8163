"""A continuation is the user's file plus a new part: checked with mido and pretty_midi, not with
Cadenza's own reader, over real-world-shaped files and music21's bundled test MIDI files."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import mido
import music21
import pretty_midi
import pytest
from music21 import converter

from composer.cli import main as cli_main
from composer.midi.read import read_score
from composer.service import Composer, ComposeRequest
from composer.settings import ComposerSettings
from tests import midi_corpus
from training.wad import FREEDOOM_WADS, music_lumps

M21_MIDI = sorted((Path(music21.__file__).parent / "midi" / "testPrimitive").glob("test*.mid"))
FILES = dict(midi_corpus.CORPUS)
FILES.update({f"music21-{p.stem}": (lambda p=p: p.read_bytes()) for p in M21_MIDI})
FILES.update(
    {  # Freedoom's game music (BSD), made in sequencers: installed by scripts/install.sh
        f"freedoom-{wad.stem[-1]}-{name}": (lambda data=data: data)
        for wad in FREEDOOM_WADS
        if wad.is_file()
        for name, data in music_lumps(wad).items()
    }
)


@pytest.fixture(scope="module")
def composer(tiny_model_path):
    c = Composer(ComposerSettings(model=tiny_model_path))
    yield c
    c.close()


def continue_bytes(composer: Composer, data: bytes, folder: Path, **options) -> tuple[object, bytes]:
    options = {"length": 20, "seed": 3, "audio": False, "picture": False, **options}
    piece = composer.compose_sync(ComposeRequest(primer=data, primer_name="user.mid", **options), folder)
    return piece, piece.midi.read_bytes()


def absolute(track: mido.MidiTrack) -> list[tuple[int, object]]:
    """(absolute tick, message without its delta) for every message of a track, as mido reads it."""
    tick, out = 0, []
    for msg in track:
        tick += msg.time
        out.append((tick, msg.copy(time=0)))
    return out


def note_ons(track: mido.MidiTrack) -> list[int]:
    return [t for t, m in absolute(track) if m.type == "note_on" and m.velocity > 0]


def pm_notes(pm: pretty_midi.PrettyMIDI) -> set[tuple[int, float, float, int]]:
    notes = (n for inst in pm.instruments for n in inst.notes)
    return {(n.pitch, round(n.start, 4), round(n.end, 4), n.velocity) for n in notes}


# ----------------------------------------------------------------------------- every file


@pytest.mark.parametrize("name", sorted(FILES))
def test_continuation_keeps_every_message_of_the_users_file(composer, tmp_path, name):
    data = FILES[name]()
    piece, out = continue_bytes(composer, data, tmp_path)
    before, after = mido.MidiFile(file=io.BytesIO(data)), mido.MidiFile(file=io.BytesIO(out))

    # Same resolution, every original track first and whole, one new track after them.
    assert after.ticks_per_beat == before.ticks_per_beat
    assert after.type == 1 and len(after.tracks) == len(before.tracks) + 1
    for old, new in zip(before.tracks, after.tracks, strict=False):
        kept = absolute(new)
        original = absolute(old)
        if not any(m.type == "end_of_track" for _, m in original):
            kept = [(t, m) for t, m in kept if m.type != "end_of_track"]
        assert kept == original

    added = after.tracks[-1]
    assert added.name == "Cadenza continuation"
    last_original = max(t for track in before.tracks for t in note_ons(track))
    assert note_ons(added) and min(note_ons(added)) > last_original

    if name != "smpte":  # pretty_midi reads SMPTE-timed files as if they were timed in beats
        pm_before, pm_after = (pretty_midi.PrettyMIDI(io.BytesIO(b)) for b in (data, out))
        assert pm_notes(pm_before) <= pm_notes(pm_after)
        # The length Cadenza reports is the real one, through the file's tempo map.
        assert piece.seconds == pytest.approx(last_release(after), abs=0.05)


def last_release(mid: mido.MidiFile) -> float:
    """When the last note ends, in seconds, as mido plays the file (tempo events of every track)."""
    now = end = 0.0
    for msg in mid:
        now += msg.time
        if msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
            end = now
    return end


# ----------------------------------------------------------------------------- the seam


def _tempo_of(track: mido.MidiTrack) -> list[int]:
    return [m.tempo for _, m in absolute(track) if m.type == "set_tempo"]


def test_the_tempo_in_force_is_the_last_one_written_at_its_tick(composer, tmp_path):
    piece, _ = continue_bytes(composer, midi_corpus.two_tempos_at_one_tick(), tmp_path)
    assert piece.tempo == pytest.approx(130, abs=0.01)
    assert read_score(midi_corpus.two_tempos_at_one_tick()).tempo == pytest.approx(130, abs=0.01)


def test_new_part_starts_at_the_tempo_meter_and_key_in_force(composer, tmp_path):
    data = midi_corpus.accelerando()
    piece, _ = continue_bytes(composer, data, tmp_path / "whole")
    assert piece.tempo == pytest.approx(134, abs=0.01)  # the accelerando where the music stops
    _, only = continue_bytes(composer, data, tmp_path / "alone", new_part_only=True)
    mid = mido.MidiFile(file=io.BytesIO(only))
    metas = {m.type: m for track in mid.tracks for m in track if m.is_meta}
    assert mido.tempo2bpm(metas["set_tempo"].tempo) == pytest.approx(134, abs=0.01)
    assert (metas["time_signature"].numerator, metas["time_signature"].denominator) == (3, 4)
    assert metas["key_signature"].key == "Bm"
    assert mid.ticks_per_beat == 480
    assert min(t for track in mid.tracks for t in note_ons(track)) == 0


def test_new_part_only_keeps_the_channels_sound(composer, tmp_path):
    _, only = continue_bytes(composer, midi_corpus.pedalled_piano(), tmp_path, new_part_only=True)
    mid = mido.MidiFile(file=io.BytesIO(only))
    controls = {m.control: m.value for track in mid.tracks for m in track if m.type == "control_change"}
    assert controls == {7: 100, 10: 40, 91: 70, 93: 30, 11: 110}
    programs = [m.program for track in mid.tracks for m in track if m.type == "program_change"]
    assert programs == [1]


def test_a_pedal_left_down_is_lifted_where_the_new_part_starts(composer, tmp_path):
    mid = mido.MidiFile(file=io.BytesIO(midi_corpus.resolution(480)()))
    mid.tracks[1].insert(2, mido.Message("control_change", control=64, value=127))
    data = midi_corpus.save(mid)
    _, out = continue_bytes(composer, data, tmp_path)
    added = absolute(mido.MidiFile(file=io.BytesIO(out)).tracks[-1])
    pedal = [(t, m.value) for t, m in added if m.type == "control_change" and m.control == 64]
    assert pedal == [(min(t for t, m in added if m.type == "note_on"), 0)]


def test_new_part_plays_on_the_channel_it_continues_with_its_program(composer, tmp_path):
    _, out = continue_bytes(composer, midi_corpus.pedalled_piano(), tmp_path)
    added = mido.MidiFile(file=io.BytesIO(out)).tracks[-1]
    assert {m.channel for m in added if m.type == "note_on"} == {0}
    assert not [m for m in added if m.type == "program_change"]  # program 1 already in force
    _, out = continue_bytes(composer, midi_corpus.pedalled_piano(), tmp_path / "v", instrument="violin")
    added = mido.MidiFile(file=io.BytesIO(out)).tracks[-1]
    assert [m.program for m in added if m.type == "program_change"] == [40]


def test_loudness_carries_over_the_seam(composer, tmp_path):
    for velocity in (30, 105):
        mid = mido.MidiFile(type=1, ticks_per_beat=480)
        mid.tracks.append(midi_corpus.timed(midi_corpus.melody(count=32, velocity=velocity)))
        data = midi_corpus.save(mid)
        _, out = continue_bytes(composer, data, tmp_path / str(velocity))
        pm = pretty_midi.PrettyMIDI(io.BytesIO(out))
        old, new = (sorted(inst.notes, key=lambda n: n.start) for inst in pm.instruments)
        end = sum(n.velocity for n in old[-16:]) / 16
        start = sum(n.velocity for n in new[:16]) / len(new[:16])
        assert abs(end - start) <= 4, (velocity, end, start)


def test_after_a_loud_ending_the_new_part_settles_at_the_pieces_usual_loudness(composer, tmp_path):
    """A soft piece that ends loud: the new part starts as loud as the ending, then goes on about as
    loud as the piece is over its last half-minute (here all of it)."""
    soft = midi_corpus.melody(count=48, velocity=40)
    loud = midi_corpus.melody(count=16, velocity=105, start=48 * 240)
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    mid.tracks.append(midi_corpus.timed([*soft, *loud]))
    _, out = continue_bytes(composer, midi_corpus.save(mid), tmp_path, length=80)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(out))
    old, new = (sorted(inst.notes, key=lambda n: n.start) for inst in pm.instruments)
    assert max(n.end for n in old) < 30 and len(new) >= 48
    usual = sum(n.velocity for n in old) / len(old)
    ending = sum(n.velocity for n in old[-16:]) / 16
    opening = sum(n.velocity for n in new[:16]) / 16
    settled = [n.velocity for n in new[32:]]
    assert abs(opening - ending) <= 4, (opening, ending)
    assert abs(sum(settled) / len(settled) - usual) <= 8 < ending - usual, (settled, usual, ending)


def test_drums_stay_in_the_file_and_the_user_is_told(composer, tmp_path):
    piece, out = continue_bytes(composer, midi_corpus.general_midi_type0(), tmp_path)
    mid = mido.MidiFile(file=io.BytesIO(out))
    assert sum(1 for m in mid.tracks[0] if m.type == "note_on" and m.channel == 9 and m.velocity) == 32
    assert any("drum" in w for w in piece.warnings)


# ----------------------------------------------------------------------------- new pieces


def test_a_new_piece_is_a_standard_file_every_reader_takes(composer, tmp_path):
    piece = composer.compose_sync(ComposeRequest(length=2000, seed=5, key="Bb", picture=False), tmp_path)
    mid = mido.MidiFile(piece.midi)
    assert mid.type == 1 and mid.ticks_per_beat == 480
    messages = [m for track in mid.tracks for m in track]
    assert [m.program for m in messages if m.type == "program_change"] == [0]
    assert [m.key for m in messages if m.type == "key_signature"] == ["Bb"]
    tempos = [mido.tempo2bpm(m.tempo) for m in messages if m.type == "set_tempo"]
    assert tempos[0] == pytest.approx(piece.tempo, rel=0.03) and tempos[-1] < 0.7 * piece.tempo  # ritardando
    assert len([m for m in messages if m.type == "time_signature"]) == 1
    assert mid.tracks[1].name == "Cadenza"
    pm = pretty_midi.PrettyMIDI(str(piece.midi))
    assert sum(len(i.notes) for i in pm.instruments) >= 2000
    assert piece.seconds == pytest.approx(pm.get_end_time(), abs=0.05) == last_release(mid)
    parsed = converter.parse(piece.midi)
    assert len(parsed.flatten().notes) > 1000
    assert piece.audio is not None and piece.audio.stat().st_size > 10_000  # FluidSynth played it


def test_render_leaves_the_users_file_as_it_was(tmp_path):
    path = tmp_path / "mine.mid"
    path.write_bytes(midi_corpus.pedalled_piano())
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert cli_main(["render", str(path), "--out", str(tmp_path / "audio")]) == 0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_render_plays_a_drum_only_file(tmp_path):
    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    beats = [(i * 240, mido.Message("note_on", channel=9, note=36 + i % 4, velocity=100)) for i in range(16)]
    beats += [(i * 240 + 120, mido.Message("note_off", channel=9, note=36 + i % 4)) for i in range(16)]
    mid.tracks.append(midi_corpus.timed(beats))
    path = tmp_path / "groove.mid"
    path.write_bytes(midi_corpus.save(mid))
    assert cli_main(["render", str(path), "--out", str(tmp_path / "audio")]) == 0
    assert (tmp_path / "audio" / "groove.ogg").stat().st_size > 1000


def test_a_musicxml_primer_keeps_its_tempo_changes_and_dynamics(composer, tmp_path):
    from music21 import dynamics, note, stream, tempo

    part = stream.Part()
    part.insert(0, tempo.MetronomeMark(number=80))
    part.insert(0, dynamics.Dynamic("pp"))
    for i in range(16):
        part.append(note.Note(60 + i % 8, quarterLength=1))
    part.insert(8, tempo.MetronomeMark(number=140))
    part.insert(8, dynamics.Dynamic("ff"))
    path = part.write("musicxml", fp=tmp_path / "tune.musicxml")
    piece = composer.compose_sync(
        ComposeRequest(length=12, seed=2, primer=path, audio=False, picture=False), tmp_path / "out"
    )
    mid = mido.MidiFile(piece.midi)
    tempos = sorted(
        (tick, round(mido.tempo2bpm(m.tempo)))
        for track in mid.tracks
        for tick, m in absolute(track)
        if m.type == "set_tempo"
    )
    assert [bpm for _, bpm in tempos] == [80, 140]
    assert tempos[1][0] == 8 * mid.ticks_per_beat
    assert piece.tempo == pytest.approx(140)
    user = [m.velocity for m in mid.tracks[1] if m.type == "note_on" and m.velocity]
    assert max(user[:8]) < min(user[8:16])  # pp, then ff
