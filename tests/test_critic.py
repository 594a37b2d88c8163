"""The critic that chooses among candidate pieces: fitted with scikit-learn, walked with numpy,
kept in the model file, and used by the composer and the evaluation as they choose."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import mido
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from composer.events import Event
from composer.generation.critic import CANDIDATE_EVENTS, Critic, candidate_count, choose
from composer.generation.features import features
from composer.generation.generate import Generated, PieceRequest
from composer.keys import detect_key, draw_key, parse_key
from composer.model import artifact
from composer.model.stepper import Stepper
from composer.model.vocabulary import Vocabulary
from composer.service import Composer, ComposeRequest
from composer.settings import ComposerSettings
from tests.test_tell_apart import leaping, stepwise
from training.cli import main
from training.critic import export, fit_critic
from training.evaluate import generate_requests
from training.tell_apart import tell_apart


def _fitted(real: list[list[Event]], made: list[list[Event]], window: int = 40) -> Critic:
    rows = [features(p) for p in (*real, *made)]
    names = tuple(rows[0])
    x = np.array([[row[n] for n in names] for row in rows])
    y = np.array([0] * len(real) + [1] * len(made))
    trees = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(x, y)
    critic = export(trees, names, window, 4)
    assert critic.decision(x) == pytest.approx(trees.decision_function(x), abs=1e-9)
    return critic


def _judged_copy(model: Path, path: Path, seed: int, **changes: object) -> tuple[Path, Critic]:
    """A copy of ``model`` at ``path``, and a critic (fitted on made-up pieces, windows of 30
    events) with ``changes``, for the test to write into it."""
    path.write_bytes(model.read_bytes())
    rng = np.random.default_rng(seed)
    critic = _fitted([stepwise(rng) for _ in range(20)], [leaping(rng) for _ in range(20)], window=30)
    return path, replace(critic, **changes)


def test_the_copied_trees_score_as_scikit_learn_does_and_survive_the_model_file():
    rng = np.random.default_rng(0)
    real = [stepwise(rng) for _ in range(20)]
    made = [leaping(rng) for _ in range(20)]
    critic = _fitted(real, made)
    again = Critic.from_dict(critic.to_dict())
    assert again.scores(real[:3] + made[:3]) == pytest.approx(critic.scores(real[:3] + made[:3]))
    assert (critic.scores(real) < 0).all() and (critic.scores(made) > 0).all()
    # A long piece is judged window by window, as the pieces it was fitted on.
    long = real[0] + real[1] + real[2]
    windows = critic.scores([real[0], real[1], real[2]])
    assert critic.scores([long])[0] == pytest.approx(windows.mean())
    assert critic.most_real([made[0], real[4], made[1]]) == 1
    broken = {**critic.to_dict(), "left": [[99] * critic.left.shape[1]] * critic.left.shape[0]}
    with pytest.raises(ValueError, match="outside"):
        Critic.from_dict(broken)
    with pytest.raises(ValueError, match="agree"):
        Critic.from_dict({**critic.to_dict(), "value": [[0.0]]})


def test_choose_keeps_the_likeliest_without_a_critic_and_the_most_real_with_one(tiny_model_path):
    model = artifact.load(tiny_model_path)
    vocabulary = model.vocabulary
    rng = np.random.default_rng(1)
    pieces = [leaping(rng), stepwise(rng), leaping(rng)]
    results = [
        Generated(vocabulary.encode(p, start=False, end=False).rows, True, log_likelihood=-float(i))
        for i, p in enumerate(pieces)
    ]
    assert choose(results, None, vocabulary) is results[0]  # the network's likeliest
    critic = _fitted([stepwise(rng) for _ in range(20)], [leaping(rng) for _ in range(20)])
    assert choose(results, critic, vocabulary) is results[1]  # the one like the real pieces
    assert choose(results[:1], critic, vocabulary) is results[0]


def _scale_tune(tonic: int, minor: bool, length: int = 40) -> list[Event]:
    """Up and down a scale in quarter notes, the tonic triad under every fourth note."""
    scale = (0, 2, 3, 5, 7, 8, 10, 12) if minor else (0, 2, 4, 5, 7, 9, 11, 12)
    third = 3 if minor else 4
    walk = [*range(8), *range(6, 0, -1)]
    events = []
    for i in range(length):
        top = tonic + scale[walk[i % len(walk)]]
        chord = (tonic - 12, tonic - 12 + third, tonic - 5, top) if i % 4 == 0 else (top,)
        events.append(Event(tuple(sorted(set(chord))), 12, 12, 5))
    return events


def test_candidates_in_their_own_keys_are_kept_in_the_mode_the_piece_drew():
    rng = np.random.default_rng(3)
    arpeggio = [Event(((60, 76, 67, 84, 64, 72)[i % 6],), 4, 6, 5) for i in range(40)]  # leaps in C
    tunes = [_scale_tune(67, False), _scale_tune(69, True), arpeggio]
    vocabulary = Vocabulary.build(tunes)
    results = [Generated(vocabulary.encode(t, start=False, end=False).rows, True) for t in tunes]
    kept = [[vocabulary.decode_event(row) for row in r.rows] for r in results]  # as the critic sees them
    assert [detect_key(t).minor for t in kept] == [False, True, False]
    real = [stepwise(rng) for _ in range(20)]
    critic = replace(_fitted(real, [leaping(rng) for _ in range(20)]), own_keys=True)
    assert choose(results, critic, vocabulary, key=parse_key("Em")) is results[1]
    assert choose(results, critic, vocabulary, key=parse_key("Bb")) is results[0]
    # None came out in minor: the critic chooses among them all.
    assert choose([results[0], results[2]], critic, vocabulary, key=parse_key("Em")) is results[0]
    # Candidates sharing the request's key are judged whatever their mode.
    shared = replace(critic, own_keys=False)
    assert choose(results, shared, vocabulary, key=parse_key("Em")) is choose(results, shared, vocabulary)


def test_a_fitted_critic_chooses_pieces_nearer_the_training_pieces(tiny_model_path, tmp_path):
    path = tmp_path / "judged.cadenza"
    path.write_bytes(tiny_model_path.read_bytes())
    model = artifact.load(path)
    stepper = Stepper(model.config, model.weights)
    # Pieces that only repeat their note, unlike anything the tiny model writes (it learnt scales).
    target = [[Event((60 + i % 7,), 6, 6, 5)] * 24 for i in range(12)]
    critic = fit_critic(model, stepper, "bach", target, candidates=6)
    assert critic.window == 24 and critic.candidates == 6 and critic.feature.shape[0] == 150
    with pytest.raises(ValueError, match="no style 'jazz'"):
        fit_critic(model, stepper, "jazz", target)
    with pytest.raises(ValueError, match="at least 10 training pieces"):
        fit_critic(model, stepper, "bach", target[:3])
    artifact.set_defaults(path, critic_by_style={"bach": critic.to_dict()})
    judged = artifact.load(path)
    assert judged.critic_for("bach").to_dict() == critic.to_dict()
    assert judged.critic_for("folk") is None
    requests = [
        PieceRequest(length=24, seed=i, style=judged.vocabulary.styles.index("bach"), outlines=())
        for i in range(8)
    ]
    alone = generate_requests(judged, stepper, requests, 16, critics=False)
    chosen = generate_requests(judged, stepper, requests, 16)
    repeats = [np.mean([features(m.events)["top line: unison"] for m in group]) for group in (alone, chosen)]
    assert repeats[1] > repeats[0]  # the critic chose the candidates that repeat most, as the target


def test_the_composer_draws_the_critic_s_candidates_for_new_pieces_only(
    tiny_model_path, tmp_path, watch_submissions
):
    path, critic = _judged_copy(tiny_model_path, tmp_path / "judged.cadenza", 2, candidates=5)
    artifact.set_defaults(path, critic_by_style={"bach": critic.to_dict()})
    composer = Composer(ComposerSettings(model=path), workers=1)
    try:
        submitted = watch_submissions(composer)
        new = composer.compose_sync(ComposeRequest(length=30, seed=3, style="bach"), tmp_path / "new")
        assert len(submitted) == 5 and "choose" in new.timings
        # The piece kept is the candidate the critic finds likeliest real.
        vocabulary = composer.load().vocabulary
        drawn = [future.result() for _, future in submitted]
        decoded = [[vocabulary.decode_event(row) for row in result.rows] for result in drawn]
        kept = drawn[critic.most_real(decoded)]
        assert new.log_likelihood == round(kept.log_likelihood, 4)
        assert len({round(r.log_likelihood, 4) for r in drawn}) > 1  # five different pieces
        submitted.clear()
        composer.compose_sync(ComposeRequest(length=30, seed=3, style="folk"), tmp_path / "folk")
        assert len(submitted) == 1  # no critic for folk: one candidate
        submitted.clear()
        composer.compose_sync(
            ComposeRequest(length=20, seed=3, style="bach", primer=new.midi), tmp_path / "more"
        )
        # A continuation follows its piece, not the critic: its own number, the nearest kept.
        assert len(submitted) == composer.settings.continuation_candidates == 8
    finally:
        composer.close()


def test_the_evaluate_command_fits_and_keeps_a_critic(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CADENZA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(14):
        _write_tune(folder / f"tune{i}.mid", stepwise(rng, 30))
    train = ["--midi-dir", str(folder), "--epochs", "1", "--units", "8", "--quiet", "--out", "models/m"]
    assert main(train) == 0
    fit = ["--fit-critic", "mine", "--candidates", "3", "--pieces", "2", "--length", "30", "--tell-apart"]
    assert main(["evaluate", "models/m.cadenza", *fit]) == 0
    assert "critic for mine" in capsys.readouterr().out
    model = artifact.load(tmp_path / "models" / "m.cadenza")
    critic = model.critic_for("mine")
    assert critic is not None and critic.candidates == 3
    (result,) = json.loads((tmp_path / "reports" / "m" / "report.json").read_text())["models"]
    assert result["decoding"].endswith("mine: the critic's choice of 3")
    assert not critic.own_keys
    assert main(["evaluate", "models/m.cadenza", "--no-critic", "--pieces", "2", "--length", "30"]) == 0
    keyed = ["--fit-critic", "mine", "--candidate-keys", "--pieces", "1", "--length", "20"]
    assert main(["evaluate", "models/m.cadenza", *keyed]) == 0
    assert artifact.load(tmp_path / "models" / "m.cadenza").critic_for("mine").own_keys
    with pytest.raises(SystemExit):
        main(["evaluate", "models/m.cadenza", "--candidate-keys"])
    assert "--candidate-keys is a setting of the critic" in capsys.readouterr().err
    assert main(["evaluate", "models/m.cadenza", "--fit-critic", "jazz"]) == 2
    assert "no style 'jazz'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "models/m.cadenza", "--fit-critic", "mine", "--no-critic"])


def _write_tune(path: Path, events: list[Event]) -> None:
    """A one-track MIDI file of ``events`` (12 ticks a quarter scaled to 480)."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    for event in events:
        for pitch in event.pitches:
            track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
        for n, pitch in enumerate(event.pitches):
            track.append(
                mido.Message("note_off", note=pitch, velocity=0, time=event.ioi * 40 if n == 0 else 0)
            )
    mid.tracks.append(track)
    mid.save(path)


def test_tell_apart_is_fooled_less_by_chosen_candidates():
    rng = np.random.default_rng(4)
    real = [stepwise(rng) for _ in range(30)]
    critic = _fitted([stepwise(rng) for _ in range(30)], [_mixed(rng) for _ in range(30)])
    alone = [_mixed(rng) for _ in range(30)]
    chosen = []
    for _ in range(30):
        group = [_mixed(rng) for _ in range(6)]
        chosen.append(group[critic.most_real(group)])
    before = tell_apart(real, alone)["accuracy"]["random forest"]["mean"]
    after = tell_apart(real, chosen)["accuracy"]["random forest"]["mean"]
    assert after < before


def _mixed(rng: np.random.Generator) -> list[Event]:
    """Half the time a stepwise melody, half the time one of leaps: a model that is right half the time."""
    return stepwise(rng) if rng.random() < 0.5 else leaping(rng)


def test_a_long_piece_draws_fewer_candidates():
    rng = np.random.default_rng(5)
    critic = replace(
        _fitted([stepwise(rng) for _ in range(10)], [leaping(rng) for _ in range(10)]), candidates=16
    )
    assert candidate_count(critic, 80) == 16  # a chorale's length: the critic's own number
    assert candidate_count(critic, 500) == CANDIDATE_EVENTS // 500 == 8
    assert candidate_count(critic, 100_000) == 1
    assert candidate_count(critic, 500, asked=3) == 3  # COMPOSER_CANDIDATES or --candidates
    assert candidate_count(None, 80) == 1 and candidate_count(None, 80, asked=4) == 4


def test_candidates_that_draw_their_own_keys_are_settled_in_the_key_of_the_one_kept(
    tiny_model_path, tmp_path, watch_submissions
):
    path, critic = _judged_copy(tiny_model_path, tmp_path / "keyed.cadenza", 6, candidates=6, own_keys=True)
    artifact.set_defaults(
        path,
        critic_by_style={"bach": critic.to_dict()},
        keys_by_style={"bach": {"C": 0.25, "Am": 0.25, "Eb": 0.25, "F#m": 0.25}},
    )
    assert Critic.from_dict(critic.to_dict()).own_keys
    keys = artifact.load(path).keys_for("bach")
    assert draw_key(keys, 11, 0) == draw_key(keys, 11)  # the first candidate keeps the seed's key
    drawn = [draw_key(keys, 11, c) for c in range(6)]
    assert len(set(drawn)) > 1
    composer = Composer(ComposerSettings(model=path), workers=1)
    try:
        submitted = watch_submissions(composer)
        new = composer.compose_sync(ComposeRequest(length=30, seed=11, style="bach"), tmp_path / "new")
        model = composer.load()
        for piece, _ in submitted:  # each candidate opens on its own key's tonic chord
            guide = model.key_guide("bach", 11, None, piece.candidate)
            assert piece.opening == guide["opening"]
        results = [future.result() for _, future in submitted]
        kept = choose(results, critic, model.vocabulary, key=drawn[0])
        assert new.log_likelihood == round(kept.log_likelihood, 4)
        modes = [detect_key([model.vocabulary.decode_event(row) for row in r.rows]).minor for r in results]
        assert drawn[0].minor in modes  # so the one kept came out in the mode the seed drew
        assert parse_key(new.key).minor == drawn[0].minor
        assert new.key == str(draw_key(keys, 11, kept.candidate))  # settled in the kept one's key
        assert drawn[kept.candidate] != drawn[0]  # here the critic kept a candidate in another key
        submitted.clear()
        composer.compose_sync(ComposeRequest(length=30, seed=11, style="bach", key="D"), tmp_path / "d")
        assert {piece.opening for piece, _ in submitted} == {()}  # a key asked for is every candidate's
    finally:
        composer.close()
