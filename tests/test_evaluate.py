"""Evaluation: metrics on hand-made sequences with known answers, and the report end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from composer.events import Event
from composer.generation.sampling import SamplingOptions
from composer.model import artifact
from composer.model.network import ModelConfig
from tests.conftest import scale_piece
from training import metrics
from training.cli import main
from training.evaluate import evaluate, write_report


def melody(pitches, ticks=6):
    return [Event((p,), ticks, ticks, 4) for p in pitches]


def test_a_pure_loop_loops_and_a_scale_does_not():
    assert metrics.loops(melody([60, 62, 64, 65] * 60))
    assert metrics.loops(melody([60] * 250))
    assert metrics.loops(melody(list(range(40, 56)) * 20))  # a pattern of exactly 16
    assert not metrics.loops(melody(list(range(40, 57)) * 20))  # 17 is too long
    assert not metrics.loops(melody(range(30, 90)))
    assert not metrics.loops([])
    # A loop must fill the last 200 events: varied music before it does not matter, a break in it does.
    assert metrics.loops(melody(list(range(30, 90)) + [60, 64] * 100))
    assert not metrics.loops(melody([60, 64] * 60 + [61] + [60, 64] * 60))


def test_loops_compare_pitch_sets_not_rhythm():
    rhythms = [Event((60,), 3 + i % 5, 3 + i % 5, i % 8) for i in range(240)]
    assert metrics.loops(rhythms)


def test_scale_consistency():
    c_major = melody([60, 62, 64, 65, 67, 69, 71, 72])
    assert metrics.scale_consistency(c_major) == 1.0
    assert metrics.scale_consistency([e.transposed(3) for e in c_major]) == 1.0  # any key
    assert metrics.scale_consistency(melody([57, 59, 60, 62, 64, 65, 68, 69])) == 1.0  # A harmonic minor
    chromatic = melody(range(60, 72))
    assert metrics.scale_consistency(chromatic) == pytest.approx(8 / 12)  # minor with its leading tone
    chord = [Event((60, 61, 62, 63), 12, 12, 4)]  # every pitch of a chord is a note; no scale holds all four
    assert metrics.scale_consistency(chord) == pytest.approx(3 / 4)


def test_histogram_overlap():
    a = metrics.pitch_class_distribution([melody([60, 64, 67])])
    assert a.sum() == pytest.approx(1.0)
    assert metrics.histogram_overlap(a, a) == pytest.approx(1.0)
    assert metrics.histogram_overlap(a, 5 * a) == pytest.approx(1.0)  # shape, not size
    assert metrics.histogram_overlap(a, metrics.pitch_class_distribution([melody([61, 66])])) == 0.0
    half = metrics.pitch_class_distribution([melody([60, 62])])
    assert metrics.histogram_overlap(half, metrics.pitch_class_distribution([melody([60, 64])])) == 0.5
    # Notes weigh by how long they sound.
    weighted = metrics.pitch_class_distribution([[Event((60,), 18, 18, 4), Event((62,), 6, 6, 4)]])
    assert weighted[0] == pytest.approx(0.75) and weighted[2] == pytest.approx(0.25)


def test_entropies_polyphony_and_range():
    assert metrics.ioi_entropy(melody([60, 62, 64, 65])) == 0.0
    two = [Event((60,), 6, 6, 4), Event((62,), 12, 12, 4)] * 5
    assert metrics.ioi_entropy(two) == pytest.approx(1.0)
    assert metrics.duration_entropy(two) == pytest.approx(1.0)
    assert metrics.entropy([1, 2, 3, 4]) == pytest.approx(2.0)
    chords = [Event((48, 60), 6, 6, 4), Event((50, 62, 65, 69), 6, 6, 4)]
    assert metrics.polyphony(chords) == 3.0
    assert metrics.pitch_range(chords) == 21
    assert metrics.polyphony([]) == 0.0 and metrics.pitch_range([]) == 0


def test_proper_ending():
    assert metrics.proper_ending(500, True, 500)
    assert metrics.proper_ending(450, True, 500) and metrics.proper_ending(550, True, 500)
    assert not metrics.proper_ending(449, True, 500)
    assert not metrics.proper_ending(500, False, 500)  # forced, not chosen


def test_ioi_distribution():
    assert metrics.ioi_distribution([melody([60, 62], 6), melody([64, 65], 12)]) == {6: 0.5, 12: 0.5}


@pytest.fixture(scope="module")
def tiny_report(tiny_model_path, tiny_pieces, tmp_path_factory):
    model = artifact.load(tiny_model_path)
    result = evaluate(model, tiny_pieces, pieces=4, length=30, seed=3, batch=3)
    out = tmp_path_factory.mktemp("report")
    written = write_report([result], {"pieces": 4, "length": 30, "seed": 3}, out)
    return result, written, out


def test_evaluate_the_tiny_model(tiny_report, tiny_pieces):
    result, written, out = tiny_report
    validation = result["validation"]
    assert validation["pieces"] == len(tiny_pieces)
    assert validation["events"] == sum(len(p.events) + 1 for p in tiny_pieces)  # each piece's end marker too
    assert set(validation["nll"]) == {"pitch", "duration", "ioi", "velocity", "total"}
    assert all(v > 0 and math.isfinite(v) for v in validation["nll"].values())
    assert validation["nll"]["total"] == pytest.approx(
        sum(v for k, v in validation["nll"].items() if k != "total")
    )
    assert all(0 <= v <= 1 for v in validation["accuracy"].values())
    assert set(validation["by_style"]) == {"bach", "folk"}
    generated = result["generated"]
    assert [p["seed"] for p in generated["pieces"]] == [3, 4, 5, 6]
    assert {p["style"] for p in generated["pieces"]} == {"bach", "folk"}
    assert all(27 <= p["events"] <= 33 for p in generated["pieces"])
    assert generated["all"]["pieces"] == 4 and set(generated["by_style"]) == {"bach", "folk"}
    assert 0 <= generated["all"]["pitch_class_overlap"] <= 1
    held = result["held_out"]["all"]
    assert held["scale_consistency"] == 1.0  # the hand-made pieces are major scales
    assert "proper_ending" not in held and held["pieces"] == len(tiny_pieces)
    assert {p.name for p in written} == {"report.json", "report.md", "pitch_classes.png", "ioi.png"}
    assert json.loads((out / "report.json").read_text())["models"][0]["generated"]["all"] == generated["all"]
    report = (out / "report.md").read_text()
    assert "| figure | tiny | held-out | target | met? |" in report
    assert "## Style folk" in report and "| loop rate |" in report
    assert (out / "ioi.png").read_bytes()[:4] == b"\x89PNG"


def test_the_same_seeds_give_the_same_figures(tiny_report, tiny_model_path, tiny_pieces):
    again = evaluate(artifact.load(tiny_model_path), tiny_pieces, pieces=4, length=30, seed=3, batch=4)
    assert again["generated"]["pieces"] == tiny_report[0]["generated"]["pieces"]  # batching changes nothing


def test_seed_architecture_is_decoded_the_seed_way(tiny_pieces, tiny_report, tmp_path):
    from training.train import TrainOptions, train

    config = ModelConfig(arch="seed", units=8, layers=1, dropout=0.0, dense_units=8)
    options = TrainOptions(
        out=tmp_path / "seedling",
        model=config,
        epochs=1,
        batch_size=8,
        sequence_length=16,
        validation=0.25,
        verbose=0,
    )
    seed_model = artifact.load(train(options, pieces=tiny_pieces).path)
    result = evaluate(seed_model, tiny_pieces, pieces=2, length=20)
    assert set(result["validation"]["nll"]) == {"pitch"}
    assert "argmax" in result["decoding"]
    pieces = result["generated"]["pieces"]
    assert result["distributions"]["generated"]["ioi"] == {"6": 1.0}  # every note an eighth note
    assert all(p["ioi_entropy"] == 0.0 and p["duration_entropy"] == 0.0 for p in pieces)
    write_report([tiny_report[0], result], {"pieces": 4, "length": 30, "seed": 3}, tmp_path / "both")
    report = (tmp_path / "both" / "report.md").read_text()
    assert "| figure | tiny | held-out | target | met? | seedling | met? |" in report
    nll_row = next(line for line in report.splitlines() if line.startswith("| validation NLL, pitch"))
    ours, theirs = result["validation"]["nll"]["pitch"], tiny_report[0]["validation"]["nll"]["pitch"]
    assert ("yes" if theirs < ours else "**no**") in nll_row.split("|")[5]


def test_evaluate_command_rebuilds_the_held_out_set(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CADENZA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    train_args = ["--corpus", "bach", "--max-files", "3", "--epochs", "1", "--units", "16", "--quiet"]
    assert main([*train_args, "--out", "models/small"]) == 0
    model = artifact.load(tmp_path / "models" / "small.cadenza")
    assert main(["evaluate", "models/small.cadenza", "--pieces", "2", "--length", "40"]) == 0
    report = json.loads((tmp_path / "reports" / "small" / "report.json").read_text())
    (result,) = report["models"]
    assert sorted(p["name"] for p in result["held_out"]["pieces"]) == model.training["validation_pieces"]
    assert report["settings"] == {"pieces": 2, "length": 40, "seed": 0}
    assert np.isfinite(result["validation"]["nll"]["total"])
    assert "wrote reports/small/report.json" in capsys.readouterr().out
    # Other sampling and candidates reach the generated pieces, and the report says so.
    other = ["--temperature", "1.2", "--top-p", "0.97", "--candidates", "3", "--out", "reports/other"]
    assert main(["evaluate", "models/small.cadenza", "--pieces", "2", "--length", "40", *other]) == 0
    (result,) = json.loads((tmp_path / "reports" / "other" / "report.json").read_text())["models"]
    assert result["decoding"].startswith("sampling at temperature 1.2, top-p 0.97")
    assert result["decoding"].endswith("the likeliest of 3 candidates")
    other = ["--min-p", "0.1", "--field-temperature", "ioi=0.7", "--top-p", "1", "--out", "reports/min-p"]
    assert main(["evaluate", "models/small.cadenza", "--pieces", "2", "--length", "40", *other]) == 0
    (result,) = json.loads((tmp_path / "reports" / "min-p" / "report.json").read_text())["models"]
    assert result["decoding"].startswith("sampling at temperature 0.8, ioi at 0.7, min-p 0.1 (")
    for bad in (["--field-temperature", "chord=1"], ["--field-temperature", "ioi"], ["--min-p", "2"]):
        assert main(["evaluate", "models/small.cadenza", *bad]) == 2
        assert "error:" in capsys.readouterr().err
    # --keep-for writes the options measured into the model as the style's own for new pieces.
    keep = ["--min-p", "0.1", "--top-p", "1", "--key-lean", "1", "--keep-for", "bach"]
    keep += ["--out", "reports/kept"]
    assert main(["evaluate", "models/small.cadenza", "--pieces", "2", "--length", "40", *keep]) == 0
    kept = artifact.load(tmp_path / "models" / "small.cadenza").sampling_for("bach")
    assert kept == SamplingOptions(top_p=1.0, min_p=0.1, key_lean=1.0)
    assert main(["evaluate", "models/small.cadenza", "--temperature", "1.1", "--keep-for", "folk"]) == 2
    assert "no style 'folk'; it has bach" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "models/small.cadenza", "--keep-for", "bach"])  # nothing to keep
    assert "give them too" in capsys.readouterr().err
    # --fit-leans fits bach's line leans to the model's own training pieces, then keeps them.
    fit = ["--temperature", "1.0", "--fit-leans", "--keep-for", "bach", "--out", "reports/fit"]
    assert main(["evaluate", "models/small.cadenza", "--pieces", "2", "--length", "40", *fit]) == 0
    kept = artifact.load(tmp_path / "models" / "small.cadenza").sampling_for("bach")
    assert kept.temperature == 1.0 and kept.leans
    fitted = (tmp_path / "reports" / "fit" / "leans-bach.md").read_text()
    assert "| training pieces |" in fitted and kept.describe() in fitted
    with pytest.raises(SystemExit):
        main(["evaluate", "models/small.cadenza", "--temperature", "1", "--fit-leans"])
    assert "--fit-leans fits the leans of the style --keep-for names" in capsys.readouterr().err


def test_evaluate_command_refuses_a_model_without_sources(tiny_model_path, tmp_path, capsys):
    assert main(["evaluate", str(tiny_model_path), "--out", str(tmp_path)]) == 2
    assert "held-out" in capsys.readouterr().err


def test_tell_apart_per_style_in_the_report(tiny_model_path, tmp_path):
    held_out = [scale_piece(f"h{i}", 50 + i, "bach") for i in range(6)]
    # Real against real: training pieces of the same kind (scales) are told apart at about chance.
    training = [scale_piece(f"t{i}", 52 + i, "bach") for i in range(8)]
    model = artifact.load(tiny_model_path)
    result = evaluate(model, held_out, pieces=2, length=20, telling=True, reference=training)
    figures = result["tell_apart"]["bach"]
    assert figures["pieces"] == 6 and figures["length"] == len(held_out[0].events)
    assert set(figures["accuracy"]) == {"logistic regression", "random forest"}
    assert set(figures["reference"]) == set(figures["accuracy"])
    assert (
        figures["reference"]["logistic regression"]["mean"]
        < figures["accuracy"]["logistic regression"]["mean"]
    )
    assert "folk" not in result["tell_apart"]  # no held-out folk pieces to compare with
    paths = write_report([result], {"pieces": 2, "length": 20, "seed": 0}, tmp_path)
    text = paths[1].read_text()
    assert "## Telling generated pieces from real ones" in text
    assert "What gives" in text
    assert "| real against real | bach | 6 | — |" in text


def test_each_tell_apart_seed_draws_its_own_pieces(tiny_model_path, monkeypatch):
    """Seeds 0 and 1 judge different generated pieces, not the same ones shifted by one."""
    from composer.model.stepper import Stepper
    from training import evaluate as evaluation

    held_out = [scale_piece(f"h{i}", 50 + i, "bach") for i in range(6)]
    model = artifact.load(tiny_model_path)
    stepper = Stepper(model.config, model.weights)
    seeds: list[int] = []
    generate_requests = evaluation.generate_requests

    def recording(model, stepper, requests, *args, **kwargs):
        seeds.extend(r.seed for r in requests)
        return generate_requests(model, stepper, requests, *args, **kwargs)

    monkeypatch.setattr(evaluation, "generate_requests", recording)
    evaluation.tell_apart_figures(model, stepper, held_out, seed=0)
    first = set(seeds)
    seeds.clear()
    evaluation.tell_apart_figures(model, stepper, held_out, seed=1)
    assert len(first) == len(set(seeds)) == 6 and not first & set(seeds)


def test_evaluation_samples_each_style_as_the_composer_does(tiny_model_path, tmp_path):
    import shutil

    from composer.generation.sampling import SamplingOptions
    from training.evaluate import decoding, style_settings

    path = shutil.copy(tiny_model_path, tmp_path / "tuned.cadenza")
    own = SamplingOptions(temperature=1.0, top_p=1.0, min_p=0.05, field_temperatures={"ioi": 0.9})
    artifact.set_defaults(path, sampling_by_style={"folk": own.to_dict()})
    model = artifact.load(path)
    settings, described = decoding(model)
    assert style_settings(model, settings, "folk")["sampling"] == own
    assert style_settings(model, settings, "bach")["sampling"] == SamplingOptions()
    assert "bach: temperature 0.8, top-p 0.9; folk: temperature 1, ioi at 0.9, min-p 0.05" in described
    # Sampling asked for on the command line applies to every style.
    asked = SamplingOptions(temperature=1.2)
    settings, described = decoding(model, asked)
    assert style_settings(model, settings, "folk")["sampling"] == asked
    assert described.startswith("sampling at temperature 1.2, top-p 0.9 (")
