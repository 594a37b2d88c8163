"""Choosing the next token from the network's logits: temperature, top-k, top-p, min-p, typical
sampling, a voice-leading lean and a loop guard.

The seed took the argmax every time, which locks into a repeated note or phrase. Sampling from
a trimmed distribution keeps variety; :func:`loop_breakers` forbids the token that would start a
third straight repetition of a short pattern, so even a low temperature cannot loop for ever.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from composer.errors import InvalidOptionError
from composer.model.vocabulary import FIELDS

MOVES = (
    ("repeat", 0),
    ("step", 2),
    ("third", 4),
    ("fourth", 7),
    ("sixth", 11),
    ("octave", 12),
    ("wide", 127),
)
"""How far a line moves from one chord to the next, in semitones: each kind and the widest move it
covers (a step is one or two semitones, a "fourth" a fourth to a fifth, a "sixth" a sixth to a
seventh, "wide" beyond an octave)."""
LINES = ("bass", "top")
"""The lines a lean follows: each chord's lowest note and its highest."""
LEANS = tuple(f"{line}_{kind}" for line in LINES for kind, _ in MOVES)
"""``bass_repeat``, ``bass_step``, ... ``top_wide``: a lean on chords whose line moves so."""
LEAN_LIMIT = 5.0
"""The strongest lean, either way, in logits."""
_MOVE_KIND = np.searchsorted([widest for _, widest in MOVES], np.arange(128))
"""The index in :data:`MOVES` of every move from 0 to 127 semitones."""
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.9
"""Defaults chosen by evaluation of the bundled model (models/README.md): at 0.8 and 0.9 its pieces
keep to their key as Bach's chorales do (scale consistency 0.92), with no loops. A model file may
carry other defaults for a style's new pieces (``Artifact.sampling_for``): the bundled model's
``folk`` tunes pass for O'Neill's more often with hotter chords, min-p and a cooler rhythm."""


@dataclass(frozen=True)
class SamplingOptions:
    """How adventurous generation is. ``top_k=0``, ``top_p=1``, ``min_p=0`` and ``typical_p=1``
    switch those filters off; the filters trim the chords only (see ``generate._draw_rhythm``).

    ``field_temperatures`` overrides ``temperature`` for some fields by name (``pitch``,
    ``duration``, ``ioi``, ``velocity``): a chord can be drawn hotter than its rhythm, since a hot
    chord makes voice leading less predictable while a hot rhythm makes it busier than the music's.
    """

    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = 0
    top_p: float = DEFAULT_TOP_P
    min_p: float = 0.0
    """Keep the chords at least ``min_p`` times as likely as the likeliest (after temperature): a
    cut that follows the model's confidence, where top-p keeps a fixed mass."""
    typical_p: float = 1.0
    """Locally typical sampling: keep the chords whose surprise is nearest the distribution's
    entropy, up to this mass (Meister et al., 2023)."""
    field_temperatures: Mapping[str, float] = field(default_factory=dict)
    leans: Mapping[str, float] = field(default_factory=dict)
    """Logits added to each chord by how it moves from the one before (:data:`LEANS`): a network
    whose bass repeats and leaps more than its music's can be leaned towards stepwise lines."""
    key_lean: float = 0.0
    """For a new piece: this many times each chord's fit to the piece's key (the mean over its
    notes of the log of the Krumhansl-Kessler profile's weight against the profile's mean) is
    added to its logits at every event, so the piece stays in the key and mode it opened in."""

    def __post_init__(self) -> None:
        if not 0.05 <= self.temperature <= 3.0:
            raise InvalidOptionError(f"temperature must be between 0.05 and 3, not {self.temperature:g}.")
        if not 0 <= self.top_k <= 10_000:
            raise InvalidOptionError(f"top_k must be between 0 (off) and 10000, not {self.top_k}.")
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidOptionError(f"top_p must be above 0 and at most 1, not {self.top_p:g}.")
        if not 0.0 <= self.min_p < 1.0:
            raise InvalidOptionError(f"min_p must be from 0 (off) to below 1, not {self.min_p:g}.")
        if not 0.0 < self.typical_p <= 1.0:
            raise InvalidOptionError(f"typical_p must be above 0 and at most 1, not {self.typical_p:g}.")
        for name, value in self.field_temperatures.items():
            if name not in FIELDS:
                raise InvalidOptionError(f"no field {name!r} to set a temperature for; the fields: {FIELDS}.")
            if not 0.05 <= value <= 3.0:
                raise InvalidOptionError(f"{name}'s temperature must be between 0.05 and 3, not {value:g}.")
        if not 0.0 <= self.key_lean <= LEAN_LIMIT:
            raise InvalidOptionError(f"the key lean must be from 0 to {LEAN_LIMIT:g}, not {self.key_lean:g}.")
        for name, value in self.leans.items():
            if name not in LEANS:
                raise InvalidOptionError(f"no lean {name!r}; the leans: {', '.join(LEANS)}.")
            if not -LEAN_LIMIT <= value <= LEAN_LIMIT:
                raise InvalidOptionError(
                    f"the {name} lean must be from {-LEAN_LIMIT:g} to {LEAN_LIMIT:g} logits, not {value:g}."
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SamplingOptions:
        """Options from their JSON form (an artifact's per-style defaults), checked; fields left
        out keep their defaults."""
        known = {name for name in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise InvalidOptionError(f"unknown sampling options: {', '.join(sorted(unknown))}.")
        return cls(**data)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        """The JSON form :meth:`from_dict` reads."""
        return {
            "temperature": self.temperature,
            "top_k": self.top_k,
            "top_p": self.top_p,
            "min_p": self.min_p,
            "typical_p": self.typical_p,
            "field_temperatures": dict(self.field_temperatures),
            "leans": dict(self.leans),
            "key_lean": self.key_lean,
        }

    def temperature_of(self, name: str) -> float:
        """The temperature field ``name`` is drawn at: its own if set, else ``temperature``."""
        return float(self.field_temperatures.get(name, self.temperature))

    def describe(self) -> str:
        """A short account of the settings for reports, only what differs from off."""
        parts = [f"temperature {self.temperature:g}"]
        parts += [f"{name} at {value:g}" for name, value in self.field_temperatures.items()]
        if self.top_k:
            parts.append(f"top-k {self.top_k}")
        if self.top_p < 1.0:
            parts.append(f"top-p {self.top_p:g}")
        if self.min_p > 0.0:
            parts.append(f"min-p {self.min_p:g}")
        if self.typical_p < 1.0:
            parts.append(f"typical-p {self.typical_p:g}")
        parts += [f"{name.replace('_', ' ')} {value:+g}" for name, value in self.leans.items()]
        if self.key_lean:
            parts.append(f"key lean {self.key_lean:g}")
        return ", ".join(parts)


def probabilities(
    logits: np.ndarray,
    options: SamplingOptions,
    banned: Iterable[int] = (),
    boost: dict[int, float] | None = None,
) -> np.ndarray:
    """The distribution to draw the chord from: logits scaled by the chord's temperature, banned ids
    removed, then top-k, min-p, typical and top-p applied in that order.

    ``boost`` adds to the logits of some ids before scaling (used to steer towards an ending).
    """
    z = np.asarray(logits, dtype=np.float64).copy()
    for token, amount in (boost or {}).items():
        z[token] += amount
    z /= options.temperature_of("pitch")
    banned = list(banned)
    if banned:
        z[banned] = -np.inf
    if options.top_k and options.top_k < z.size:
        cutoff = np.partition(z, -options.top_k)[-options.top_k]
        z[z < cutoff] = -np.inf
    z -= z.max()
    p = np.exp(z)
    p /= p.sum()
    if options.min_p > 0.0:
        p = np.where(p >= options.min_p * p.max(), p, 0.0)
        p /= p.sum()
    if options.typical_p < 1.0:
        p = _typical(p, options.typical_p)
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


def _typical(p: np.ndarray, mass: float) -> np.ndarray:
    """``p`` kept to its most typical ids: those whose surprise (-log p) is nearest the entropy,
    taken in that order until they hold ``mass`` (the last one that crosses it included)."""
    live = np.flatnonzero(p > 0)
    logs = np.log(p[live])
    entropy = -(p[live] * logs).sum()
    order = live[np.argsort(np.abs(-logs - entropy), kind="stable")]
    cumulative = np.cumsum(p[order])
    keep = order[: int(np.searchsorted(cumulative, mass)) + 1]
    trimmed = np.zeros_like(p)
    trimmed[keep] = p[keep]
    return trimmed / trimmed.sum()


def move_kinds(moves: np.ndarray) -> np.ndarray:
    """The index in :data:`MOVES` of each move (in semitones, either direction)."""
    return _MOVE_KIND[np.minimum(np.abs(moves), 127)]


def lean_table(leans: Mapping[str, float]) -> np.ndarray:
    """``leans`` as an array: one row per line of :data:`LINES`, one column per kind of :data:`MOVES`."""
    return np.array([[leans.get(f"{line}_{kind}", 0.0) for kind, _ in MOVES] for line in LINES])


def motion_bias(outlines: np.ndarray, previous: int, leans: Mapping[str, float]) -> np.ndarray:
    """The logits :attr:`SamplingOptions.leans` add to every id after chord id ``previous``;
    ``outlines`` holds each id's lowest and highest note (``Vocabulary.outlines``), markers far
    below any note so that they are never leaned."""
    bias = np.zeros(len(outlines))
    if outlines[previous, 0] < 0:  # after a marker there is no line to lead
        return bias
    table = lean_table(leans)
    for line in range(len(LINES)):
        bias += table[line][move_kinds(outlines[:, line] - outlines[previous, line])]
    bias[outlines[:, 0] < 0] = 0.0
    return bias


def draw(p: np.ndarray, rng: np.random.Generator) -> int:
    """One id from distribution ``p``, reproducible for a given generator state.

    Only the ids with some probability are summed: after trimming they are a few dozen of the
    thousands of chords, and the running sum only grows at them, so the id drawn is the same."""
    live = np.flatnonzero(p)
    found = np.searchsorted(np.cumsum(p[live]), rng.random() * p.sum(), side="right")
    return int(live[found]) if found < live.size else p.size - 1


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
