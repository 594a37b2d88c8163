"""Choosing among candidate pieces with a critic that knows its style's real music.

Sampled one event at a time, a network writes pieces whose overall shape drifts from its music's:
the bundled model's chorales dwell less on the minor sixth and lean to major, its tunes move in
smaller steps with fewer sixteenths. No single logit fixes a whole piece's shape, but a judge
of whole pieces can choose: several candidates are drawn for a request (together, in one
batch), and the critic keeps the one it finds likeliest to be real, as discriminator rejection
sampling does (Azadi et al., 2019). The critic is a small ensemble of gradient-boosted trees
on the key-free, tempo-free figures of :mod:`composer.generation.features`, fitted by
``python -m training evaluate --fit-critic STYLE`` to tell the style's training pieces from the
model's own. Its trees are kept as plain arrays in the model file and walked with numpy, so
composing needs no scikit-learn.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from composer.events import Event
from composer.generation.features import features
from composer.generation.generate import Generated, best_candidate
from composer.generation.steering import Texture, fit_register, texture_distance
from composer.keys import Key, detect_key
from composer.model.vocabulary import Vocabulary

LEAF = -1
"""A node's child where it has none."""
ARRAYS = {
    "feature": np.int64,
    "threshold": np.float64,
    "left": np.int64,
    "right": np.int64,
    "value": np.float64,
}
"""The trees' arrays, by name, and their types."""
CANDIDATE_EVENTS = 4_000
"""Most events a piece's candidates come to together. Each candidate costs its events in
network steps and sampling, so a long piece draws fewer: judged by its mean over many windows,
it also gains less from more (bench/RESULTS.md has the times)."""


@dataclass(frozen=True)
class Critic:
    """Gradient-boosted trees that score a piece: above 0, likelier one of the model's own than real."""

    names: tuple[str, ...]
    """The features (:func:`~composer.generation.features.features`) the trees split on, in order."""
    window: int
    """Events per scored window: the length of the pieces it was fitted on."""
    candidates: int
    """How many candidates a new piece of the style draws for the critic to choose from."""
    own_keys: bool
    """Whether each candidate draws its own key (where none is asked for), so that the critic
    chooses the key and mode too (:func:`composer.keys.draw_key`)."""
    base: float
    """The trees' starting score (the log-odds of the fitting's classes)."""
    rate: float
    """The learning rate: each tree's leaves count this much."""
    feature: np.ndarray
    """Per tree and node, the feature split on (:data:`LEAF` at a leaf); shape ``(trees, nodes)``."""
    threshold: np.ndarray
    """Per tree and node, the split: at most this goes left."""
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    """Per tree and node, the leaf's value (only leaves count)."""

    def scores(self, pieces: Sequence[Sequence[Event]]) -> np.ndarray:
        """How much likelier each piece is the model's than real, in log-odds: the mean over its
        windows of :attr:`window` events, so a long piece is judged as the fitting's pieces were."""
        rows, owner = [], []
        for i, events in enumerate(pieces):
            for window in _windows(events, self.window):
                found = features(window)
                rows.append([found[name] for name in self.names])
                owner.append(i)
        if not rows:
            return np.zeros(len(pieces))
        raw = self.decision(np.array(rows))
        owner = np.array(owner)
        return np.array([raw[owner == i].mean() if (owner == i).any() else 0.0 for i in range(len(pieces))])

    def decision(self, x: np.ndarray) -> np.ndarray:
        """The trees' summed log-odds for each row of feature values ``x``."""
        x = np.asarray(x, dtype=np.float32)  # as scikit-learn's trees compare, split for split
        trees = np.arange(self.feature.shape[0])
        node = np.zeros((len(x), len(trees)), dtype=np.int64)
        for _ in range(self.feature.shape[1]):
            feature = self.feature[trees, node]
            inner = feature != LEAF
            if not inner.any():
                break
            goes_left = x[np.arange(len(x))[:, None], np.maximum(feature, 0)] <= self.threshold[trees, node]
            child = np.where(goes_left, self.left[trees, node], self.right[trees, node])
            node = np.where(inner, child, node)
        return self.base + self.rate * self.value[trees, node].sum(axis=1)

    def most_real(self, pieces: Sequence[Sequence[Event]]) -> int:
        """The index of the piece the critic finds likeliest real (the first, on a tie)."""
        return int(np.argmin(self.scores(pieces)))

    def to_dict(self) -> dict:
        """JSON-ready form, for the model file's defaults."""
        return {
            "names": list(self.names),
            "window": self.window,
            "candidates": self.candidates,
            "own_keys": self.own_keys,
            "base": self.base,
            "rate": self.rate,
            **{name: getattr(self, name).tolist() for name in ARRAYS},
        }

    @classmethod
    def from_dict(cls, data: dict) -> Critic:
        """The critic :meth:`to_dict` wrote; checks that its arrays agree."""
        arrays = {name: np.asarray(data[name], dtype=kind) for name, kind in ARRAYS.items()}
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError("the critic's tree arrays do not agree in shape")
        names = tuple(data["names"])
        nodes = arrays["feature"].shape[1]
        children = np.concatenate([arrays["left"], arrays["right"]], axis=None)
        if arrays["feature"].max(initial=LEAF) >= len(names) or children.max(initial=LEAF) >= nodes:
            raise ValueError("the critic's trees point outside themselves")
        return cls(
            names=names,
            window=int(data["window"]),
            candidates=int(data["candidates"]),
            own_keys=bool(data.get("own_keys", False)),
            base=float(data["base"]),
            rate=float(data["rate"]),
            **arrays,
        )


def _windows(events: Sequence[Event], size: int) -> list[Sequence[Event]]:
    """``events`` in whole windows of ``size`` (the last one taking the remainder); one window
    for a piece shorter than two."""
    count = max(1, len(events) // max(1, size))
    bounds = [round(i * len(events) / count) for i in range(count + 1)]
    return [events[a:b] for a, b in itertools.pairwise(bounds) if b - a >= 2]


def candidate_count(critic: Critic | None, length: int, asked: int | None = None) -> int:
    """How many candidates a piece of ``length`` events draws: ``asked`` where given, else the
    critic's own number, fewer for a long piece so that all of them together are at most
    :data:`CANDIDATE_EVENTS` events (``compose 500``: 8); one without a critic."""
    if asked:
        return asked
    if critic is None:
        return 1
    return max(1, min(critic.candidates, CANDIDATE_EVENTS // max(1, length)))


def choose(
    results: Sequence[Generated],
    critic: Critic | None,
    vocabulary: Vocabulary,
    texture: Texture | None = None,
    key: Key | None = None,
) -> Generated:
    """The candidate to keep: for a continuation (``texture``, the end of its piece), the one
    nearest the piece's key and texture (:func:`~composer.generation.steering.texture_distance`);
    with a critic, the one it finds likeliest real; else the one the network finds likeliest
    (:func:`~composer.generation.generate.best_candidate`).

    ``key`` is the key a new piece drew. Where its candidates drew keys of their own
    (:attr:`Critic.own_keys`), the critic judges only those that came out in its mode, if any
    did: left to choose, it kept major candidates, and 9-21% of the bundled model's chorales
    came out in minor where 41% of its training chorales are (models/README.md)."""
    if len(results) == 1 or (critic is None and texture is None):
        return best_candidate(results)
    pieces = [[vocabulary.decode_event(row) for row in result.rows] for result in results]
    if texture is not None:
        fitted = [fit_register(piece, texture) for piece in pieces]  # as each would be kept
        return results[int(np.argmin([texture_distance(piece, texture) for piece in fitted]))]
    judged = list(range(len(results)))
    if critic.own_keys and key is not None:
        judged = [i for i in judged if detect_key(pieces[i]).minor == key.minor] or judged
    return results[judged[critic.most_real([pieces[i] for i in judged])]]
