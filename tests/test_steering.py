"""Steering a continuation towards its piece: the chord bias, and the composer using it."""

from __future__ import annotations

import numpy as np
import pretty_midi

from composer.events import Event, events_from_notes
from composer.generation.steering import (
    Balance,
    chord_bias,
    fill_chords,
    fit_register,
    steering,
    texture_distance,
    texture_of,
)
from composer.midi.read import read_score
from composer.model.vocabulary import MARKERS, Vocabulary
from composer.service import Composer, ComposeRequest
from composer.settings import ComposerSettings
from tests import midi_corpus

A_MAJOR = [
    Event((57, 61, 64, 69), 12, 12, 5),
    Event((62, 66, 69, 74), 12, 12, 5),
    Event((64, 68, 71, 76), 12, 12, 5),
]


def test_texture_of_the_end_of_a_piece():
    texture = texture_of(A_MAJOR * 10)
    assert texture.notes_per_onset == 4.0
    assert texture.pitch_classes[9] > texture.pitch_classes[0] == 0.0  # A is there, C is not
    assert 57 <= texture.low < texture.high <= 76


def test_the_range_is_read_from_the_last_bars_not_only_the_last_events():
    """A melody in half notes, then four bars of a fast bass line: 64 events of bass, but the
    last 16 bars hold the melody too, so the range to fit a new part to reaches it."""
    melody = [Event((76 + i % 9,), 24, 24, 5) for i in range(24)]  # twelve bars
    bass = [Event((36 + i % 8,), 3, 3, 5) for i in range(64)]  # four bars
    texture = texture_of(melody + bass)
    assert texture.notes_per_onset == 1.0 and texture.pitch_classes[8:].sum() == 0  # the bass's only
    assert (texture.lowest, texture.highest) == (36, 84)
    assert texture.high >= 76
    # Forty bars of half notes before it: the range still covers only the last sixteen.
    earlier = [Event((96,), 24, 24, 5)] * 80
    assert texture_of(earlier + melody + bass).highest == 84


def test_the_bias_favours_chords_in_key_of_the_size_and_range():
    chords = [(57, 61, 64, 69), (60, 64, 67, 72), (69,), (21, 25, 28, 33), (57, 61, 64, 69, 73)]
    vocabulary = Vocabulary.build([[Event(c, 12, 12, 5) for c in chords]])
    bias = chord_bias(vocabulary, texture_of(A_MAJOR * 10))
    assert bias.shape == (len(vocabulary.pitch_sets) + MARKERS,)
    assert not bias[:MARKERS].any()
    score = {c: bias[MARKERS + vocabulary.pitch_sets.index(c)] for c in chords}
    best = score[(57, 61, 64, 69)]
    assert best > score[(60, 64, 67, 72)]  # C major: out of key
    assert best > score[(69,)]  # one note where the piece plays four
    assert best > score[(21, 25, 28, 33)]  # three octaves down
    assert np.allclose(chord_bias(vocabulary, texture_of(A_MAJOR * 10), 0.0), 0.0)


def test_the_balance_leans_towards_the_pitch_classes_the_new_part_has_played_less_than_the_piece():
    chords = [(57,), (61,), (64,), (57, 61, 64)]
    vocabulary = Vocabulary.build([[Event(c, 12, 12, 5) for c in chords]])
    balance = Balance(steering(vocabulary, texture_of(A_MAJOR * 10)))
    ids = {c: MARKERS + vocabulary.pitch_sets.index(c) for c in chords}
    fresh = balance.bias()
    assert np.allclose(fresh, balance.steering.fixed)  # in balance: the fixed bias alone
    for _ in range(20):
        balance.hear(ids[(57,)])  # A again and again
    leaning = balance.bias()
    for other in ((61,), (64,)):  # C# and E are now wanted more than A, and more than before
        assert leaning[ids[other]] - leaning[ids[(57,)]] > fresh[ids[other]] - fresh[ids[(57,)]]
    for _ in range(20):
        balance.hear(ids[(57, 61, 64)])  # four notes a chord, in the piece: three-note chords are closer
    assert balance.bias()[ids[(57, 61, 64)]] < leaning[ids[(57, 61, 64)]]
    assert not leaning[:MARKERS].any()


def test_the_pace_is_kept_in_balance_too():
    piece = [Event((57, 61, 64, 69), 6, gap, 5) for gap in (3, 12) * 20]  # sixteenths and quarters
    vocabulary = Vocabulary.build([[*piece, Event((57,), 24, 24, 5)]])
    balance = Balance(steering(vocabulary, texture_of(piece)))
    gap = {ticks: MARKERS + vocabulary.iois.index(ticks) for ticks in (3, 12, 24)}
    assert np.allclose(balance.gap_bias()[[gap[3], gap[12]]], 0.0)  # in balance
    assert balance.gap_bias()[gap[24]] == 0  # a gap the piece never has: left to the network
    for _ in range(10):
        balance.hear_gap(gap[3])
    leaning = balance.gap_bias()
    assert leaning[gap[12]] > 0 > leaning[gap[3]]


def test_continuations_are_steered_unless_switched_off(tiny_model_path, tmp_path):
    data = midi_corpus.pedalled_piano()
    made = []
    for strength in (0.0, 3.0):
        composer = Composer(ComposerSettings(model=tiny_model_path, continuation_steering=strength))
        try:
            request = ComposeRequest(length=40, seed=11, primer=data, audio=False, picture=False)
            made.append(composer.compose_sync(request, tmp_path / str(strength)).midi.read_bytes())
        finally:
            composer.close()
    assert made[0] != made[1]


def test_the_candidate_nearest_the_piece_s_texture_is_the_one_nearest_in_key_range_size_and_pace():
    texture = texture_of(A_MAJOR * 10)
    same = A_MAJOR * 5
    c_major = [Event((60, 64, 67, 72), 12, 12, 5), Event((65, 69, 72, 77), 12, 12, 5)] * 7
    thin = [Event((69,), 12, 12, 5), Event((73,), 12, 12, 5)] * 7
    busy = [Event(e.pitches, 3, 3, 5) for e in A_MAJOR] * 5
    distances = [texture_distance(events, texture) for events in (same, c_major, thin, busy)]
    assert distances[0] == min(distances) and distances[0] < 0.2
    assert all(d > 0.5 for d in distances[1:])
    assert texture_distance([], texture) == float("inf")


def test_a_continuation_keeps_the_candidate_nearest_its_piece(tiny_model_path, tmp_path, watch_submissions):
    data = midi_corpus.pedalled_piano()
    composer = Composer(ComposerSettings(model=tiny_model_path, continuation_candidates=5), workers=1)
    try:
        submitted = watch_submissions(composer)
        request = ComposeRequest(length=30, seed=4, primer=data, audio=False, picture=False)
        made = composer.compose_sync(request, tmp_path / "more")
        assert len(submitted) == 5
        vocabulary = composer.load().vocabulary
        drawn = [future.result() for _, future in submitted]
        texture = texture_of(events_from_notes(read_score(data).notes))
        decoded = [fit_register([vocabulary.decode_event(row) for row in r.rows], texture) for r in drawn]
        distances = [texture_distance(d, texture) for d in decoded]
        assert len(set(distances)) > 1  # different candidates, so the choice means something
        assert made.log_likelihood == round(drawn[int(np.argmin(distances))].log_likelihood, 4)
    finally:
        composer.close()


def test_a_new_part_s_bass_and_top_line_move_by_octaves_into_the_piece_s_range():
    """Game music with its bass in the first octave, continued by chords a model knows from
    chorales: the chords' basses go down an octave (never below the piece's lowest note), their
    top notes up where the piece reaches higher, single notes and pitch classes stay."""
    piece = [Event((27 + i % 2, 50, 86 + i % 5), 12, 12, 5) for i in range(64)]
    texture = texture_of(piece)
    part = [Event((45, 57, 64), 12, 12, 5), Event((67,), 6, 6, 5), Event((38, 55, 62), 12, 12, 5)] * 10
    fitted = fit_register(part, texture)
    assert [e.pitches for e in fitted[:3]] == [(33, 57, 88), (67,), (38, 55, 86)]  # 26 is below 27
    assert all(min(e.pitches) >= texture.lowest and max(e.pitches) <= texture.highest for e in fitted)
    assert [{p % 12 for p in e.pitches} for e in fitted] == [{p % 12 for p in e.pitches} for e in part]
    rhythm = [(e.duration, e.ioi, e.velocity) for e in part]
    assert [(e.duration, e.ioi, e.velocity) for e in fitted] == rhythm
    assert fit_register(piece, texture) == piece  # a part already in the piece's range stays
    assert fit_register([], texture) == []


def test_a_new_part_thinner_than_its_piece_is_filled_out_with_octave_doublings():
    """A piece voiced in six notes, continued by triads and single notes: each event gets about
    twice its notes, all octave doublings of its own notes within the piece's lowest and highest,
    the inner ones first; rhythm and pitch classes stay, and a part as full as its piece stays."""
    piece = [Event((36, 48, 55, 64, 67, 72 + i % 2), 12, 12, 5) for i in range(64)]
    texture = texture_of(piece)
    part = [Event((48, 52, 55), 12, 12, 5), Event((60, 64, 67, 76), 6, 6, 4), Event((67,), 6, 6, 5)] * 8
    filled = fill_chords(part, texture)
    sizes = [len(e.pitches) for e in filled]
    assert sizes[:3] == [7, 9, 2]  # 6 / (8 / 3) = 2.25 times as many notes, rounded
    assert filled[0].pitches == (36, 43, 48, 52, 55, 60, 67)  # bass and top an octave either side
    assert 72 in filled[1].pitches  # inside the chord's own span first
    assert filled[2].pitches == (55, 67)  # a single note doubled an octave below
    added = [p for e, old in zip(filled, part, strict=True) for p in set(e.pitches) - set(old.pitches)]
    assert texture.lowest <= min(added) and max(added) <= texture.highest
    assert [{p % 12 for p in e.pitches} for e in filled] == [{p % 12 for p in e.pitches} for e in part]
    rhythm = [(e.duration, e.ioi, e.velocity) for e in part]
    assert [(e.duration, e.ioi, e.velocity) for e in filled] == rhythm
    assert fill_chords(piece, texture) == piece
    assert fill_chords(part[:1] * 20, texture_of(part[:1] * 64)) == part[:1] * 20
    assert fill_chords([], texture) == []


def test_a_continuation_is_as_full_as_the_band_it_continues(tiny_composer, tmp_path):
    """Six to eight notes on every beat across five channels, continued by a model whose chords
    are smaller: the new part, read back by pretty_midi, has nearly as many notes per onset as the
    piece has distinct pitches, and its added notes are in the piece's key."""
    data = midi_corpus.band_in_unison()
    request = ComposeRequest(length=48, seed=3, primer=data, audio=False, picture=False)
    made = tiny_composer.compose_sync(request, tmp_path / "band")
    midi = pretty_midi.PrettyMIDI(str(made.midi))
    new = next(i for i in midi.instruments if i.name == "Cadenza continuation")
    old = [n for i in midi.instruments if i is not new for n in i.notes]
    piece_chords = {(round(n.start, 3), n.pitch) for n in old}
    piece_size = len(piece_chords) / len({start for start, _ in piece_chords})
    size = len(new.notes) / len({round(n.start, 3) for n in new.notes})
    assert size >= 0.75 * piece_size  # within the 25% `evaluate --continuations` allows
    c_major = {0, 2, 4, 5, 7, 9, 11}
    assert sum(n.pitch % 12 in c_major for n in new.notes) >= 0.8 * len(new.notes)
