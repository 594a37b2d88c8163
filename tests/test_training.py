"""Training: data preparation with known answers, and the real command on real files."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import mido
import numpy as np
import pytest

from composer.model import artifact
from composer.model.vocabulary import END, PAD, START
from tests.conftest import scale_piece
from training import dataset
from training.cli import main, parser
from training.sources import collect
from training.train import TrainOptions, train

REPO = Path(__file__).resolve().parent.parent


def test_split_is_by_piece_and_reproducible():
    pieces = [scale_piece(f"p{i}", 60, "x") for i in range(10)]
    train, valid = dataset.split_by_piece(pieces, 0.2, seed=1)
    assert len(valid) == 2 and len(train) == 8
    assert not {p.name for p in train} & {p.name for p in valid}
    assert dataset.split_by_piece(pieces, 0.2, seed=1)[1] == valid


def test_transpositions_stay_on_the_piano():
    piece = scale_piece("low", 24, "x")  # the closing chord reaches down to 12: already off the piano
    assert dataset.transpositions(piece, [-3, 0, 3]) == [piece]
    piece = scale_piece("mid", 60, "x")
    moved = dataset.transpositions(piece, [-2, 0, 2])
    assert [m.events[0].pitches[0] for m in moved] == [58, 60, 62]


def test_windows_frame_and_pad():
    rows = [np.arange(12, dtype=np.int32).reshape(3, 4) + 3]  # three rows
    w = dataset.windows(rows, [0], length=4)
    assert len(w) == 1
    np.testing.assert_array_equal(w.inputs["pitch"][0], [3, 7, PAD, PAD])
    np.testing.assert_array_equal(w.targets["pitch"][0], [7, 11, PAD, PAD])
    assert w.events == 2
    long = [np.full((10, 4), 5, np.int32)]
    w = dataset.windows(long, [1], length=4, stride=2)
    assert len(w) == 4 and (w.inputs["style"] == 1).all()  # starts 0, 2, 4 and the last full one, 5


def test_train_on_the_bundled_corpus_with_cache(tmp_path, monkeypatch):
    """``python -m training`` as a user runs it: quiet, its run folder beside the model."""
    monkeypatch.setenv("CADENZA_CACHE_DIR", str(tmp_path / "cache"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")} | {"PYTHONPATH": str(REPO)}
    args = ["--corpus", "bach", "--max-files", "3", "--epochs", "1", "--units", "16", "--quiet"]
    result = subprocess.run(
        [sys.executable, "-m", "training", *args, "--out", "models/first"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for chatter in ("oneDNN", "absl", "cpu_feature_guard", "rebuild TensorFlow"):
        assert chatter not in result.stderr
    assert result.stdout.startswith("wrote models/first.cadenza")
    loaded = artifact.load(tmp_path / "models" / "first.cadenza")
    assert loaded.vocabulary.styles == ("bach",)
    assert loaded.training["pieces"]["train"] + loaded.training["pieces"]["validation"] == 3
    assert "python -m training" in loaded.training["command"]
    assert (tmp_path / "models" / "runs" / "first" / "state.json").is_file()
    assert not (tmp_path / "runs").exists()  # nothing in the folder it was started from
    assert collect(["bach"], limit=3).cached == 3  # the second run parses nothing


def _tune(path, pitches):
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    for p in pitches:
        track += [mido.Message("note_on", note=p, velocity=80), mido.Message("note_off", note=p, time=240)]
    mid.tracks.append(track)
    mid.save(path)


def test_train_on_a_midi_folder_skips_broken_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CADENZA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(3):
        _tune(folder / f"tune{i}.mid", [60 + i, 62, 64, 65, 67, 65, 64, 62, 60, 67, 72, 60])
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x05\x01")
    args = ["--midi-dir", str(folder), "--epochs", "1", "--units", "8", "--quiet"]
    assert main([*args, "--out", "m", "--runs-dir", "elsewhere"]) == 0
    assert (tmp_path / "elsewhere" / "m" / "state.json").is_file() and not (tmp_path / "runs").exists()
    loaded = artifact.load(tmp_path / "m.cadenza")
    assert loaded.training["pieces"]["skipped"] == 1
    assert loaded.vocabulary.styles == ("mine",)


def test_training_needs_a_source(capsys):
    with pytest.raises(SystemExit):
        main(["--out", "x"])
    assert "--corpus or --midi-dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--corpus", "bach", "--arch", "seed", "--line-moves", "--out", "x"])
    assert "line moves need the lstm network" in capsys.readouterr().err


def test_encoded_pieces_are_framed():
    pieces = [scale_piece("a", 60, "s")]
    vocab = dataset.build_vocabulary(pieces, ("s",), 100)
    rows, styles, unknown = dataset.encode_pieces(pieces, vocab)
    assert rows[0][0].tolist() == [START] * 4 and rows[0][-1].tolist() == [END] * 4
    assert styles == [0] and unknown == 0


def test_max_files_takes_a_number_for_every_source_or_one_source():
    args = parser().parse_args(
        ["--corpus", "oneill", "--out", "x", "--max-files", "oneill=3", "--max-files", "2"]
    )
    assert dict(args.max_files) == {"oneill": 3, "*": 2}
    for bad in ("oneill=0", "oneill=", "three"):
        with pytest.raises(SystemExit):
            parser().parse_args(["--out", "x", "--max-files", bad])


def test_collect_limits_files_per_source(tmp_path, monkeypatch):
    monkeypatch.setenv("CADENZA_CACHE_DIR", str(tmp_path / "cache"))
    for folder in ("few", "many"):
        (tmp_path / folder).mkdir()
        for i in range(3):
            _tune(tmp_path / folder / f"{folder}{i}.mid", [60 + i, 62, 64, 65, 67, 65, 64, 62, 60])
    folders = [tmp_path / "few", tmp_path / "many"]
    got = collect(midi_dirs=folders, workers=2, limit={"few": 1, "*": 2})
    assert sorted(p.name for p in got.pieces) == ["few0", "many0", "many1"]
    assert len(collect(midi_dirs=folders, workers=2, limit=1).pieces) == 2


def test_each_style_gets_its_own_default_tempo():
    from dataclasses import replace

    from tests.conftest import scale_piece
    from training.dataset import tempo_defaults

    pieces = [scale_piece("a", 60, "bach"), scale_piece("b", 62, "bach"), scale_piece("c", 64, "folk")]
    pieces[2] = replace(pieces[2], tempo=200.0)
    per_event = round((12 * 12 + 36 * 6 + 24) / 49 / 12, 3)  # 48 eighths and quarters, then a half
    assert tempo_defaults(pieces) == {
        "tempo": 96.0,
        "tempo_by_style": {"bach": 96.0, "folk": 200.0},
        "quarters_per_event_by_style": {"bach": per_event, "folk": per_event},
    }


def _fine_tuning(base, out, **changes) -> TrainOptions:
    """Options for a quick fine-tune of ``base`` (the tiny model) into ``out``."""
    quick = dict(epochs=2, batch_size=8, sequence_length=16, validation=0.2, verbose=0, learning_rate=5e-3)
    return TrainOptions(out=out, base=base, runs_dir=out.parent / "runs", **{**quick, **changes})


def test_fine_tuning_extends_the_vocabulary_and_starts_where_the_base_stopped(tiny_model_path, tmp_path):

    from composer.model.vocabulary import MARKERS
    from training.finetune import extended_vocabulary

    base = artifact.load(tiny_model_path)
    # New pieces: a new key (new chords), a new rhythm (dotted quarters) and a new style.
    new = [scale_piece(f"n{i}", 70 + i, "mine") for i in range(6)]
    new = [replace(p, events=tuple(replace(e, duration=18, ioi=18) for e in p.events)) for p in new]
    extended = extended_vocabulary(base.vocabulary, (p.events for p in new), ["mine"], 100)
    assert set(base.vocabulary.pitch_sets) < set(extended.pitch_sets)
    assert 18 in extended.durations and 18 not in base.vocabulary.durations
    assert extended.styles == (*base.vocabulary.styles, "mine")

    report = train(_fine_tuning(tiny_model_path, tmp_path / "mine", learning_rate=5e-4), pieces=new)
    tuned = artifact.load(report.path)
    assert tuned.config == base.config
    assert tuned.vocabulary.styles == extended.styles
    assert report.training["fine_tuned_from"]["model"] == str(tiny_model_path)
    # Known chords keep their place in the pitch embedding's neighbourhood: rows moved, not reset.
    old_rows = base.weights["embed_pitch"][0]
    new_rows = tuned.weights["embed_pitch"][0]
    for chord in base.vocabulary.pitch_sets[:5]:
        before = old_rows[base.vocabulary.nearest("pitch", chord)]
        after = new_rows[tuned.vocabulary.nearest("pitch", chord)]
        assert np.abs(after - before).max() < 0.05
    assert new_rows.shape[0] == len(tuned.vocabulary.pitch_sets) + MARKERS
    assert set(base.vocabulary.pitch_sets) < set(tuned.vocabulary.pitch_sets)


def test_fine_tuning_can_add_line_moves_to_a_model_without_them(tiny_model_path, tmp_path):
    """``--from MODEL --line-moves``: the base's network plus the move layer, whose outlines are
    the extended vocabulary's and whose logits were learnt from zero."""
    base = artifact.load(tiny_model_path)
    assert not base.config.line_moves
    new = [scale_piece(f"n{i}", 70 + i, "bach") for i in range(6)]
    options = _fine_tuning(tiny_model_path, tmp_path / "moved", model=replace(base.config, line_moves=True))
    tuned = artifact.load(train(options, pieces=new).path)
    assert tuned.config == replace(base.config, line_moves=True)
    assert len(tuned.vocabulary.pitch_sets) > len(base.vocabulary.pitch_sets)
    np.testing.assert_array_equal(tuned.weights["line_moves"][0], tuned.vocabulary.outlines)
    assert np.abs(tuned.weights["moves"][0]).max() > 0  # learnt, from zero


def test_a_model_fine_tuned_on_its_own_sets_lists_each_licence_once(tiny_model_path):
    from training.corpora import corpus_set
    from training.train import _licences

    base = artifact.load(tiny_model_path)
    bach = corpus_set("bach").to_dict("bach")
    mine = {"name": "mine", "description": "a folder", "licence": "the owner's"}
    base = replace(base, training={"sources": {"licences": [bach, mine]}})
    listed = _licences(["bach", "oneill"], base)
    assert [entry["name"] for entry in listed] == ["bach", "oneill", "mine"]
    assert _licences(["oneill"], None) == [corpus_set("oneill").to_dict("oneill")]


def test_transplanted_network_predicts_as_the_base_did(tiny_model_path):

    from composer.model.network import build_model
    from composer.model.stepper import Stepper, weights_from_keras
    from training.finetune import extended_vocabulary, transplant

    base = artifact.load(tiny_model_path)
    piece = scale_piece("x", 60, "bach")
    extended = extended_vocabulary(base.vocabulary, [piece.events], ["mine"], 50)
    model = build_model(base.config, extended.sizes, len(extended.styles))
    transplant(base, extended, model)
    old, new = Stepper(base.config, base.weights), Stepper(base.config, weights_from_keras(model))
    rows_old = base.vocabulary.encode(list(piece.events)).rows
    rows_new = extended.encode(list(piece.events)).rows
    so, sn = old.initial_state(1), new.initial_state(1)
    style = base.vocabulary.style_id("bach")
    for a, b in zip(rows_old[:10], rows_new[:10], strict=True):
        lo, so = old.step(a[None], np.array([style]), so)
        ln, sn = new.step(b[None], np.array([style]), sn)
    # Every chord the base knew gets the logit it had.
    known = [extended.nearest("pitch", c) for c in base.vocabulary.pitch_sets]
    np.testing.assert_allclose(ln["pitch"][0, known], lo["pitch"][0, 3:], atol=1e-4)


def test_training_records_each_styles_key_spread(tiny_model_path):
    model = artifact.load(tiny_model_path)
    spread = model.defaults["keys_by_style"]
    assert set(spread) == set(model.vocabulary.styles)
    for shares in spread.values():
        assert abs(sum(shares.values()) - 1) < 1e-3
    assert model.keys_for("bach") == spread["bach"] and model.keys_for("jazz") == {}
