"""A piano-roll picture of a piece, posted next to the MIDI so people see what they will hear.

Time runs left to right in minutes:seconds, pitch bottom to top with a label at every C, and each
note is a bar whose opacity follows its velocity. For a continuation the user's own notes are
grey and the generated ones coloured, split by a dashed line, so the hand-over is easy to spot.

The look is a dark card that sits well in Discord's dark theme (and still reads on the light
one). Drawing uses matplotlib's object API with the Agg canvas directly, never ``pyplot``: no
global state, no GUI backend, safe to call from worker threads of the bot.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MultipleLocator

from composer.events import Note
from composer.midi.timeline import Timeline

WIDTH_PX, HEIGHT_PX, DPI = 1600, 600, 100
"""Picture size: wide enough for Discord's preview to show detail, short enough not to dominate."""

BACKGROUND = "#1e1f24"
PANEL = "#26282f"
BLACK_KEY_ROW = "#22242a"
GRID = "#363943"
TEXT = "#dfe2e8"
MUTED = "#9097a3"
PRIMER = "#8a8f99"
CONTINUATION = "#f5a524"
PART_COLOURS = ("#5aa9ff", "#f5a524", "#4fd1a5", "#ff6b8b", "#b48cff", "#ffd166", "#6ee7f9", "#ff9f68")
"""One colour per part (cycled), chosen to stay distinct and bright on the dark panel."""

TIME_STEPS = (0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0)
"""Spacings of the time ticks, in seconds: the first one giving at most 14 ticks is used."""

NAMES = ("C", "C♯", "D", "D♯", "E", "F", "F♯", "G", "G♯", "A", "A♯", "B")
BLACK_KEYS = frozenset({1, 3, 6, 8, 10})
MIN_PITCH_SPAN = 24
"""Show at least two octaves, so a short melody is not blown up into fat bars."""


def note_name(pitch: int) -> str:
    """Scientific pitch name of a MIDI number, middle C (60) being C4."""
    return f"{NAMES[pitch % 12]}{pitch // 12 - 1}"


def draw_piano_roll(
    notes: Sequence[Note],
    path: Path,
    *,
    tempo: float = 100.0,
    timeline: Timeline | None = None,
    new_from: float | None = None,
    title: str = "",
    part_names: Sequence[str] = (),
    since: float = 0.0,
) -> Path:
    """Draw ``notes`` as a PNG piano roll at ``path`` (written atomically) and return the path.

    ``timeline`` turns note times (in beats) into seconds for the time axis through every tempo
    change; without one, the piece plays at ``tempo`` quarter notes a minute throughout.
    ``new_from`` (in quarter notes) marks where a continuation starts: earlier notes are drawn grey
    as "your piece", later ones coloured as "continuation". ``part_names`` names the parts in the
    legend (else "part 1", "part 2"...); with them, part 0 is a melody drawn outlined, in front.
    ``since`` (in quarter notes) draws only from there on, its clock still the piece's: the end of
    a long piece and what follows it. Raises ``ValueError`` for no notes or a tempo that is not positive.
    """
    if not notes:
        raise ValueError("there are no notes to draw")
    if timeline is None:
        if not tempo > 0:
            raise ValueError(f"tempo must be positive, got {tempo}")
        timeline = Timeline.constant(tempo)
    path = Path(path)
    since = min(since, max(n.start for n in notes))  # the last note is always drawn
    notes = [n for n in notes if n.end > since]
    left = float(timeline.seconds_at([since])[0])

    starts = timeline.seconds_at(np.fromiter((n.start for n in notes), float, len(notes)))
    ends = timeline.seconds_at(np.fromiter((n.end for n in notes), float, len(notes)))
    pitches = np.fromiter((n.pitch for n in notes), float, len(notes))
    velocities = np.fromiter((n.velocity for n in notes), float, len(notes))
    parts = np.fromiter((n.part for n in notes), int, len(notes))

    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, facecolor=BACKGROUND)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.055, 0.11, 0.93, 0.76))
    ax.set_facecolor(PANEL)

    total = max(float(ends.max()), float(starts.max()) + 0.1, 1.0)
    x_max = left + (total - left) * 1.01
    low, high = int(pitches.min()), int(pitches.max())
    if high - low < MIN_PITCH_SPAN:
        low = max(0, (low + high) // 2 - MIN_PITCH_SPAN // 2)
        high = min(127, low + MIN_PITCH_SPAN)
        low = max(0, high - MIN_PITCH_SPAN)
    y_min, y_max = low - 1.5, high + 1.5
    ax.set_xlim(left, x_max)
    ax.set_ylim(y_min, y_max)

    _draw_keyboard_rows(ax, low - 1, high + 1, x_max)

    # A 1 px gap keeps repeated notes apart; very short notes on a long piece still get 2 px.
    pixel = (x_max - left) / (WIDTH_PX * ax.get_position().width)
    widths = np.maximum(ends - starts - pixel, 2.0 * pixel)
    alphas = 0.35 + 0.65 * np.clip(velocities, 1, 127) / 127.0

    handles: list[Patch] = []
    if new_from is not None:
        boundary = float(timeline.seconds_at([new_from])[0])
        is_new = starts >= boundary - 1e-9
        colours = np.where(is_new[:, None], _rgb(CONTINUATION), _rgb(PRIMER))
        alphas = np.where(is_new, alphas, alphas * 0.8)
        ax.axvspan(boundary, x_max, color=CONTINUATION, alpha=0.05, lw=0, zorder=0.5)
        ax.axvline(boundary, color=TEXT, lw=1.2, ls=(0, (5, 4)), alpha=0.8, zorder=3)
        handles = [
            Patch(color=PRIMER, label="your piece"),
            Patch(color=CONTINUATION, label="continuation"),
        ]
    else:
        palette = np.array([_rgb(c) for c in PART_COLOURS])
        distinct = np.unique(parts)
        index = np.searchsorted(distinct, parts) % len(PART_COLOURS)
        colours = palette[index]
        if len(distinct) > 1:
            handles = [
                Patch(
                    color=PART_COLOURS[i % len(PART_COLOURS)],
                    label=part_names[p] if p < len(part_names) else f"part {p + 1}",
                )
                for i, p in enumerate(distinct[: len(PART_COLOURS)])
            ]

    # Bars fill most of their row; when the rows are tiny (a range of 8+ octaves) keep them 3 px tall.
    row_px = HEIGHT_PX * ax.get_position().height / (y_max - y_min)
    height = min(0.95, max(0.78, 3.0 / row_px))
    x0, x1 = starts, starts + widths
    y0, y1 = pitches - height / 2, pitches + height / 2
    verts = np.stack(
        [np.stack([x0, y0], 1), np.stack([x0, y1], 1), np.stack([x1, y1], 1), np.stack([x1, y0], 1)], 1
    )
    face = np.concatenate([colours, alphas[:, None]], axis=1)
    bars = PolyCollection(verts, facecolors=face, edgecolors="none", linewidths=0, zorder=2)
    ax.add_collection(bars)
    if part_names:  # the melody apart: outlined and drawn over the voices under it
        melody = parts == 0
        ax.add_collection(
            PolyCollection(
                verts[melody], facecolors=face[melody], edgecolors=TEXT, linewidths=1.2, zorder=2.5
            )
        )

    _style_axes(ax, low, high, total - left)
    if handles:
        legend = ax.legend(
            handles=handles,
            loc="upper right",
            bbox_to_anchor=(1.0, 1.13),
            ncol=len(handles),
            frameon=False,
            fontsize=11,
            labelcolor=TEXT,
            handlelength=1.2,
            handleheight=0.8,
            borderaxespad=0.0,
        )
        legend.set_zorder(5)
    subtitle = f"{len(notes):,} notes · {_clock(round(total))} · {_tempo_text(timeline, notes)}"
    if title:
        fig.text(0.055, 0.955, title, color=TEXT, fontsize=17, fontweight="bold", va="top", ha="left")
        fig.text(0.055, 0.895, subtitle, color=MUTED, fontsize=11, va="top", ha="left")
    else:
        fig.text(0.055, 0.935, subtitle, color=MUTED, fontsize=12, va="top", ha="left")

    return _save_atomically(fig, path)


def _tempo_text(timeline: Timeline, notes: Sequence[Note]) -> str:
    """The tempo the piece plays at, or the range it moves through: "96 bpm", "72–130 bpm"."""
    end = timeline.tick(max(n.end for n in notes))
    bpms = [60_000_000 / us for tick, us in timeline.tempos if tick < end] or [timeline.tempo_at(0)]
    low, high = round(min(bpms)), round(max(bpms))
    return f"{low} bpm" if low == high else f"{low}–{high} bpm"


def _draw_keyboard_rows(ax: Axes, low: int, high: int, x_max: float) -> None:
    """Shade the rows of black keys, like a piano roll editor, so pitches can be read across."""
    rows = [p for p in range(low, high + 1) if p % 12 in BLACK_KEYS]
    verts = [((0.0, p - 0.5), (0.0, p + 0.5), (x_max, p + 0.5), (x_max, p - 0.5)) for p in rows]
    ax.add_collection(PolyCollection(verts, facecolors=BLACK_KEY_ROW, edgecolors="none", zorder=0.2))
    for p in range(low, high + 1):
        if p % 12 == 0:  # a faint line under every C marks the octaves
            ax.axhline(p - 0.5, color=GRID, lw=0.8, zorder=0.3)


def _style_axes(ax: Axes, low: int, high: int, shown: float) -> None:
    """Dark-theme ticks and labels: minutes:seconds along x (``shown`` seconds of it), note names
    at each C along y."""
    cs = [p for p in range(low - 1, high + 2) if p % 12 == 0]
    ax.set_yticks(cs, [note_name(p) for p in cs])
    step = next((s for s in TIME_STEPS if shown / s <= 14), TIME_STEPS[-1])
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: _clock(x)))
    ax.grid(axis="x", color=GRID, lw=0.6, alpha=0.7, zorder=0.4)
    ax.set_axisbelow(True)
    ax.tick_params(colors=MUTED, labelsize=10, length=0, pad=6)
    ax.set_xlabel("time (min:sec)", color=MUTED, fontsize=10, labelpad=6)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _clock(seconds: float) -> str:
    """``m:ss`` for a time axis label (tenths when the piece is only a few seconds long)."""
    if seconds < 0:
        return ""
    minutes, rest = divmod(seconds, 60.0)
    if abs(rest - round(rest)) > 1e-6:
        return f"{int(minutes)}:{rest:04.1f}"
    return f"{int(minutes)}:{round(rest):02d}"


def _rgb(colour: str) -> tuple[float, float, float]:
    """A ``#rrggbb`` colour as floats 0-1."""
    value = colour.lstrip("#")
    return tuple(int(value[i : i + 2], 16) / 255.0 for i in (0, 2, 4))  # type: ignore[return-value]


def _save_atomically(fig: Figure, path: Path) -> Path:
    """Write the PNG to a temporary name beside ``path`` and rename it into place."""
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI, facecolor=fig.get_facecolor(), metadata={"Software": None})
        tmp.chmod(0o644)  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
