"""``evaluate --continuations``: new parts compared with the end of the piece they continue."""

from __future__ import annotations

import pytest

from tests import midi_corpus
from training.cli import main
from training.continuations import Timed, agreement, compare_piece, texture


def melody(start: float, seconds: float, step: float, base: int, velocity: int) -> list[Timed]:
    notes, t, i = [], start, 0
    while t < start + seconds:
        notes.append(Timed(base + [0, 2, 4, 5, 7][i % 5], t, t + step * 0.9, velocity))
        t += step
        i += 1
    return notes


def test_texture_and_agreement():
    a = texture(melody(0, 30, 0.5, 60, 80))
    assert a["onsets_per_second"] == pytest.approx(2.0, rel=0.05)
    assert a["notes_per_onset"] == 1.0
    same = agreement(texture(melody(0, 30, 0.5, 60, 84)), a)
    assert all(same.values())
    other = agreement(texture(melody(0, 30, 0.25, 61, 30)), a)
    assert not other["same_key"] and not other["onsets_per_second"] and not other["velocity"]
    assert other["notes_per_onset"] and other["pitch_span"]


def test_compare_piece_against_its_own_end_and_the_seam():
    piece = melody(0, 90, 0.5, 60, 90)
    row = compare_piece(piece, melody(90, 20, 0.5, 60, 70))
    assert all(row["continuation"].values())  # the same tune, 20 steps softer: within 25%
    assert all(row["itself"].values())
    assert row["seam"] == pytest.approx(-20)
    measures = row["measures"]
    assert measures["velocity"] == pytest.approx(70 / 90) and measures["same_key"] > 0.95
    assert measures["onsets_per_second"] == pytest.approx(1.0, rel=0.1)
    slower = compare_piece(piece, melody(90, 20, 1.0, 60, 90))  # half the onsets a second
    assert not slower["continuation"]["onsets_per_second"]
    assert slower["measures"]["onsets_per_second"] == pytest.approx(0.5, rel=0.1)


def test_the_command_writes_the_report(tiny_model_path, tmp_path, capsys):
    folder = tmp_path / "pieces"
    folder.mkdir()
    for name in ("accelerando", "pedalled_piano", "hands_on_one_channel"):
        (folder / f"{name}.mid").write_bytes(midi_corpus.CORPUS[name]())
    out = tmp_path / "report"
    args = ["evaluate", str(tiny_model_path), "--continuations", str(folder), "--length", "30"]
    code = main([*args, "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    text = (out / "continuations.md").read_text()
    assert "| same key (pitch-class overlap ≥ 0.75) |" in text
    assert text.count(".mid](#piece-") == 3  # a row per piece, linked to its picture
    assert "×) |" in text  # each piece's figures as multiples of its own
    assert "loudness jump at the seam" in text
    pictures = sorted((out / "pictures").iterdir())
    assert len(pictures) == 3 and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pictures)
    assert all(f"](pictures/{p.name})" in text for p in pictures)  # each shown in the report
