"""The composer end to end: a real model, real MIDI, real FluidSynth, real pictures."""

from __future__ import annotations

import asyncio
import hashlib

import mido
import pretty_midi
import pytest
import soundfile

from composer.errors import InputFileError, InvalidOptionError
from composer.midi.read import read_score
from composer.service import Composer, ComposeRequest, resolve_program
from composer.settings import ComposerSettings


@pytest.fixture(scope="module")
def composer(tiny_model_path):
    c = Composer(ComposerSettings(model=tiny_model_path))
    yield c
    c.close()


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_compose_writes_midi_audio_and_picture(composer, tmp_path):
    piece = composer.compose_sync(
        ComposeRequest(length=40, seed=11, tempo=120, instrument="violin"), tmp_path
    )
    assert piece.midi.exists() and piece.picture.exists()
    assert piece.picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 36 <= piece.events <= 44
    # Readable by mido and pretty_midi, with the tempo, program and velocities we asked for.
    midi = mido.MidiFile(piece.midi)
    tempos = [m.tempo for t in midi.tracks for m in t if m.type == "set_tempo"]
    assert tempos and round(mido.tempo2bpm(tempos[0])) == 120
    assert midi.tracks[-1][-1].type == "end_of_track"
    pm = pretty_midi.PrettyMIDI(str(piece.midi))
    (instrument,) = [i for i in pm.instruments if i.notes]
    assert instrument.program == resolve_program("violin") == 40
    assert len({n.velocity for n in instrument.notes}) >= 1
    # The audio is real and as long as the music (plus the reverb tail).
    info = soundfile.info(str(piece.audio))
    assert abs(info.duration - pm.get_end_time()) < 2.5
    assert info.samplerate == 24000 and info.format == "OGG"  # the default settings
    assert set(piece.timings) >= {"model", "generate", "midi", "picture", "audio", "total"}


def test_audio_settings_reach_the_renderer(tiny_model_path, tmp_path):
    settings = ComposerSettings(model=tiny_model_path, audio_format="mp3", sample_rate=48000)
    composer = Composer(settings)
    try:
        piece = composer.compose_sync(ComposeRequest(length=12, seed=1, picture=False), tmp_path)
    finally:
        composer.close()
    info = soundfile.info(str(piece.audio))
    assert piece.audio.suffix == ".mp3" and info.format == "MP3" and info.samplerate == 48000


def test_same_seed_same_midi_file(composer, tmp_path):
    request = ComposeRequest(length=30, seed=5, audio=False, picture=False)
    first = composer.compose_sync(request, tmp_path / "a")
    second = composer.compose_sync(request, tmp_path / "b")
    other = composer.compose_sync(
        ComposeRequest(length=30, seed=6, audio=False, picture=False), tmp_path / "c"
    )
    assert _digest(first.midi) == _digest(second.midi)
    assert _digest(first.midi) != _digest(other.midi)


def test_async_api_runs_in_the_pool(composer, tmp_path):
    async def main():
        return await asyncio.gather(
            *(composer.compose(ComposeRequest(length=20, seed=s, audio=False), tmp_path) for s in range(3))
        )

    pieces = asyncio.run(main())
    assert len({p.midi for p in pieces}) == 3


def test_key_option_sets_the_key(composer, tmp_path):
    piece = composer.compose_sync(ComposeRequest(length=40, seed=2, key="Eb", audio=False), tmp_path)
    assert piece.key.startswith("Eb")


def test_style_option(composer, tmp_path):
    assert (
        composer.compose_sync(ComposeRequest(length=10, style="folk", audio=False), tmp_path).style == "folk"
    )
    with pytest.raises(InvalidOptionError, match="styles bach, folk"):
        composer.compose_sync(ComposeRequest(length=10, style="jazz", audio=False), tmp_path)


def _user_midi(path, with_drums=True):
    """A small type-1 file as a phone app would write it: a melody with odd timings and a drum track."""
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    conductor = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(84)),
            mido.MetaMessage("time_signature", numerator=3, denominator=4),
        ]
    )
    melody = mido.MidiTrack([mido.Message("program_change", program=24, channel=0)])
    for i, pitch in enumerate([62, 66, 69, 74, 69, 66, 62, 61, 62, 66, 69, 71]):
        melody.append(mido.Message("note_on", note=pitch, velocity=70 + i, time=0 if i == 0 else 13))
        melody.append(mido.Message("note_off", note=pitch, velocity=0, time=467))
    mid.tracks += [conductor, melody]
    if with_drums:
        drums = mido.MidiTrack()
        for _ in range(8):
            drums.append(mido.Message("note_on", note=36, velocity=100, channel=9, time=0))
            drums.append(mido.Message("note_off", note=36, velocity=0, channel=9, time=480))
        mid.tracks.append(drums)
    mid.save(path)
    return path


def test_continuation_keeps_the_users_notes_exactly(composer, tmp_path):
    source = _user_midi(tmp_path / "phone.mid")
    original = read_score(source)
    piece = composer.compose_sync(
        ComposeRequest(length=24, seed=1, primer=source, audio=False), tmp_path / "o"
    )
    result = read_score(piece.midi)
    kept = sorted((n.pitch, n.start, n.end, n.velocity) for n in result.notes if n.part == 0)
    want = sorted((n.pitch, n.start, n.end, n.velocity) for n in original.notes)
    assert len(kept) == len(want)
    for got, exp in zip(kept, want, strict=True):
        assert got[0] == exp[0] and got[3] == exp[3]
        assert abs(got[1] - exp[1]) < 1e-3 and abs(got[2] - exp[2]) < 1e-3
    new = [n for n in result.notes if n.part == 1]
    assert new and min(n.start for n in new) >= max(n.start for n in original.notes)
    assert result.tempo == pytest.approx(84, abs=0.5)
    assert result.time_signature == (3, 4)
    assert result.parts[0].program == 24
    assert any("drum" in w for w in piece.warnings)
    assert piece.primer_events == 12


def test_continuation_new_part_only(composer, tmp_path):
    source = _user_midi(tmp_path / "phone.mid", with_drums=False)
    piece = composer.compose_sync(
        ComposeRequest(length=16, seed=1, primer=source.read_bytes(), new_part_only=True, audio=False),
        tmp_path,
    )
    result = read_score(piece.midi)
    assert len(result.parts) == 1 and min(n.start for n in result.notes) == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(length=-5), "from 1 to 2000"),
        (dict(length=0), "from 1 to 2000"),
        (dict(length=99999999), "from 1 to 2000"),
        (dict(length="banana"), "whole number"),
        (dict(tempo=9000), "tempo"),
        (dict(temperature=0), "temperature"),
        (dict(key="Q#"), "not a key"),
        (dict(seed=-1), "seed"),
        (dict(transpose=99), "Transpose"),
    ],
    ids=["negative", "zero", "huge", "text", "tempo", "temperature", "key", "seed", "transpose"],
)
def test_bad_options_are_friendly(options, message):
    with pytest.raises(InvalidOptionError, match=message):
        ComposeRequest(**options)


def test_unknown_instrument(composer, tmp_path):
    with pytest.raises(InvalidOptionError, match="instrument"):
        composer.compose_sync(ComposeRequest(length=5, instrument="theremin-ish kazoo"), tmp_path)


def test_bad_primer_leaves_no_files(composer, tmp_path):
    with pytest.raises(InputFileError):
        composer.compose_sync(ComposeRequest(primer=b"this is a text file", primer_name="song.mid"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_soundfont_still_gives_midi_and_picture(tiny_model_path, tmp_path):
    c = Composer(ComposerSettings(model=tiny_model_path, soundfont=tmp_path / "none.sf2"))
    try:
        piece = c.compose_sync(ComposeRequest(length=10, seed=1), tmp_path)
    finally:
        c.close()
    assert piece.midi.exists() and piece.picture.exists()
    if piece.audio is None:  # the configured path is missing; Debian's SoundFont may still be found
        assert any("audio" in w.lower() for w in piece.warnings)


def test_candidates_keep_the_likeliest_piece(tiny_model_path, tmp_path):
    request = ComposeRequest(length=24, seed=5, audio=False, picture=False)
    made = {}
    for count in (1, 4):
        c = Composer(ComposerSettings(model=tiny_model_path, candidates=count))
        try:
            made[count] = c.compose_sync(request, tmp_path / str(count))
        finally:
            c.close()
    assert made[4].log_likelihood >= made[1].log_likelihood  # candidate 0 is the one-candidate piece
    c = Composer(ComposerSettings(model=tiny_model_path, candidates=4))
    try:
        again = c.compose_sync(request, tmp_path / "again")
    finally:
        c.close()
    assert again.midi.read_bytes() == made[4].midi.read_bytes()  # the same seed, the same choice


def test_a_style_s_own_sampling_applies_to_new_pieces_left_at_the_defaults(tiny_model_path, tmp_path):
    import shutil

    from composer.generation.sampling import SamplingOptions
    from composer.model import artifact

    own = SamplingOptions(temperature=1.7, top_p=0.5)
    assert ComposeRequest().sampling_for(own) == own
    spelt_out = SamplingOptions(temperature=0.8, top_p=0.9)
    assert ComposeRequest(temperature=0.8, top_p=0.9).sampling_for(own) == spelt_out  # asked for, so kept
    assert ComposeRequest(temperature=1.2).sampling_for(own) == SamplingOptions(temperature=1.2)
    assert ComposeRequest(top_k=5).sampling_for(own) == SamplingOptions(top_k=5)
    assert ComposeRequest().sampling_for(None) == SamplingOptions()

    path = shutil.copy(tiny_model_path, tmp_path / "tuned.cadenza")
    artifact.set_defaults(path, sampling_by_style={"folk": own.to_dict()})
    plain, tuned = Composer(ComposerSettings(model=tiny_model_path)), Composer(ComposerSettings(model=path))
    try:

        def made(composer: Composer, name: str, **options) -> str:
            request = ComposeRequest(length=30, seed=4, audio=False, picture=False, **options)
            return _digest(composer.compose_sync(request, tmp_path / name).midi)

        # folk's own sampling reaches its new pieces, as if asked for; bach has none and is unchanged.
        assert made(tuned, "a", style="folk") == made(plain, "b", style="folk", temperature=1.7, top_p=0.5)
        assert made(tuned, "c", style="folk") != made(plain, "d", style="folk")
        assert made(tuned, "e", style="bach") == made(plain, "f", style="bach")
        # A continuation samples as asked, whatever its style.
        source = _user_midi(tmp_path / "phone.mid", with_drums=False).read_bytes()
        assert made(tuned, "g", style="folk", primer=source) == made(plain, "h", style="folk", primer=source)
    finally:
        plain.close()
        tuned.close()
