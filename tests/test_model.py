"""The network, its artifact and the one-step runner agree with Keras."""

from __future__ import annotations

import zipfile
from dataclasses import replace

import numpy as np
import pytest

from composer.errors import ModelError
from composer.model import artifact
from composer.model.network import ModelConfig, build_model
from composer.model.stepper import Stepper, weights_from_keras
from composer.model.vocabulary import FIELDS, START
from tests.conftest import TINY

SIZES = {"pitch": 40, "duration": 9, "ioi": 11, "velocity": 11}
MOVED = replace(TINY, line_moves=True)


def _outlines(rng):
    """Lowest and highest notes for SIZES' pitch ids: wide apart, so some moves pass the reach."""
    low = rng.integers(30, 70, SIZES["pitch"])
    outlines = np.stack([low, low + rng.integers(0, 20, SIZES["pitch"])], axis=1)
    outlines[:3] = -1000  # the markers
    return outlines


def _randomise_moves(model, rng):
    """The move layer starts at zero (a model given line moves starts where it was): give it values."""
    layer = model.get_layer("moves")
    layer.set_weights([rng.normal(0, 1, w.shape).astype("float32") for w in layer.get_weights()])


def _random_rows(rng, steps):
    rows = np.stack([rng.integers(3, SIZES[f], steps) for f in FIELDS], axis=1)
    rows[0] = START
    return rows.astype(np.int32)


@pytest.mark.parametrize(
    "config",
    [TINY, replace(TINY, chained=False), MOVED, ModelConfig(arch="seed", units=16, layers=3, dense_units=8)],
    ids=["lstm", "independent-heads", "line-moves", "seed"],
)
def test_stepper_matches_full_sequence(config):
    import keras

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    model = build_model(config, SIZES, n_styles=3, outlines=_outlines(rng))
    if config.line_moves:
        _randomise_moves(model, rng)
    rows = _random_rows(rng, 30)
    style = 2
    if config.arch == "seed":
        inputs = {"pitch": rows[None, :, 0].astype("float32")}
    else:
        inputs = {f: rows[None, :, i] for i, f in enumerate(FIELDS)} | {"style": np.full((1, 30), style)}
    following = np.concatenate([rows[1:], rows[:1]])  # the event each step predicts
    inputs |= {f"given_{f}": following[None, :, FIELDS.index(f)] for f in config.given}
    full = {k: np.asarray(v)[0] for k, v in model(inputs, training=False).items()}
    stepper = Stepper(config, weights_from_keras(model))
    state = stepper.initial_state(1)
    for t in range(30):
        logits, state = stepper.step(rows[t][None], np.array([style]), state)
        given = {f: following[t][None, FIELDS.index(f)] for f in FIELDS}
        for name in config.heads:
            got = stepper.condition(name, logits[name], given)
            np.testing.assert_allclose(got[0], full[f"next_{name}"][t], atol=1e-4)
    for t in (0, 9, 29):  # a primer fed in one go: the same logits, and the same state after it
        fed, fed_state = stepper.feed(rows[: t + 1], style, stepper.initial_state(1))
        given = {f: following[t][None, FIELDS.index(f)] for f in FIELDS}
        for name in config.heads:
            got = stepper.condition(name, fed[name], given)
            np.testing.assert_allclose(got[0], full[f"next_{name}"][t], atol=1e-4)
    for mine, stepped in zip(fed_state.h + fed_state.c, state.h + state.c, strict=True):
        np.testing.assert_allclose(mine, stepped, atol=1e-5)


def test_batch_step_equals_single_steps():
    import keras

    keras.utils.set_random_seed(2)
    stepper = Stepper(TINY, weights_from_keras(build_model(TINY, SIZES, 2)))
    rng = np.random.default_rng(1)
    a, b = _random_rows(rng, 5), _random_rows(rng, 5)
    sa, sb, sab = stepper.initial_state(1), stepper.initial_state(1), stepper.initial_state(2)
    for t in range(5):
        la, sa = stepper.step(a[t][None], np.array([0]), sa)
        lb, sb = stepper.step(b[t][None], np.array([1]), sb)
        lab, sab = stepper.step(np.stack([a[t], b[t]]), np.array([0, 1]), sab)
    np.testing.assert_allclose(lab["pitch"], np.concatenate([la["pitch"], lb["pitch"]]), atol=1e-5)


def test_artifact_round_trip(tiny_model_path):
    loaded = artifact.load(tiny_model_path)
    assert loaded.config == TINY
    assert set(loaded.vocabulary.styles) == {"bach", "folk"}
    assert loaded.training["pieces"]["train"] + loaded.training["pieces"]["validation"] == 8
    assert loaded.training["epochs_run"] >= 1
    assert loaded.default_tempo == 96.0
    assert loaded.tempo_for("folk") == loaded.tempo_for("bach") == 96.0
    assert loaded.tempo_for("unknown") == 96.0
    keras_model = artifact.load_keras(tiny_model_path)
    assert keras_model.get_layer("next_pitch").units == loaded.vocabulary.sizes["pitch"]


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="No model at"):
        artifact.load(tmp_path / "nothing.cadenza")


def test_not_a_model_is_a_clear_error(tmp_path):
    bogus = tmp_path / "bogus.cadenza"
    bogus.write_text("hello")
    with pytest.raises(ModelError, match="not a Cadenza model"):
        artifact.load(bogus)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 99}, "format version 99"),
        ({"encoding": {"ticks_per_quarter": 4}}, "different event encoding"),
    ],
    ids=["version", "encoding"],
)
def test_mismatched_model_is_refused(tmp_path, tiny_model_path, change, message):
    import json

    document = json.loads(zipfile.ZipFile(tiny_model_path).read("artifact.json"))
    document.update(change)
    target = tmp_path / "changed.cadenza"
    with zipfile.ZipFile(tiny_model_path) as src, zipfile.ZipFile(target, "w") as dst:
        dst.writestr("artifact.json", json.dumps(document))
        dst.writestr("model.keras", src.read("model.keras"))
    with pytest.raises(ModelError, match=message):
        artifact.load(target)


def test_vocabulary_mismatch_is_refused(tmp_path, tiny_model_path):
    import json

    document = json.loads(zipfile.ZipFile(tiny_model_path).read("artifact.json"))
    document["vocabulary"]["pitch_sets"] = document["vocabulary"]["pitch_sets"][:-1]
    target = tmp_path / "drifted.cadenza"
    with zipfile.ZipFile(tiny_model_path) as src, zipfile.ZipFile(target, "w") as dst:
        dst.writestr("artifact.json", json.dumps(document))
        dst.writestr("model.keras", src.read("model.keras"))
    with pytest.raises(ModelError, match="does not match its vocabulary"):
        artifact.load(target)


@pytest.mark.parametrize(
    "config",
    [TINY, MOVED, ModelConfig(arch="seed", units=8, layers=3, dense_units=4)],
    ids=["lstm", "line-moves", "seed"],
)
def test_weights_read_without_tensorflow_match_keras(tmp_path, config):
    from composer.events import Event
    from composer.model.vocabulary import Vocabulary

    vocab = Vocabulary.build([[Event((60,), 6, 6, 4), Event((62, 65), 12, 12, 5)]], styles=("a", "b"))
    model = build_model(config, vocab.sizes, len(vocab.styles), vocab.outlines)
    path = artifact.save(tmp_path / "m", model, vocab, config)
    direct = artifact.read_weights(path)
    through_keras = weights_from_keras(artifact.load_keras(path))
    assert direct.keys() == through_keras.keys()
    for name, arrays in through_keras.items():
        assert all(np.array_equal(a, b) for a, b in zip(arrays, direct[name], strict=True)), name


def test_per_style_sampling_defaults_are_written_into_a_model_file(tmp_path, tiny_model_path):
    import shutil
    import zipfile

    from composer.errors import InvalidOptionError
    from composer.generation.sampling import SamplingOptions

    path = shutil.copy(tiny_model_path, tmp_path / "tuned.cadenza")
    assert artifact.load(path).sampling_for("folk") is None  # none recorded: the composer's defaults
    folk = SamplingOptions(temperature=1.0, top_p=1.0, min_p=0.05, field_temperatures={"ioi": 0.9})
    artifact.set_defaults(path, sampling_by_style={"folk": folk.to_dict()})
    loaded = artifact.load(path)
    assert loaded.sampling_for("folk") == folk and loaded.sampling_for("bach") is None
    assert loaded.tempo_for("folk") == 96.0  # the other defaults stay
    with zipfile.ZipFile(tiny_model_path) as before, zipfile.ZipFile(path) as after:
        assert before.read("model.keras") == after.read("model.keras")
    artifact.set_defaults(path, sampling_by_style={"folk": {"temperature": 1.0, "heat": 2}})
    with pytest.raises(InvalidOptionError, match="heat"):
        artifact.load(path).sampling_for("folk")


def test_line_moves_score_each_chord_by_its_bass_and_top_moves():
    """The layer's value for a chord is the move logit of its bass plus that of its top, each move
    counted from the chord just played; wider moves share the end logits; markers get nothing."""
    from composer.model.network import MOVE_REACH, MOVES, move_logits

    outlines = np.array([[-1000, -1000]] * 3 + [[48, 60], [50, 67], [20, 100]])
    moves = np.arange(2 * MOVES, dtype=np.float32)[None] * np.array([[1.0], [1.0]], np.float32)
    got = move_logits(moves, outlines, np.array([3, 1]))
    bass_step, top_leap = MOVE_REACH + 2, MOVES + MOVE_REACH + 7
    assert got[0, 4] == moves[0, bass_step] + moves[0, top_leap]  # 48->50 and 60->67
    assert got[0, 3] == moves[0, MOVE_REACH] + moves[0, MOVES + MOVE_REACH]  # the same chord again
    assert got[0, 5] == moves[0, 0] + moves[0, 2 * MOVES - 1]  # -28 and +40: the widest moves
    assert not got[0, :3].any() and not got[1].any()  # markers, and after the start marker


def test_line_moves_added_to_a_trained_model_start_where_it_was(tiny_model_path):
    """Fine-tuning with line moves from a model without them begins with the same predictions."""
    from composer.model import artifact as artifacts
    from training import finetune

    base = artifacts.load(tiny_model_path)
    moved = replace(base.config, line_moves=True)
    model = build_model(moved, base.vocabulary.sizes, len(base.vocabulary.styles), base.vocabulary.outlines)
    finetune.transplant(base, base.vocabulary, model)
    old, new = Stepper(base.config, base.weights), Stepper(moved, weights_from_keras(model))
    rows = np.array([[START] * 4, [5, 4, 4, 4], [6, 5, 4, 4]])
    s_old, s_new = old.initial_state(1), new.initial_state(1)
    for row in rows:
        a, s_old = old.step(row[None], np.array([0]), s_old)
        b, s_new = new.step(row[None], np.array([0]), s_new)
        np.testing.assert_allclose(a["pitch"], b["pitch"], atol=1e-6)
    assert new._moves is not None


def test_a_config_saved_before_chained_heads_and_line_moves_has_neither():
    """Model files keep their network's config; one written before a field existed gets the
    network it was trained as, not the newest default."""
    old = {k: v for k, v in TINY.to_dict().items() if k not in ("chained", "line_moves")}
    assert ModelConfig.from_dict(old) == replace(TINY, chained=False, line_moves=False)
    assert ModelConfig.from_dict(MOVED.to_dict()) == MOVED
    assert ModelConfig.from_dict({**old, "future_option": 1}) == replace(TINY, chained=False)
