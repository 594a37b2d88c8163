"""Where training music comes from: named sets of music21's bundled corpus, or a user's folder.

Each source yields :class:`Piece` values (events plus a style label). Files are parsed in
parallel processes; a file that fails to parse is listed and skipped, never fatal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from composer.events import Event, events_from_notes

log = logging.getLogger(__name__)

CORPUS_SETS = {
    "bach": "Bach's four-part chorales (about 400 pieces)",
    "palestrina": "Palestrina's masses and motets (about 1,300 pieces, Humdrum)",
    "folk": "folk songs from the Essen collection (ABC, thousands of melodies)",
}
MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".mxl", ".musicxml", ".xml", ".abc")
MIN_EVENTS = 8


@dataclass(frozen=True)
class Piece:
    """One piece of training music, ready to encode."""

    name: str
    style: str
    events: tuple[Event, ...]
    tempo: float = 100.0


@dataclass
class Collected:
    """The pieces a set of sources gave, and the files that could not be used (with why)."""

    pieces: list[Piece]
    failures: list[tuple[str, str]]


def corpus_files(name: str) -> list[Path]:
    """The files of a named corpus set, as shipped inside music21 (no download)."""
    from music21 import corpus

    if name == "bach":
        return sorted(p for p in corpus.getComposer("bach") if p.suffix in (".mxl", ".xml"))
    if name == "palestrina":
        return sorted(corpus.getComposer("palestrina"))
    if name == "folk":
        root = Path(corpus.__file__).parent / "essenFolksong"
        return sorted(p for p in root.glob("*.abc") if not p.name.startswith("test"))
    raise ValueError(f"unknown corpus set {name!r}; choose from {', '.join(CORPUS_SETS)}")


def folder_files(folder: Path) -> list[Path]:
    """Every readable score file under ``folder``, searched recursively."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)


def _parse_trusted(args: tuple[str, str]) -> tuple[list[Piece], list[tuple[str, str]]]:
    """Parse one bundled corpus file in a worker process (an ABC file may hold many tunes)."""
    path, style = args
    from music21 import converter, stream

    from composer.midi_in import score_from_stream

    try:
        parsed = converter.parse(path)
    except Exception as error:
        return [], [(path, f"{type(error).__name__}: {error}")]
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    pieces, failures = [], []
    for i, score in enumerate(scores):
        name = f"{Path(path).stem}#{i}" if len(scores) > 1 else Path(path).stem
        try:
            read = score_from_stream(score, source=name)
        except Exception as error:
            failures.append((name, str(error)))
            continue
        events = events_from_notes(read.notes)
        if len(events) >= MIN_EVENTS:
            pieces.append(Piece(name, style, tuple(events), read.tempo))
    return pieces, failures


def _parse_user(args: tuple[str, str]) -> tuple[list[Piece], list[tuple[str, str]]]:
    """Parse one file of a user's folder under the composer's safety limits."""
    path, style = args
    from composer.errors import ComposerError
    from composer.midi_in import read_score

    try:
        score = read_score(Path(path))
    except ComposerError as error:
        return [], [(path, str(error))]
    events = events_from_notes(score.notes)
    if len(events) < MIN_EVENTS:
        return [], [(path, f"only {len(events)} events")]
    return [Piece(Path(path).stem, style, tuple(events), score.tempo)], []


def collect(
    corpus_sets: Sequence[str] = (),
    midi_dirs: Sequence[Path] = (),
    workers: int | None = None,
    progress: Callable[[], None] | None = None,
) -> Collected:
    """Parse every source in parallel. ``progress`` (a callable) is told of each finished file."""
    jobs: list[tuple[Callable, tuple[str, str]]] = []
    for name in corpus_sets:
        jobs += [(_parse_trusted, (str(p), name)) for p in corpus_files(name)]
    for folder in midi_dirs:
        files = folder_files(folder)
        if not files:
            raise ValueError(f"no MIDI, MusicXML or ABC files found under {folder}")
        jobs += [(_parse_user, (str(p), Path(folder).name)) for p in files]
    pieces: list[Piece] = []
    failures: list[tuple[str, str]] = []
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        futures = [pool.submit(fn, args) for fn, args in jobs]
        for future in futures:
            got, failed = future.result()
            pieces += got
            failures += failed
            if progress:
                progress()
    for path, why in failures:
        log.warning("skipped %s: %s", path, why)
    return Collected(pieces, failures)


def styles_of(pieces: Iterable[Piece]) -> tuple[str, ...]:
    """The style labels present, in a stable order."""
    return tuple(sorted({p.style for p in pieces}))
