"""Micro-batching: pieces from many threads step together and come out as if made alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from composer.generation.batcher import Batcher
from composer.generation.generate import PieceRequest, generate
from composer.generation.sampling import SamplingOptions
from composer.model import artifact
from composer.model.stepper import Stepper


@pytest.fixture(scope="module")
def stepper(tiny_model_path):
    loaded = artifact.load(tiny_model_path)
    return Stepper(loaded.config, loaded.weights)


def test_pieces_from_many_threads_match_pieces_made_alone(stepper):
    requests = [
        PieceRequest(length=[12, 60, 30, 45, 8, 70][i], seed=i, sampling=SamplingOptions(top_k=[0, 5][i % 2]))
        for i in range(6)
    ]
    alone = [generate(stepper, [r])[0] for r in requests]
    batcher = Batcher(stepper)
    start = threading.Barrier(len(requests))

    def make(request):
        start.wait()  # all at once, so they really share steps
        return batcher.generate(request)

    with ThreadPoolExecutor(len(requests)) as pool:
        together = list(pool.map(make, requests))
    batcher.close()
    assert batcher.largest_batch > 1
    for one, other in zip(alone, together, strict=True):
        np.testing.assert_array_equal(one.rows, other.rows)
        assert one.ended_naturally == other.ended_naturally


def test_a_piece_with_a_primer_joins_pieces_already_stepping(stepper):
    primer = generate(stepper, [PieceRequest(length=20, seed=5)])[0].rows
    primed = PieceRequest(length=15, seed=2, primer=np.vstack([[1, 1, 1, 1], primer]))
    batcher = Batcher(stepper, max_batch=2)
    with ThreadPoolExecutor(3) as pool:
        long_one = pool.submit(batcher.generate, PieceRequest(length=200, seed=1))
        short_ones = [primed, PieceRequest(length=9, seed=3)]
        later = [pool.submit(batcher.generate, r) for r in short_ones]
        results = [f.result() for f in (long_one, *later)]
    batcher.close()
    assert batcher.largest_batch == 2  # the third piece waited for a place
    np.testing.assert_array_equal(results[1].rows, generate(stepper, [primed])[0].rows)
    assert 180 <= len(results[0].rows) <= 220


def test_closed_batcher_refuses_new_pieces(stepper):
    batcher = Batcher(stepper)
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.generate(PieceRequest(length=4, seed=0))


def test_a_bad_piece_fails_its_caller_and_the_batcher_goes_on(stepper):
    batcher = Batcher(stepper)
    with pytest.raises(IndexError):
        batcher.generate(PieceRequest(length=10, seed=0, style=99))  # no such style row
    assert len(batcher.generate(PieceRequest(length=10, seed=0)).rows) >= 9
    batcher.close()


def test_candidates_sharing_a_primer_feed_it_once(stepper):
    """A continuation's candidates share its primer: it goes through the network once for all of
    them, and each candidate comes out as it would alone."""
    primer = np.vstack([[1, 1, 1, 1], generate(stepper, [PieceRequest(length=30, seed=7)])[0].rows])
    candidates = [PieceRequest(length=12, seed=4, primer=primer, candidate=c) for c in range(4)]
    other_style = PieceRequest(length=12, seed=4, primer=primer, style=1)
    alone = [generate(stepper, [r])[0] for r in (*candidates, other_style)]

    batcher = Batcher(stepper)
    fed, feed = [], stepper.feed

    def counting_feed(rows, style, state):
        fed.append(style)
        return feed(rows, style, state)

    stepper.feed = counting_feed
    try:
        results = [f.result() for f in batcher.submit_all([*candidates, other_style])]
    finally:
        stepper.feed = feed
        batcher.close()
    assert sorted(fed) == [0, 1]  # once per style, not once per candidate
    for one, other in zip(alone, results, strict=True):
        np.testing.assert_array_equal(one.rows, other.rows)
