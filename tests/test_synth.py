"""FluidSynth's library in this process against the ``fluidsynth`` command: the same samples for
real-world-shaped files, the same encoded file through either source, and failures that say why."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from composer.midi.smf import parse_smf
from composer.render import synth
from composer.render.audio import AudioUnavailable, find_soundfont, render_audio
from composer.render.audio_stream import CommandSource, LibrarySource, StreamFailed, render_streaming
from tests.midi_corpus import CORPUS, melody, save, timed

pytestmark = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not synth.available() or find_soundfont(None) is None,
    reason="needs FluidSynth (command and library) and a SoundFont",
)
RATE = 24000


@pytest.fixture(scope="module")
def soundfont() -> Path:
    found = find_soundfont(None)
    assert found is not None
    return found


def command(soundfont: Path, midi: Path, *extra: str) -> list[str]:
    return [
        *("fluidsynth", "-ni", "-o", "synth.dynamic-sample-loading=1", "-g", "0.5", "-r", str(RATE)),
        *("-O", "float", "-T", "raw", "-E", "little", *extra, "-F", "-", str(soundfont), str(midi)),
    ]


def by_command(soundfont: Path, midi: Path, *extra: str) -> np.ndarray:
    raw = subprocess.run(command(soundfont, midi, *extra), capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<f4").reshape(-1, 2)


def by_library(soundfont: Path, midi: Path, chorus: bool = True) -> np.ndarray:
    data = midi.read_bytes()
    blocks = synth.render(soundfont, data, parse_smf(data), RATE, 0.5, chorus=chorus)
    return np.concatenate(list(blocks))


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_library_renders_what_the_command_renders(name: str, soundfont: Path, tmp_path: Path) -> None:
    midi = tmp_path / f"{name}.mid"
    midi.write_bytes(CORPUS[name]())
    ours, theirs = by_library(soundfont, midi), by_command(soundfont, midi)
    assert ours.shape == theirs.shape and len(ours) > 0  # silent alike where FluidSynth's reader gives up
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


@pytest.mark.parametrize("ticks_per_beat", [24, 96])
def test_a_coarse_file_with_hundreds_of_tempo_changes_renders_the_same(
    ticks_per_beat: int, soundfont: Path, tmp_path: Path
) -> None:
    """FluidSynth's player rounds its position to whole ticks and milliseconds at every tempo
    change; over 600 changes at a coarse resolution that drifts far from the tempo map's own
    times, so the render must follow the player, not the map."""
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    changes = [
        (i * ticks_per_beat // 4, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(60 + i * 37 % 140)))
        for i in range(600)
    ]
    mid.tracks.append(timed(changes))
    mid.tracks.append(timed(melody(count=300, step=ticks_per_beat // 2)))
    midi = tmp_path / "rubato.mid"
    midi.write_bytes(save(mid))
    ours = np.concatenate(
        list(synth.render(soundfont, midi.read_bytes(), parse_smf(midi.read_bytes()), 48000, 0.5))
    )
    raw = subprocess.run(command(soundfont, midi, "-r", "48000"), capture_output=True, check=True).stdout
    theirs = np.frombuffer(raw, dtype="<f4").reshape(-1, 2)
    assert ours.shape == theirs.shape and len(ours) > 48000 * 30
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_a_long_many_instrument_track_renders_the_same(soundfont: Path, tmp_path: Path) -> None:
    """A Freedoom track: a band of General MIDI instruments and drums, long enough that most of it
    is written in long stretches between the messages."""
    wads = sorted(Path("/usr/share/games/doom").glob("freedoom*.wad"))
    if not wads:
        pytest.skip("Freedoom is not installed")
    from training.wad import music_lumps

    lumps = music_lumps(wads[0])
    data = lumps.get("D_E1M2") or next(iter(lumps.values()))
    midi = tmp_path / "track.mid"
    midi.write_bytes(data)
    ours, theirs = by_library(soundfont, midi), by_command(soundfont, midi)
    assert ours.shape == theirs.shape and len(ours) > RATE * 20
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_chorus_off_matches_the_command_with_chorus_off(soundfont: Path, tmp_path: Path) -> None:
    midi = tmp_path / "piece.mid"
    midi.write_bytes(CORPUS["general_midi_type0"]())
    ours, theirs = by_library(soundfont, midi, chorus=False), by_command(soundfont, midi, "-C", "0")
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_either_source_writes_the_same_file(soundfont: Path, tmp_path: Path) -> None:
    midi = tmp_path / "piece.mid"
    midi.write_bytes(CORPUS["pedalled_piano"]())
    files = []
    for name, source in [
        ("library", LibrarySource(soundfont, midi, parse_smf(midi.read_bytes()), 48000, True, 30)),
        ("command", CommandSource(command(soundfont, midi, "-r", "48000"), 30)),
    ]:
        target = tmp_path / f"{name}.ogg"
        done = render_streaming(source, target, 48000, 96, -1.0, -60.0, 0.5, 0.1)
        assert done.frames > 48000
        files.append(sf.read(target, dtype="float32")[0])
    np.testing.assert_array_equal(files[0], files[1])  # the Ogg stream's serial number differs


def test_a_text_file_named_mid_is_refused(soundfont: Path) -> None:
    with pytest.raises(synth.SynthFailed, match="could not play the MIDI file"):
        list(synth.render(soundfont, b"these are my notes, not a MIDI file\n", None, RATE, 0.5))


def test_a_broken_soundfont_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.sf2"
    broken.write_bytes(b"RIFF\x10\x00\x00\x00sfbkLIST")
    with pytest.raises(synth.SynthFailed, match="could not load the SoundFont"):
        list(synth.render(broken, CORPUS["tempo_ramp"](), None, RATE, 0.5))


def test_the_render_stops_at_its_deadline(soundfont: Path) -> None:
    data = CORPUS["tempo_ramp"]()
    with pytest.raises(TimeoutError):
        list(synth.render(soundfont, data, parse_smf(data), RATE, 0.5, deadline=time.perf_counter()))


def test_render_audio_reports_a_render_past_its_time(soundfont: Path, tmp_path: Path) -> None:
    midi = tmp_path / "piece.mid"
    midi.write_bytes(CORPUS["accelerando"]())
    out = tmp_path / "piece.ogg"
    with pytest.raises(AudioUnavailable, match="took longer"):
        render_audio(midi, out, soundfont, timeout_s=0.0)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["piece.mid"]


def test_a_silent_command_is_stopped_at_its_time_limit(tmp_path: Path) -> None:
    started = time.perf_counter()
    source = CommandSource(["sleep", "30"], 0.5)
    with pytest.raises(StreamFailed, match="took longer"):
        render_streaming(source, tmp_path / "x.ogg", 48000, 96, -1.0, -60.0, 0.5, 0.1)
    assert time.perf_counter() - started < 5 and source.process.poll() is not None
