"""Do continuations sound like more of the piece they continue?

``python -m training evaluate MODEL --continuations DIR`` continues every piece in a folder and
compares the new part with the last 30 seconds of the piece: key (pitch-class histograms),
onsets a second, notes per onset, pitch span, loudness, and the loudness jump at the seam. The
reference is how much real pieces agree with themselves: their last 30 seconds against the 30
seconds before. Everything is measured in seconds, through each file's tempo map.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import numpy as np

from composer.events import Note
from composer.midi.read import read_score
from composer.midi.timeline import Timeline
from training import metrics
from training.sources import corpus_files, folder_files

log = logging.getLogger(__name__)

WINDOW_SECONDS = 30.0
SEAM_NOTES = 16
TOLERANCE = 0.25
"""Texture figures agree when they are within 25% of each other."""
SAME_KEY = 0.75
"""Pitch-class histograms overlapping at least this much are taken to be in the same key."""
FIGURES = (
    ("same key (pitch-class overlap ≥ 0.75)", "same_key"),
    ("onsets per second within 25%", "onsets_per_second"),
    ("notes per onset within 25%", "notes_per_onset"),
    ("pitch span (5th–95th percentile) within 25%", "pitch_span"),
    ("mean velocity within 25%", "velocity"),
)


@dataclass(frozen=True)
class Timed:
    """A note in seconds."""

    pitch: int
    start: float
    end: float
    velocity: int


def timed(notes: Sequence[Note], timeline: Timeline) -> list[Timed]:
    """``notes`` (in beats) placed in seconds through ``timeline``."""
    starts = timeline.seconds_at([n.start for n in notes])
    ends = timeline.seconds_at([n.end for n in notes])
    return [
        Timed(n.pitch, float(s), float(e), n.velocity) for n, s, e in zip(notes, starts, ends, strict=True)
    ]


def texture(notes: Sequence[Timed]) -> dict[str, float]:
    """The figures compared: pitch classes, onsets a second, notes per onset, span, loudness."""
    if not notes:
        return {}
    onsets = sorted({round(n.start, 3) for n in notes})
    seconds = max(max(n.end for n in notes) - min(n.start for n in notes), 1e-3)
    histogram = np.zeros(12)
    for n in notes:
        histogram[n.pitch % 12] += n.end - n.start
    low, high = np.percentile([n.pitch for n in notes], [5, 95])
    return {
        "pitch_classes": histogram / histogram.sum() if histogram.any() else histogram,
        "onsets_per_second": len(onsets) / seconds,
        "notes_per_onset": len(notes) / len(onsets),
        "pitch_span": float(high - low),
        "velocity": float(np.mean([n.velocity for n in notes])),
    }


def measures(a: dict, b: dict) -> dict[str, float]:
    """What :func:`agreement` judges, as numbers: the pitch-class overlap, and each other figure of
    ``a`` as a multiple of ``b``'s (so a miss says which way it went)."""
    found = {"same_key": float(metrics.histogram_overlap(a["pitch_classes"], b["pitch_classes"]))}
    for key in ("onsets_per_second", "notes_per_onset", "pitch_span", "velocity"):
        found[key] = float(a[key] / max(abs(b[key]), 1e-9))
    return found


def agreement(a: dict, b: dict) -> dict[str, bool]:
    """Whether two stretches of music agree on each figure."""
    found = {"same_key": bool(metrics.histogram_overlap(a["pitch_classes"], b["pitch_classes"]) >= SAME_KEY)}
    for key in ("onsets_per_second", "notes_per_onset", "pitch_span", "velocity"):
        reference = max(abs(b[key]), 1e-9)
        found[key] = bool(abs(a[key] - b[key]) <= TOLERANCE * reference)
    return found


def last_seconds(notes: Sequence[Timed], end: float, seconds: float) -> list[Timed]:
    """The notes that start in the ``seconds`` before ``end``."""
    return [n for n in notes if end - seconds <= n.start < end]


def compare_piece(original: list[Timed], new: list[Timed]) -> dict:
    """One piece's row: the continuation against the piece's end, and the piece against itself."""
    end = max(n.start for n in original) + 1e-6
    tail = last_seconds(original, end, WINDOW_SECONDS)
    before = last_seconds(original, end - WINDOW_SECONDS, WINDOW_SECONDS)
    row: dict = {
        "continuation": agreement(texture(new), texture(tail)),
        "measures": measures(texture(new), texture(tail)),
    }
    if before:
        row["itself"] = agreement(texture(tail), texture(before))
    ending = sorted(original, key=lambda n: n.start)[-SEAM_NOTES:]
    opening = sorted(new, key=lambda n: n.start)[:SEAM_NOTES]
    row["seam"] = float(np.mean([n.velocity for n in opening]) - np.mean([n.velocity for n in ending]))
    return row


def evaluate_continuations(
    model: Path, folder: Path, length: int = 100, seed: int = 0, pictures: Path | None = None
) -> dict:
    """Continue every piece in ``folder`` (or in the corpus set of that name) by ``length`` events
    with ``model`` and compare; with ``pictures``, draw each piece's last half-minute and its new
    part there (a row's ``picture`` names its file)."""
    from composer.errors import ComposerError
    from composer.service import Composer, ComposeRequest
    from composer.settings import ComposerSettings

    files = folder_files(folder) if folder.is_dir() else corpus_files(str(folder))
    if not files:
        raise ValueError(f"no MIDI, MusicXML or ABC files found under {folder}")
    composer = Composer(ComposerSettings(model=model), workers=1)
    if pictures is not None:
        pictures.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for i, path in enumerate(files):
                request = ComposeRequest(
                    length=length, seed=seed + i, primer=path, audio=False, picture=False
                )
                try:
                    piece = composer.compose_sync(request, Path(scratch) / str(i))
                    result = read_score(piece.midi)
                except ComposerError as error:
                    log.warning("skipped %s: %s", path.name, error)
                    continue
                timeline = Timeline.of(result.midi)
                new_parts = {i for i, p in enumerate(result.parts) if p.name == "Cadenza continuation"}
                notes = timed(result.notes, timeline)
                original = [t for t, n in zip(notes, result.notes, strict=True) if n.part not in new_parts]
                new = [t for t, n in zip(notes, result.notes, strict=True) if n.part in new_parts]
                if original and new:
                    row = {"piece": path.name, **compare_piece(original, new)}
                    if pictures is not None:
                        drawn = pictures / f"{i:03d}.png"
                        row["picture"] = _draw(result.notes, notes, new_parts, timeline, drawn, path.name)
                    rows.append(row)
    finally:
        composer.close()
    return {"model": str(model), "folder": str(folder), "length": length, "pieces": rows, **summary(rows)}


def _draw(
    notes: Sequence[Note],
    placed: Sequence[Timed],
    new_parts: set[int],
    timeline: Timeline,
    path: Path,
    title: str,
) -> str:
    """The piece's last :data:`WINDOW_SECONDS` and its new part as a piano roll at ``path``; its
    file name. ``placed`` is ``notes`` in seconds."""
    from composer.render.pianoroll import draw_piano_roll

    new_from = min(n.start for n in notes if n.part in new_parts)
    old = [(n.start, t.start) for n, t in zip(notes, placed, strict=True) if n.part not in new_parts]
    end = max(seconds for _, seconds in old)
    since = min(beat for beat, seconds in old if seconds >= end - WINDOW_SECONDS)
    draw_piano_roll(notes, path, timeline=timeline, new_from=new_from, since=since, title=title)
    return path.name


def summary(rows: Sequence[dict]) -> dict:
    """Shares of pieces agreeing on each figure, for the continuation and for the pieces themselves."""
    found: dict = {"continuation": {}, "itself": {}}
    for _, key in FIGURES:
        for side in found:
            votes = [r[side][key] for r in rows if side in r]
            found[side][key] = sum(votes) / len(votes) if votes else None
    found["seam_median"] = median(r["seam"] for r in rows) if rows else None
    return found


def _mark(row: dict, key: str) -> str:
    """One cell of a piece's row: yes or no, and the number judged (rows from before it was kept
    have none)."""
    mark = "yes" if row["continuation"][key] else "no"
    value = row.get("measures", {}).get(key)
    if value is None:
        return mark
    return f"{mark} ({value:.2f})" if key == "same_key" else f"{mark} ({value:.2f}×)"


def markdown(result: dict) -> str:
    """The report: the table of shares, the seam, and a row per piece."""
    lines = [
        f"# Continuations by {Path(result['model']).name}",
        "",
        f"Every piece of `{result['folder']}` continued by {result['length']} events, the new part "
        f"compared with the last {WINDOW_SECONDS:g} seconds of the piece; the reference column compares "
        f"each piece's last {WINDOW_SECONDS:g} seconds with the {WINDOW_SECONDS:g} before. "
        f"{len(result['pieces'])} pieces.",
        "",
        "| figure (share of pieces) | continuation | the pieces against themselves |",
        "|---|---|---|",
    ]
    for label, key in FIGURES:
        cells = [result[side][key] for side in ("continuation", "itself")]
        lines.append(
            f"| {label} | " + " | ".join("—" if c is None else f"{100 * c:.0f}%" for c in cells) + " |"
        )
    seam = result["seam_median"]
    lines.append(
        f"| loudness jump at the seam (median, velocity steps) | {seam:+.1f} | — |"
        if seam is not None
        else ""
    )
    lines += [
        "",
        "Per piece: whether the new part agrees, with the pitch-class overlap for the key and the new "
        "part's figure as a multiple of the piece's for the others.",
        "",
        "| piece | " + " | ".join(key for _, key in FIGURES) + " | seam |",
        "|---|" + "---|" * (len(FIGURES) + 1),
    ]
    for row in result["pieces"]:
        marks = [_mark(row, key) for _, key in FIGURES]
        name = f"[{row['piece']}](#{_anchor(row)})" if "picture" in row else row["piece"]
        lines.append(f"| {name} | " + " | ".join(marks) + f" | {row['seam']:+.1f} |")
    drawn = [row for row in result["pieces"] if "picture" in row]
    if drawn:
        lines += ["", f"## Each piece's last {WINDOW_SECONDS:g} seconds and its new part", ""]
        for row in drawn:
            lines += [
                f'<a id="{_anchor(row)}"></a>',
                f"### {row['piece']}",
                "",
                f"![{row['piece']}](pictures/{row['picture']})",
                "",
            ]
    return "\n".join(lines) + "\n"


def _anchor(row: dict) -> str:
    """The link target of a piece's picture in the report."""
    return "piece-" + Path(row["picture"]).stem
