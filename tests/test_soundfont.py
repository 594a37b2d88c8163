"""Which pieces can be heard through FluidSynth's chorus, checked against FluidSynth itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mido
import numpy as np
import pytest

from composer.midi.smf import parse_smf
from composer.render.audio import find_soundfont
from composer.render.soundfont import chorus_heard, chorus_presets, effect_options

SOUNDFONT = find_soundfont(None)
needs_fluidsynth = pytest.mark.skipif(
    SOUNDFONT is None or shutil.which("fluidsynth") is None, reason="FluidSynth and a SoundFont needed"
)


def _piece(path: Path, program: int = 0, *, channel: int = 0, controls: dict[int, int] | None = None) -> Path:
    """A few notes on one channel, with a program and some controllers set first."""
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    for control, value in (controls or {}).items():
        track.append(mido.Message("control_change", channel=channel, control=control, value=value))
    track.append(mido.Message("program_change", channel=channel, program=program))
    for note in (48, 60, 64, 67, 72):
        track.append(mido.Message("note_on", channel=channel, note=note, velocity=90))
        track.append(mido.Message("note_off", channel=channel, note=note, time=240))
    midi.save(path)
    return path


def _render(midi: Path, out: Path, *extra: str) -> np.ndarray:
    command = ["fluidsynth", "-ni", "-r", "24000", "-O", "float", "-T", "raw", *extra, "-F", str(out)]
    subprocess.run([*command, str(SOUNDFONT), str(midi)], capture_output=True, check=True)
    return np.fromfile(out, dtype="<f4")


@needs_fluidsynth
@pytest.mark.parametrize("program", [0, 16, 19, 48, 73, 88])
def test_the_chorus_is_left_out_exactly_when_fluidsynth_renders_the_same_without_it(tmp_path, program):
    midi = _piece(tmp_path / "piece.mid", program)
    with_chorus = _render(midi, tmp_path / "with.raw")
    without = _render(midi, tmp_path / "without.raw", "-C", "0")
    same = len(with_chorus) == len(without) and np.array_equal(with_chorus, without)
    options = effect_options(SOUNDFONT, parse_smf(midi.read_bytes()))
    assert (options == ["-C", "0"]) == same
    assert ((0, program) in chorus_presets(SOUNDFONT)) == (not same)


@needs_fluidsynth
def test_a_file_that_raises_the_chorus_depth_keeps_the_chorus(tmp_path):
    midi = parse_smf(_piece(tmp_path / "piece.mid", 0, controls={93: 64}).read_bytes())
    assert chorus_heard(midi, chorus_presets(SOUNDFONT))
    assert effect_options(SOUNDFONT, midi) == []
    quiet = parse_smf(_piece(tmp_path / "zero.mid", 0, controls={93: 0}).read_bytes())
    assert effect_options(SOUNDFONT, quiet) == ["-C", "0"]


def test_sysex_bank_select_and_nrpn_count_as_heard(tmp_path):
    presets = frozenset({(0, 16)})
    for controls in ({0: 1}, {99: 0}, {98: 0}):
        assert chorus_heard(parse_smf(_piece(tmp_path / "c.mid", 0, controls=controls).read_bytes()), presets)
    midi = mido.MidiFile(str(_piece(tmp_path / "s.mid", 0)))
    midi.tracks[0].insert(0, mido.Message("sysex", data=[0x7E, 0x7F, 0x09, 0x01]))
    midi.save(tmp_path / "s.mid")
    assert chorus_heard(parse_smf((tmp_path / "s.mid").read_bytes()), presets)


def test_drums_are_looked_up_in_the_percussion_bank(tmp_path):
    drums = parse_smf(_piece(tmp_path / "d.mid", 0, channel=9).read_bytes())
    assert chorus_heard(drums, frozenset({(128, 0)}))
    assert not chorus_heard(drums, frozenset({(0, 0)}))


def test_a_file_that_is_not_a_soundfont_assumes_nothing(tmp_path):
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"RIFF\x04\x00\x00\x00sfbk" + b"\x00" * 64)
    assert chorus_presets(fake) is None
    midi = parse_smf(_piece(tmp_path / "piece.mid").read_bytes())
    assert effect_options(fake, midi) == []
    assert effect_options(fake, None) == []
