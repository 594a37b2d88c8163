"""The live audio stream: real FluidSynth, real threads, read the way a voice connection reads it."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from composer.render.audio import find_soundfont
from composer.render.live import FRAME_BYTES, FRAME_SECONDS, TAIL_SECONDS, Cue, LiveStream
from tests.test_voice_support import fluidsynth_children, melody, rss_bytes, sine_soundfont

pytestmark = pytest.mark.skipif(find_soundfont() is None, reason="needs FluidSynth and a SoundFont")


def pieces(midi: Path, count: int | None):
    """A ``next_piece`` that gives ``midi`` ``count`` times (forever with None), tagged 0, 1, 2..."""
    given = iter(range(count)) if count is not None else itertools.count()

    def next_piece() -> Cue | None:
        index = next(given, None)
        return None if index is None else Cue(midi, index)

    return next_piece


def play(stream: LiveStream, seconds: float, speed: float) -> list[int]:
    """Read ``seconds`` of audio every 20 ms / ``speed``, as discord.py's player does; the frame sizes."""
    sizes = []
    started = time.perf_counter()
    for count in range(1, round(seconds / FRAME_SECONDS) + 1):
        frame = stream.read()
        if not frame:
            break
        sizes.append(len(frame))
        time.sleep(max(0.0, started + count * FRAME_SECONDS / speed - time.perf_counter()))
    return sizes


def live_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith(("live-", "composer"))}


@pytest.fixture(scope="module")
def sine(tmp_path_factory) -> Path:
    return sine_soundfont(tmp_path_factory.mktemp("sf2") / "sine.sf2")


def test_an_hour_of_radio_comes_as_exact_frames_at_a_steady_pace_with_flat_memory(sine, tmp_path):
    # 30-second pieces, read at 60 times real time: 120 joins in a minute. The buffer scales with the
    # speed: 120 s of audio last 2 s here, less slack than the 4 s the bot keeps at real time.
    tune = melody(tmp_path / "tune.mid", 120)
    started_pieces = []
    stream = LiveStream(
        pieces(tune, None), sine, buffer_seconds=120, on_start=lambda c: started_pieces.append(c.tag)
    )
    stream.start()
    assert stream.wait_ready(5)
    sizes = play(stream, 600, speed=60)
    memory_at_10_minutes = rss_bytes()
    sizes += play(stream, 3000, speed=60)
    grown = rss_bytes() - memory_at_10_minutes
    stream.close()

    assert len(sizes) == 3600 / FRAME_SECONDS and set(sizes) == {FRAME_BYTES}
    assert stream.stats.underruns == 0  # every frame was ready when due
    assert started_pieces == list(range(len(started_pieces))) and len(started_pieces) >= 110
    # Between pieces: the ring-out and nothing else, never a missing frame.
    assert len(stream.stats.gaps) == len(started_pieces) - 1
    assert max(stream.stats.gaps) <= TAIL_SECONDS + FRAME_SECONDS
    assert grown < 8 * 2**20, f"memory grew by {grown / 2**20:.1f} MB in 50 minutes of music"


def test_several_streams_at_once_stay_ahead_of_real_time(tmp_path):
    # The General MIDI SoundFont the bot uses, four listeners' streams read in real time.
    soundfont = find_soundfont()
    tune = Path(__file__).parent.parent / "samples" / "folk-tune.mid"
    streams = [LiveStream(pieces(tune, None), soundfont).start() for _ in range(4)]
    assert all(stream.wait_ready(5) for stream in streams)
    time.sleep(1)  # each has a second to fill its buffer
    results = {}
    readers = [
        threading.Thread(target=lambda s=stream: results.setdefault(id(s), play(s, 6, speed=1)))
        for stream in streams
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    for stream in streams:
        assert stream.buffered_seconds() > 2  # still seconds ahead of the listener
        stream.close()
    assert [s.stats.underruns for s in streams] == [0, 0, 0, 0]
    assert all(len(sizes) == 300 and set(sizes) == {FRAME_BYTES} for sizes in results.values())


def test_the_first_frame_is_ready_within_a_second(tmp_path):
    tune = Path(__file__).parent.parent / "samples" / "chorale.mid"
    started = time.perf_counter()
    stream = LiveStream(pieces(tune, 1), find_soundfont()).start()
    assert stream.wait_ready(5)
    assert stream.stats.first_frame_at - started < 1.0
    stream.close()


def test_skipping_moves_to_the_next_piece_and_closing_releases_fluidsynth_and_threads(sine, tmp_path):
    tune = melody(tmp_path / "tune.mid", 400)  # 100 s a piece
    before = live_threads()
    started = []
    stream = LiveStream(pieces(tune, 3), sine, on_start=lambda c: started.append(c.tag)).start()
    assert stream.wait_ready(5)
    play(stream, 1, speed=50)
    assert started == [0]
    assert len(fluidsynth_children()) == 1  # one FluidSynth a stream

    stream.skip()
    play(stream, 5, speed=50)
    assert started == [0, 1]
    # The next piece was composed ahead: after a skip it follows within a tenth of a second.
    assert stream.stats.underruns * FRAME_SECONDS / 50 < 0.1
    stream.skip()
    play(stream, 5, speed=50)
    assert started == [0, 1, 2]
    stream.skip()  # the last piece: the stream ends
    time.sleep(0.1)
    assert play(stream, 1, speed=50) == []
    assert stream.ended

    stream.close()
    assert fluidsynth_children() == []
    assert live_threads() == before


def test_close_in_the_middle_of_a_piece_kills_fluidsynth(sine, tmp_path):
    tune = melody(tmp_path / "tune.mid", 400)
    stream = LiveStream(pieces(tune, None), sine).start()
    assert stream.wait_ready(5)
    play(stream, 2, speed=50)
    assert fluidsynth_children()
    stream.close()
    assert fluidsynth_children() == []
    assert stream.read() == b""


def test_a_piece_asked_for_again_replaces_the_one_composed_ahead(sine, tmp_path):
    low, high = melody(tmp_path / "low.mid", 40, first=48), melody(tmp_path / "high.mid", 40, first=72)
    wanted = [low]
    started = []
    stream = LiveStream(
        lambda: Cue(wanted[0], wanted[0].stem), sine, on_start=lambda c: started.append(c.tag)
    )
    stream.start()
    assert stream.wait_ready(5)
    play(stream, 0.5, speed=20)
    wanted[0] = high
    stream.refresh_upcoming()
    stream.skip()
    play(stream, 5, speed=10)
    stream.close()
    assert started == ["low", "high"]
    assert fluidsynth_children() == []


def test_a_piece_that_cannot_be_made_ends_the_stream_with_the_reason_logged(sine, caplog):
    def broken() -> Cue | None:
        raise RuntimeError("the model file is gone")

    stream = LiveStream(broken, sine).start()
    assert stream.wait_ready(5)  # ready: ended
    assert stream.read() == b"" and stream.ended
    assert "live audio stopped" in caplog.text and "the model file is gone" in caplog.text
    stream.close()
    assert fluidsynth_children() == []
