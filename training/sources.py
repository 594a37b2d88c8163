"""Where training music comes from: named sets of music21's bundled corpus (:mod:`training.corpora`),
or a user's folder.

Each source yields :class:`Piece` values (events plus a style label). Files are parsed in
parallel processes; a file that fails to parse is listed and skipped, never fatal.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from composer.events import Event, events_from_notes
from composer.model.artifact import encoding_settings
from training.corpora import CORPUS_SETS as CORPUS_SETS  # re-exported for the command line
from training.corpora import cache_root, corpus_set

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi", ".kar", ".mxl", ".musicxml", ".xml", ".abc")
MIN_EVENTS = 8
CACHE_VERSION = 3
"""Bump when parsing changes what a file gives, so old cache entries are not used."""


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
    cached: int = 0
    """How many files came from the cache instead of being parsed."""


def corpus_files(name: str) -> list[Path]:
    """The files of a named corpus set, as shipped inside music21 (no download)."""
    return corpus_set(name).files()


def folder_files(folder: Path) -> list[Path]:
    """Every readable score file under ``folder``, searched recursively."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)


def _parse_trusted(args: tuple[str, str]) -> tuple[list[Piece], list[tuple[str, str]]]:
    """Parse one bundled corpus file in a worker process (an ABC file may hold many tunes)."""
    path, style = args
    from music21 import converter, stream

    from composer.midi.streams import score_from_stream

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
    from composer.midi.read import read_score

    try:
        score = read_score(Path(path))
    except ComposerError as error:
        return [], [(path, str(error))]
    events = events_from_notes(score.notes)
    if len(events) < MIN_EVENTS:
        return [], [(path, f"only {len(events)} events")]
    return [Piece(Path(path).stem, style, tuple(events), score.tempo)], []


def cache_dir() -> Path:
    """Where parsed pieces are kept between runs (``CADENZA_CACHE_DIR``, else ``~/.cache/cadenza``)."""
    return cache_root() / "pieces"


def _cache_key(path: str, style: str, parser: Callable) -> str:
    """Content hash of the file plus everything that changes what parsing it gives."""
    digest = hashlib.sha256(Path(path).read_bytes())
    digest.update(json.dumps([CACHE_VERSION, style, parser.__name__, encoding_settings()]).encode())
    return digest.hexdigest()


def collect(
    corpus_sets: Sequence[str] = (),
    midi_dirs: Sequence[Path] = (),
    workers: int | None = None,
    limit: int | Mapping[str, int] | None = None,
    show_progress: bool = False,
) -> Collected:
    """Parse every source in parallel, reusing cached results for files whose content is unchanged.

    ``limit`` takes only the first files of each source (quick trials, or to balance a large set
    against a small one): one number for every source, or a number per source name (a corpus set
    or a folder's name), where ``"*"`` covers the sources not named.
    """
    limits = limit if isinstance(limit, Mapping) else {"*": limit}

    def first(files: list[Path], source: str) -> list[Path]:
        return files[: limits.get(source, limits.get("*"))]

    jobs: list[tuple[Callable, str, str]] = []
    for name in corpus_sets:
        chosen = corpus_set(name)
        if not chosen.commercial:
            log.warning(
                "the %s set is licensed for non-commercial use only (%s): a model trained on it may "
                "not be shipped or used commercially",
                name,
                chosen.licence,
            )
        jobs += [
            (_parse_user if p.suffix == ".mid" else _parse_trusted, str(p), chosen.style)
            for p in first(corpus_files(name), name)
        ]
    for folder in midi_dirs:
        files = folder_files(folder)
        if not files:
            raise ValueError(f"no MIDI, MusicXML or ABC files found under {folder}")
        jobs += [(_parse_user, str(p), Path(folder).name) for p in first(files, Path(folder).name)]
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    results: dict[int, tuple[list[Piece], list[tuple[str, str]]]] = {}
    keys = [_cache_key(path, style, fn) for fn, path, style in jobs]
    for i, key in enumerate(keys):
        cached = cache / f"{key}.pickle"
        if cached.exists():
            with contextlib.suppress(Exception), cached.open("rb") as f:
                results[i] = pickle.load(f)
    todo = [i for i in range(len(jobs)) if i not in results]
    workers = workers or os.cpu_count() or 1
    with (
        # Bundled files parse in worker processes; a user's MusicXML and ABC files already parse in
        # a bounded child process each (composer.midi.read) and MIDI reads in milliseconds, so
        # threads are enough to run several at once.
        ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as processes,
        ThreadPoolExecutor(max_workers=workers) as threads,
        tqdm(
            total=len(jobs), initial=len(results), desc="parsing", unit="file", disable=not show_progress
        ) as bar,
    ):
        futures = {
            (processes if jobs[i][0] is _parse_trusted else threads).submit(jobs[i][0], jobs[i][1:]): i
            for i in todo
        }
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            partial = cache / f".{keys[i]}.{os.getpid()}.partial"
            with partial.open("wb") as f:
                pickle.dump(results[i], f)
            partial.replace(cache / f"{keys[i]}.pickle")
            bar.update()
    pieces: list[Piece] = []
    failures: list[tuple[str, str]] = []
    for i in range(len(jobs)):
        got, failed = results[i]
        pieces += got
        failures += failed
    for path, why in failures:
        log.warning("skipped %s: %s", path, why)
    return Collected(pieces, failures, cached=len(jobs) - len(todo))


def styles_of(pieces: Iterable[Piece]) -> tuple[str, ...]:
    """The style labels present, in a stable order."""
    return tuple(sorted({p.style for p in pieces}))
