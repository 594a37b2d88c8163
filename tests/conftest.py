"""Shared fixtures: a tiny real model, trained for seconds on hand-made pieces."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

from composer.events import Event
from composer.model import ModelConfig
from training.sources import Piece

TINY = ModelConfig(
    units=24,
    layers=2,
    dropout=0.0,
    pitch_embedding=12,
    rhythm_embedding=4,
    velocity_embedding=2,
    style_embedding=2,
)


def scale_piece(name: str, root: int, style: str, length: int = 48) -> Piece:
    """A hand-made piece: a major scale up and down with a closing chord, in quarters and eighths."""
    steps = [0, 2, 4, 5, 7, 9, 11, 12]
    walk = steps + steps[::-1]
    events = []
    for i in range(length):
        pitch = root + walk[i % len(walk)]
        tick = 12 if i % 4 == 0 else 6
        events.append(Event((pitch,), tick, tick, 4 + (i % 2)))
    events.append(Event((root - 12, root, root + 4, root + 7), 24, 24, 5))
    return Piece(name, style, tuple(events), 96.0)


@pytest.fixture(scope="session")
def tiny_pieces() -> list[Piece]:
    return [scale_piece(f"p{i}", 55 + i, "bach" if i % 2 else "folk") for i in range(8)]


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, tiny_pieces):
    """A real model trained for a few epochs; its artifact path."""
    from training.train import TrainOptions, train

    out = tmp_path_factory.mktemp("model") / "tiny"
    options = TrainOptions(
        out=out,
        model=TINY,
        epochs=3,
        batch_size=8,
        sequence_length=16,
        validation=0.25,
        verbose=0,
        learning_rate=1e-2,
    )
    return train(options, pieces=tiny_pieces).path
