"""Fitting a style's line leans to how its training pieces move.

A network sampled at a useful temperature moves its outer lines differently from its music: the
bundled model's chorale basses leap by thirds twice as often as Bach's and its top lines step
less. :attr:`~composer.generation.sampling.SamplingOptions.leans` add logits to chords by how
their bass and top move (:data:`~composer.generation.sampling.MOVES`); here they are set from the
data instead of by hand. Each round generates pieces of the style, compares the share of each
kind of move with the training pieces' (never the held-out ones, which judge the result), and
moves every lean by the log of the ratio, damped, as iterative proportional fitting does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from composer.events import Event
from composer.generation.generate import PieceRequest
from composer.generation.sampling import LEAN_LIMIT, LINES, MOVES, SamplingOptions, lean_table, move_kinds
from composer.model.artifact import Artifact
from composer.model.stepper import Stepper
from training.evaluate import generate_requests, style_settings

log = logging.getLogger(__name__)

FIT_SEED = 200_000
"""The fitting's pieces start at this seed, apart from the evaluation's (0-99 and 100,000 on)."""
SINGLE_LINE = 0.95
"""A style with at least this share of single notes is one line (O'Neill's tunes: 99.9%)."""
SMOOTHING = 1e-3
"""Added to every share so that a kind of move never played gives a finite ratio."""


@dataclass(frozen=True)
class FitRound:
    """One round of the fit: the leans it generated with and the shares of moves they gave."""

    leans: dict[str, float]
    shares: np.ndarray
    """One row per line of :data:`LINES`, one column per kind of :data:`MOVES`."""
    distance: float
    """Total variation between these shares and the training pieces', averaged over the lines."""


def line_moves(pieces: Iterable[Sequence[Event]]) -> np.ndarray:
    """The share of each kind of move in each outer line, over every pair of neighbouring events."""
    counts = np.zeros((len(LINES), len(MOVES)))
    for events in pieces:
        outline = np.array([(min(e.pitches), max(e.pitches)) for e in events]).reshape(-1, 2)
        for line in range(len(LINES)):
            kinds = move_kinds(np.diff(outline[:, line]))
            counts[line] += np.bincount(kinds, minlength=len(MOVES))
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def fit_leans(
    model: Artifact,
    stepper: Stepper,
    style: str,
    sampling: SamplingOptions,
    target: Sequence[Sequence[Event]],
    rounds: int = 8,
    count: int = 64,
    step: float = 0.5,
    batch: int = 16,
) -> tuple[SamplingOptions, list[FitRound]]:
    """``sampling`` with leans that make ``style``'s new pieces move their lines as ``target`` (its
    training pieces) do, and each round's figures. The leans start from ``sampling``'s own; the
    round whose shares came nearest the target's is kept. A style of single notes
    (:data:`SINGLE_LINE`) has one
    line, so only its top leans are fitted."""
    if style not in model.vocabulary.styles:
        raise ValueError(f"the model has no style {style!r}; it has {', '.join(model.vocabulary.styles)}")
    if not target:
        raise ValueError(f"no training pieces of the {style} style to fit the leans to")
    wanted = line_moves(target)
    # In a style of single notes the bass is the top: leaning both would lean every move twice.
    sizes = [len(e.pitches) for events in target for e in events]
    single = sizes.count(1) >= SINGLE_LINE * len(sizes)
    fitted_lines = np.array([not single or line == "top" for line in LINES])
    length = int(np.median([len(events) for events in target]))
    style_id = model.vocabulary.styles.index(style)
    table = lean_table(sampling.leans)
    history: list[FitRound] = []
    for number in range(rounds + 1):
        leans = _named(table)
        options = replace(sampling, leans=leans)
        requests = [
            PieceRequest(
                length=length,
                seed=FIT_SEED + number * count + i,
                style=style_id,
                outlines=model.vocabulary.outlines,
                **model.key_guide(style, FIT_SEED + number * count + i),
                **style_settings(model, {"sampling": options}, style),
            )
            for i in range(count)
        ]
        shares = line_moves(made.events for made in generate_requests(model, stepper, requests, batch))
        distance = float(np.abs(shares - wanted).sum(axis=1).mean() / 2)
        history.append(FitRound(leans, shares, distance))
        log.info("round %d: leans %s, distance %.4f", number, options.describe(), distance)
        if number < rounds:
            ratio = np.log((wanted + SMOOTHING) / (shares + SMOOTHING))
            table = table + step * ratio * fitted_lines[:, None]
            # Only differences between kinds matter against each other; centred on the training
            # pieces' own mix, the leans leave the ending's chance (markers are never leaned) alone.
            centred = table - (table * wanted).sum(axis=1, keepdims=True)
            table = np.where(fitted_lines[:, None], np.clip(centred, -LEAN_LIMIT, LEAN_LIMIT), table)
    best = min(history, key=lambda r: r.distance)
    return replace(sampling, leans=best.leans), history


def _named(table: np.ndarray) -> dict[str, float]:
    """A lean table (see :func:`~composer.generation.sampling.lean_table`) as named leans, rounded."""
    return {
        f"{line}_{kind}": round(float(table[i, j]), 3)
        for i, line in enumerate(LINES)
        for j, (kind, _) in enumerate(MOVES)
        if round(float(table[i, j]), 3) != 0.0
    }


def fit_table(history: Sequence[FitRound], wanted: np.ndarray) -> str:
    """The fit's rounds as Markdown: each line's shares of moves against the training pieces'."""
    header = ["round", "distance", *(f"{line} {kind}" for line in LINES for kind, _ in MOVES)]
    rows = [["training pieces", "", *(f"{v:.1%}" for v in wanted.ravel())]]
    rows += [
        [str(i), f"{r.distance:.4f}", *(f"{v:.1%}" for v in r.shares.ravel())] for i, r in enumerate(history)
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
