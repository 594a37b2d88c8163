"""``python -m training evaluate MODEL --harmonize``: the model harmonizes the soprano lines of
Bach chorales it did not train on, and its harmonizations are judged beside Bach's own and beside
random in-key notes (:mod:`training.harmony_metrics`).

The chorales are the bundled Bach files the artifact names among its held-out pieces, read again
with music21 with their four parts kept apart (training reads them as one stream of notes).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from music21 import converter, expressions, key, meter, stream

from composer.harmonize import DEFAULT_CANDIDATES, HARMONY_TEMPERATURE, Melody, harmonize
from composer.model import artifact
from composer.model.artifact import Artifact
from composer.model.stepper import Stepper
from training import harmony_metrics as hm
from training.sources import corpus_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chorale:
    """One of Bach's four-part chorales: soprano, alto, tenor and bass as notes, and where its
    phrases end (the onsets of the soprano's fermata notes, and its last note)."""

    name: str
    voices: tuple[tuple[hm.Note, ...], ...]
    phrase_ends: tuple[float, ...]
    time_signature: tuple[int, int] = (4, 4)
    key_signature: tuple[int, bool] | None = None
    """Sharps (flats below zero) and whether the score calls its key minor, as the score writes it."""

    @property
    def melody(self) -> tuple[hm.Note, ...]:
        return self.voices[0]


Harmonizer = Callable[[Chorale], hm.Texture]
"""Writes the voices under a chorale's melody, top voice first."""


def _notes(part: stream.Part, lowest: bool) -> list[hm.Note]:
    """A part's notes with ties joined; a chord (a divided voice) gives its top note, or in the
    bass its bottom note. Grace notes, which take no time, are left out."""
    found = []
    for item in part.stripTies().flatten().notes:
        duration = float(item.quarterLength)
        if duration <= 0:
            continue
        pitches = [p.midi for p in item.pitches]
        found.append((float(item.offset), duration, min(pitches) if lowest else max(pitches)))
    return found


def read_chorale(path: Path) -> Chorale | None:
    """The chorale in ``path``, or None when it does not have exactly four parts."""
    score = converter.parse(path)
    if len(score.parts) != 4:
        return None
    top = score.parts[0].flatten()
    metres = top.getElementsByClass(meter.TimeSignature)
    signatures = top.getElementsByClass(key.KeySignature)
    signature = signatures[0] if signatures else None
    voices = [_notes(part, lowest=i == 3) for i, part in enumerate(score.parts)]
    fermatas = {
        float(n.offset) for n in top.notes if any(isinstance(e, expressions.Fermata) for e in n.expressions)
    }
    melody = voices[0]
    onsets = [n[0] for n in melody]
    ends = {melody[max(np.searchsorted(onsets, t, side="right") - 1, 0)][0] for t in fermatas}
    if melody:
        ends.add(melody[-1][0])
    return Chorale(
        path.stem,
        tuple(tuple(v) for v in voices),
        tuple(sorted(ends)),
        (metres[0].numerator, metres[0].denominator) if metres else (4, 4),
        None
        if signature is None
        else (signature.sharps, isinstance(signature, key.Key) and signature.mode == "minor"),
    )


def held_out_chorales(names: Sequence[str], limit: int | None = None) -> tuple[list[Chorale], int]:
    """The bundled Bach chorales among ``names`` (a model's held-out pieces), in corpus order, at
    most ``limit`` of them; and how many were skipped for not having exactly four parts."""
    wanted = set(names)
    chorales, skipped = [], 0
    for path in corpus_files("bach"):
        if path.stem not in wanted:
            continue
        if limit is not None and len(chorales) >= limit:
            break
        chorale = read_chorale(path)
        if chorale is None:
            skipped += 1
        else:
            chorales.append(chorale)
    return chorales, skipped


def random_harmonizer(seed: int) -> Harmonizer:
    """The chance baseline: random in-key notes in each lower voice's range under each melody note."""
    return lambda chorale: hm.random_harmonization(chorale.melody, len(chorale.voices), seed)


def model_harmonizer(model: Artifact, candidates: int, seed: int, temperature: float) -> Harmonizer:
    """The model's harmonizer: :func:`composer.harmonize.harmonize` in the model's Bach style."""
    stepper = Stepper(model.config, model.weights)
    styles = model.vocabulary.styles
    style = styles.index("bach") if "bach" in styles else 0

    def run(chorale: Chorale) -> hm.Texture:
        ends = set(chorale.phrase_ends)
        melody = Melody.from_notes(
            chorale.melody,
            phrase_ends=[n[0] in ends for n in chorale.melody],
            time_signature=chorale.time_signature,
            key_signature=chorale.key_signature,
        )
        made = harmonize(
            stepper,
            model.vocabulary,
            melody,
            voices=len(chorale.voices),
            style=style,
            seed=seed,
            candidates=candidates,
            temperature=temperature,
        )
        return [[(n.onset, n.duration, n.pitch) for n in part] for part in made.parts]

    return run


# -- figures -------------------------------------------------------------------------------------


def summarise(per_piece: Sequence[dict]) -> dict:
    """Figures over all chorales: parallels per 100 beats of them all, shares as means over chorales."""
    beats = sum(f["beats"] for f in per_piece)
    parallels = sum(sum(f["parallels"].values()) for f in per_piece)
    summary = {
        "chorales": len(per_piece),
        "beats": beats,
        "parallels_per_100_beats": 100 * parallels / beats if beats else 0.0,
        "phrase_ends": sum(f["phrase_ends"] for f in per_piece),
    }
    for name in ("melody_kept", "agreement_bass", "agreement_root", "in_key", "cadence_share"):
        summary[name] = float(np.mean([f[name] for f in per_piece]))
    for name in ("soprano", "alto", "tenor", "bass", "all"):
        summary[f"in_range_{name}"] = float(np.mean([f["in_range"].get(name, 1.0) for f in per_piece]))
    return summary


def evaluate_harmonizing(chorales: Sequence[Chorale], model: Harmonizer, seed: int = 0) -> dict[str, dict]:
    """The figures of ``model``'s harmonizations, of Bach's own and of the random baseline, each
    against Bach's; per chorale under ``pieces`` and summed up under ``all``."""
    harmonizers: dict[str, Harmonizer] = {
        "model": model,
        "bach": lambda c: c.voices,
        "random": random_harmonizer(seed),
    }
    found = {}
    for label, harmonizer in harmonizers.items():
        per_piece = []
        for chorale in chorales:
            texture = harmonizer(chorale)
            figures = hm.figures(texture, chorale.melody, chorale.phrase_ends, chorale.voices)
            per_piece.append({"name": chorale.name, **figures})
            log.info("%s %s: %s", label, chorale.name, _brief(figures))
        found[label] = {"all": summarise(per_piece), "pieces": per_piece}
    return found


def _brief(figures: dict) -> str:
    return (
        f"bass {figures['agreement_bass']:.0%}, root {figures['agreement_root']:.0%}, "
        f"{sum(figures['parallels'].values())} parallels, cadences {figures['cadence_share']:.0%}"
    )


# -- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One figure of the table, how to show it, and the model's target against Bach and chance."""

    label: str
    key: str
    share: bool = True
    target: str = ""
    met: Callable[[float, float, float], bool] | None = None
    """``(model, bach, random)`` -> whether the target is met."""


def _within_tenth(value: float, bach: float, _random: float) -> bool:
    return abs(value - bach) <= 0.1 * bach


ROWS = (
    Row("melody kept", "melody_kept", True, "100%", lambda v, *_: v >= 1.0),
    Row(
        "beats whose bass agrees with Bach's (pitch class)",
        "agreement_bass",
        True,
        "≥ 2× random's",
        lambda v, _b, r: v >= 2 * r,
    ),
    Row(
        "beats whose chord root agrees with Bach's",
        "agreement_root",
        True,
        "≥ 2× random's",
        lambda v, _b, r: v >= 2 * r,
    ),
    Row(
        "parallel fifths and octaves per 100 beats",
        "parallels_per_100_beats",
        False,
        "≤ 2× Bach's",
        lambda v, b, _r: v <= 2 * b,
    ),
    Row("notes in their voice's usual range", "in_range_all", True, "within 10% of Bach's", _within_tenth),
    Row("… soprano (C4-G5)", "in_range_soprano"),
    Row("… alto (G3-D5)", "in_range_alto"),
    Row("… tenor (C3-G4)", "in_range_tenor"),
    Row("… bass (E2-C4)", "in_range_bass"),
    Row("notes in the key or chromatic neighbours", "in_key", True, "within 10% of Bach's", _within_tenth),
    Row("phrase ends with a cadence", "cadence_share"),
)


def _show(value: float, share: bool) -> str:
    return f"{100 * value:.1f}%" if share else f"{value:.2f}"


def table(result: dict[str, dict]) -> str:
    """Markdown: a row per figure; the model, Bach's own and the random baseline, the target and
    whether the model meets it."""
    lines = [
        "| figure | model | Bach | random in-key | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    model = result["model"]["all"]
    for row in ROWS:
        bach, chance = result["bach"]["all"][row.key], result["random"]["all"][row.key]
        value = model[row.key]
        verdict = "" if row.met is None else "yes" if row.met(value, bach, chance) else "**no**"
        cells = [row.label, _show(value, row.share), _show(bach, row.share), _show(chance, row.share)]
        lines.append("| " + " | ".join([*cells, row.target, verdict]) + " |")
    return "\n".join(lines)


def markdown(result: dict[str, dict], settings: dict) -> str:
    """The report: what was harmonized and how, then the table."""
    bach = result["bach"]["all"]
    lines = [
        f"# Harmonizing Bach's chorales: {settings['model']}",
        "",
        f"{bach['chorales']} held-out chorales ({bach['beats']} beats, {bach['phrase_ends']} phrase ends); "
        f"{settings['skipped']} held-out chorales skipped for not having exactly four parts. Each "
        "soprano line is harmonized in four voices and judged beside Bach's own harmonization; random "
        f"in-key notes in each voice's range (seed {settings['seed']}) show what agreement chance gives.",
        "",
    ]
    lines += [
        f"Model: `{settings['model']}` through `composer.harmonize.harmonize`, seed {settings['seed']}, the "
        f"likeliest of {settings['candidates']} candidates, temperature {settings['temperature']}.",
        "",
        table(result),
        "",
        "Beats are whole quarter notes; agreement is over Bach's beats, parallels are counted between "
        "consecutive note onsets of any two voices; shares are means over chorales. Ranges after Kostka "
        "and Payne; keys by music21's analysis of each whole harmonization.",
        "",
    ]
    return "\n".join(lines)


def harmonize_files(
    model_path: Path,
    out: Path | None,
    pieces: int | None,
    candidates: int | None = None,
    seed: int = 0,
    temperature: float | None = None,
) -> tuple[list[Path], str]:
    """``evaluate --harmonize``: the report as JSON and Markdown in ``out``; the paths and the table.
    Candidates and temperature are the harmonizer's own unless given."""
    model = artifact.load(model_path)
    names = model.training.get("validation_pieces", ())
    chorales, skipped = held_out_chorales(names, pieces)
    if not chorales:
        raise ValueError(f"{model_path} names no held-out Bach chorale with four parts")
    log.info("%d held-out chorales (%d skipped: not four parts)", len(chorales), skipped)
    settings = {
        "model": str(model_path),
        "seed": seed,
        "candidates": DEFAULT_CANDIDATES if candidates is None else candidates,
        "temperature": HARMONY_TEMPERATURE if temperature is None else temperature,
        "skipped": skipped,
    }
    harmonizer = model_harmonizer(model, settings["candidates"], seed, settings["temperature"])
    result = evaluate_harmonizing(chorales, harmonizer, seed)
    out = out or Path("reports") / f"{Path(model_path).stem}-harmonize"
    out.mkdir(parents=True, exist_ok=True)
    (out / "harmonize.json").write_text(json.dumps({"settings": settings, **result}, indent=1))
    (out / "harmonize.md").write_text(markdown(result, settings))
    return [out / "harmonize.json", out / "harmonize.md"], table(result)
