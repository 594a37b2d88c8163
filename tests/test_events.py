"""Events, the vocabulary and keys: pure transforms with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from composer.events import Event, Note, events_from_notes, events_length, notes_from_events
from composer.keys import Key, detect_key, parse_key, shift_between
from composer.model.vocabulary import END, MARKERS, START, Vocabulary


def test_chord_keeps_voicing_rests_and_holds():
    notes = [
        Note(48, 0.0, 2.0, 90),  # a held bass under two onsets
        Note(64, 0.0, 1.0, 70),
        Note(67, 0.0, 1.0, 70),
        Note(72, 1.0, 1.5, 60),
        Note(74, 2.5, 3.0, 60),  # after an eighth rest
        Note(76, 3.0 + 1 / 3, 3.0 + 2 / 3, 60),  # a triplet
    ]
    events = events_from_notes(notes)
    assert [e.pitches for e in events] == [(48, 64, 67), (72,), (74,), (76,)]
    first, second, third, fourth = events
    assert (first.duration, first.ioi) == (24, 12)  # held past the next onset
    assert (second.duration, second.ioi) == (6, 18)  # a rest follows
    assert (third.duration, third.ioi) == (6, 10)
    assert (fourth.duration, fourth.ioi) == (4, 4)  # triplet eighth on the grid
    assert first.velocity > second.velocity


def test_notes_from_events_round_trip():
    events = [Event((60, 64, 67), 12, 12, 4), Event((62,), 6, 18, 5), Event((59, 65), 24, 24, 3)]
    assert events_from_notes(notes_from_events(events)) == events
    assert events_length(events) == 4.5


@pytest.mark.parametrize(
    "bad",
    [dict(pitches=()), dict(pitches=(64, 60)), dict(pitches=(200,)), dict(duration=0), dict(velocity=9)],
    ids=["empty", "unsorted", "out-of-range", "zero-duration", "loudness"],
)
def test_event_validates(bad):
    values = dict(pitches=(60,), duration=6, ioi=6, velocity=4) | bad
    with pytest.raises(ValueError):
        Event(**values)


def test_transpose_stays_in_midi_range():
    assert Event((125, 127), 6, 6, 4).transposed(3).pitches == (116, 118)
    assert Event((60,), 6, 6, 4).transposed(-2).pitches == (58,)


def _vocab():
    pieces = [[Event((60, 64, 67), 12, 12, 4), Event((62,), 6, 6, 5), Event((48, 55, 64, 72), 24, 24, 6)]]
    return Vocabulary.build(pieces, styles=("bach",))


def test_vocabulary_round_trip_and_markers():
    vocab = _vocab()
    events = [Event((62,), 6, 6, 5), Event((60, 64, 67), 12, 12, 4)]
    encoded = vocab.encode(events)
    assert encoded.rows[0].tolist() == [START] * 4 and encoded.rows[-1].tolist() == [END] * 4
    assert encoded.unknown == 0
    assert vocab.decode(encoded.rows) == events
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab
    assert vocab.sizes == {
        "pitch": 3 + MARKERS,
        "duration": 3 + MARKERS,
        "ioi": 3 + MARKERS,
        "velocity": 8 + MARKERS,
    }


def test_unknown_values_map_to_nearest_and_are_counted():
    vocab = _vocab()
    encoded = vocab.encode([Event((60, 64, 68), 5, 11, 4)], start=False, end=False)
    assert encoded.unknown == 3  # the chord, the duration and the gap
    (event,) = vocab.decode(encoded.rows)
    assert event.pitches == (60, 64, 67)  # one semitone away, same voicing
    assert event.duration == 6 and event.ioi == 12
    # A chord an octave up maps to the same voicing class rather than to a single note.
    assert vocab.decode(vocab.encode([Event((72, 76, 79), 12, 12, 4)], False, False).rows)[0].pitches == (
        60,
        64,
        67,
    )


def test_an_unknown_chord_maps_to_the_known_one_nearest_by_chamfer_distance():
    """Each note of the chord to the nearest note of a known set, and back, summed: the known set
    with the least (the first of equals), checked against the distance written out by hand."""
    rng = np.random.default_rng(3)
    known = [tuple(sorted({int(p) for p in rng.integers(30, 90, rng.integers(1, 7))})) for _ in range(300)]
    vocab = Vocabulary(pitch_sets=tuple(dict.fromkeys(known)), durations=(12,), iois=(12,))

    def chamfer(a: tuple[int, ...], b: tuple[int, ...]) -> int:
        return sum(min(abs(x - y) for y in b) for x in a) + sum(min(abs(x - y) for y in a) for x in b)

    for _ in range(100):
        chord = tuple(sorted({int(p) for p in rng.integers(0, 128, rng.integers(1, 11))}))
        distances = [chamfer(chord, k) for k in vocab.pitch_sets]
        assert vocab.nearest("pitch", chord) == MARKERS + int(np.argmin(distances))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("C", Key(0)),
        ("Am", Key(9, True)),
        ("F#m", Key(6, True)),
        ("Bb", Key(10)),
        ("E-", Key(3)),
        ("c# minor", Key(1, True)),
        ("D major", Key(2)),
    ],
)
def test_parse_key(text, key):
    assert parse_key(text) == key


def test_parse_key_rejects_nonsense():
    from composer.errors import InvalidOptionError

    with pytest.raises(InvalidOptionError, match="not a key"):
        parse_key("H#q")


def test_detect_key_of_scales():
    c_major = [Event((p,), 12, 12, 4) for p in (60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60)]
    assert detect_key(c_major) == Key(0)
    a_minor = [Event((p,), 12, 12, 4) for p in (57, 59, 60, 62, 64, 65, 68, 69, 64, 60, 57)]
    assert detect_key(a_minor) == Key(9, True)
    assert shift_between(Key(0), Key(6)) == 6  # same mode: tonic to tonic
    assert shift_between(Key(0), Key(9, True)) == 0  # C major is already A minor's notes
    assert shift_between(Key(0), Key(2, True)) == 5  # C major to F major, D minor's relative
    assert shift_between(Key(9, True), Key(7)) == -5  # A minor down to E minor, G major's relative
    assert np.isclose(len(Key(0).scale), 7)
