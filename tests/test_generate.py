"""Sampling and generation with a real (tiny) trained model."""

from __future__ import annotations

import numpy as np
import pytest

from composer.errors import InvalidOptionError
from composer.generation.generate import PieceRequest, end_window, generate
from composer.generation.sampling import (
    LEANS,
    MOVES,
    SamplingOptions,
    draw,
    loop_breakers,
    motion_bias,
    move_kinds,
    probabilities,
)
from composer.model import artifact
from composer.model.stepper import Stepper
from composer.model.vocabulary import MARKERS, Vocabulary


def test_top_k_and_top_p_trim_the_distribution():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    p = probabilities(logits, SamplingOptions(top_k=2, top_p=1.0))
    assert p[2] == p[3] == 0 and np.isclose(p.sum(), 1)
    p = probabilities(logits, SamplingOptions(top_p=0.7))
    assert p[0] > 0 and p[1] > 0 and p[2] == 0
    p = probabilities(logits, SamplingOptions(top_p=1.0), banned=[0])
    assert p[0] == 0


def test_low_temperature_is_nearly_argmax():
    logits = np.array([1.0, 2.0, 1.5])
    p = probabilities(logits, SamplingOptions(temperature=0.05, top_p=1.0))
    assert p[1] > 0.99


def test_draw_is_reproducible():
    p = np.array([0.2, 0.3, 0.5])
    a = [draw(p, np.random.default_rng(7)) for _ in range(3)]
    b = [draw(p, np.random.default_rng(7)) for _ in range(3)]
    assert a == b


def test_loop_breakers():
    assert loop_breakers([5, 6, 7, 5, 6, 7]) == {5}  # a three-note pattern twice: no third time
    assert loop_breakers([1, 2, 3, 4]) == set()
    assert loop_breakers([9, 9, 9, 9]) == {9}
    assert 9 not in loop_breakers([9, 9, 9])


@pytest.mark.parametrize("bad", [dict(temperature=0), dict(top_k=-1), dict(top_p=0), dict(top_p=1.5)])
def test_sampling_options_validate(bad):
    with pytest.raises(InvalidOptionError):
        SamplingOptions(**bad)


def test_min_p_keeps_the_chords_at_least_that_share_of_the_likeliest():
    logits = np.log(np.array([0.5, 0.3, 0.1, 0.06, 0.04]))
    p = probabilities(logits, SamplingOptions(temperature=1.0, top_p=1.0, min_p=0.1))
    # The cut is 0.1 * 0.5 = 0.05: 0.06 stays, 0.04 goes, the rest renormalised.
    np.testing.assert_allclose(p, [0.5 / 0.96, 0.3 / 0.96, 0.1 / 0.96, 0.06 / 0.96, 0.0])
    # The cut follows the tempered distribution: at temperature 0.5 it is p**2, so 0.1**2 / 0.5**2 = 0.04
    # is under 0.1 and goes, and 0.3**2 / 0.5**2 = 0.36 stays.
    p = probabilities(logits, SamplingOptions(temperature=0.5, top_p=1.0, min_p=0.1))
    assert (p > 0).tolist() == [True, True, False, False, False]
    assert probabilities(logits, SamplingOptions(temperature=1.0, top_p=1.0, min_p=0.0)).all()


def test_typical_sampling_keeps_the_chords_nearest_the_entropy():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    # Entropy 1.142 nats; surprises 0.69, 1.20, 1.90, 3.00: the second id is the most typical, then the
    # first, then the third. A quarter of the mass keeps the second id alone (top-p would keep the first).
    p = probabilities(logits, SamplingOptions(temperature=1.0, top_p=1.0, typical_p=0.25))
    assert p.tolist() == [0.0, 1.0, 0.0, 0.0]
    p = probabilities(logits, SamplingOptions(temperature=1.0, top_p=1.0, typical_p=0.5))
    np.testing.assert_allclose(p, [0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0])
    p = probabilities(logits, SamplingOptions(temperature=1.0, top_p=1.0, typical_p=0.9))
    assert (p > 0).tolist() == [True, True, True, False]


def test_a_field_temperature_changes_that_field_only():
    logits = np.array([1.0, 2.0, 1.5])
    cold_chord = SamplingOptions(temperature=3.0, top_p=1.0, field_temperatures={"pitch": 0.05})
    assert probabilities(logits, cold_chord)[1] > 0.99
    cold_rhythm = SamplingOptions(temperature=3.0, top_p=1.0, field_temperatures={"ioi": 0.05})
    assert probabilities(logits, cold_rhythm).max() < 0.45  # the chord stays hot
    assert cold_rhythm.temperature_of("ioi") == 0.05 and cold_rhythm.temperature_of("duration") == 3.0


@pytest.mark.parametrize(
    "bad",
    [
        dict(min_p=-0.1),
        dict(min_p=1.0),
        dict(typical_p=0),
        dict(typical_p=1.2),
        dict(field_temperatures={"chord": 1.0}),
        dict(field_temperatures={"ioi": 0.0}),
        dict(leans={"alto_step": 1.0}),
        dict(leans={"bass_step": 9.0}),
    ],
)
def test_new_sampling_options_validate(bad):
    with pytest.raises(InvalidOptionError):
        SamplingOptions(**bad)


def test_motion_bias_leans_each_chord_by_how_its_lines_move():
    vocabulary = Vocabulary(
        pitch_sets=((48, 64, 72), (48, 60, 67, 71), (50, 65, 74), (53, 69), (60,)), durations=(4,), iois=(4,)
    )
    outlines = vocabulary.outlines
    assert outlines[MARKERS:].tolist() == [[48, 72], [48, 71], [50, 74], [53, 69], [60, 60]]
    leans = {"bass_repeat": -1.0, "bass_step": 0.25, "top_step": 0.5}
    leans |= {"bass_fourth": 0.125, "top_third": 0.0625, "bass_octave": 2.0, "top_octave": -3.0}
    bias = motion_bias(outlines, MARKERS, leans)  # after C-E-C: bass 48, top 72
    assert bias[:MARKERS].tolist() == [0.0] * MARKERS  # markers are never leaned
    # itself: bass repeats (-1); C-G-B: bass repeats, top 72 -> 71 a step (-1 + 0.5);
    # D-F-D: bass 48 -> 50 a step, top 72 -> 74 a step; F-A: the bass up a fourth, the top down
    # a third; C alone: both lines move an octave
    assert bias[MARKERS:].tolist() == [-1.0, -0.5, 0.75, 0.1875, -1.0]
    assert move_kinds(np.array([0, -2, 3, -7, 8, 11, 12, -13, 500])).tolist() == [0, 1, 2, 3, 4, 4, 5, 6, 6]
    assert set(LEANS) == {f"{line}_{kind}" for line in ("bass", "top") for kind, _ in MOVES}
    assert motion_bias(outlines, 0, leans).tolist() == [0.0] * len(outlines)  # after the start
    options = SamplingOptions(leans=leans)
    assert SamplingOptions.from_dict(options.to_dict()) == options
    assert "bass repeat -1" in options.describe() and "top step +0.5" in options.describe()


@pytest.fixture(scope="module")
def stepper(tiny_model_path):
    loaded = artifact.load(tiny_model_path)
    return Stepper(loaded.config, loaded.weights)


def test_same_seed_same_piece_alone_or_batched(stepper):
    one = generate(stepper, [PieceRequest(length=40, seed=3)])[0]
    again = generate(stepper, [PieceRequest(length=40, seed=3)])[0]
    batched = generate(stepper, [PieceRequest(length=25, seed=9), PieceRequest(length=40, seed=3)])[1]
    other = generate(stepper, [PieceRequest(length=40, seed=4)])[0]
    np.testing.assert_array_equal(one.rows, again.rows)
    np.testing.assert_array_equal(one.rows, batched.rows)
    assert not np.array_equal(one.rows, other.rows)


@pytest.mark.parametrize("length", [1, 8, 40, 120])
def test_length_lands_in_the_end_window(stepper, length):
    for seed in range(3):
        (piece,) = generate(stepper, [PieceRequest(length=length, seed=seed)])
        earliest, latest = end_window(length)
        assert earliest <= len(piece.rows) <= latest
        assert (piece.rows >= 3).all()  # no markers inside a piece


def test_loop_guard_stops_argmax_loops(stepper):
    argmax = SamplingOptions(temperature=0.05, top_p=1.0)
    (guarded,) = generate(stepper, [PieceRequest(length=200, seed=0, sampling=argmax)])
    pitches = guarded.rows[:, 0].tolist()
    for size in range(2, 17):
        for i in range(len(pitches) - 3 * size):
            window = pitches[i : i + 3 * size]
            assert not (window[:size] == window[size : 2 * size] == window[2 * size :]), (size, i)


def test_candidates_differ_and_the_likeliest_is_kept(tiny_model_path):
    from dataclasses import replace

    from composer.generation.generate import PieceRequest, best_candidate, generate
    from composer.model import artifact
    from composer.model.stepper import Stepper

    model = artifact.load(tiny_model_path)
    stepper = Stepper(model.config, model.weights)
    request = PieceRequest(length=30, seed=9)
    results = generate(stepper, [replace(request, candidate=c) for c in range(4)])
    alone = generate(stepper, [request])[0]
    assert alone.rows.tolist() == results[0].rows.tolist()  # candidate 0 is the seed's own piece
    assert len({r.rows.tobytes() for r in results}) > 1
    assert all(-50 < r.log_likelihood < 0 for r in results)
    assert best_candidate(results).log_likelihood == max(r.log_likelihood for r in results)


def test_a_new_piece_settles_in_a_key_of_the_style():
    from collections import Counter

    from composer.events import Event
    from composer.keys import detect_key, settle_key

    c_major = [Event((60 + step,), 12, 12, 5) for step in (0, 4, 7, 12, 7, 4, 0, 2, 4, 5, 7, 11, 12)]
    keys = Counter(str(detect_key(settle_key(c_major, {"G": 0.75, "D": 0.25}, seed))) for seed in range(200))
    assert set(keys) == {"G", "D"} and 120 < keys["G"] < 180
    assert settle_key(c_major, {}, 3) == c_major  # a model without key spreads leaves it be
    again = settle_key(c_major, {"G": 0.75, "D": 0.25}, 11)
    assert again == settle_key(c_major, {"G": 0.75, "D": 0.25}, 11)  # the same seed, the same key


def _shortfalls(stepper, rows: np.ndarray) -> dict[str, np.ndarray]:
    """For each field of a generated piece, how far below the likeliest value (markers aside) the
    chosen one's logit was at every event, replaying the piece through the network."""
    from composer.generation.generate import warm_up
    from composer.model.vocabulary import FIELDS, MARKERS, START

    logits, state = warm_up(stepper, np.full((1, 4), START, np.int32), 0)
    gaps: dict[str, list[float]] = {name: [] for name in FIELDS}
    for row in rows:
        chosen = {name: row[None, i] for i, name in enumerate(FIELDS)}
        for i, name in enumerate(FIELDS):
            z = stepper.condition(name, logits[name], chosen)[0]
            gaps[name].append(float(z[MARKERS:].max() - z[row[i]]))
        logits, state = stepper.step(row[None, :], np.array([0]), state)
    return {name: np.array(values) for name, values in gaps.items()}


def test_leans_reach_the_chords(tiny_model_path, stepper):
    """A strong lean against a repeated bass, with the vocabulary's outlines, takes the tiny
    model's repeated basses away; without the outlines the lean cannot act."""
    outlines = artifact.load(tiny_model_path).vocabulary.outlines

    def repeats(**options) -> float:
        rows = [
            generate(stepper, [PieceRequest(length=80, seed=seed, loop_guard=False, **options)])[0].rows
            for seed in range(4)
        ]
        basses = [outlines[r[:, 0], 0] for r in rows]
        return float(np.mean([np.mean(np.diff(b) == 0) for b in basses]))

    leaned = SamplingOptions(temperature=1.0, top_p=1.0, leans={"bass_repeat": -5.0})
    plain = SamplingOptions(temperature=1.0, top_p=1.0)
    assert repeats(sampling=plain, outlines=outlines) > 0.05
    assert repeats(sampling=leaned, outlines=outlines) < 0.2 * repeats(sampling=plain, outlines=outlines)
    assert repeats(sampling=leaned) == repeats(sampling=plain)


def test_field_temperatures_reach_their_own_heads(stepper):
    # At 0.05 a field takes the likeliest value or one within a hair of it (the tiny model has near
    # ties); at 2.5 it often takes one far below.
    cold_rhythm = SamplingOptions(
        temperature=2.5, top_p=1.0, field_temperatures={"duration": 0.05, "ioi": 0.05}
    )
    (piece,) = generate(stepper, [PieceRequest(length=60, seed=5, sampling=cold_rhythm, loop_guard=False)])
    gaps = _shortfalls(stepper, piece.rows)
    assert gaps["duration"].max() < 0.3 and gaps["ioi"].max() < 0.3
    assert gaps["pitch"].max() > 1 and gaps["velocity"].max() > 1
    cold_chord = SamplingOptions(temperature=2.5, top_p=1.0, field_temperatures={"pitch": 0.05})
    (piece,) = generate(stepper, [PieceRequest(length=60, seed=5, sampling=cold_chord, loop_guard=False)])
    gaps = _shortfalls(stepper, piece.rows)
    assert gaps["pitch"].max() < 0.3
    assert gaps["duration"].max() > 1 and gaps["ioi"].max() > 1


def test_a_new_piece_opens_on_its_keys_tonic_chord_and_keeps_to_the_key(tiny_model_path, stepper):
    """``key_guide``: the tonic chords of the key the seed draws (the key the piece is moved into)
    get :data:`OPENING` logits at the first event, and ``key_lean`` times each chord's fit to the
    key at every event."""
    from composer.keys import Key, draw_key, key_fit, tonic_chords

    model = artifact.load(tiny_model_path)
    sets = model.vocabulary.pitch_sets
    assert model.keys_for("bach")  # recorded in training
    key = Key(0)
    guide = model.key_guide("bach", 0, key)
    assert guide["opening"] == tuple(MARKERS + i for i in tonic_chords(sets, key))
    assert guide["opening"] and all(min(sets[i - MARKERS]) % 12 == 0 for i in guide["opening"])
    assert not guide["key_fit"][:MARKERS].any() and len(guide["key_fit"]) == len(sets) + MARKERS
    drawn = model.key_guide("bach", 5)
    assert drawn["opening"] == model.key_guide("bach", 0, draw_key(model.keys_for("bach"), 5))["opening"]
    opened = 0
    for seed in range(12):
        (plain,) = generate(stepper, [PieceRequest(length=8, seed=seed)])
        (piece,) = generate(stepper, [PieceRequest(length=8, seed=seed, opening=guide["opening"])])
        opened += int(piece.rows[0, 0] in guide["opening"]) - int(plain.rows[0, 0] in guide["opening"])
    assert opened >= 4  # 4 logits more: far likelier than the network alone
    # A strong key lean keeps every chord to those that fit the key best.
    fit = np.where(key_fit(sets, key) > 0, 3.0, -3.0)
    strong = SamplingOptions(key_lean=5)
    leaning = PieceRequest(length=30, seed=1, sampling=strong, key_fit=np.r_[[0.0] * MARKERS, fit])
    (piece,) = generate(stepper, [leaning])
    assert all(fit[i - MARKERS] > 0 for i in piece.rows[:, 0])


def test_key_fit_and_tonic_chords():
    from composer.keys import Key, key_fit, tonic_chords

    sets = [(48, 64, 67, 72), (45, 60, 64, 69), (57, 72, 76), (48, 63, 67), (49, 53, 56), (60,), (52, 60, 67)]
    assert tonic_chords(sets, Key(0)) == [0]  # C-E-G over C; not C alone, not C/E
    assert tonic_chords(sets, Key(9, minor=True)) == [1, 2]
    assert tonic_chords(sets, Key(0, minor=True)) == [3]
    fit = key_fit(sets, Key(0))
    assert fit[0] > 0 > fit[4]  # C major's tonic triad fits it; D-flat major does not
    assert SamplingOptions.from_dict(SamplingOptions(key_lean=1.0).to_dict()).key_lean == 1.0
    assert "key lean 1" in SamplingOptions(key_lean=1.0).describe()
    with pytest.raises(InvalidOptionError, match="key lean"):
        SamplingOptions(key_lean=-1)
