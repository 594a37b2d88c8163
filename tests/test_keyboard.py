"""music21's solo keyboard works written out as MIDI: tempo, both hands, dynamics, a cache, a set."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import mido
import pretty_midi
import pytest

from training import keyboard
from training.corpora import corpus_set
from training.keyboard import KEYBOARD_PIECES, corpus_root, extract_keyboard, midi_of

MOZART = next(p for p in KEYBOARD_PIECES if p.path.startswith("mozart/k545"))
SCHOENBERG = next(p for p in KEYBOARD_PIECES if p.path == "schoenberg/opus19/movement6.mxl")
CHOPIN = next(p for p in KEYBOARD_PIECES if p.path.startswith("chopin/"))


def source_text(path: Path) -> str:
    """A score file's text (every member of a compressed MusicXML file)."""
    if path.suffix == ".mxl":
        with zipfile.ZipFile(path) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    return path.read_text("utf-8", "replace")


def note_tracks(path_or_bytes: Path | bytes) -> list[list[mido.Message]]:
    midi = (
        mido.MidiFile(path_or_bytes)
        if isinstance(path_or_bytes, Path)
        else mido.MidiFile(file=io.BytesIO(path_or_bytes))
    )
    tracks = [[m for m in t if m.type == "note_on" and m.velocity] for t in midi.tracks]
    return [t for t in tracks if t]


def test_every_piece_is_there_and_none_is_marked_non_commercial():
    for piece in KEYBOARD_PIECES:
        text = source_text(corpus_root() / piece.path)
        assert not re.search(r"non-?commercial|\bCC[- ]BY[- ](SA[- ])?NC\b", text, re.IGNORECASE), piece.path
        # the licence recorded for each piece is the one its file states, if it states one
        assert ("CC BY-SA 4.0" in text) == ("CC BY-SA 4.0" in piece.licence), piece.path
    assert len({p.name for p in KEYBOARD_PIECES}) == len(KEYBOARD_PIECES)


def test_pieces_are_written_with_tempo_both_hands_and_dynamics(tmp_path):
    paths = extract_keyboard(tmp_path, (MOZART, SCHOENBERG))
    assert [p.name for p in paths] == [MOZART.name, SCHOENBERG.name]

    mozart = mido.MidiFile(paths[0])
    tempos = [mido.tempo2bpm(m.tempo) for t in mozart.tracks for m in t if m.type == "set_tempo"]
    assert tempos == [pytest.approx(132, abs=0.01)]  # the score's own playback tempo
    hands = note_tracks(paths[0])
    assert len(hands) == 2  # right hand and left hand, a track each
    assert min(m.note for m in hands[0]) > max(m.note for m in hands[1]) - 12
    assert {m.velocity for t in hands for m in t} == {90}  # no dynamics in the score: one loudness

    schoenberg = note_tracks(paths[1])
    assert len(schoenberg) == 2
    assert len({m.velocity for t in schoenberg for m in t}) >= 5  # pp, ppp, pppp...: softer and softer
    assert max(m.velocity for t in schoenberg for m in t) < 100

    # read back by another library: every note of the score is there, at the score's tempo
    from music21 import converter

    from composer.midi.streams import score_from_stream

    midi = pretty_midi.PrettyMIDI(str(paths[0]))
    score = score_from_stream(converter.parse(corpus_root() / MOZART.path))
    assert sorted(n.pitch for i in midi.instruments for n in i.notes) == sorted(n.pitch for n in score.notes)
    assert midi.get_end_time() == pytest.approx(float(max(n.end for n in score.notes)) * 60 / 132, abs=0.05)


def test_repeats_music21_cannot_follow_are_played_once():
    from music21 import converter

    from composer.midi.streams import score_from_stream

    source = corpus_root() / CHOPIN.path
    with pytest.raises(Exception, match="repeat"):
        converter.parse(source).expandRepeats()
    midi = pretty_midi.PrettyMIDI(io.BytesIO(midi_of(source)))
    score = score_from_stream(converter.parse(source))
    assert sum(len(i.notes) for i in midi.instruments) == len(score.notes)
    assert len(midi.instruments) == 2
    assert midi.get_tempo_changes()[1][0] == pytest.approx(189, abs=0.01)


def test_written_once_and_again_when_the_source_changes(tmp_path, monkeypatch):
    (path,) = extract_keyboard(tmp_path, (MOZART,))
    written = path.stat().st_mtime_ns

    def fail(source):
        raise AssertionError(f"converted {source} again")

    with monkeypatch.context() as m:
        m.setattr(keyboard, "midi_of", fail)
        assert extract_keyboard(tmp_path, (MOZART,)) == [path]
    assert path.stat().st_mtime_ns == written

    manifest = tmp_path / keyboard.MANIFEST
    manifest.write_text(manifest.read_text().replace('": "', '": "stale'))
    path.write_bytes(b"not what the score gives")
    assert extract_keyboard(tmp_path, (MOZART,)) == [path]
    assert len(note_tracks(path)) == 2


def test_the_named_set(tmp_path, monkeypatch):
    monkeypatch.setenv("CADENZA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(keyboard, "KEYBOARD_PIECES", (MOZART,))
    chosen = corpus_set("keyboard")
    assert chosen.commercial and chosen.style == "keyboard" and "CC BY-SA" in chosen.licence
    assert chosen.files() == [tmp_path / "keyboard" / MOZART.name]

    from training.sources import collect

    collected = collect(["keyboard"], workers=1)
    assert [(p.name, p.style) for p in collected.pieces] == [(Path(MOZART.name).stem, "keyboard")]
    assert collected.pieces[0].tempo == pytest.approx(132, abs=0.01)


def test_continuations_of_the_named_set(tiny_model_path, tmp_path, monkeypatch):
    from training.continuations import evaluate_continuations

    monkeypatch.setenv("CADENZA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(keyboard, "KEYBOARD_PIECES", (MOZART, SCHOENBERG))
    monkeypatch.chdir(tmp_path)  # no folder called "keyboard" here: the set is meant
    result = evaluate_continuations(tiny_model_path, Path("keyboard"), length=12)
    assert [row["piece"] for row in result["pieces"]] == [MOZART.name, SCHOENBERG.name]
    figures = {"same_key", "onsets_per_second", "notes_per_onset", "pitch_span", "velocity"}
    assert all(set(row["continuation"]) == figures for row in result["pieces"])
