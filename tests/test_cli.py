"""The command line: what a user sees, good input and bad."""

from __future__ import annotations

import os
import subprocess
import sys

import mido
import pytest

from composer.cli import main

MUSIC21_MIDI = __import__("pathlib").Path(__import__("music21").__file__).parent / "midi" / "testPrimitive"


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_compose_prints_what_it_wrote(capsys, tmp_path, tiny_model_path):
    code, out, err = run_cli(
        capsys, "compose", 12, "--seed", 3, "--out", tmp_path, "--model", tiny_model_path
    )
    assert code == 0, err
    assert "seed 3" in out and "wrote" in out and "generate" in out
    assert {p.suffix for p in tmp_path.iterdir()} >= {".mid", ".png"}


def _drum_only(path):
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    for _ in range(4):
        track += [
            mido.Message("note_on", note=38, velocity=90, channel=9),
            mido.Message("note_off", note=38, velocity=0, channel=9, time=240),
        ]
    mid.tracks.append(track)
    mid.save(path)
    return path


def _empty(path):
    mid = mido.MidiFile()
    mid.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    mid.save(path)
    return path


def _truncated(path):
    data = (MUSIC21_MIDI / "test05.mid").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _text(path):
    path.write_text("These are the lyrics, not a MIDI file.\n")
    return path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compose", "-5"], "from 1 to 2000"),
        (["compose", "0"], "from 1 to 2000"),
        (["compose", "99999999"], "from 1 to 2000"),
        (["compose", "10", "--tempo", "9000"], "tempo"),
        (["compose", "10", "--key", "Z"], "not a key"),
    ],
    ids=["negative", "zero", "huge", "tempo", "key"],
)
def test_bad_options(capsys, tmp_path, tiny_model_path, argv, message):
    code, _, err = run_cli(capsys, *argv, "--out", tmp_path / "out", "--model", tiny_model_path)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("make", "message"),
    [(_text, "not a MIDI"), (_truncated, "truncated"), (_empty, "no notes"), (_drum_only, "drums")],
    ids=["text-named-mid", "truncated", "empty", "drum-only"],
)
def test_bad_input_files(capsys, tmp_path, tiny_model_path, make, message):
    source = make(tmp_path / "song.mid")
    out_dir = tmp_path / "out"
    code, _, err = run_cli(capsys, "continue", source, "--out", out_dir, "--model", tiny_model_path)
    assert code == 2
    assert message in err and err.count("\n") == 1, err
    assert not out_dir.exists() or not list(out_dir.iterdir())


def test_missing_file_and_model(capsys, tmp_path, tiny_model_path):
    code, _, err = run_cli(capsys, "continue", tmp_path / "nope.mid", "--model", tiny_model_path)
    assert code == 2 and "no file" in err
    code, _, err = run_cli(capsys, "compose", "5", "--model", tmp_path / "missing.cadenza")
    assert code == 2 and "No model at" in err and "python -m training" in err


def test_python_dash_m_composer_end_to_end(tmp_path, tiny_model_path):
    """The real entry point, as a user runs it, continuing one of music21's test MIDI files."""
    env = dict(os.environ, COMPOSER_MODEL=str(tiny_model_path))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "composer",
            "continue",
            str(MUSIC21_MIDI / "test11.mid"),
            "--length",
            "16",
            "--seed",
            "4",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "16 new events" in done.stdout or "new events" in done.stdout
    assert any(p.suffix == ".mid" for p in tmp_path.iterdir())
    bad = subprocess.run(
        [sys.executable, "-m", "composer", "compose", "-5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_invalid_setting_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("COMPOSER_WORKERS", "lots")
    code, _, err = run_cli(capsys, "compose", "5")
    assert code == 2 and "COMPOSER_WORKERS" in err and err.count("\n") == 1


def test_render_makes_audio_for_midi_files_and_refuses_other_files(capsys, tmp_path):
    import soundfile

    good = tmp_path / "tune.mid"
    good.write_bytes((MUSIC21_MIDI / "test05.mid").read_bytes())
    code, out, err = run_cli(
        capsys, "render", good, _text(tmp_path / "lyrics.mid"), tmp_path / "gone.mid", "--out", tmp_path / "a"
    )
    assert code == 2
    assert "wrote" in out and (tmp_path / "a" / "tune.ogg").exists()
    assert soundfile.info(str(tmp_path / "a" / "tune.ogg")).duration > 1
    assert "lyrics.mid" in err and "not a MIDI file" in err and "There is no file" in err
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["tune.ogg"]  # nothing half-written
    code, out, err = run_cli(capsys, "render", good, "--format", "mp3")
    assert code == 0 and (tmp_path / "tune.mp3").exists()
