"""The named sets of music21's bundled corpus that training can use, each with its licence.

A model's weights are made from its data, so what the data allows decides where a model may go.
Every set says whether its licence allows commercial use; the bundled model (MIT) is trained
only on sets that do, and training warns when a set that does not is chosen. The licences are
written into the model's artifact and its card.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CorpusSet:
    """A set of files in music21's corpus: what it is, the style it trains, and its licence."""

    description: str
    style: str
    licence: str
    commercial: bool
    """Whether the licence allows commercial use, and so shipping weights under MIT."""
    files: Callable[[], list[Path]]

    def to_dict(self, name: str) -> dict[str, object]:
        """What a model's artifact records of this set."""
        return {"name": name, "description": self.description, "licence": self.licence}


def _root() -> Path:
    from music21 import corpus

    return Path(corpus.__file__).parent


def _bach() -> list[Path]:
    return sorted(p for p in (_root() / "bach").iterdir() if p.suffix in (".mxl", ".xml"))


def _abc(folder: str) -> Callable[[], list[Path]]:
    def files() -> list[Path]:
        return sorted(p for p in (_root() / folder).glob("*.abc") if not p.name.startswith("test"))

    return files


def cache_root() -> Path:
    """Where training keeps what it derives from its sources (``CADENZA_CACHE_DIR``, else
    ``~/.cache/cadenza``)."""
    return Path(os.environ.get("CADENZA_CACHE_DIR") or Path.home() / ".cache" / "cadenza")


def _freedoom() -> list[Path]:
    from training.wad import extract_freedoom

    return extract_freedoom(cache_root() / "freedoom")


def _keyboard() -> list[Path]:
    from training.keyboard import extract_keyboard

    return extract_keyboard(cache_root() / "keyboard")


def _palestrina() -> list[Path]:
    return sorted((_root() / "palestrina").glob("*.krn"))


CORPUS_SETS: dict[str, CorpusSet] = {
    "bach": CorpusSet(
        "Bach's four-part chorales (about 400 pieces, MusicXML)",
        "bach",
        "public domain (J. S. Bach, 1685-1750); encoded for music21, which notes no restriction for this set",
        True,
        _bach,
    ),
    "oneill": CorpusSet(
        "O'Neill's Music of Ireland (1850 collection): about 1,800 Irish tunes, ABC",
        "folk",
        "public domain (published 1850); ABC transcription by Norbert Paap, distributed with music21",
        True,
        _abc("oneills1850"),
    ),
    "ryans": CorpusSet(
        "Ryan's Mammoth Collection (1883): about 1,050 fiddle tunes, ABC",
        "folk",
        "public domain (published 1883); ABC transcriptions distributed with music21",
        True,
        _abc("ryansMammoth"),
    ),
    "palestrina": CorpusSet(
        "Palestrina's masses and motets (about 1,300 pieces, Humdrum)",
        "palestrina",
        "public domain (G. P. da Palestrina, c. 1525-1594); Humdrum encodings distributed with music21",
        True,
        _palestrina,
    ),
    "freedoom": CorpusSet(
        "Freedoom's game music: 67 General MIDI tracks from Debian's freedoom package",
        "game",
        "BSD-3-Clause (the Freedoom project)",
        True,
        _freedoom,
    ),
    "keyboard": CorpusSet(
        "music21's solo keyboard works: 10 pieces by Chopin, C. P. E. Bach, Mozart, Joplin, Clara "
        "Schumann and Schoenberg, written out as MIDI once (tempo, both hands, dynamics)",
        "keyboard",
        "public domain works; encodings distributed with music21, Clara Schumann's four polonaises "
        "typeset by Cypressdome for IMSLP under CC BY-SA 4.0 (attribution, share-alike)",
        True,
        _keyboard,
    ),
    "essen": CorpusSet(
        "folk songs from the Essen collection (ABC, thousands of melodies)",
        "folk",
        "non-commercial use only (the Essen collection's licence as music21 distributes it)",
        False,
        _abc("essenFolksong"),
    ),
}


FORMER_NAMES = {"folk": "essen"}
"""Names that models trained before a set was renamed still carry in their metadata."""


def corpus_set(name: str) -> CorpusSet:
    """The set called ``name``; ValueError naming the sets there are when there is none."""
    try:
        return CORPUS_SETS[FORMER_NAMES.get(name, name)]
    except KeyError:
        raise ValueError(f"unknown corpus set {name!r}; choose from {', '.join(CORPUS_SETS)}") from None
