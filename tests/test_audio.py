"""Rendering MIDI to OGG/Opus and MP3 with the real FluidSynth (skipped only where it is absent)."""

from __future__ import annotations

import shutil
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from composer.render.audio import (
    SOUNDFONT_CANDIDATES,
    AudioInfo,
    AudioUnavailable,
    find_soundfont,
    render_audio,
)

TEMPO_US = 500_000  # 120 bpm: a quarter note lasts half a second


@pytest.fixture(scope="module")
def soundfont() -> Path:
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth is not installed")
    found = find_soundfont()
    if found is None:
        pytest.skip("no General MIDI SoundFont installed")
    return found


def write_midi(path: Path, seconds: float, chord: bool = False) -> Path:
    """A piano line of quarter notes (plus a triad each beat if ``chord``) lasting ``seconds``."""
    mid = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US))
    track.append(mido.Message("program_change", program=0))
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    for i in range(int(seconds * 2)):
        pitches = [scale[i % len(scale)]]
        if chord:
            pitches += [pitches[0] - 12, pitches[0] - 8]
        for p in pitches:
            track.append(mido.Message("note_on", note=p, velocity=70 + (i % 5) * 10, time=0))
        for j, p in enumerate(pitches):
            track.append(mido.Message("note_off", note=p, velocity=0, time=480 if j == 0 else 0))
    mid.save(str(path))
    assert abs(mido.MidiFile(str(path)).length - seconds) < 1e-6
    return path


@pytest.fixture(scope="module")
def short_midi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_midi(tmp_path_factory.mktemp("midi") / "short.mid", 4.0)


def peak_db(path: Path) -> float:
    data, _ = sf.read(str(path), dtype="float32")
    return float(20 * np.log10(np.abs(data).max()))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_renders_ogg_opus(soundfont: Path, short_midi: Path, tmp_path: Path) -> None:
    out = tmp_path / "piece.ogg"
    info = render_audio(short_midi, out, soundfont)
    assert isinstance(info, AudioInfo)
    assert info.path == out and info.format == "ogg"
    assert out.is_file() and info.bytes == out.stat().st_size > 1000
    meta = sf.info(str(out))
    assert (meta.format, meta.subtype, meta.samplerate) == ("OGG", "OPUS", 24000)  # the default rate
    # The MIDI lasts 4 s; the piano's release and reverb may add up to ~2 s, the silence is trimmed.
    assert 4.0 <= meta.duration <= 6.0
    assert abs(meta.duration - info.seconds) < 0.05
    assert abs(peak_db(out) - -1.0) < 0.5
    assert leftovers(tmp_path) == []


def test_normalises_to_the_target_peak(soundfont: Path, short_midi: Path, tmp_path: Path) -> None:
    out = tmp_path / "quiet.ogg"
    info = render_audio(short_midi, out, soundfont, target_peak_db=-6.0)
    assert info.peak_db == -6.0
    assert abs(peak_db(out) - -6.0) < 0.5


def test_renders_mp3(soundfont: Path, short_midi: Path, tmp_path: Path) -> None:
    out = tmp_path / "piece.mp3"
    info = render_audio(short_midi, out, soundfont, fmt="mp3")
    assert info.format == "mp3" and info.bytes == out.stat().st_size > 1000
    meta = sf.info(str(out))
    assert meta.format == "MP3"
    # MP3 decoders add priming padding, hence the wider window at the end.
    assert 4.0 <= meta.duration <= 6.2
    # LAME's low-pass (~17 kHz) shaves transient peaks: the decoded peak lands 0.4-0.7 dB lower.
    assert -2.0 < peak_db(out) <= -0.5
    assert leftovers(tmp_path) == []


def test_replaces_an_existing_file(soundfont: Path, short_midi: Path, tmp_path: Path) -> None:
    out = tmp_path / "piece.ogg"
    out.write_bytes(b"old contents")
    render_audio(short_midi, out, soundfont)
    assert sf.info(str(out)).format == "OGG"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("missing", [None, "does-not-exist.sf2"])
def test_missing_soundfont_is_reported(short_midi: Path, tmp_path: Path, missing: str | None) -> None:
    if shutil.which("fluidsynth") is None:
        pytest.skip("fluidsynth is not installed")
    out = tmp_path / "piece.ogg"
    soundfont = tmp_path / missing if missing else None
    with pytest.raises(AudioUnavailable, match="COMPOSER_SOUNDFONT") as caught:
        render_audio(short_midi, out, soundfont)
    assert "fluid-soundfont-gm" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_missing_fluidsynth_is_reported(
    short_midi: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "piece.ogg"
    with pytest.raises(AudioUnavailable, match="FluidSynth is not installed"):
        render_audio(short_midi, out, Path(SOUNDFONT_CANDIDATES[0]))
    assert not out.exists()


def test_broken_soundfont_is_reported(soundfont: Path, short_midi: Path, tmp_path: Path) -> None:
    # FluidSynth itself would just fall back to its default SoundFont (or render silence).
    broken = tmp_path / "broken.sf2"
    broken.write_bytes(b"not a soundfont at all")
    out = tmp_path / "piece.ogg"
    with pytest.raises(AudioUnavailable, match="not a SoundFont"):
        render_audio(short_midi, out, broken)
    assert not out.exists() and leftovers(tmp_path) == []


def test_broken_midi_is_reported(soundfont: Path, tmp_path: Path) -> None:
    midi = tmp_path / "broken.mid"
    midi.write_bytes(b"MThd but not really")
    out = tmp_path / "piece.ogg"
    with pytest.raises(AudioUnavailable, match="FluidSynth"):
        render_audio(midi, out, soundfont)
    assert not out.exists() and leftovers(tmp_path) == []


def test_silent_midi_is_reported(soundfont: Path, tmp_path: Path) -> None:
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US))
    track.append(mido.Message("control_change", control=7, value=100, time=960))
    mid.save(str(tmp_path / "silent.mid"))
    out = tmp_path / "piece.ogg"
    with pytest.raises(AudioUnavailable, match="silence"):
        render_audio(tmp_path / "silent.mid", out, soundfont)
    assert not out.exists() and leftovers(tmp_path) == []


def test_bad_arguments_are_refused(short_midi: Path, tmp_path: Path) -> None:
    sf2 = Path(SOUNDFONT_CANDIDATES[0])
    with pytest.raises(ValueError, match="format"):
        render_audio(short_midi, tmp_path / "x.wav", sf2, fmt="wav")
    with pytest.raises(ValueError, match="Opus"):
        render_audio(short_midi, tmp_path / "x.ogg", sf2, sample_rate=44100)
    with pytest.raises(ValueError, match="peak"):
        render_audio(short_midi, tmp_path / "x.ogg", sf2, target_peak_db=3.0)
    with pytest.raises(FileNotFoundError):
        render_audio(tmp_path / "nothing.mid", tmp_path / "x.ogg", sf2)


def test_bitrate_drops_to_fit_the_budget(soundfont: Path, tmp_path: Path) -> None:
    midi = write_midi(tmp_path / "half.mid", 30.0, chord=True)
    for fmt in ("ogg", "mp3"):
        out = tmp_path / f"small.{fmt}"
        # 30 s at the default bitrate would be ~0.36 MB (Opus) or ~0.6 MB (MP3).
        info = render_audio(midi, out, soundfont, fmt=fmt, max_bytes=200_000)
        assert info.bytes == out.stat().st_size <= 200_000
        assert sf.info(str(out)).duration >= 30.0


def test_over_budget_leaves_the_old_file(soundfont: Path, short_midi: Path, tmp_path: Path) -> None:
    out = tmp_path / "piece.ogg"
    out.write_bytes(b"old contents")
    # Even the lowest bitrate needs ~15 kB for 5 s, so 5 kB cannot be met.
    with pytest.raises(AudioUnavailable, match="too long"):
        render_audio(short_midi, out, soundfont, max_bytes=5_000)
    assert out.read_bytes() == b"old contents"
    assert leftovers(tmp_path) == []


def test_eight_minutes_stay_under_ten_megabytes(soundfont: Path, tmp_path: Path) -> None:
    midi = write_midi(tmp_path / "long.mid", 480.0, chord=True)
    out = tmp_path / "long.ogg"
    info = render_audio(midi, out, soundfont)
    assert 480.0 <= info.seconds <= 483.0
    assert info.bytes == out.stat().st_size < 10_000_000


def test_find_soundfont_prefers_the_configured_file(tmp_path: Path) -> None:
    mine = tmp_path / "mine.sf2"
    mine.write_bytes(b"RIFF")
    assert find_soundfont(mine) == mine
    assert find_soundfont(str(mine)) == mine
    system = next((Path(c) for c in SOUNDFONT_CANDIDATES if Path(c).is_file()), None)
    assert find_soundfont(tmp_path / "missing.sf2") == system
    assert find_soundfont(None) == system
