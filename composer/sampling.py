"""Choosing the next token from the network's logits: temperature, top-k, top-p and a loop guard.

The seed took the argmax every time, which locks into a repeated note or phrase. Sampling from
a trimmed distribution keeps variety; :func:`loop_breakers` forbids the token that would start a
third straight repetition of a short pattern, so even a low temperature cannot loop for ever.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from composer.errors import InvalidOptionError

DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.9
"""Defaults chosen by evaluation of the bundled model (models/README.md): at 0.8 and 0.9 its pieces
keep to their key as Bach's chorales do (scale consistency 0.92), with no loops."""


@dataclass(frozen=True)
class SamplingOptions:
    """How adventurous generation is. ``top_k=0`` and ``top_p=1`` switch those filters off."""

    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = 0
    top_p: float = DEFAULT_TOP_P

    def __post_init__(self) -> None:
        if not 0.05 <= self.temperature <= 3.0:
            raise InvalidOptionError(f"temperature must be between 0.05 and 3, not {self.temperature:g}.")
        if not 0 <= self.top_k <= 10_000:
            raise InvalidOptionError(f"top_k must be between 0 (off) and 10000, not {self.top_k}.")
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidOptionError(f"top_p must be above 0 and at most 1, not {self.top_p:g}.")


NUCLEUS_CANDIDATES = 64
"""Top-p first sorts only each row's most likely ids; a row whose nucleus is wider sorts them all."""


def probabilities(
    logits: np.ndarray,
    options: SamplingOptions,
    banned: Iterable[int] = (),
    boost: dict[int, float] | None = None,
) -> np.ndarray:
    """The distribution to draw from: logits scaled, banned ids removed, then top-k and top-p applied.

    ``boost`` adds to the logits of some ids before scaling (used to steer towards an ending).
    One piece's view of :func:`batch_probabilities`.
    """
    z = np.asarray(logits, dtype=np.float64).reshape(1, -1)
    allowed = np.ones_like(z, dtype=bool)
    allowed[0, list(banned)] = False
    extra = np.zeros_like(z)
    for token, amount in (boost or {}).items():
        extra[0, token] += amount
    return batch_probabilities(z, [options], allowed, extra)[0]


def batch_probabilities(
    logits: np.ndarray,
    options: Sequence[SamplingOptions],
    allowed: np.ndarray | None = None,
    boost: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`probabilities` for a batch: ``logits`` ``(batch, vocabulary)``, one options per row.

    Every operation works row by row, so a piece gets the same distribution alone or in a batch;
    doing the whole batch in a few numpy calls is what lets many pieces step together cheaply.
    ``allowed`` (bool, same shape) removes ids; ``boost`` is added to the logits before scaling.
    """
    z = np.array(logits, dtype=np.float64)
    if boost is not None:
        z += boost
    z /= np.array([o.temperature for o in options])[:, None]
    if allowed is not None:
        z[~allowed] = -np.inf
    vocabulary = z.shape[1]
    for row, o in enumerate(options):
        if o.top_k and o.top_k < vocabulary:
            cutoff = np.partition(z[row], -o.top_k)[-o.top_k]
            z[row, z[row] < cutoff] = -np.inf
    with np.errstate(invalid="ignore"):  # a row with every id removed becomes NaN: the caller checks
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
    top_p = np.array([o.top_p for o in options])
    nucleus = np.flatnonzero(top_p < 1.0)
    if len(nucleus):
        p[nucleus] = _nucleus(p[nucleus], top_p[nucleus])
    return p


def _nucleus(p: np.ndarray, top_p: np.ndarray) -> np.ndarray:
    """Keep, per row, the most likely ids whose mass first reaches ``top_p``; renormalise.

    Ids are ranked by probability, ties by id, so the kept set does not depend on the batch.
    Only the :data:`NUCLEUS_CANDIDATES` likeliest ids of a row are sorted unless they fall short
    of the nucleus (then the whole row is): the same result at a fraction of the time for a
    vocabulary of thousands of chords.
    """
    rows, vocabulary = p.shape
    k = min(NUCLEUS_CANDIDATES, vocabulary)
    ids = np.argpartition(-p, k - 1, axis=1)[:, :k] if k < vocabulary else np.tile(np.arange(k), (rows, 1))
    ids.sort(axis=1)  # ascending ids, so the stable sort below breaks ties by id
    top = np.take_along_axis(p, ids, axis=1)
    short = np.flatnonzero(top.sum(axis=1) < top_p)
    kept = np.zeros_like(p)
    order = np.argsort(-top, axis=1, kind="stable")
    ranked, ranked_p = np.take_along_axis(ids, order, axis=1), np.take_along_axis(top, order, axis=1)
    count = (np.cumsum(ranked_p, axis=1) < top_p[:, None]).sum(axis=1) + 1
    keep = np.arange(k)[None, :] < count[:, None]
    np.put_along_axis(kept, ranked, np.where(keep, ranked_p, 0.0), axis=1)
    for row in short:  # the nucleus is wider than the candidates: rank the whole row
        ranked = np.argsort(-p[row], kind="stable")
        count = int((np.cumsum(p[row, ranked]) < top_p[row]).sum()) + 1
        kept[row] = 0.0
        kept[row, ranked[:count]] = p[row, ranked[:count]]
    return kept / kept.sum(axis=1, keepdims=True)


def draw(p: np.ndarray, rng: np.random.Generator) -> int:
    """One id from distribution ``p``, reproducible for a given generator state."""
    return int(batch_draw(np.asarray(p).reshape(1, -1), np.array([rng.random()]))[0])


def batch_draw(p: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One id per row of ``p`` (``(batch, vocabulary)``), chosen by that row's uniform number in [0, 1)."""
    cumulative = np.cumsum(p, axis=1)
    chosen = (cumulative <= (uniforms * cumulative[:, -1])[:, None]).sum(axis=1)
    return np.minimum(chosen, p.shape[1] - 1)


def loop_breakers(history: Sequence[int], longest: int = 16, single_repeats: int = 4) -> set[int]:
    """Ids that would continue a loop: a pattern of 2 to ``longest`` ids already played twice in a
    row, or one id already repeated ``single_repeats`` times."""
    banned: set[int] = set()
    n = len(history)
    if n >= single_repeats and len(set(history[-single_repeats:])) == 1:
        banned.add(history[-1])
    for size in range(2, min(longest, n // 2) + 1):
        if history[-size:] == history[-2 * size : -size]:
            banned.add(history[-size])
    return banned
