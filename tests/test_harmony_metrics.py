"""Harmonization figures on hand-made textures with known answers, and on Bach's own chorales."""

from __future__ import annotations

import pytest
from music21 import key

from training import harmony_eval as he
from training import harmony_metrics as hm
from training.corpora import corpus_set


def voices(*lines: list[int], length: float = 1.0) -> list[list[hm.Note]]:
    """Voices of equal notes, one pitch per beat, top voice first."""
    return [[(i * length, length, p) for i, p in enumerate(line)] for line in lines]


# I - IV - V - I in C major, voiced by the book: no parallels, every note in range and in the key.
CADENCE = voices([76, 77, 74, 72], [67, 69, 67, 67], [60, 60, 59, 64], [48, 53, 55, 48])
# The same up to V, then V - vi: a deceptive close, not a cadence.
DECEPTIVE = voices([76, 77, 74, 72], [67, 69, 67, 69], [60, 60, 59, 64], [48, 53, 55, 57])
C_MAJOR = key.Key("C")


def test_parallel_fifths_and_octaves_are_counted_between_any_two_voices():
    fifths = voices([72, 74], [65, 67])
    assert hm.parallels(fifths) == {"fifths": 1, "octaves": 0}
    compound_fifths = voices([79, 81], [48, 50])  # a twelfth to a twelfth
    assert hm.parallels(compound_fifths) == {"fifths": 1, "octaves": 0}
    octaves = voices([72, 74], [67, 67], [60, 62])  # soprano and bass in octaves, alto holding
    assert hm.parallels(octaves) == {"fifths": 0, "octaves": 1}
    unisons = voices([67, 69], [67, 69])
    assert hm.parallels(unisons) == {"fifths": 0, "octaves": 1}
    inner = voices([76, 77], [67, 69], [60, 62], [48, 53])  # alto and tenor a fifth apart, both up a step
    assert hm.parallels(inner) == {"fifths": 1, "octaves": 0}


def test_eighth_note_parallels_are_seen_between_beats():
    top = [(0.0, 1.0, 72), (1.0, 0.5, 74), (1.5, 0.5, 76)]
    bottom = [(0.0, 1.0, 60), (1.0, 0.5, 65), (1.5, 0.5, 67)]  # octave to sixth to sixth
    assert hm.parallels([top, bottom]) == {"fifths": 0, "octaves": 0}
    bottom = [(0.0, 1.0, 60), (1.0, 0.5, 62), (1.5, 0.5, 64)]
    assert hm.parallels([top, bottom]) == {"fifths": 0, "octaves": 2}


def test_no_parallels_in_contrary_or_oblique_motion_or_a_voice_that_holds():
    none = {"fifths": 0, "octaves": 0}
    assert hm.parallels(voices([72, 71], [48, 50])) == none  # contrary
    assert hm.parallels(voices([67, 74], [60, 50])) == none  # fifth to octave, contrary
    assert hm.parallels(voices([72, 74], [60, 50])) == none  # octave to double octave, contrary
    assert hm.parallels(voices([72, 72], [60, 65])) == none  # oblique
    assert hm.parallels(voices([72, 72], [60, 60])) == none  # repeated
    assert hm.parallels(CADENCE) == none
    assert hm.parallels(voices([72, 74], [65, 68])) == none  # fifth to sixth


def test_ranges_notes_outside_their_voice_count_against_it():
    assert hm.in_range(CADENCE) == {"soprano": 1.0, "alto": 1.0, "tenor": 1.0, "bass": 1.0, "all": 1.0}
    wide = voices([76, 81, 74, 72], [67, 69, 67, 67], [60, 70, 59, 64], [36, 53, 55, 48])
    shares = hm.in_range(wide)
    assert shares["soprano"] == 0.75  # A5 is above G5
    assert shares["tenor"] == 0.75  # B-flat 4 is above G4
    assert shares["bass"] == 0.75  # C2 is below E2
    assert shares["alto"] == 1.0
    assert shares["all"] == 13 / 16
    assert hm.voice_names(2) == ("soprano", "bass")
    assert hm.in_range(voices([72, 74], [36, 48]))["bass"] == 0.5


def test_chromatic_neighbours_are_in_the_key_and_other_foreign_notes_are_not():
    assert hm.in_key(CADENCE, C_MAJOR) == 1.0
    neighbour = voices([72, 73, 74, 72])  # C# between C and D: a half step below D
    assert hm.in_key(neighbour, C_MAJOR) == 1.0
    leap = voices([72, 78, 81, 72])  # F# leapt to and left by leap
    assert hm.in_key(leap, C_MAJOR) == 0.75
    two_foreign = voices([72, 78, 75, 79])  # F# then E-flat: neither has an in-key half step beside it
    assert hm.in_key(two_foreign, C_MAJOR) == 0.5
    assert hm.in_key(voices([69, 68, 69]), key.Key("a")) == 1.0  # the leading tone belongs to minor


def test_a_v_i_cadence_is_authentic_and_v_vi_is_none():
    assert hm.cadences(CADENCE, [3.0], C_MAJOR) == ["authentic"]
    assert hm.cadences(DECEPTIVE, [3.0], C_MAJOR) == [None]
    assert hm.cadences(voices([77, 76], [69, 67], [60, 60], [53, 48]), [1.0], C_MAJOR) == ["plagal"]
    half = voices([76, 77, 74], [67, 69, 67], [60, 60, 59], [48, 53, 55])  # ends on V
    assert hm.cadences(half, [2.0], C_MAJOR) == ["half"]
    assert hm.cadences(voices([76, 74], [67, 67], [60, 59], [48, 55]), [1.0], C_MAJOR) == ["half"]  # I - V
    inverted = voices([76, 77, 74, 72], [67, 69, 67, 67], [60, 60, 59, 60], [48, 53, 55, 52])  # V - I6
    assert hm.cadences(inverted, [3.0], C_MAJOR) == [None]


def test_passing_notes_before_and_suspensions_or_moves_under_the_fermata_do_not_hide_a_cadence():
    soprano = [(0.0, 1.0, 74), (1.0, 2.0, 72)]
    alto = [(0.0, 1.0, 71), (1.0, 1.0, 65), (2.0, 1.0, 64)]  # F over the C chord, falling to E
    bass = [(0.0, 1.0, 55), (1.0, 2.0, 48)]
    assert hm.cadences([soprano, alto, bass], [1.0], C_MAJOR) == ["authentic"]
    passing = [(0.0, 0.5, 55), (0.5, 0.5, 53), (1.0, 2.0, 48)]  # a passing F in the bass before the cadence
    assert hm.cadences([soprano, [(0.0, 1.0, 71), (1.0, 2.0, 64)], passing], [1.0], C_MAJOR) == ["authentic"]
    walking = [(0.0, 1.0, 55), (1.0, 1.0, 48), (2.0, 1.0, 52)]  # the bass moves on under the fermata
    assert hm.cadences([soprano, [(0.0, 1.0, 71), (1.0, 2.0, 64)], walking], [1.0], C_MAJOR) == ["authentic"]


def test_agreement_with_itself_is_complete_and_with_another_bass_is_not():
    assert hm.agreement(CADENCE, CADENCE) == {"bass": 1.0, "root": 1.0}
    assert hm.agreement(DECEPTIVE, CADENCE) == {"bass": 0.75, "root": 0.75}
    silent = [CADENCE[0], [], [], []]
    assert hm.agreement(silent, CADENCE)["bass"] == 0.0


def test_melody_kept_counts_notes_unchanged_in_the_top_voice():
    melody = CADENCE[0]
    assert hm.melody_kept(melody, CADENCE) == 1.0
    changed = [[*melody[:3], (3.0, 1.0, 71)], *CADENCE[1:]]
    assert hm.melody_kept(melody, changed) == 0.75
    assert hm.melody_kept(melody, CADENCE[1:]) == 0.0


def test_the_random_baseline_keeps_the_melody_and_draws_in_key_in_range_notes_from_its_seed():
    melody = voices([72, 74, 76, 77, 79, 77, 76, 74, 72])[0]
    made = hm.random_harmonization(melody, 4, seed=3)
    assert made == hm.random_harmonization(melody, 4, seed=3)
    assert made != hm.random_harmonization(melody, 4, seed=4)
    assert hm.melody_kept(melody, made) == 1.0
    assert hm.in_range(made)["all"] == 1.0
    assert all(p % 12 in {0, 2, 4, 5, 7, 9, 11} for v in made for _, _, p in v)
    assert [len(v) for v in made] == [9, 9, 9, 9]
    assert len(hm.random_harmonization(melody, 2, seed=0)) == 2


def bach_file(name: str):
    return next(p for p in corpus_set("bach").files() if p.stem == name)


@pytest.fixture(scope="module")
def chorales() -> list[he.Chorale]:
    found = [he.read_chorale(bach_file(name)) for name in ("bwv253", "bwv438")]
    assert all(found)
    return found


def test_bachs_own_figures_on_real_chorales(chorales):
    for chorale in chorales:
        assert [len(v) > 10 for v in chorale.voices] == [True] * 4
        assert chorale.phrase_ends == tuple(sorted(chorale.phrase_ends)) and len(chorale.phrase_ends) >= 4
        figures = hm.figures(chorale.voices, chorale.melody, chorale.phrase_ends, chorale.voices)
        assert figures["melody_kept"] == 1.0
        assert figures["agreement_bass"] == figures["agreement_root"] == 1.0
        assert figures["parallels_per_100_beats"] < 5
        assert figures["in_range"]["all"] > 0.95
        assert figures["in_key"] > 0.95
        assert figures["cadence_share"] >= 0.5
        assert figures["key"] in ("A major", "F major")


def test_a_chorale_without_exactly_four_parts_is_skipped():
    assert he.read_chorale(bach_file("bwv250")) is None  # two horns beside the four voices
    chorales, skipped = he.held_out_chorales(["bwv250", "bwv253"])
    assert [c.name for c in chorales] == ["bwv253"] and skipped == 1
    assert he.held_out_chorales(["bwv250", "bwv253", "bwv438"], limit=1)[0][0].name == "bwv253"


def test_the_table_puts_a_harmonizer_beside_bach_and_chance_with_verdicts(chorales):
    faithful = he.evaluate_harmonizing(chorales, lambda c: c.voices)  # a stand-in that copies Bach
    assert set(faithful) == {"model", "bach", "random"}
    text = he.table(faithful)
    assert "**no**" not in text and text.count("| yes |") == 6
    assert faithful["random"]["all"]["agreement_bass"] < 0.5
    tenor_up = he.evaluate_harmonizing(
        chorales,
        lambda c: [c.voices[0], c.voices[1], [(o, d, p + 12) for o, d, p in c.voices[2]], c.voices[3]],
    )
    row = next(line for line in he.table(tenor_up).splitlines() if line.startswith("| notes in their"))
    assert row.endswith("| **no** |")
    silent = he.table(he.evaluate_harmonizing(chorales, lambda c: [c.melody, [], [], []]))
    verdicts = [line.rsplit("|", 2)[1].strip() for line in silent.splitlines()[2:]]
    assert verdicts[:3] == ["yes", "**no**", "**no**"]  # the melody alone: kept, but no bass, no chords


def test_the_model_harmonizes_a_melody_through_composer_harmonize(tiny_model_path):
    from composer.model import artifact

    # The tiny model's four-note chords are topped by D, E-flat, F, G, A-flat and A: the melody keeps to them.
    line = voices([74, 77, 79, 77, 74, 69, 74], [62, 65, 67, 65, 62, 57, 62])
    chorale = he.Chorale("made", (tuple(line[0]), (), (), tuple(line[1])), (3.0, 6.0))
    harmonizer = he.model_harmonizer(artifact.load(tiny_model_path), candidates=2, seed=1, temperature=0.8)
    texture = harmonizer(chorale)
    assert len(texture) == 4 and all(texture)
    assert hm.figures(texture, chorale.melody, chorale.phrase_ends, texture)["melody_kept"] == 1.0
    assert texture == harmonizer(chorale)  # the same seed gives the same harmonization


def test_the_command_says_when_a_model_names_no_bach_chorale(capsys, tiny_model_path):
    from training.cli import evaluate_main

    assert evaluate_main([str(tiny_model_path), "--harmonize"]) == 2
    assert "no held-out Bach chorale" in capsys.readouterr().err


def test_the_command_harmonizes_held_out_chorales_with_the_bundled_model(capsys, tmp_path):
    import json
    from pathlib import Path

    from training.cli import evaluate_main

    model = Path(__file__).parent.parent / "models" / "default.cadenza"
    argv = [str(model), "--harmonize", "--pieces", "1", "--candidates", "2", "--out", str(tmp_path)]
    assert evaluate_main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("| figure | model | Bach | random in-key | target | met? |")
    assert "| melody kept | 100.0% | 100.0% | 100.0% | 100% | yes |" in printed
    report = json.loads((tmp_path / "harmonize.json").read_text())
    assert report["settings"]["candidates"] == 2 and report["settings"]["temperature"] == 0.5
    assert [len(report[label]["pieces"]) for label in ("model", "bach", "random")] == [1, 1, 1]
    assert "through `composer.harmonize.harmonize`" in (tmp_path / "harmonize.md").read_text()
