"""A melody to harmonize: read from typed text (ABC or note names) or a file, checked, on the grid.

Text comes from a chat message, so it is forgiving: ABC with or without its header lines (``K:G
|GABc dedB|`` on one line is fine), or note names with optional lengths as LilyPond writes them
(``C4 D E F G2 A G``: a length is a note value, 4 a quarter, 2 a half, kept until changed; each note
goes to the octave nearest the one before, ``'`` and ``,`` move it an octave up or down; ``r`` is a
rest, ``~`` ties). ABC goes through :func:`composer.midi.read.read_score` like an uploaded file
(music21 in a sandboxed process); of a file's parts the highest is the melody, its top line if it
holds chords. Every mistake is an :class:`~composer.errors.InputFileError` whose message is one
line with an example that works.
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from composer.errors import InputFileError, InputLimitError
from composer.events import Note, Score, quarters_to_ticks
from composer.keys import MAJOR_PROFILE, MINOR_PROFILE, Key
from composer.midi.checks import detect_format, quoted_name
from composer.midi.read import ReadLimits, read_score
from composer.midi.timeline import Timeline

MAX_MELODY_NOTES = 400
LOWEST, HIGHEST = 21, 108
"""The piano keyboard, A0 to C8: a melody note outside it is refused."""
EXAMPLE = "`C4 D E F G2 A G` or `K:G |GABc dedB|c2 A2 G4|]`"
"""An input that works, for the messages about one that does not."""
LONG_NOTE = 2.0
"""A note at least this many times the melody's typical length (and at least a half note) ends a phrase."""


@dataclass(frozen=True, slots=True)
class MelodyNote:
    """One melody note: onset and duration in quarter notes, MIDI pitch."""

    onset: float
    duration: float
    pitch: int


@dataclass(frozen=True)
class Melody:
    """A single line of notes (no two at once) and where its phrases end, with the tune's settings.

    ``phrase_ends[i]`` is true where a cadence belongs after note ``i``; the last note always ends
    a phrase. ``key_signature`` (sharps, minor) is the one the source wrote, when it wrote one.
    """

    notes: tuple[MelodyNote, ...]
    phrase_ends: tuple[bool, ...]
    tempo: float | None = None
    time_signature: tuple[int, int] = (4, 4)
    key_signature: tuple[int, bool] | None = None
    title: str = ""

    @classmethod
    def from_notes(
        cls,
        notes: Iterable[tuple[float, float, int]],
        phrase_ends: Sequence[bool] | None = None,
        *,
        tempo: float | None = None,
        time_signature: tuple[int, int] = (4, 4),
        key_signature: tuple[int, bool] | None = None,
        title: str = "",
    ) -> Melody:
        """A melody from ``(onset_quarters, duration_quarters, midi_pitch)`` in time order.

        Without ``phrase_ends`` (one flag per note, e.g. fermatas) phrases end at notes followed by
        a rest and at long notes. A note that overlaps the next is cut at its onset. Raises
        :class:`InputFileError` for no notes, too many, two at once or notes off the keyboard.
        """
        found = [MelodyNote(float(o), float(d), int(p)) for o, d, p in notes]
        _check_count(len(found))
        if phrase_ends is not None and len(phrase_ends) != len(found):
            raise ValueError(f"{len(phrase_ends)} phrase-end flags for {len(found)} notes")
        order = sorted(range(len(found)), key=lambda i: found[i].onset)
        found = [found[i] for i in order]
        ticks = [quarters_to_ticks(n.onset) for n in found]
        for a, b, tick_a, tick_b in zip(found, found[1:], ticks, ticks[1:], strict=False):
            if tick_a == tick_b:
                raise InputFileError(
                    f"I found a chord (notes {_name(a.pitch)} and {_name(b.pitch)} together) where a melody "
                    f"was expected; send one note at a time, like {EXAMPLE}."
                )
        outside = [n.pitch for n in found if not LOWEST <= n.pitch <= HIGHEST]
        if outside:
            raise InputFileError(
                f"The note {_name(outside[0])} is off the piano keyboard (A0 to C8); try {EXAMPLE}."
            )
        if any(n.duration <= 0 for n in found):
            raise InputFileError(f"Every note needs a length above zero; try {EXAMPLE}.")
        cut = [
            MelodyNote(n.onset, min(n.duration, nxt.onset - n.onset), n.pitch)
            for n, nxt in itertools.pairwise(found)
        ]
        found = [*cut, found[-1]]
        if phrase_ends is None:
            ends = _phrase_ends(found)
        else:
            flags = [bool(phrase_ends[i]) for i in order]
            ends = [*flags[:-1], True]
        return cls(tuple(found), tuple(ends), tempo, time_signature, key_signature, title)

    @property
    def key(self) -> Key:
        """The melody's key: among the keys of its signature (major or relative minor) when it has
        one, else among all 24, the one whose profile fits the melody's pitch classes best, with a
        nudge towards the keys whose tonic the melody ends on."""
        histogram = np.zeros(12)
        for n in self.notes:
            histogram[n.pitch % 12] += n.duration
        if self.key_signature is not None:
            sharps, _ = self.key_signature
            major = sharps * 7 % 12
            keys = [Key(major), Key((major + 9) % 12, minor=True)]
        else:
            keys = [Key(t, m) for t in range(12) for m in (False, True)]
        last = self.notes[-1].pitch % 12

        def fit(key: Key) -> float:
            profile = MINOR_PROFILE if key.minor else MAJOR_PROFILE
            score = float(np.corrcoef(np.roll(histogram, -key.tonic), profile)[0, 1])
            return (0.0 if np.isnan(score) else score) + (0.15 if last == key.tonic else 0.0)

        return max(keys, key=fit)


def _check_count(count: int) -> None:
    """Refuse a melody of no notes or of too many."""
    if not count:
        raise InputFileError(f"I found no notes in that melody; try {EXAMPLE}.")
    if count > MAX_MELODY_NOTES:
        raise InputFileError(
            f"That melody has {count} notes; I harmonize up to {MAX_MELODY_NOTES}. "
            f"Send a shorter one, like {EXAMPLE}."
        )


def _phrase_ends(notes: Sequence[MelodyNote], long_notes: bool = True) -> list[bool]:
    """Cadences after a rest, after a long note (unless ``long_notes`` is off: a melody with
    fermatas marks its phrases itself), and at the end."""
    typical = statistics.median(n.duration for n in notes)
    ends = []
    for i, n in enumerate(notes):
        if i + 1 == len(notes):
            ends.append(True)
            continue
        rest = notes[i + 1].onset - (n.onset + n.duration) >= 0.5
        long = long_notes and n.duration >= max(2.0, LONG_NOTE * typical)
        ends.append(rest or long)
    return ends


# ----------------------------------------------------------------------------- from scores and files


def melody_from_score(score: Score, fermatas: Sequence[int] = ()) -> Melody:
    """The melody of a piece: its highest part (by mean pitch), the top note of each onset.

    ``fermatas`` are indexes of melody notes that carry one (from ABC text); a score read by music21
    may also list fermata onsets in its metadata. Both end phrases, as do rests, the last note and,
    when no fermata is marked, long notes.
    """
    if not score.notes:
        _check_count(0)
    by_part: dict[int, list[Note]] = {}
    for n in score.notes:
        by_part.setdefault(n.part, []).append(n)
    top = max(by_part.values(), key=lambda ns: statistics.fmean(n.pitch for n in ns))
    highest: dict[int, Note] = {}
    for n in top:
        tick = quarters_to_ticks(n.start)
        if tick not in highest or n.pitch > highest[tick].pitch:
            highest[tick] = n
    line = [highest[t] for t in sorted(highest)]
    _check_count(len(line))
    notes = [(n.start, n.end - n.start, n.pitch) for n in line]
    marked = {quarters_to_ticks(float(x)) for x in score.metadata.get("fermatas", "").split()}
    flagged = [i in fermatas or quarters_to_ticks(n.start) in marked for i, n in enumerate(line)]
    automatic = _phrase_ends([MelodyNote(o, d, p) for o, d, p in notes], not any(flagged))
    ends = [f or a for f, a in zip(flagged, automatic, strict=True)]
    key_signature = time_signature = None
    if score.midi is not None:
        timeline = Timeline.of(score.midi)
        key_signature = timeline.key_signature_at(0)
        time_signature = timeline.time_signature_at(0)
    return Melody.from_notes(
        notes,
        ends,
        tempo=score.tempo,
        time_signature=time_signature or score.time_signature,
        key_signature=key_signature,
        title=score.metadata.get("title", ""),
    )


def read_melody_file(source: bytes | Path, name: str, limits: ReadLimits) -> Melody:
    """The melody of an uploaded MIDI, MusicXML or ABC file (its top line)."""
    if isinstance(source, Path):
        size = source.stat().st_size
        if size > limits.max_bytes:
            limit = limits.max_bytes
            raise InputLimitError(f"{quoted_name(name)} is {size:,} bytes; the limit is {limit:,} bytes.")
        source = source.read_bytes()
    fermatas: list[int] = []
    if detect_format(source, name) == "abc":
        text = source.decode("utf-8", "replace")
        fermatas = abc_fermatas(text)
        source = clean_abc(text).encode()
    return melody_from_score(read_score(source, limits, name=name), fermatas)


# ----------------------------------------------------------------------------- typed text

_NOTE_NAME = re.compile(r"^([A-Ga-g]|[Rr])(#{1,2}|bb?|is|es)?([',]*)(\d{1,2})?(\.{0,2})(~?)$")
_ACCIDENTALS = {None: 0, "#": 1, "##": 2, "b": -1, "bb": -2, "is": 1, "es": -1}
_LETTERS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_VALUES = {1: 4.0, 2: 2.0, 4: 1.0, 8: 0.5, 16: 0.25, 32: 0.125}
_HEADER = re.compile(r"^\s*([A-Za-z]):")
_FIELD = re.compile(
    r"([KMLQX]):\s*([A-Ga-g][#b]?(?:\s?(?:maj|min|mix|dor|phr|lyd|loc|aeo|ion)[a-z]*|m(?![a-z]))?|\S+)"
    r"|([TC]):\s*(.*?)(?=\s+[A-Z]:|\s*\||$)"
)
"""A header field at the start of typed text: ``K:`` a key (``G``, ``Am``, ``D dorian``), the others
one word, a title or composer up to the next field or bar line."""


def parse_melody_text(text: str, limits: ReadLimits) -> Melody:
    """A melody typed in a message: note names if every word is one, else ABC."""
    text = text.strip().strip("`").strip()
    if text.lower().startswith(("abc\n", "abc ")):
        text = text[3:].strip()
    if not text:
        raise InputFileError(f"Type a melody after the command, like {EXAMPLE}.")
    words = text.split()
    if all(_NOTE_NAME.match(w) for w in words):
        return parse_note_names(words)
    return parse_abc(text, limits)


def parse_note_names(words: Sequence[str]) -> Melody:
    """Note names with LilyPond lengths (``C4 D E F G2 A G``) as a melody."""
    notes: list[list[float]] = []  # onset, duration, pitch
    onset, value, previous, tie = 0.0, 1.0, 66, False  # the first note in octave 4, C4 to B4
    for word in words:
        match = _NOTE_NAME.match(word)
        if match is None:
            raise InputFileError(f"'{word}' is not a note name; try {EXAMPLE}.")
        letter, accidental, octaves, number, dots, tied = match.groups()
        if number is not None:
            if int(number) not in _VALUES:
                raise InputFileError(
                    f"'{word}': a length is 1, 2, 4, 8, 16 or 32 (whole to 32nd note); try {EXAMPLE}."
                )
            value = _VALUES[int(number)]
        length = value * (1.75 if dots == ".." else 1.5 if dots == "." else 1.0)
        if letter in "Rr":
            onset += length
            tie = False
            continue
        pitch_class = (_LETTERS[letter.lower()] + _ACCIDENTALS[accidental]) % 12
        pitch = previous + ((pitch_class - previous + 6) % 12) - 6  # the nearest such note
        pitch += 12 * (octaves.count("'") - octaves.count(","))
        if tie and notes and notes[-1][2] == pitch:
            notes[-1][1] += length
        else:
            notes.append([onset, length, pitch])
        onset += length
        previous, tie = pitch, bool(tied)
    return Melody.from_notes(notes)


def normalize_abc(text: str) -> str:
    """ABC typed in a chat as a file music21 reads: header fields on lines of their own (a chat
    puts ``K:G |GABc|`` on one line), ``X:``, ``L:`` and ``K:`` added when missing, ``K:`` last."""
    headers: dict[str, str] = {}
    body: list[str] = []
    for line in text.replace("\r", "").split("\n"):
        rest = line.strip()
        while not body and (match := _FIELD.match(rest)) is not None:
            field, value = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
            headers.setdefault(field, value.strip())
            rest = rest[match.end() :].strip()
        if rest:
            body.append(rest)
    head = [f"X:{headers.pop('X', '1')}"]
    head += [f"{field}:{value}" for field, value in headers.items() if field != "K"]
    if "L" not in headers:
        head.append("L:1/8")
    head.append(f"K:{headers.get('K', 'C')}")
    return "\n".join([*head, *body]) + "\n"


def parse_abc(text: str, limits: ReadLimits) -> Melody:
    """An ABC melody (with or without headers) read by music21 in its sandbox."""
    normalized = normalize_abc(text)
    body = _unquoted("\n".join(line for line in normalized.split("\n") if not _HEADER.match(line)))
    strange = _NOT_ABC.search(re.sub(r"\[[A-Za-z]:[^\]]*\]", "", body))
    if strange:
        raise InputFileError(
            f"I could not read that melody: '{strange.group(0)}' is neither ABC nor a note name; "
            f"try {EXAMPLE}."
        )
    if re.search(r"\[[^\]:|]*[A-Ga-g][^\]:|]*[A-Ga-g]", _unquoted(normalized)):
        raise InputFileError(
            f"I found a chord (notes in [brackets]) where a melody was expected; try {EXAMPLE}."
        )
    fermatas = abc_fermatas(normalized)
    try:
        score = read_score(clean_abc(normalized).encode(), limits, name="melody.abc")
    except InputFileError as why:
        raise InputFileError(f"I could not read that melody ({_reason(why)}); try {EXAMPLE}.") from None
    return _single_line(melody_from_score(score, fermatas), score)


def _single_line(melody: Melody, score: Score) -> Melody:
    """Refuse typed text that held several notes at once (the melody of a file takes its top line)."""
    if len({round(n.start * 12) for n in score.notes}) < len(score.notes):
        raise InputFileError(
            f"I found a chord where a melody was expected; send one note at a time, like {EXAMPLE}."
        )
    return melody


_NOT_ABC = re.compile(r"[^A-Ga-gzxZ^_=,'0-9/|:\[\]().\-~<>{}\s\\HLMOPSTuv]+")
"""What cannot be in the notes of an ABC tune (quoted text, decorations and inline fields removed)."""


def _reason(error: InputFileError) -> str:
    """The part of a file-reading message worth showing for typed text."""
    text = str(error).rstrip(".")
    return text.split(": ", 1)[1] if ": " in text else text


def _unquoted(text: str) -> str:
    """ABC without its quoted chord symbols and annotations, comments and decorations."""
    text = re.sub(r'"[^"]*"', "", text)
    text = re.sub(r"%[^\n]*", "", text)
    return re.sub(r"![^!\n]*!", "", text)


_ABC_NOTE = re.compile(
    r"(![^!\n]*!|\bH(?=[_=^A-Ga-g])|\{[^}]*\}|\"[^\"]*\"|%[^\n]*|\[[A-Za-z]:[^\]]*\]|[_=^]*[A-Ga-g][,']*|-)"
)
"""The tokens of an ABC body that matter for counting notes: decorations, grace notes, quoted
text, comments, inline fields (all skipped), notes and ties."""


def abc_fermatas(text: str) -> list[int]:
    """Indexes (among the melody's notes, tied notes counted once) of the notes under a fermata
    (``!fermata!`` or ``H``): music21 does not keep ABC fermatas, so they are found here."""
    body = "\n".join(line for line in text.split("\n") if not _HEADER.match(line))
    found: list[int] = []
    count, pending, tied = 0, False, False
    for match in _ABC_NOTE.finditer(body):
        token = match.group(1)
        if token in ("!fermata!", "H"):
            pending = True
        elif token == "-":
            tied = True
        elif token[0] in '!{"%[':
            continue
        else:
            if not tied:
                count += 1
            if pending:
                found.append(count - 1)
            pending = tied = False
    return found


def clean_abc(text: str) -> str:
    """ABC as music21 should read a melody from it: without fermata marks (it drops a note written
    ``Hd2``) and without quoted chord symbols and annotations (it would play ``"G"`` as a chord)."""
    body = [
        line if _HEADER.match(line) else re.sub(r'!fermata!|\bH(?=[_=^A-Ga-g])|"[^"\n]*"', "", line)
        for line in text.split("\n")
    ]
    return "\n".join(body)


def _name(pitch: int) -> str:
    """Scientific pitch name, middle C being C4."""
    names = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
    return f"{names[pitch % 12]}{pitch // 12 - 1}"
