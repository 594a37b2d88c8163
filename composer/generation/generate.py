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

from composer.generation.sampling import SamplingOptions, draw, loop_breakers, motion_bias, probabilities
from composer.generation.steering import Balance, Steering
from composer.model.stepper import State, Stepper
from composer.model.vocabulary import END, FIELDS, MARKERS, START

MAX_PRIMER_EVENTS = 1000
"""Only the last events of a long primer are fed: enough context, bounded time."""
OPENING = 4.0
"""Logits added to the chords a new piece is asked to open on (:attr:`PieceRequest.opening`)."""


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
    steering: Steering | None = field(default=None, repr=False)
    """Leans the chords towards a piece being continued (:mod:`composer.generation.steering`)."""
    candidate: int = 0
    """Which of several candidates for the same seed this is (0: the piece the seed alone gives)."""
    outlines: np.ndarray | None = field(default=None, repr=False)
    """``Vocabulary.outlines``: needed when the sampling has leans."""
    opening: tuple[int, ...] = ()
    """Pitch ids made :data:`OPENING` logits likelier for the first event: the tonic chords of
    the key a new piece is to be in, so that it opens in that key's mode (the network, left to
    choose, wrote one chorale in eight in minor where two in five of its training chorales are)."""
    key_fit: np.ndarray | None = field(default=None, repr=False)
    """Each pitch id's fit to the key a new piece is to be in (:func:`composer.keys.key_fit`),
    added to the chord logits :attr:`SamplingOptions.key_lean` times at every event."""


@dataclass
class Generated:
    """New event rows (value ids, no markers) and whether the network chose to end there."""

    rows: np.ndarray
    ended_naturally: bool
    log_likelihood: float = 0.0
    """The network's own log-probability of the piece's events, per event (untempered): how
    typical of what it learnt the piece is, for choosing among candidates."""
    candidate: int = 0
    """Which candidate of its request this is (:attr:`PieceRequest.candidate`)."""


def end_window(length: int) -> tuple[int, int]:
    """The earliest and latest number of events at which a piece of ``length`` may end."""
    return max(1, math.ceil(0.9 * length)), max(length, math.floor(1.1 * length))


def warm_up(stepper: Stepper, primer: np.ndarray, style: int) -> tuple[dict[str, np.ndarray], State]:
    """Feed a primer (token rows) through the network; the logits predict the event after it."""
    primer = np.asarray(primer, dtype=np.int32).reshape(-1, 4)[-MAX_PRIMER_EVENTS:]
    return stepper.feed(primer, style, stepper.initial_state(1))


def warm_ups(stepper: Stepper, requests: Sequence[PieceRequest]) -> list[tuple[dict[str, np.ndarray], State]]:
    """:func:`warm_up` for every request, each distinct primer and style fed once: the candidates
    of one continuation share a primer of up to :data:`MAX_PRIMER_EVENTS` events, which would
    otherwise cost as many network steps again per candidate."""
    fed: dict[tuple, tuple[dict[str, np.ndarray], State]] = {}
    warmed = []
    for request in requests:
        primer = np.asarray(request.primer, dtype=np.int32)
        key = (request.style, primer.shape, primer.tobytes())
        if key not in fed:
            fed[key] = warm_up(stepper, primer, request.style)
        warmed.append(fed[key])
    return warmed


class Progress:
    """One piece being generated: its request, random generator, the rows so far and whether it ended."""

    def __init__(self, request: PieceRequest) -> None:
        self.request = request
        seed = [request.seed, request.candidate] if request.candidate else request.seed
        self.rng = np.random.default_rng(seed)
        self.log_likelihood = 0.0
        self.rows: list[list[int]] = []
        self.pitches: list[int] = []
        self.done = False
        self.ended_naturally = False
        self.last_row = np.asarray(request.primer, np.int32).reshape(-1, 4)[-1].copy()
        self.balance = Balance(request.steering) if request.steering is not None else None

    def result(self) -> Generated:
        """The finished piece."""
        rows = np.asarray(self.rows, dtype=np.int32).reshape(-1, 4)
        return Generated(
            rows, self.ended_naturally, self.log_likelihood / max(1, len(self.rows)), self.request.candidate
        )


def generate(stepper: Stepper, requests: Sequence[PieceRequest]) -> list[Generated]:
    """Generate every requested piece, stepping all of them as one batch."""
    if not requests:
        return []
    warmed = warm_ups(stepper, requests)
    logits = {name: np.concatenate([w[0][name] for w in warmed]) for name in stepper.heads}
    state = State.stack([w[1] for w in warmed])
    styles = np.array([r.style for r in requests])
    pieces = [Progress(r) for r in requests]
    while True:
        advance(pieces, logits, stepper)
        if all(p.done for p in pieces):
            break
        logits, state = stepper.step(np.stack([p.last_row for p in pieces]), styles, state)
    return [p.result() for p in pieces]


def advance(pieces: Sequence[Progress], logits: dict[str, np.ndarray], stepper: Stepper) -> None:
    """Choose the next event of every unfinished piece from its row of ``logits``.

    Row ``b`` of each logits array belongs to ``pieces[b]``. A piece that ends here is marked done;
    one already done is left alone (its row is ignored). The chord is drawn piece by piece (one
    numpy pass over a few thousand chords, measured faster than batching it); the small rhythm
    fields of all pieces are drawn together, row by row, so a piece is the same in any batch;
    with chained heads each is drawn knowing the fields of its event drawn before it.
    """
    going: list[int] = []
    norms = _log_norms(logits["pitch"])
    for b, piece in enumerate(pieces):
        if piece.done:
            continue
        pitch = _choose_pitch(piece, logits["pitch"][b])
        token = END if pitch is None else pitch
        piece.log_likelihood += float(logits["pitch"][b][token]) - norms[b]
        if pitch is None:
            piece.done = True
            piece.ended_naturally = len(piece.rows) < end_window(piece.request.length)[1]
            continue
        piece.last_row[0] = pitch
        if piece.balance is not None:
            piece.balance.hear(pitch)
        going.append(b)
    if not going:
        return
    chosen = [pieces[b] for b in going]
    uniforms = np.array([piece.rng.random(len(FIELDS) - 1) for piece in chosen])
    drawn = {"pitch": np.array([piece.last_row[0] for piece in chosen])}
    for i, name in enumerate(FIELDS[1:]):
        if name in logits:
            z = stepper.condition(name, logits[name][going], drawn)
            temperatures = np.array([piece.request.sampling.temperature_of(name) for piece in chosen])
            values = _draw_rhythm(_paced(z, chosen) if name == "ioi" else z, temperatures, uniforms[:, i])
            for piece, score in zip(chosen, _log_softmax_at(z, values), strict=True):
                piece.log_likelihood += score
        else:
            values = [piece.request.fixed[name] for piece in chosen]
        drawn[name] = np.asarray(values)
        for piece, value in zip(chosen, values, strict=True):
            piece.last_row[i + 1] = value
            if name == "ioi" and piece.balance is not None:
                piece.balance.hear_gap(int(value))
    for piece in chosen:
        row = piece.last_row.tolist()
        piece.rows.append(row)
        piece.pitches.append(row[0])


def _paced(logits: np.ndarray, pieces: Sequence[Progress]) -> np.ndarray:
    """The gap logits with each steered piece's pace bias added (the network's own logits still
    score the choice, so the likelihood stays the network's)."""
    if all(piece.balance is None for piece in pieces):
        return logits
    biased = np.array(logits, dtype=np.float64)
    for row, piece in enumerate(pieces):
        if piece.balance is not None:
            biased[row] += piece.balance.gap_bias()
    return biased


def _draw_rhythm(logits: np.ndarray, temperatures: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One id per row for a rhythm field (duration, gap or loudness): the network's distribution
    at the piece's temperature, markers removed, nothing trimmed.

    Trimming suits the thousands of chords, whose long tail is mostly wrong notes; the rhythm
    fields have a dozen or two values and no such tail. Trimmed by top-p, the bundled model's
    rhythms were plainer than the music it learnt from (inter-onset entropy 31% under the
    held-out pieces'); untrimmed, within 8% for each style (models/README.md).
    """
    z = np.asarray(logits, dtype=np.float64) / temperatures[:, None]
    z[:, :MARKERS] = -np.inf
    z -= z.max(axis=1, keepdims=True)
    cumulative = np.cumsum(np.exp(z), axis=1)
    chosen = (cumulative <= (uniforms * cumulative[:, -1])[:, None]).sum(axis=1)
    return np.minimum(chosen, z.shape[1] - 1)


def _log_softmax_at(logits: np.ndarray, chosen: Sequence[int]) -> np.ndarray:
    """Each row's log-probability (untempered softmax) of its chosen id."""
    z = np.asarray(logits, dtype=np.float64)
    return z[np.arange(len(z)), np.asarray(chosen)] - _log_norms(z)


def _log_norms(logits: np.ndarray) -> np.ndarray:
    """Each row's log of the sum of its exponentiated logits (the softmax's normaliser)."""
    z = np.asarray(logits, dtype=np.float64)
    top = z.max(axis=1, keepdims=True)
    return np.log(np.exp(z - top).sum(axis=1)) + top[:, 0]


def best_candidate(results: Sequence[Generated]) -> Generated:
    """The candidate the network finds likeliest, per event."""
    return max(results, key=lambda r: r.log_likelihood)


def _choose_pitch(piece: Progress, logits: np.ndarray) -> int | None:
    """The next chord's id, or ``None`` when the piece ends here."""
    request, count = piece.request, len(piece.rows)
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
    if count == 0:
        boost.update(dict.fromkeys(request.opening, OPENING))
    if request.loop_guard:
        banned |= loop_breakers(piece.pitches)
    if piece.balance is not None:
        logits = logits + piece.balance.bias()
    if options.key_lean and request.key_fit is not None:
        logits = logits + options.key_lean * request.key_fit
    if options.leans and request.outlines is not None and piece.pitches:
        logits = logits + motion_bias(request.outlines, piece.pitches[-1], options.leans)
    p = probabilities(logits, options, banned, boost)
    if not np.isfinite(p).all() or p.sum() == 0:  # everything banned: relax the loop guard
        p = probabilities(logits, options, set(range(MARKERS)) - ({END} if count >= earliest else set()))
    pitch = draw(p, piece.rng)
    return None if pitch == END else pitch
