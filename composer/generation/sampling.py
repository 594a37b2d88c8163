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


def probabilities(
    logits: np.ndarray,
    options: SamplingOptions,
    banned: Iterable[int] = (),
    boost: dict[int, float] | None = None,
) -> np.ndarray:
    """The distribution to draw from: logits scaled, banned ids removed, then top-k and top-p applied.

    ``boost`` adds to the logits of some ids before scaling (used to steer towards an ending).
    """
    z = np.asarray(logits, dtype=np.float64).copy()
    for token, amount in (boost or {}).items():
        z[token] += amount
    z /= options.temperature
    banned = list(banned)
    if banned:
        z[banned] = -np.inf
    if options.top_k and options.top_k < z.size:
        cutoff = np.partition(z, -options.top_k)[-options.top_k]
        z[z < cutoff] = -np.inf
    z -= z.max()
    p = np.exp(z)
    p /= p.sum()
    if options.top_p < 1.0:
        # Sort only the ids that can matter: those within 1e-4 of the likeliest one, unless they
        # do not reach the nucleus mass. Same result as sorting all, a third of the time for a
        # vocabulary of thousands of chords.
        candidates = np.flatnonzero(p >= 1e-4 * p.max())
        if p[candidates].sum() < options.top_p:
            candidates = np.arange(p.size)
        order = candidates[np.argsort(-p[candidates], kind="stable")]
        cumulative = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cumulative, options.top_p)) + 1]
        trimmed = np.zeros_like(p)
        trimmed[keep] = p[keep]
        p = trimmed / trimmed.sum()
    return p


def draw(p: np.ndarray, rng: np.random.Generator) -> int:
    """One id from distribution ``p``, reproducible for a given generator state."""
    return int(min(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"), p.size - 1))


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
