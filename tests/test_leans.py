"""Fitting line leans to a style's training pieces (training/leans.py), with a real tiny model."""

from __future__ import annotations

import pytest

from composer.events import Event
from composer.generation.sampling import LEANS, MOVES, SamplingOptions
from composer.model import artifact
from composer.model.stepper import Stepper
from training.leans import fit_leans, fit_table, line_moves


def test_line_moves_counts_each_kind_of_move_in_the_bass_and_the_top():
    kinds = [kind for kind, _ in MOVES]
    events = [
        Event((48, 64, 72), 12, 12, 5),
        Event((50, 65, 74), 12, 12, 5),  # bass a step, top a step
        Event((50, 69), 12, 12, 5),  # bass repeats, top a fourth down (74 -> 69: 5)
        Event((62,), 12, 12, 5),  # bass an octave up, top a fifth down (a "fourth": 5 to 7)
    ]
    shares = line_moves([events])
    bass, top = dict(zip(kinds, shares[0], strict=True)), dict(zip(kinds, shares[1], strict=True))
    assert bass["step"] == bass["repeat"] == bass["octave"] == pytest.approx(1 / 3)
    assert top["step"] == pytest.approx(1 / 3) and top["fourth"] == pytest.approx(2 / 3)
    assert shares.sum(axis=1).tolist() == pytest.approx([1.0, 1.0])
    assert line_moves([]).sum() == 0.0


def test_fitting_brings_the_lines_nearer_the_training_pieces(tiny_model_path):
    model = artifact.load(tiny_model_path)
    stepper = Stepper(model.config, model.weights)
    # Pieces that only repeat their note: the tiny model, trained on scales, mostly steps.
    target = [tuple(Event((60 + i,), 6, 6, 5) for _ in range(24)) for i in range(4)]
    start = SamplingOptions(temperature=1.0, top_p=1.0, leans={"top_step": 0.5})
    fitted, history = fit_leans(model, stepper, "bach", start, target, rounds=3, count=8)
    assert len(history) == 4 and history[0].leans == {"top_step": 0.5}
    best = min(history, key=lambda r: r.distance)
    assert fitted.leans == best.leans and best.distance < history[0].distance
    assert fitted.temperature == 1.0 and fitted.top_p == 1.0  # only the leans are fitted
    assert set(fitted.leans) <= set(LEANS) and all(abs(w) <= 5 for w in fitted.leans.values())
    # Repeats gained on steps. The pieces are single notes, one line: only the top is leaned, or
    # every move would be leaned twice (as bass and as top).
    assert fitted.leans.get("top_repeat", 0.0) > fitted.leans.get("top_step", 0.0)
    assert not any(name.startswith("bass_") for name in fitted.leans)
    chords = [tuple(Event((48 + i, 64 + i), 6, 6, 5) for _ in range(24)) for i in range(4)]
    _, both = fit_leans(model, stepper, "bach", start, chords, rounds=1, count=8)
    assert any(name.startswith("bass_") for name in both[1].leans)  # two lines: both leaned
    table = fit_table(history, line_moves(target))
    assert table.count("\n") == 2 + len(history) and "| training pieces |" in table
    with pytest.raises(ValueError, match="no style 'jazz'"):
        fit_leans(model, stepper, "jazz", start, target)
    with pytest.raises(ValueError, match="no training pieces"):
        fit_leans(model, stepper, "bach", start, [])
