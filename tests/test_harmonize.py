"""Harmonizing melodies with the bundled model: the melody stays on top, unchanged, in every format."""

from __future__ import annotations

import mido
import pytest

from composer.cli import main
from composer.errors import ComposerError, InputFileError, InvalidOptionError
from composer.harmonize import Harmonization, Melody, harmonize
from composer.harmonize.melody import (
    abc_fermatas,
    melody_from_score,
    normalize_abc,
    parse_melody_text,
    parse_note_names,
    read_melody_file,
)
from composer.midi.read import DEFAULT_LIMITS, read_score
from composer.model import artifact
from composer.model.stepper import Stepper
from composer.service import Composer, ComposeRequest
from composer.settings import DEFAULT_MODEL, ComposerSettings
from tests import midi_corpus

TWINKLE = "C4 C G G A A G2 F4 F E E D D C2"
GAVOTTE = "X:1\nT:Gavotte\nM:3/4\nL:1/8\nK:D\nA2|d2 f2 a2|b4 a2|g2 e2 c2|d4-d2|z2 f2 e2|d6|]\n"
MINOR_JIG = "M:6/8 L:1/8 K:Am |A2B c2d|e3 z2e|dcB AGE|A3-A3|]"
TUNE = "K:G |GABc dedB|dedB dedB|c2ec B2dB|c2A2 A4|]"


@pytest.fixture(scope="module")
def model():
    return artifact.load(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def stepper(model):
    return Stepper(model.config, model.weights)


@pytest.fixture(scope="module")
def composer():
    c = Composer(ComposerSettings(model=DEFAULT_MODEL, harmony_candidates=4), workers=1)
    yield c
    c.close()


def _as_tuples(notes) -> list[tuple[float, float, int]]:
    return [(round(n.onset, 4), round(n.duration, 4), n.pitch) for n in notes]


def _check_under(melody: Melody, result: Harmonization, voices: int) -> None:
    """The melody unchanged and on top: every voice note sounds only under a melody note, below it."""
    assert _as_tuples(result.melody) == _as_tuples(melody.notes)
    assert len(result.voices) == voices - 1
    for voice in result.voices:
        assert voice
        for note in voice:
            over = [
                m for m in melody.notes if m.onset <= note.onset + 1e-6 and note.onset < m.onset + m.duration
            ]
            assert over, f"{note} sounds where the melody rests"
            assert note.end <= over[0].onset + over[0].duration + 1e-6
            assert note.pitch < over[0].pitch
    for m in melody.notes:  # every voice sings at every melody onset
        for voice in result.voices:
            assert any(abs(n.onset - m.onset) < 1e-6 for n in voice)


def test_note_names_with_lengths_ties_rests_and_octaves():
    melody = parse_note_names(["C4", "D", "E", "F", "G2", "A", "G"])
    assert _as_tuples(melody.notes) == [
        (0, 1, 60), (1, 1, 62), (2, 1, 64), (3, 1, 65), (4, 2, 67), (6, 2, 69), (8, 2, 67)
    ]  # fmt: skip
    melody = parse_note_names(["G4", "B", "D8.", "C16", "r4", "Bb2~", "Bb4", "E,", "F#"])
    assert _as_tuples(melody.notes) == [
        (0, 1, 67), (1, 1, 71), (2, 0.75, 74), (2.75, 0.25, 72), (4, 3, 70), (7, 1, 52), (8, 1, 54)
    ]  # fmt: skip
    assert melody.phrase_ends[1] is False and melody.phrase_ends[3] is True  # the rest ends a phrase


def test_abc_typed_in_one_line_reads_as_with_headers():
    assert normalize_abc(TUNE).startswith("X:1\nL:1/8\nK:G\n")
    typed = parse_melody_text(TUNE, DEFAULT_LIMITS)
    written = parse_melody_text("X:1\nL:1/8\nK:G\nGABc dedB|dedB dedB|c2ec B2dB|c2A2 A4|]", DEFAULT_LIMITS)
    assert _as_tuples(typed.notes) == _as_tuples(written.notes)
    assert [n.pitch for n in typed.notes[:4]] == [67, 69, 71, 72] and typed.notes[0].duration == 0.5
    assert str(typed.key) == "G"


def test_abc_chord_symbols_are_not_the_melody():
    melody = parse_melody_text('K:G |"G"GABc "D"dedB|"C"c2A2 "G"G4|]', DEFAULT_LIMITS)
    assert [n.pitch for n in melody.notes] == [67, 69, 71, 72, 74, 76, 74, 71, 72, 69, 67]


def test_abc_fermatas_end_phrases():
    text = "X:1\nL:1/4\nK:F\nF G A !fermata!B | A- A G HF |]\n"
    assert abc_fermatas(text) == [3, 6]  # the tied A is one note
    melody = parse_melody_text(text, DEFAULT_LIMITS)
    assert [n.pitch for n in melody.notes] == [65, 67, 69, 70, 69, 67, 65]  # music21 keeps the H note
    assert [i for i, end in enumerate(melody.phrase_ends) if end] == [3, 6]


def _midi_of(abc: str, path):
    """A MIDI file of an ABC tune, as a notation program would export it (music21's writer)."""
    from music21 import converter

    converter.parse(normalize_abc(abc), format="abc").write("midi", fp=str(path))
    return path


def _musicxml_chorale(path):
    """A four-part Bach chorale (music21's corpus) saved as MusicXML: its soprano is the melody."""
    from music21 import corpus

    corpus.parse("bach/bwv269").write("musicxml", fp=str(path))
    return path


MELODIES = {
    "note-names-Bb": lambda tmp: parse_melody_text("Bb4 C D Eb F2 D Bb1", DEFAULT_LIMITS),
    "note-names-C": lambda tmp: parse_melody_text(TWINKLE, DEFAULT_LIMITS),
    "abc-D-3/4-pickup-ties-rests": lambda tmp: parse_melody_text(GAVOTTE, DEFAULT_LIMITS),
    "abc-Am-6/8-rests": lambda tmp: parse_melody_text(MINOR_JIG, DEFAULT_LIMITS),
    "midi-file": lambda tmp: read_melody_file(
        _midi_of(GAVOTTE, tmp / "gavotte.mid").read_bytes(), "gavotte.mid", DEFAULT_LIMITS
    ),
    "musicxml-chorale": lambda tmp: read_melody_file(
        _musicxml_chorale(tmp / "bwv269.musicxml").read_bytes(), "bwv269.musicxml", DEFAULT_LIMITS
    ),
}


@pytest.mark.parametrize("source", MELODIES, ids=list(MELODIES))
def test_the_melody_stays_on_top_unchanged(source, stepper, model, tmp_path):
    melody = MELODIES[source](tmp_path)
    result = harmonize(stepper, model.vocabulary, melody, voices=4, seed=7, candidates=2)
    _check_under(melody, result, 4)
    assert result.log_likelihood < 0 and len(result.candidates) == 2


def test_file_melodies_are_the_files_top_line(tmp_path):
    path = _midi_of(GAVOTTE, tmp_path / "gavotte.mid")
    melody = read_melody_file(path, "gavotte.mid", DEFAULT_LIMITS)
    source = read_score(path)
    assert [(n.start, n.end - n.start, n.pitch) for n in source.notes] == _as_tuples(melody.notes)
    assert melody.time_signature == (3, 4) and str(melody.key) == "D"
    # A ties' notes are one: d4-d2 is six eighths; the rest before f2 is kept as a gap.
    assert (10.0, 3.0, 74) in _as_tuples(melody.notes)
    chorale = read_melody_file(_musicxml_chorale(tmp_path / "c.musicxml"), "c.musicxml", DEFAULT_LIMITS)
    parts = read_score(tmp_path / "c.musicxml")
    assert parts.parts[0].name == "Soprano"
    soprano = [(n.start, n.end - n.start, n.pitch) for n in parts.notes if n.part == 0]
    assert soprano == _as_tuples(chorale.notes)
    # The phrases end at the fermatas, the first section's twice as music21 plays its repeat.
    ends = [n.onset for n, end in zip(chorale.notes, chorale.phrase_ends, strict=True) if end]
    assert ends == [10.0, 19.0, 31.0, 40.0, 49.0, 61.0, 73.0, 82.0]


@pytest.mark.parametrize("voices", [2, 3, 4])
def test_voices_and_a_closing_cadence(voices, stepper, model):
    melody = parse_melody_text("G4 G D' D E E D2 C4 C B B A A G2", DEFAULT_LIMITS)
    result = harmonize(stepper, model.vocabulary, melody, voices=voices, seed=3, candidates=4)
    _check_under(melody, result, voices)
    assert str(result.key) == "G"
    last_bass = result.voices[-1][-1]
    assert last_bass.pitch % 12 == 7  # the last chord stands on the tonic


def test_same_seed_same_harmonization_and_the_likeliest_is_kept(stepper, model):
    melody = Melody.from_notes([(i * 1.0, 1.0, p) for i, p in enumerate([64, 62, 60, 62, 64, 64, 64])])
    first = harmonize(stepper, model.vocabulary, melody, seed=11, candidates=4)
    again = harmonize(stepper, model.vocabulary, melody, seed=11, candidates=4)
    other = harmonize(stepper, model.vocabulary, melody, seed=12, candidates=4)
    assert first == again
    assert first.voices != other.voices
    single = harmonize(stepper, model.vocabulary, melody, seed=11, candidates=1)
    # The single draw is one of the four (the first, stepped alone), and not better than the best.
    assert first.log_likelihood == max(first.candidates) >= single.log_likelihood - 1e-5
    assert any(c == pytest.approx(single.log_likelihood, abs=1e-5) for c in first.candidates)


def test_a_long_score_is_fine_when_its_melody_is_not():
    from composer.events import Note, Score

    chords = [Note(p, i * 0.5, i * 0.5 + 0.5, 80, 1) for i in range(300) for p in (48, 52, 55)]
    tune = [Note(72 + i % 5, i * 1.0, i + 1.0, 80, 0) for i in range(150)]
    melody = melody_from_score(Score(tuple(tune + chords), metadata={}))
    assert [n.pitch for n in melody.notes] == [n.pitch for n in tune]
    with pytest.raises(InputFileError, match="450 notes; I harmonize up to 400"):
        melody_from_score(Score(tuple(Note(72, i * 1.0, i + 1.0) for i in range(450))))


def test_melody_from_notes_for_other_programs():
    notes = [(0.0, 1.0, 69), (1.0, 1.0, 71), (2.0, 2.0, 72), (4.0, 1.0, 71), (5.0, 1.0, 68), (6.0, 2.0, 69)]
    melody = Melody.from_notes(notes, phrase_ends=[False, False, True, False, False, False])
    assert melody.phrase_ends == (False, False, True, False, False, True)
    assert str(melody.key) == "Am"
    with pytest.raises(InputFileError, match="chord"):
        Melody.from_notes([(0.0, 1.0, 60), (0.0, 1.0, 64)])


BAD = {
    "empty": ("   ", "Type a melody"),
    "unreadable": ("hello world", "neither ABC nor a note name"),
    "too long": ("C8 D " * 200 + "E", "401 notes"),
    "abc chord": ("K:C |[CEG]2 D2 E2|", "chord"),
    "off the keyboard": ("C4 D c'''''", "off the piano keyboard"),
    "bad length": ("C4 D3 E", "a length is"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_melodies_get_one_friendly_line_with_an_example(case):
    text, reason = BAD[case]
    with pytest.raises(ComposerError) as caught:
        parse_melody_text(text, DEFAULT_LIMITS)
    message = str(caught.value)
    assert reason in message and "\n" not in message
    assert "C4 D E F G2 A G" in message  # an example that works


def test_requests_that_make_no_sense_are_refused():
    with pytest.raises(InvalidOptionError, match="2 to 4"):
        ComposeRequest(melody=TWINKLE, voices=5)
    with pytest.raises(InvalidOptionError, match="not both"):
        ComposeRequest(melody=TWINKLE, primer=b"MThd", harmonize=True)
    with pytest.raises(InvalidOptionError, match="Send a melody"):
        ComposeRequest(harmonize=True)
    with pytest.raises(InvalidOptionError, match="transpose instead"):
        ComposeRequest(melody=TWINKLE, key="Am")


def test_the_service_writes_a_track_per_part(composer, tmp_path):
    piece = composer.compose_sync(ComposeRequest(melody=GAVOTTE, seed=5, tempo=90), tmp_path)
    assert piece.voices == 4 and piece.settings["voices"] == "4" and piece.key == "D"
    assert piece.picture.read_bytes()[:4] == b"\x89PNG" and piece.audio.exists()
    midi = mido.MidiFile(piece.midi)
    assert midi.ticks_per_beat == 480
    names = [m.name for t in midi.tracks[1:] for m in t if m.type == "track_name"]
    assert names == ["Soprano", "Alto", "Tenor", "Bass"]
    conductor = {m.type: m for m in midi.tracks[0]}
    assert (conductor["time_signature"].numerator, conductor["time_signature"].denominator) == (3, 4)
    assert conductor["key_signature"].key == "D" and round(mido.tempo2bpm(conductor["set_tempo"].tempo)) == 90
    written = read_score(piece.midi)
    soprano = sorted((n.start, n.end, n.pitch) for n in written.notes if n.part == 0)
    melody = parse_melody_text(GAVOTTE, DEFAULT_LIMITS)
    assert soprano == [(n.onset, n.onset + n.duration, n.pitch) for n in melody.notes]
    again = composer.compose_sync(
        ComposeRequest(melody=GAVOTTE, seed=5, tempo=90, audio=False), tmp_path / "b"
    )
    assert again.midi.read_bytes() == piece.midi.read_bytes()


def test_the_service_harmonizes_an_uploaded_file_transposed(composer, tmp_path):
    data = _midi_of(TUNE, tmp_path / "tune.mid").read_bytes()
    request = ComposeRequest(primer=data, primer_name="tune.mid", harmonize=True, voices=3, transpose=2)
    piece = composer.compose_sync(request, tmp_path / "out")
    written = read_score(piece.midi)
    top = sorted(n.pitch for n in written.notes if n.part == 0)
    assert top == sorted(n.pitch + 2 for n in read_score(data).notes)
    assert len(written.parts) == 3 and piece.key == "A"


def test_command_line(tmp_path, capsys):
    assert (
        main(["harmonize", TWINKLE, "--out", str(tmp_path), "--seed", "3", "--no-audio", "--voices", "3"])
        == 0
    )
    out = capsys.readouterr().out
    assert "Harmonized 14 melody notes in 3 voices" in out and "seed 3" in out
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".mid", ".png"]
    assert main(["harmonize", "C4 [CEG] D", "--out", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: I found a chord") and "\n" not in err
    assert not (tmp_path / "no").exists()


def test_a_harmonization_travels_to_workers_and_back(composer, tmp_path):
    from composer.queue.wire import piece_from_result, piece_to_result, request_from_job, request_to_job

    request = ComposeRequest(melody=TWINKLE, voices=3, seed=2, audio=False)
    assert request_from_job(request_to_job(request, 10_000)) == request
    piece = composer.compose_sync(request, tmp_path / "worker")
    back = piece_from_result(piece_to_result(piece), tmp_path / "bot")
    assert back.voices == 3 and back.settings == piece.settings
    assert back.midi.read_bytes() == piece.midi.read_bytes()


@pytest.mark.parametrize("voices", [2, 4])
def test_beam_search_keeps_the_melody_and_is_deterministic(voices, stepper, model):
    melody = parse_melody_text(GAVOTTE, DEFAULT_LIMITS)
    found = harmonize(stepper, model.vocabulary, melody, voices=voices, beam=4, seed=1)
    _check_under(melody, found, voices)
    assert found == harmonize(stepper, model.vocabulary, melody, voices=voices, beam=4, seed=2)
    assert len(found.candidates) == 4 and found.log_likelihood == found.candidates[0]
    assert list(found.candidates) == sorted(found.candidates, reverse=True)


@pytest.mark.parametrize("text", [TUNE, GAVOTTE, MINOR_JIG])
def test_no_parallel_fifths_or_octaves(text, stepper, model):
    # Counted by the evaluation's own counter, on the voices as split for the MIDI file. (A melody
    # under the soprano's usual range, such as TWINKLE's G3, can leave one chord to choose from.)
    from training.harmony_metrics import parallels

    melody = parse_melody_text(text, DEFAULT_LIMITS)
    for seed in (0, 1):
        result = harmonize(stepper, model.vocabulary, melody, seed=seed, candidates=4)
        texture = [[(n.onset, n.duration, n.pitch) for n in part] for part in result.parts]
        assert parallels(texture) == {"fifths": 0, "octaves": 0}


@pytest.mark.parametrize(
    "name",
    [
        "tempo_ramp",
        "pedalled_piano",
        "general_midi_type0",
        "hands_on_one_channel",
        "smpte",
        "lyrics_and_markers",
    ],
)
def test_uploads_shaped_like_real_files_are_harmonized_on_their_top_line(name, composer, tmp_path):
    # Files as sequencers and phone apps write them (tests/midi_corpus.py), checked with pretty_midi.
    import pretty_midi

    data = getattr(midi_corpus, name)()
    (tmp_path / "in.mid").write_bytes(data)
    melody = read_melody_file(tmp_path / "in.mid", "in.mid", DEFAULT_LIMITS)
    request = ComposeRequest(primer=data, primer_name="in.mid", harmonize=True, audio=False, picture=False)
    piece = composer.compose_sync(request, tmp_path / "out")
    parts = pretty_midi.PrettyMIDI(str(piece.midi)).instruments
    assert [p.name for p in parts] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [n.pitch for n in sorted(parts[0].notes, key=lambda n: n.start)] == [n.pitch for n in melody.notes]
    for lower in parts[1:]:
        assert lower.notes and max(n.pitch for n in lower.notes) < max(n.pitch for n in parts[0].notes)
