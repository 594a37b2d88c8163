"""Generation: primers in, new events out, one network step per event for a batch of pieces.

Every piece starts from a primer (at least the start row), which is fed through the network to
build its state; then all pieces step together, each drawing from its own seeded generator, so
a piece is the same whether it was made alone or in a batch. Endings are steered: the end marker
is forbidden before 90% of the requested length, encouraged after it, and forced at 110%.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from composer.sampling import SamplingOptions, draw, loop_breakers, probabilities
from composer.stepper import State, Stepper
from composer.vocabulary import END, FIELDS, MARKERS, START

MAX_PRIMER_EVENTS = 1000
"""Only the last events of a long primer are fed: enough context, bounded time."""


@dataclass(frozen=True)
class PieceRequest:
    """One piece to generate: how long, in which style, how to sample, and what it follows."""

    length: int
    seed: int
    style: int = 0
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    primer: np.ndarray = field(default_factory=lambda: np.full((1, 4), START, np.int32))
    loop_guard: bool = True
    fixed: dict[str, int] = field(default_factory=dict)
    """Ids for fields the network does not predict (the seed network predicts pitch only)."""


@dataclass
class Generated:
    """New event rows (value ids, no markers) and whether the network chose to end there."""

    rows: np.ndarray
    ended_naturally: bool


def end_window(length: int) -> tuple[int, int]:
    """The earliest and latest number of events at which a piece of ``length`` may end."""
    return max(1, math.ceil(0.9 * length)), max(length, math.floor(1.1 * length))


def warm_up(stepper: Stepper, primer: np.ndarray, style: int) -> tuple[dict[str, np.ndarray], State]:
    """Feed a primer (token rows) through the network; the logits predict the event after it."""
    primer = np.asarray(primer, dtype=np.int32).reshape(-1, 4)[-MAX_PRIMER_EVENTS:]
    state = stepper.initial_state(1)
    styles = np.array([style])
    logits = {}
    for row in primer:
        logits, state = stepper.step(row[None, :], styles, state)
    return logits, state


def generate(stepper: Stepper, requests: Sequence[PieceRequest]) -> list[Generated]:
    """Generate every requested piece, stepping all of them as one batch."""
    if not requests:
        return []
    warmed = [warm_up(stepper, r.primer, r.style) for r in requests]
    logits = {name: np.concatenate([w[0][name] for w in warmed]) for name in stepper.heads}
    state = State.stack([w[1] for w in warmed])
    styles = np.array([r.style for r in requests])
    rngs = [np.random.default_rng(r.seed) for r in requests]
    out: list[list[list[int]]] = [[] for _ in requests]
    history: list[list[int]] = [[] for _ in requests]
    natural = [False] * len(requests)
    done = [False] * len(requests)
    last_rows = np.stack([np.asarray(r.primer, np.int32).reshape(-1, 4)[-1] for r in requests])
    while not all(done):
        for b, request in enumerate(requests):
            if done[b]:
                continue
            row = _choose(request, {n: logits[n][b] for n in logits}, len(out[b]), history[b], rngs[b])
            if row is None:
                done[b] = True
                natural[b] = len(out[b]) < end_window(request.length)[1]
                continue
            out[b].append(row)
            history[b].append(row[0])
            last_rows[b] = row
        if all(done):
            break
        logits, state = stepper.step(last_rows, styles, state)
    return [
        Generated(np.asarray(rows, dtype=np.int32).reshape(-1, 4), ended)
        for rows, ended in zip(out, natural, strict=True)
    ]


def _choose(
    request: PieceRequest,
    logits: dict[str, np.ndarray],
    count: int,
    history: list[int],
    rng: np.random.Generator,
) -> list[int] | None:
    """The next event's ids, or ``None`` when the piece ends here."""
    earliest, latest = end_window(request.length)
    if count >= latest:
        return None
    options = request.sampling
    banned = set(range(MARKERS)) - {END}
    boost = {}
    if count < earliest:
        banned.add(END)
    elif count >= request.length:
        boost[END] = 3.0 * (count - request.length + 1) / max(1, latest - request.length)
    if request.loop_guard:
        banned |= loop_breakers(history)
    p = probabilities(logits["pitch"], options, banned, boost)
    if not np.isfinite(p).all() or p.sum() == 0:  # everything banned: relax the loop guard
        p = probabilities(
            logits["pitch"], options, set(range(MARKERS)) - ({END} if count >= earliest else set())
        )
    pitch = draw(p, rng)
    if pitch == END:
        return None
    row = [pitch]
    for name in FIELDS[1:]:
        if name in logits:
            row.append(draw(probabilities(logits[name], options, range(MARKERS)), rng))
        else:
            row.append(request.fixed[name])
    return row
