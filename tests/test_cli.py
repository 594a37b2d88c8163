"""The command line: what a user sees, good input and bad."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

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
    assert re.match(
        r"Composed \d+ new notes and chords \(\d+ notes in all\) after the 48 of yours: ", done.stdout
    ), done.stdout
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


def test_render_makes_audio_for_midi_files_and_refuses_other_files(capsys, tmp_path, monkeypatch):
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
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "render", good, "--format", "mp3")
    assert code == 0 and (tmp_path / "out" / "tune.mp3").exists()  # out/ as the other commands, not
    assert not (tmp_path / "tune.mp3").exists()  # beside the input


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compose", "abc"], "argument LENGTH: invalid int value: 'abc'"),
        (["compose", "5", "--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
        (["compose", "5", "--top-p", "7"], "argument --top-p: must be above 0 and at most 1, not 7"),
        (["compose", "5", "--top-k", "-1"], "argument --top-k: must be between 0 (off) and 10000, not -1"),
        (["continue", "x.mid", "--temperature", "9"], "argument --temperature: must be between 0.05 and 3"),
        (["compose", "5", "--bogus"], "unrecognized arguments: --bogus"),
    ],
    ids=["length", "seed", "top-p", "top-k", "temperature", "unknown"],
)
def test_argument_mistakes_are_one_line_naming_the_flag(capsys, argv, message):
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err
    assert err.rstrip().endswith("--help") and "usage:" not in err and "_" not in err.split(";")[0]


def test_a_length_out_of_range_says_how_long_the_longest_piece_is(capsys, tiny_model_path):
    from composer import cli
    from composer.model import artifact
    from composer.service import MAX_LENGTH

    assert cli.MAX_LENGTH == MAX_LENGTH
    defaults = artifact.read_document(tiny_model_path)["defaults"]
    minutes = MAX_LENGTH * defaults["quarters_per_event_by_style"]["folk"] / 150
    code, _, err = run_cli(
        capsys, "compose", 2001, "--style", "folk", "--tempo", 150, "--model", tiny_model_path
    )
    assert code == 2 and err.count("\n") == 1
    assert err == (
        f"error: LENGTH must be from 1 to 2000 notes and chords (2000 make about {minutes:.0f} minutes "
        "of folk at 150 bpm), not 2001.\n"
    )
    code, _, err = run_cli(capsys, "continue", "x.mid", "--length", 0, "--model", tiny_model_path)
    assert err.startswith("error: --length must be from 1 to 2000 notes and chords (2000 make about ")


def test_help_shows_defaults_and_the_models_styles(capsys, tiny_model_path):
    with pytest.raises(SystemExit):
        main(["compose", "--help", "--model", str(tiny_model_path)])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: the model's for the style, else 0.8)" in shown and "(default: 500)" in shown
    assert "(default: the model's for the style, else 0.9)" in shown
    assert "trained with: bach, folk" in shown
    assert "notes and chords, 1-2000 (2000 make about" in shown


def test_a_folder_or_an_empty_file_gets_the_same_message_from_continue_and_render(capsys, tmp_path):
    (tmp_path / "empty.mid").write_bytes(b"")
    for command in ("continue", "render"):
        code, _, err = run_cli(capsys, command, tmp_path / "empty.mid", "--out", tmp_path / "out")
        assert code == 2 and err == 'error: "empty.mid" is empty.\n', err
        code, _, err = run_cli(capsys, command, tmp_path, "--out", tmp_path / "out")
        assert code == 2 and err == f"error: {tmp_path} is a folder, not a file.\n"
    assert not (tmp_path / "out").exists()


def test_a_render_that_fails_leaves_no_empty_folder(capsys, tmp_path, monkeypatch):
    good = tmp_path / "tune.mid"
    good.write_bytes((MUSIC21_MIDI / "test05.mid").read_bytes())
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))  # no FluidSynth
    code, _, err = run_cli(capsys, "render", good, "--out", tmp_path / "made" / "for" / "audio")
    assert code == 2 and "FluidSynth is not installed" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tune.mid"]


def test_ctrl_c_is_one_line_status_130_and_leaves_no_folder(tmp_path, tiny_model_path):
    """Ctrl-C while the files are being made (the output folder exists, with its scratch folder)."""
    out = tmp_path / "new" / "out"
    env = dict(os.environ, COMPOSER_MODEL=str(tiny_model_path))
    argv = [sys.executable, "-m", "composer", "compose", "2000", "--seed", "1", "--out", str(out)]
    child = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job
        # and Ctrl-C's default action, as a terminal's job has, even where these tests run in the
        # background of a shell without job control (which starts its children ignoring SIGINT)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not out.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert child.poll() is None, "it finished before it could be interrupted"
        os.killpg(child.pid, signal.SIGINT)  # what Ctrl-C does: FluidSynth gets it too
        _, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130
    assert err == "stopped (Ctrl-C).\n"
    assert not (tmp_path / "new").exists()
