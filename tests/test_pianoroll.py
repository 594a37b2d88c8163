"""The piano-roll picture: a real, modest PNG, the continuation colouring, and speed at scale."""

from __future__ import annotations

import random
import struct
import time
from pathlib import Path

import pytest

from composer.events import Note
from composer.render.pianoroll import HEIGHT_PX, WIDTH_PX, draw_piano_roll, note_name

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk, checking the signature on the way."""
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE
    assert header[12:16] == b"IHDR"
    return struct.unpack(">II", header[16:24])


def melody(count: int, seed: int = 0, parts: int = 1) -> list[Note]:
    rng = random.Random(seed)
    notes, t = [], 0.0
    for i in range(count):
        length = rng.choice([0.25, 0.5, 1.0, 2.0])
        notes.append(Note(rng.randint(36, 96), t, t + length, rng.randint(20, 127), i % parts))
        t += rng.choice([0.0, 0.25, 0.5])
    return notes


def test_writes_a_png_of_the_right_size(tmp_path: Path) -> None:
    out = tmp_path / "roll.png"
    result = draw_piano_roll(melody(200), out, tempo=120.0, title="A test piece")
    assert result == out
    assert png_size(out) == (WIDTH_PX, HEIGHT_PX) == (1600, 600)
    assert 5_000 < out.stat().st_size < 300_000
    assert [p.name for p in tmp_path.iterdir()] == ["roll.png"]  # no temporary file left behind


def test_colours_a_continuation(tmp_path: Path) -> None:
    notes = melody(300, seed=1)
    out = draw_piano_roll(notes, tmp_path / "cont.png", tempo=90.0, new_from=notes[150].start)
    assert png_size(out) == (1600, 600)
    # Without a title, and with the split before or after every note, it still draws.
    draw_piano_roll(notes, tmp_path / "all-new.png", new_from=0.0)
    draw_piano_roll(notes, tmp_path / "all-old.png", new_from=1e6)


def test_draws_only_the_end_of_a_long_piece(tmp_path: Path) -> None:
    """``since`` draws from there on: the picture differs from the whole piece's, and a ``since``
    past every note still draws the last one."""
    notes = melody(300, seed=2)
    whole = draw_piano_roll(notes, tmp_path / "whole.png", tempo=100.0, new_from=notes[250].start)
    end = draw_piano_roll(
        notes, tmp_path / "end.png", tempo=100.0, new_from=notes[250].start, since=notes[200].start
    )
    assert png_size(end) == (1600, 600) and end.read_bytes() != whole.read_bytes()
    assert png_size(draw_piano_roll(notes, tmp_path / "past.png", since=1e6)) == (1600, 600)


def test_several_parts_and_a_single_note(tmp_path: Path) -> None:
    assert png_size(draw_piano_roll(melody(120, parts=3), tmp_path / "parts.png")) == (1600, 600)
    assert png_size(draw_piano_roll([Note(60, 0.0, 0.5)], tmp_path / "one.png")) == (1600, 600)
    extremes = [Note(0, 0.0, 1.0), Note(127, 1.0, 2.0)]
    assert png_size(draw_piano_roll(extremes, tmp_path / "wide.png")) == (1600, 600)


def test_replaces_an_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "roll.png"
    out.write_bytes(b"old")
    draw_piano_roll(melody(10), out)
    assert png_size(out) == (1600, 600)


def test_five_thousand_notes_draw_quickly(tmp_path: Path) -> None:
    notes = melody(5000, seed=2, parts=2)
    started = time.perf_counter()
    out = draw_piano_roll(notes, tmp_path / "big.png", tempo=140.0, new_from=notes[1000].start, title="Big")
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"5,000 notes took {elapsed:.2f} s"
    assert out.stat().st_size < 300_000


def test_refuses_nothing_to_draw(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no notes"):
        draw_piano_roll([], tmp_path / "empty.png")
    with pytest.raises(ValueError, match="tempo"):
        draw_piano_roll(melody(5), tmp_path / "x.png", tempo=0.0)
    assert list(tmp_path.iterdir()) == []


def test_note_names() -> None:
    assert [note_name(p) for p in (60, 21, 108, 61, 0)] == ["C4", "A0", "C8", "C♯4", "C-1"]
