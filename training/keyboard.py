"""Real keyboard pieces from music21's bundled corpus, as Standard MIDI Files.

The solo keyboard works music21 ships (a Chopin mazurka, a C. P. E. Bach sonata movement,
Mozart's K. 545, the Maple Leaf Rag, Clara Schumann's four polonaises op. 1 and two of
Schoenberg's op. 19) are written out once as MIDI with music21's own translation, the way a
user's MusicXML upload is read: the score's tempo marks, both hands (one track each) and, where
the score has dynamics, velocities that follow them. They are real piano music that may be kept
and shipped, for ``evaluate --continuations keyboard`` and ``--corpus keyboard``.

Every work is in the public domain; the encodings are distributed with music21, whose corpus
licence asks that each file's own notes be followed. Only Clara Schumann's polonaises carry one:
"Typeset by Cypressdome for IMSLP and released under the CC BY-SA 4.0 license" (commercial use
allowed, with attribution and share-alike). None is marked non-commercial. Schoenberg's op. 19
(composed 1911, published 1913) is in the public domain in the United States, and since 2022
where copyright runs 70 years after the composer's death (1951).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONVERSION_VERSION = 1
"""Bump when the conversion changes what a piece gives, so cached files are written again."""


@dataclass(frozen=True)
class KeyboardPiece:
    """One solo keyboard work in music21's corpus."""

    path: str
    """Relative to music21's corpus folder."""
    title: str
    licence: str

    @property
    def name(self) -> str:
        """The MIDI file's name: the corpus path with its folders joined by dashes."""
        return self.path.rsplit(".", 1)[0].replace("/", "-") + ".mid"


_PD = "public domain; encoding distributed with music21, no licence note of its own"
_IMSLP = "public domain; typeset by Cypressdome for IMSLP, CC BY-SA 4.0"

KEYBOARD_PIECES: tuple[KeyboardPiece, ...] = (
    KeyboardPiece("chopin/mazurka06-2.krn", "Chopin, Mazurka in C-sharp minor op. 6 no. 2", _PD),
    KeyboardPiece("cpebach/h186.mxl", "C. P. E. Bach, Sonata in A major H. 186 (Wq. 55/4), Poco adagio", _PD),
    KeyboardPiece("joplin/maple_leaf_rag.mxl", "Joplin, Maple Leaf Rag", _PD),
    KeyboardPiece("mozart/k545/movement1_exposition.mxl", "Mozart, Sonata in C K. 545, exposition", _PD),
    KeyboardPiece("schoenberg/opus19/movement2.mxl", "Schoenberg, Six Little Piano Pieces op. 19 no. 2", _PD),
    KeyboardPiece("schoenberg/opus19/movement6.mxl", "Schoenberg, Six Little Piano Pieces op. 19 no. 6", _PD),
    KeyboardPiece(
        "schumann_clara/polonaise_op1n1.mxl", "Clara Schumann, Polonaise in E flat op. 1 no. 1", _IMSLP
    ),
    KeyboardPiece("schumann_clara/polonaise_op1n2.mxl", "Clara Schumann, Polonaise in C op. 1 no. 2", _IMSLP),
    KeyboardPiece("schumann_clara/polonaise_op1n3.mxl", "Clara Schumann, Polonaise in D op. 1 no. 3", _IMSLP),
    KeyboardPiece("schumann_clara/polonaise_op1n4.mxl", "Clara Schumann, Polonaise in C op. 1 no. 4", _IMSLP),
)

MANIFEST = "sources.json"
"""Beside the MIDI files: for each, the hash of what it was made from, so a change writes it again."""


def corpus_root() -> Path:
    """music21's corpus folder."""
    from music21 import corpus

    return Path(corpus.__file__).parent


def midi_of(source: Path) -> bytes:
    """``source`` (a score file) as MIDI bytes: music21's translation, with its tempo marks, every
    staff as a track, and velocities from the score's dynamics.

    A playback tempo with nothing written (MusicXML's ``<sound tempo>``) gives way to a written
    metronome mark at the same moment (the Maple Leaf Rag's printed 100 against a stray 120).
    A score whose repeat signs music21 cannot follow is written once through.
    """
    from music21 import converter, repeat, tempo

    from composer.midi.streams import score_from_stream, stream_to_midi

    parsed = converter.parse(source)
    marks = list(parsed.recurse().getElementsByClass(tempo.MetronomeMark))
    written = {m.getOffsetInHierarchy(parsed) for m in marks if m.number is not None}
    for mark in marks:
        silent = mark.number is None and not mark.text
        if silent and mark.getOffsetInHierarchy(parsed) in written and mark.activeSite is not None:
            mark.activeSite.remove(mark)
    notation = score_from_stream(parsed, source.name)
    try:
        return stream_to_midi(parsed, notation.tempo)
    except repeat.ExpanderException:
        _drop_repeats(parsed)
        return stream_to_midi(parsed, notation.tempo)


def _drop_repeats(score: Any) -> None:
    """Take out repeat barlines, endings and repeat expressions: the score as written, once."""
    from music21 import bar, repeat, spanner, stream

    for measure in score.recurse().getElementsByClass(stream.Measure):
        if isinstance(measure.leftBarline, bar.Repeat):
            measure.leftBarline = None
        if isinstance(measure.rightBarline, bar.Repeat):
            measure.rightBarline = bar.Barline("regular")
    for element in list(score.recurse().getElementsByClass((repeat.RepeatExpression, spanner.RepeatBracket))):
        if element.activeSite is not None:
            element.activeSite.remove(element)


def _source_key(source: Path) -> str:
    """What a converted file depends on: the source's bytes, the conversion and music21's version."""
    import music21

    digest = hashlib.sha256(source.read_bytes())
    digest.update(json.dumps([CONVERSION_VERSION, music21.__version__]).encode())
    return digest.hexdigest()


def extract_keyboard(folder: Path, pieces: tuple[KeyboardPiece, ...] | None = None) -> list[Path]:
    """Write the keyboard pieces as MIDI into ``folder`` (once: a file is written again only when
    its source, the conversion or music21 changes) and return their paths."""
    pieces = KEYBOARD_PIECES if pieces is None else pieces
    root = corpus_root()
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        manifest = {}
    paths, changed = [], False
    for piece in pieces:
        source = root / piece.path
        if not source.is_file():
            raise ValueError(f"music21's corpus has no {piece.path}")
        path = folder / piece.name
        key = _source_key(source)
        if manifest.get(piece.name) != key or not path.is_file():
            partial = folder / f".{piece.name}.{os.getpid()}.partial"
            partial.write_bytes(midi_of(source))
            partial.replace(path)
            manifest[piece.name] = key
            changed = True
        paths.append(path)
    if changed:
        partial = folder / f".{MANIFEST}.{os.getpid()}.partial"
        partial.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        partial.replace(manifest_path)
    return sorted(paths)
