"""Evaluation: how well a model predicts its held-out pieces, and how its own pieces compare with them.

``python -m training evaluate MODEL`` rebuilds the held-out set the artifact names, measures the
network's negative log-likelihood on it one step at a time with :class:`~composer.model.stepper.Stepper`
(exactly as generation runs it, no TensorFlow), generates pieces with fixed seeds and the model's
own decoding, and puts the figures of :mod:`training.metrics` beside the held-out set's. The seed
architecture is decoded the seed's way (argmax, every note an eighth note, no loop guard), so a
``--compare`` with a seed model is the tutorial's approach on the same data.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from composer.events import TICKS_PER_QUARTER, Event
from composer.generation.critic import Critic, candidate_count, choose
from composer.generation.generate import PieceRequest, generate
from composer.generation.sampling import SamplingOptions
from composer.keys import NAMES, settle_key
from composer.model.artifact import Artifact
from composer.model.stepper import Stepper
from composer.model.vocabulary import FIELDS, PAD, Vocabulary
from training import metrics
from training.sources import Piece, collect, corpus_files, folder_files
from training.tell_apart import CLASSIFIERS, tell_apart

log = logging.getLogger(__name__)

VALIDATION_BATCH = 64
"""Held-out pieces stepped together when measuring the likelihood."""


# -- the held-out set ----------------------------------------------------------------------------


def held_out_pieces(model: Artifact, workers: int | None = None) -> list[Piece]:
    """The pieces the model was validated on, re-collected from the sources its metadata names.

    Parsing is cached by file content, so this is quick once the training run has filled the
    cache. Only as many files of each source are read as needed to reach its held-out names.
    """
    names = set(model.training.get("validation_pieces", ()))
    corpus, folders, files = _sources(model)
    stems = {name.split("#")[0] for name in names}
    limits = {
        source: max((i + 1 for i, p in enumerate(paths) if p.stem in stems), default=0)
        for source, paths in files.items()
    }
    if not any(limits.values()):
        raise ValueError(
            f"{model.path.name if model.path else 'the model'} names no held-out pieces that can be "
            "collected again; pass them to training.evaluate.evaluate() instead"
        )
    pieces = [p for p in collect(corpus, folders, workers, limits).pieces if p.name in names]
    if len(pieces) < len(names):
        log.warning("found %d of the %d held-out pieces", len(pieces), len(names))
    return pieces


def training_pieces(model: Artifact, workers: int | None = None) -> list[Piece]:
    """The pieces the model learnt from (untransposed), re-collected from the sources and with the
    file limits its metadata names: everything collected but the held-out pieces."""
    names = set(model.training.get("validation_pieces", ()))
    corpus, folders, _ = _sources(model)
    limits = model.training.get("options", {}).get("max_files") or None
    pieces = [p for p in collect(corpus, folders, workers, limits).pieces if p.name not in names]
    if not pieces:
        raise ValueError(
            f"{model.path.name if model.path else 'the model'}'s training pieces cannot be collected again"
        )
    return pieces


def _training_or_none(model: Artifact) -> list[Piece]:
    """:func:`training_pieces`, or none where they cannot be collected again (the tell-apart
    report then has no real-against-real rows)."""
    try:
        return training_pieces(model)
    except ValueError as error:
        log.warning("no real-against-real reference: %s", error)
        return []


def _sources(model: Artifact) -> tuple[list[str], list[Path], dict[str, list[Path]]]:
    """The corpus sets and folders the model was trained on, and each one's files by source name."""
    sources = model.training.get("sources", {})
    corpus = list(sources.get("corpus", ()))
    folders = [Path(d) for d in sources.get("midi_dirs", ())]
    files = {c: corpus_files(c) for c in corpus} | {d.name: folder_files(d) for d in folders}
    return corpus, folders, files


# -- likelihood ----------------------------------------------------------------------------------


def validation_figures(stepper: Stepper, vocabulary: Vocabulary, pieces: Sequence[Piece]) -> dict:
    """Negative log-likelihood (nats per event) and accuracy of each predicted field, over all
    held-out pieces and per style. Every piece runs from a fresh state to its end marker, as a
    generated piece does."""
    sums = []
    order = sorted(range(len(pieces)), key=lambda i: len(pieces[i].events))
    for start in range(0, len(order), VALIDATION_BATCH):
        group = [pieces[i] for i in order[start : start + VALIDATION_BATCH]]
        sums += _score_group(stepper, vocabulary, group)
    by_piece = dict(zip(order, sums, strict=True))
    totals = _likelihood(stepper.heads, [by_piece[i] for i in range(len(pieces))])
    by_style = {
        style: _likelihood(stepper.heads, [by_piece[i] for i, p in enumerate(pieces) if p.style == style])
        for style in sorted({p.style for p in pieces})
    }
    mapped = sum(s["mapped"] for s in sums)
    return {"pieces": len(pieces), "mapped_values": mapped, **totals, "by_style": by_style}


def _score_group(stepper: Stepper, vocabulary: Vocabulary, pieces: Sequence[Piece]) -> list[dict]:
    """Summed NLL and correct guesses per head for each piece of a batch, stepping them together,
    and how many of its values the vocabulary had to map to a neighbour."""
    coded = [vocabulary.encode(list(p.events)) for p in pieces]
    encoded = [c.rows for c in coded]
    rows = np.full((len(pieces), max(map(len, encoded)), 4), PAD, np.int32)
    for b, piece_rows in enumerate(encoded):
        rows[b, : len(piece_rows)] = piece_rows
    styles = np.array([vocabulary.style_id(p.style) for p in pieces])
    nll = {name: np.zeros(len(pieces)) for name in stepper.heads}
    correct = {name: np.zeros(len(pieces)) for name in stepper.heads}
    state = stepper.initial_state(len(pieces))
    batch = np.arange(len(pieces))
    for t in range(rows.shape[1] - 1):
        logits, state = stepper.step(rows[:, t], styles, state)
        target = rows[:, t + 1]
        live = target[:, 0] != PAD
        given = {name: target[:, FIELDS.index(name)] for name in FIELDS}
        for name in stepper.heads:
            z = stepper.condition(name, logits[name], given).astype(np.float64)
            wanted = target[:, FIELDS.index(name)]
            top = z.max(axis=1)
            log_p = z[batch, wanted] - top - np.log(np.exp(z - top[:, None]).sum(axis=1))
            nll[name] += np.where(live, -log_p, 0.0)
            correct[name] += live & (z.argmax(axis=1) == wanted)
    return [
        {
            "events": len(r) - 1,
            "mapped": coded[b].unknown,
            **{f"nll_{n}": nll[n][b] for n in nll},
            **{f"ok_{n}": correct[n][b] for n in nll},
        }
        for b, r in enumerate(encoded)
    ]


def _likelihood(heads: Sequence[str], sums: Sequence[dict]) -> dict:
    """Per-event NLL (and their sum over heads) and accuracy from per-piece sums."""
    events = sum(s["events"] for s in sums)
    nll = {name: sum(s[f"nll_{name}"] for s in sums) / events for name in heads}
    return {
        "events": events,
        "nll": {**nll, "total": sum(nll.values())} if len(heads) > 1 else nll,
        "accuracy": {name: sum(s[f"ok_{name}"] for s in sums) / events for name in heads},
    }


# -- generation ----------------------------------------------------------------------------------


@dataclass
class Made:
    """A generated piece and what it was asked to be."""

    seed: int
    style: str
    events: list[Event]
    ended_naturally: bool


def decoding(model: Artifact, sampling: SamplingOptions | None = None) -> tuple[dict, str]:
    """``PieceRequest`` settings for the model's own decoding, and a description for the report.

    Our network samples with ``sampling``; when None, with each style's own defaults where the
    model has them (:meth:`~composer.model.artifact.Artifact.sampling_for`), as the composer
    does, else the composer's defaults (see :func:`style_settings`). The seed network is decoded
    as the tutorial did: argmax (exactly, through top-k 1), no loop guard, every note an eighth.
    """
    if model.config.arch != "seed":
        described = f"sampling at {(sampling or SamplingOptions()).describe()}"
        if sampling is None:
            own = {s: model.sampling_for(s) for s in model.vocabulary.styles}
            if any(own.values()):
                described = "sampling at " + "; ".join(
                    f"{s}: {(o or SamplingOptions()).describe()}" for s, o in own.items()
                )
        return {"sampling": sampling}, (
            f"{described} (trimming the chords only), rhythm untrimmed, loop guard"
        )
    settings = {
        "sampling": SamplingOptions(top_k=1, top_p=1.0),
        "loop_guard": False,
        "fixed": model.vocabulary.steady_rhythm(TICKS_PER_QUARTER // 2),
    }
    return settings, "the seed's: argmax, every note an eighth note, no loop guard"


def choosing(model: Artifact, candidates: int | None, critics: bool, length: int) -> str:
    """How each piece of ``length`` events was chosen among candidates, for the report ("" for
    one candidate)."""
    judged = {s: model.critic_for(s) for s in model.vocabulary.styles} if critics else {}
    parts = [
        f"{style}: the critic's choice of {candidate_count(judge, length, candidates)}"
        for style, judge in judged.items()
        if judge is not None
    ]
    if (candidates or 1) > 1 and len(parts) < len(model.vocabulary.styles):
        parts.append(f"{'otherwise ' if parts else ''}the likeliest of {candidates} candidates")
    return (", " + "; ".join(parts)) if parts else ""


def style_settings(model: Artifact, settings: dict, style: str) -> dict:
    """``settings`` from :func:`decoding` for one style: no sampling given means the style's own
    defaults, else the composer's."""
    if settings.get("sampling") is not None:
        return settings
    return {**settings, "sampling": model.sampling_for(style) or SamplingOptions()}


def generate_pieces(
    model: Artifact,
    stepper: Stepper,
    count: int,
    length: int,
    seed: int,
    batch: int = 16,
    sampling: SamplingOptions | None = None,
    candidates: int | None = None,
    critics: bool = True,
) -> list[Made]:
    """``count`` pieces with seeds ``seed``, ``seed + 1``, ..., the styles taken in turn."""
    settings, _ = decoding(model, sampling)
    styles = model.vocabulary.styles
    requests = [
        PieceRequest(
            length=length,
            seed=seed + i,
            style=i % len(styles),
            outlines=model.vocabulary.outlines,
            **model.key_guide(styles[i % len(styles)], seed + i),
            **style_settings(model, settings, styles[i % len(styles)]),
        )
        for i in range(count)
    ]
    return generate_requests(model, stepper, requests, batch, candidates, critics)


def generate_requests(
    model: Artifact,
    stepper: Stepper,
    requests: Sequence[PieceRequest],
    batch: int,
    candidates: int | None = None,
    critics: bool = True,
) -> list[Made]:
    """The pieces ``requests`` ask for, ``batch`` at a time, each chosen among candidates as the
    composer chooses for a new piece (:func:`composer.generation.critic.choose`): with its
    style's critic (unless ``critics`` is false), among ``candidates`` or the critic's own
    number; without, the likeliest of ``candidates`` (default 1)."""
    styles = model.vocabulary.styles
    judges = [model.critic_for(styles[r.style]) if critics else None for r in requests]
    counts = [candidate_count(j, r.length, candidates) for j, r in zip(judges, requests, strict=True)]
    expanded = [
        replace(r, candidate=c, **_own_key(model, judge, r, c))
        for r, judge, count in zip(requests, judges, counts, strict=True)
        for c in range(count)
    ]
    results = []
    for start in range(0, len(expanded), batch):
        results += generate(stepper, expanded[start : start + batch])
    made, start = [], 0
    for request, judge, count in zip(requests, judges, counts, strict=True):
        own = judge is not None and judge.own_keys
        drawn = model.drawn_key(styles[request.style], request.seed) if own else None
        result = choose(results[start : start + count], judge, model.vocabulary, key=drawn)
        start += count
        events = [model.vocabulary.decode_event(row) for row in result.rows]
        if model.config.arch != "seed":  # placed in a key as the composer places a new piece
            events = settle_key(
                events, model.keys_for(styles[request.style]), request.seed, result.candidate if own else 0
            )
        made.append(Made(request.seed, styles[request.style], events, result.ended_naturally))
    return made


def _own_key(model: Artifact, judge: Critic | None, request: PieceRequest, candidate: int) -> dict:
    """The key guide of a candidate that draws its own key (its critic's ``own_keys``), as the
    composer gives it; nothing where the candidates share their request's."""
    if judge is None or not judge.own_keys or not request.opening:
        return {}
    return model.key_guide(model.vocabulary.styles[request.style], request.seed, None, candidate)


TELL_APART_SEEDS = 100_000
"""The first piece seed of ``--tell-apart`` (apart from the seeds of the other figures' pieces)."""


def tell_apart_figures(
    model: Artifact,
    stepper: Stepper,
    held_out: Sequence[Piece],
    seed: int,
    batch: int = 16,
    sampling: SamplingOptions | None = None,
    candidates: int | None = None,
    reference: Sequence[Piece] = (),
    critics: bool = True,
) -> dict:
    """Per style: as many generated pieces as there are held-out ones, of their median length,
    told apart from them by two classifiers (:mod:`training.tell_apart`). With ``reference``
    (the training pieces), also real against real: the held-out pieces against as many training
    pieces of the style, drawn with ``seed``; how far from chance the music itself is."""
    settings, _ = decoding(model, sampling)
    found = {}
    for style in sorted({p.style for p in held_out}):
        real = [list(p.events) for p in held_out if p.style == style]
        if len(real) < 5 or style not in model.vocabulary.styles:
            continue
        length = int(np.median([len(r) for r in real]))
        style_id = model.vocabulary.styles.index(style)
        # Each seed its own pieces: seed 1 starts where seed 0's pieces end.
        first = TELL_APART_SEEDS + seed * len(real)
        requests = [
            PieceRequest(
                length=length,
                seed=first + i,
                style=style_id,
                outlines=model.vocabulary.outlines,
                **model.key_guide(style, first + i),
                **style_settings(model, settings, style),
            )
            for i in range(len(real))
        ]
        made = [m.events for m in generate_requests(model, stepper, requests, batch, candidates, critics)]
        found[style] = {"length": length, **tell_apart(real, made, seed)}
        pool = [list(p.events) for p in reference if p.style == style]
        if len(pool) >= len(real):
            drawn = np.random.default_rng(seed).choice(len(pool), len(real), replace=False)
            found[style]["reference"] = tell_apart(real, [pool[i] for i in drawn], seed)["accuracy"]
    return found


# -- figures -------------------------------------------------------------------------------------

SUMMARY_KEYS = ("loop", "scale_consistency", "ioi_entropy", "duration_entropy", "polyphony", "pitch_range")


def summarise(figures: Sequence[dict], overlap: float | None) -> dict:
    """Mean per-piece figures (``loop`` becomes the loop rate) with the set's pitch-class overlap."""
    if not figures:
        return {}
    summary = {"pieces": len(figures)}
    for key in SUMMARY_KEYS:
        summary["loop_rate" if key == "loop" else key] = float(np.mean([f[key] for f in figures]))
    summary["pitch_class_overlap"] = overlap
    if "proper_ending" in figures[0]:
        summary["proper_ending"] = float(np.mean([f["proper_ending"] for f in figures]))
    return summary


def _summaries(
    figures: list[dict], styles: Sequence[str], overlap: Callable[[str | None], float | None]
) -> dict:
    """Summaries over all pieces and per style, with the per-piece figures kept for the JSON."""
    return {
        "all": summarise(figures, overlap(None)),
        "by_style": {s: summarise([f for f in figures if f["style"] == s], overlap(s)) for s in styles},
        "pieces": figures,
    }


def _split_half_overlap(pieces: Sequence[Sequence[Event]]) -> float | None:
    """Overlap between alternate halves of a set: how much real pieces of one set differ."""
    if len(pieces) < 2:
        return None
    return metrics.histogram_overlap(
        metrics.pitch_class_distribution(pieces[0::2]), metrics.pitch_class_distribution(pieces[1::2])
    )


def evaluate(
    model: Artifact,
    held_out: Sequence[Piece],
    pieces: int = 100,
    length: int = 500,
    seed: int = 0,
    batch: int = 16,
    telling: bool = False,
    sampling: SamplingOptions | None = None,
    candidates: int | None = None,
    reference: Sequence[Piece] = (),
    critics: bool = True,
) -> dict:
    """All figures of ``model``: likelihood on ``held_out``, and generated pieces beside it
    (and with ``telling``, how well classifiers tell the two apart, per style, and with
    ``reference``, the training pieces, how well they tell real pieces apart)."""
    if not held_out:
        raise ValueError("evaluation needs at least one held-out piece")
    clock = time.perf_counter()
    seconds = {}

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 2)
        clock = now

    stepper = Stepper(model.config, model.weights)
    validation = validation_figures(stepper, model.vocabulary, held_out)
    lap("validation")
    made = generate_pieces(model, stepper, pieces, length, seed, batch, sampling, candidates, critics)
    lap("generation")
    generated = [
        {
            "seed": m.seed,
            "style": m.style,
            "events": len(m.events),
            "ended_naturally": m.ended_naturally,
            "proper_ending": metrics.proper_ending(len(m.events), m.ended_naturally, length),
            **metrics.piece_figures(m.events),
        }
        for m in made
    ]
    real = [{"name": p.name, "style": p.style, **metrics.piece_figures(p.events)} for p in held_out]
    styles = sorted({p.style for p in held_out} | {m.style for m in made})

    def events_of(group: Sequence[Made | Piece], style: str | None) -> list[Sequence[Event]]:
        return [g.events for g in group if style in (None, g.style)]

    def made_overlap(style: str | None) -> float:
        reference = events_of(held_out, style) or events_of(held_out, None)
        return metrics.histogram_overlap(
            metrics.pitch_class_distribution(events_of(made, style)),
            metrics.pitch_class_distribution(reference),
        )

    result = {
        "model": model.path.stem if model.path else "model",
        "path": str(model.path) if model.path else None,
        "arch": model.config.arch,
        "decoding": decoding(model, sampling)[1] + choosing(model, candidates, critics, length),
        "validation": validation,
        "generated": _summaries(generated, styles, made_overlap),
        "held_out": _summaries(real, styles, lambda style: _split_half_overlap(events_of(held_out, style))),
        "distributions": {
            "generated": _distributions(events_of(made, None)),
            "held_out": _distributions(events_of(held_out, None)),
        },
    }
    lap("figures")
    if telling:
        result["tell_apart"] = tell_apart_figures(
            model, stepper, held_out, seed, batch, sampling, candidates, reference, critics
        )
        lap("tell apart")
    result["seconds"] = seconds
    result["events_per_second"] = round(sum(len(m.events) for m in made) / max(seconds["generation"], 1e-3))
    return result


def _distributions(pieces: Sequence[Sequence[Event]]) -> dict:
    """The pitch-class and inter-onset-interval distributions drawn in the report."""
    return {
        "pitch_classes": [round(float(v), 5) for v in metrics.pitch_class_distribution(pieces)],
        "ioi": {str(k): round(v, 5) for k, v in metrics.ioi_distribution(pieces).items()},
    }


# -- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the report table: where its value lives, how to show it, and its target."""

    label: str
    section: str  # "validation" or "generated"
    key: str
    kind: str = "number"  # "number", "share" or "range"
    target: str = ""
    met: Callable[[float, float | None, float | None], bool] | None = None
    """``(ours, held-out, other model)`` -> whether the target is met."""


def _at_most(limit: float) -> Callable[..., bool]:
    return lambda value, *_: value <= limit


def _at_least(limit: float) -> Callable[..., bool]:
    return lambda value, *_: value >= limit


def _lower_than_other(value: float, _held: float | None, other: float | None) -> bool:
    return other is not None and value < other


def _near_held_out(value: float, held: float | None, _other: float | None) -> bool:
    return held is not None and abs(value - held) <= 0.2 * held


ROWS = (
    Row(
        "validation NLL, pitch (nats/event)",
        "validation",
        "nll.pitch",
        "number",
        "lower than {other}",
        _lower_than_other,
    ),
    Row("validation NLL, duration", "validation", "nll.duration"),
    Row("validation NLL, ioi", "validation", "nll.ioi"),
    Row("validation NLL, velocity", "validation", "nll.velocity"),
    Row("validation NLL, all fields", "validation", "nll.total"),
    Row("accuracy, pitch", "validation", "accuracy.pitch", "share"),
    Row("accuracy, duration", "validation", "accuracy.duration", "share"),
    Row("accuracy, ioi", "validation", "accuracy.ioi", "share"),
    Row("accuracy, velocity", "validation", "accuracy.velocity", "share"),
    Row("loop rate", "generated", "loop_rate", "share", "≤ 5%", _at_most(0.05)),
    Row("scale consistency", "generated", "scale_consistency", "number", "≥ 0.90", _at_least(0.90)),
    Row("pitch-class overlap", "generated", "pitch_class_overlap", "number", "≥ 0.85", _at_least(0.85)),
    Row("IOI entropy (bits)", "generated", "ioi_entropy", "number", "within 20% of held-out", _near_held_out),
    Row("duration entropy (bits)", "generated", "duration_entropy"),
    Row("polyphony (notes per onset)", "generated", "polyphony"),
    Row("pitch range (semitones)", "generated", "pitch_range", "range"),
    Row("proper ending near the length", "generated", "proper_ending", "share", "≥ 90%", _at_least(0.90)),
)


def _lookup(result: dict, row: Row, style: str | None, held_out: bool = False) -> float | None:
    """A row's value for one model, over all styles or one; ``None`` where it has none."""
    if row.section == "validation":
        if held_out:
            return None
        scope = result["validation"] if style is None else result["validation"]["by_style"].get(style, {})
    else:
        part = result["held_out" if held_out else "generated"]
        scope = part["all"] if style is None else part["by_style"].get(style, {})
    value: object = scope
    for key in row.key.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return None if value is None else float(value)


def _show(value: float | None, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if kind == "share":
        return f"{100 * value:.1f}%"
    if kind == "range":
        return f"{value:.1f}"
    return f"{value:.3f}"


def _verdict(row: Row, value: float | None, held: float | None, other: float | None) -> str:
    if row.met is None or value is None:
        return ""
    if row.section == "validation" and other is None:
        return "—"
    return "yes" if row.met(value, held, other) else "**no**"


def table(results: Sequence[dict], style: str | None = None) -> str:
    """The Markdown table of figures: the first model, the held-out set, targets, and any other model."""
    main, others = results[0], results[1:]
    header = ["figure", main["model"], "held-out", "target", "met?"]
    for other in others:
        header += [other["model"], "met?"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    names = [r["model"] for r in results]
    for row in ROWS:
        values = [_lookup(r, row, style) for r in results]
        if all(v is None for v in values):
            continue
        held = _lookup(main, row, style, held_out=True)
        cells = [row.label, _show(values[0], row.kind), _show(held, row.kind)]
        cells.append(row.target.format(other=f"{names[1]}'s" if len(names) > 1 else "the seed's (--compare)"))
        for i, value in enumerate(values):
            rival = values[1] if i == 0 and len(values) > 1 else (values[0] if i else None)
            verdict = _verdict(row, value, held, rival)
            cells += [verdict] if i == 0 else [_show(value, row.kind), verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(results: Sequence[dict], settings: dict) -> str:
    """The whole report: settings, the table over all styles and per style, timings, pictures."""
    main = results[0]
    validation = main["validation"]
    lines = [
        f"# Evaluation of {main['model']}",
        "",
        f"{settings['pieces']} pieces of {settings['length']} events per model, seeds {settings['seed']} to "
        f"{settings['seed'] + settings['pieces'] - 1}, styles taken in turn. Held-out set: "
        f"{validation['pieces']} pieces, {validation['events']} events; likelihood measured one step at a "
        "time from a fresh state to each piece's end marker.",
        "",
    ]
    for r in results:
        lines.append(f"- **{r['model']}** (`{r['path']}`, {r['arch']}): decoding {r['decoding']}.")
    if len(results) > 1 and _names(results[1]) != _names(main):
        lines.append(
            "- The models were validated on different held-out pieces; their likelihoods differ in data."
        )
    if any(r["arch"] == "seed" for r in results):
        lines.append("- The seed network predicts pitch only, so its other fields have no likelihood.")
    lines += [
        "- The held-out set's pitch-class overlap is between its alternate halves.",
        "",
        "## All styles",
        "",
        table(results),
        "",
    ]
    styles = sorted(main["generated"]["by_style"])
    if len(styles) > 1:
        for style in styles:
            lines += [f"## Style {style}", "", table(results, style), ""]
    if "tell_apart" in main:
        lines += tell_apart_section(results)
    stages = list(main["seconds"])
    lines += ["## Time (seconds)", "", "| model | " + " | ".join(stages) + " | generated events/s |"]
    lines.append("|---|" + "---|" * (len(stages) + 1))
    for r in results:
        cells = [str(r["seconds"].get(k, "")) for k in stages] + [str(r["events_per_second"])]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    lines += ["", "![pitch classes](pitch_classes.png)", "", "![inter-onset intervals](ioi.png)", ""]
    return "\n".join(lines)


def tell_apart_section(results: Sequence[dict]) -> list[str]:
    """Markdown: accuracy per style and classifier for each model, and what gives pieces away."""
    lines = [
        "## Telling generated pieces from real ones",
        "",
        "Per style, as many generated pieces as there are held-out pieces, of their median length, "
        "against the held-out pieces; 5-fold cross-validation repeated 3 times. 0.5 is chance: at most "
        '0.65 is the target. The rows "real against real" tell the held-out pieces from as many '
        "training pieces, drawn at random: how far from chance the music itself is in this test.",
        "",
        "| model | style | pieces | events | " + " | ".join(CLASSIFIERS) + " |",
        "|---|---|---|---|" + "---|" * len(CLASSIFIERS),
    ]
    for r in results:
        for style, figures in r.get("tell_apart", {}).items():
            cells = [
                f"{figures['accuracy'][c]['mean']:.3f} ± {figures['accuracy'][c]['std']:.3f}"
                for c in CLASSIFIERS
            ]
            lines.append(
                f"| {r['model']} | {style} | {figures['pieces']} | {figures['length']} | "
                + " | ".join(cells)
                + " |"
            )
    main = results[0]
    for style, figures in main.get("tell_apart", {}).items():
        if "reference" in figures:
            cells = [
                f"{figures['reference'][c]['mean']:.3f} ± {figures['reference'][c]['std']:.3f}"
                for c in CLASSIFIERS
            ]
            lines.append(
                f"| real against real | {style} | {figures['pieces']} | — | " + " | ".join(cells) + " |"
            )
    for style, figures in main.get("tell_apart", {}).items():
        lines += [
            "",
            f"What gives {main['model']}'s {style} pieces away (largest effect first):",
            "",
            "| feature | real | generated | effect (Cohen's d) |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {t['feature']} | {t['real']:.3f} | {t['generated']:.3f} | {t['effect']:+.2f} |"
            for t in figures["telling"]
        ]
    return [*lines, ""]


def _names(result: dict) -> set[str]:
    return {p["name"] for p in result["held_out"]["pieces"]}


def draw(results: Sequence[dict], out: Path) -> list[Path]:
    """Bar charts of the pitch-class and IOI distributions, each model beside the held-out set."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = [("held-out", results[0]["distributions"]["held_out"])]
    series += [(r["model"], r["distributions"]["generated"]) for r in results]
    iois = sorted({int(k) for _, d in series for k, v in d["ioi"].items() if v >= 0.005})
    charts = {
        "pitch_classes.png": (
            list(NAMES),
            [d["pitch_classes"] for _, d in series],
            "pitch class",
            "share of sounding time",
        ),
        "ioi.png": (
            [f"{k / TICKS_PER_QUARTER:.3g}" for k in iois],
            [[d["ioi"].get(str(k), 0.0) for k in iois] for _, d in series],
            "inter-onset interval (quarter notes; shares of at least 0.5%)",
            "share of onsets",
        ),
    }
    paths = []
    width = 0.8 / len(series)
    for name, (labels, heights, xlabel, ylabel) in charts.items():
        figure = Figure(figsize=(10, 4), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for i, ((label, _), values) in enumerate(zip(series, heights, strict=True)):
            axes.bar(np.arange(len(labels)) + (i - (len(series) - 1) / 2) * width, values, width, label=label)
        axes.set_xticks(np.arange(len(labels)), labels)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.legend()
        figure.tight_layout()
        figure.savefig(out / name)
        paths.append(out / name)
    return paths


def write_report(results: Sequence[dict], settings: dict, out: Path) -> list[Path]:
    """``report.json``, ``report.md`` and the pictures in ``out``; the first result is the main model."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps({"settings": settings, "models": list(results)}, indent=1))
    (out / "report.md").write_text(markdown(results, settings))
    return [out / "report.json", out / "report.md", *draw(results, out)]


def evaluate_files(
    model_path: Path,
    out: Path | None = None,
    compare: Path | None = None,
    pieces: int = 100,
    length: int = 500,
    seed: int = 0,
    batch: int = 16,
    telling: bool = False,
    sampling: SamplingOptions | None = None,
    candidates: int | None = None,
    critics: bool = True,
) -> list[Path]:
    """Evaluate the model at ``model_path`` (and ``compare``) on their held-out sets; write the report."""
    from composer.model import artifact

    results = []
    for path in [model_path] + ([compare] if compare else []):
        started = time.perf_counter()
        model = artifact.load(path)
        held_out = held_out_pieces(model)
        collected = time.perf_counter() - started
        log.info(
            "%s: %d held-out pieces in %.0f s; generating %d pieces", path, len(held_out), collected, pieces
        )
        reference = _training_or_none(model) if telling else []
        result = evaluate(
            model, held_out, pieces, length, seed, batch, telling, sampling, candidates, reference, critics
        )
        result["seconds"] = {"load and held-out set": round(collected, 2), **result["seconds"]}
        result["seconds"]["total"] = round(time.perf_counter() - started, 2)
        results.append(result)
    settings = {"pieces": pieces, "length": length, "seed": seed}
    return write_report(results, settings, out or Path("reports") / Path(model_path).stem)
