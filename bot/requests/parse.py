"""Reading a song request written as people write: ``a sad slow folk tune in D minor, 300 notes``.

The vocabulary is small and documented (README, ``!help request``), and the confirmation shows
how each word was read, so nobody has to guess:

- options as in ``!compose``: ``style=`` ``length=`` ``tempo=`` ``key=`` ``temperature=`` ``seed=``
  ``instrument=``; an option always wins over a word that says the same thing;
- a style the model knows, by name (``folk``, ``bach``); ``jazz style`` or ``style of jazz``
  names a style too, and one the model doesn't know is refused with the ones it does;
- moods: sad, melancholy, dark... give a minor key and 66 bpm; happy, bright, cheerful... a
  major key and 126 bpm; calm, gentle... 72 bpm; energetic, excited... 150 bpm;
- tempo words (slow, andante, allegro, fast...) and ``90 bpm``;
- keys: ``in D minor``, ``F# major``, ``in Bb``, ``key of E flat``; a mood sets the mode of a
  key given without one, and without any key sad means D minor and happy G major;
- lengths: ``300 notes`` (or chords), a number on its own, ``short`` (150) and ``long`` (800).

Other words are skipped and listed, so "a tune for my cat" still gets a piece.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.options import COMPOSE_OPTIONS, OptionValue, parse_options
from composer.errors import InvalidOptionError
from composer.keys import parse_key


@dataclass(frozen=True)
class Mood:
    """What a mood word asks for: a mode (``None``: either) and a tempo."""

    minor: bool | None
    tempo: float


SAD = Mood(minor=True, tempo=66)
HAPPY = Mood(minor=False, tempo=126)
CALM = Mood(minor=None, tempo=72)
ENERGETIC = Mood(minor=None, tempo=150)
MOODS = {
    **dict.fromkeys(("sad", "melancholy", "melancholic", "dark", "gloomy", "somber", "sombre"), SAD),
    **dict.fromkeys(("mournful", "tragic", "lonely", "wistful"), SAD),
    **dict.fromkeys(("happy", "bright", "cheerful", "joyful", "joyous", "merry", "sunny", "upbeat"), HAPPY),
    **dict.fromkeys(("calm", "gentle", "peaceful", "relaxed", "dreamy", "soft"), CALM),
    **dict.fromkeys(("energetic", "excited", "exciting", "driving", "wild"), ENERGETIC),
}
MOOD_KEYS = {True: "Dm", False: "G"}
"""The key a mood gives when the request names none."""
TEMPO_WORDS = {
    "grave": 40,
    "largo": 50,
    "lento": 56,
    "adagio": 66,
    "slow": 66,
    "andante": 80,
    "moderato": 100,
    "allegretto": 112,
    "lively": 132,
    "allegro": 132,
    "fast": 160,
    "quick": 160,
    "vivace": 160,
    "presto": 184,
}
LENGTH_WORDS = {"short": 150, "long": 800}
GENRES = frozenset(
    [
        "jazz",
        "blues",
        "rock",
        "pop",
        "metal",
        "techno",
        "disco",
        "funk",
        "reggae",
        "rap",
        "hiphop",
        "hip-hop",
        "country",
        "edm",
        "ambient",
        "classical",
        "baroque",
        "romantic",
        "celtic",
        "latin",
        "swing",
    ]
)
"""Style words people may try; refused by name when the model has no such style."""
_FILLER = frozenset(
    [
        "a",
        "an",
        "the",
        "in",
        "at",
        "of",
        "with",
        "and",
        "some",
        "me",
        "my",
        "please",
        "for",
        "to",
        "tune",
        "song",
        "piece",
        "music",
        "melody",
        "mood",
        "little",
        "nice",
        "something",
        "make",
        "write",
        "compose",
        "play",
        "i",
        "want",
        "would",
        "like",
    ]
)
_OPTION = re.compile(r"""(?<!\S)[A-Za-z_][\w-]*=(?:"[^"]*"|'[^']*'|\S*)""")
_NOTES = re.compile(r"\b(\d+)\s*(?:notes?|chords?|events?)\b", re.IGNORECASE)
_BPM = re.compile(r"\b(\d+(?:\.\d+)?)\s*(?:bpm|beats (?:a|per) minute)\b", re.IGNORECASE)
_ACCIDENTAL = r"(?:#|b|\s?sharp|\s?flat)"
_MODE = r"(?:major|minor|maj|min)"
_KEY_AFTER_WORD = re.compile(
    rf"\b(?:in|key of|key)\s+([A-G]{_ACCIDENTAL}?(?:\s*{_MODE}|m)?"
    rf"|[a-g]{_ACCIDENTAL}?\s*{_MODE})(?![\w#])"
)
_KEY_WITH_MODE = re.compile(rf"\b([A-Ga-g]{_ACCIDENTAL}?\s*{_MODE})\b", re.IGNORECASE)
_STYLE_PHRASE = re.compile(r"\b(?:in the style of|style of)\s+([\w-]+)|\b([\w-]+)\s+style\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z][a-z'-]*|\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Understood:
    """A request read into option values, how each part was read, and the words skipped."""

    values: dict[str, OptionValue]
    reading: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


@dataclass
class _Found:
    """What the words say, before the options are laid over them."""

    values: dict[str, OptionValue] = field(default_factory=dict)
    reading: list[str] = field(default_factory=list)
    moods: list[tuple[str, Mood]] = field(default_factory=list)
    mode_named: bool = False
    """Whether the key in the words names its mode (``D minor``) rather than a tonic alone (``in D``)."""

    def put(self, name: str, value: OptionValue, words: str, meaning: str) -> None:
        if name in self.values and self.values[name] != value:
            raise InvalidOptionError(f"'{words}' asks for another {name} than you gave before; say it once.")
        self.values[name] = value
        self.reading.append(f"“{words.strip()}”: {meaning}")


def parse_request(text: str, styles: Sequence[str]) -> Understood:
    """Read a request; raises :class:`InvalidOptionError` with a message for the member.

    ``styles`` are the model's styles; a style is returned spelt as the model spells it.
    """
    text = text.replace("♯", "#").replace("♭", "b")
    options = parse_options(" ".join(_OPTION.findall(text)), allowed=COMPOSE_OPTIONS)
    if "style" in options:
        options["style"] = _known_style(str(options["style"]), styles)
    found = _Found()
    free = _OPTION.sub(" ", text)
    free = _take_numbers(free, found)
    free = _take_key(free, found)
    free = _take_styles(free, styles, found)
    skipped = _take_words(free, styles, found)
    return Understood(_combine(found, options), tuple(found.reading), tuple(skipped))


def _take_numbers(free: str, found: _Found) -> str:
    for match in _NOTES.finditer(free):
        found.put("length", int(match[1]), match[0], f"{int(match[1])} notes and chords")
    for match in _BPM.finditer(free):
        found.put("tempo", float(match[1]), match[0], f"{float(match[1]):g} bpm")
    return _BPM.sub(" ", _NOTES.sub(" ", free))


def _take_key(free: str, found: _Found) -> str:
    for pattern in (_KEY_AFTER_WORD, _KEY_WITH_MODE):
        for match in pattern.finditer(free):
            key = parse_key(match[1])
            mode_named = re.search(rf"{_MODE}|m$", match[1], re.IGNORECASE) is not None
            found.put("key", str(key), match[0], f"key {_spoken(str(key)) if mode_named else key}")
            found.mode_named = found.mode_named or mode_named
        free = pattern.sub(" ", free)
    return free


def _take_styles(free: str, styles: Sequence[str], found: _Found) -> str:
    for match in _STYLE_PHRASE.finditer(free):
        style = _known_style(match[1] or match[2], styles)
        found.put("style", style, match[0], f"style {style}")
    free = _STYLE_PHRASE.sub(" ", free)
    for style in styles:
        pattern = re.compile(rf"(?<![\w-]){re.escape(style)}(?![\w-])", re.IGNORECASE)
        for match in pattern.finditer(free):
            found.put("style", style, match[0], f"style {style}")
        free = pattern.sub(" ", free)
    return free


def _take_words(free: str, styles: Sequence[str], found: _Found) -> list[str]:
    skipped = []
    for word in _WORD.findall(free.lower()):
        if word in GENRES:
            _known_style(word, styles)
        elif word in MOODS:
            found.moods.append((word, MOODS[word]))
        elif word in TEMPO_WORDS:
            found.put("tempo", float(TEMPO_WORDS[word]), word, f"{TEMPO_WORDS[word]} bpm")
        elif word in LENGTH_WORDS:
            found.put("length", LENGTH_WORDS[word], word, f"{LENGTH_WORDS[word]} notes and chords")
        elif word.isdigit():
            found.put("length", int(word), word, f"{word} notes and chords")
        elif word not in _FILLER:
            skipped.append(word)
    modes = {mood.minor: word for word, mood in found.moods if mood.minor is not None}
    if len(modes) > 1:
        raise InvalidOptionError(f"'{modes[True]}' and '{modes[False]}' pull different ways; choose one.")
    return skipped


def _combine(found: _Found, options: dict[str, OptionValue]) -> dict[str, OptionValue]:
    """The words' values, the mood filling in what nothing more precise said, the options on top."""
    values = dict(found.values)
    if found.moods:
        word, mood = next(((w, m) for w, m in found.moods if m.minor is not None), found.moods[0])
        effects = []
        if "tempo" not in values and "tempo" not in options:
            values["tempo"] = float(mood.tempo)
            effects.append(f"{mood.tempo} bpm")
        if mood.minor is not None and "key" not in options and not found.mode_named:
            tonic = str(values.get("key", MOOD_KEYS[mood.minor])).rstrip("m")
            values["key"] = tonic + ("m" if mood.minor else "")
            effects.append(f"key {_spoken(str(values['key']))}")
        found.reading.append(f"“{word}”: {' and '.join(effects) or 'nothing to add'}")
    return values | options


def _spoken(key: str) -> str:
    """``Dm`` -> ``D minor``, ``F#`` -> ``F# major``."""
    return f"{key[:-1]} minor" if key.endswith("m") else f"{key} major"


def _known_style(name: str, styles: Sequence[str]) -> str:
    """``name`` as the model spells it, or a message that lists the styles it knows."""
    for style in styles:
        if style.lower() == name.lower():
            return style
    raise InvalidOptionError(f"This model knows the styles {', '.join(styles)}, not '{name}'.")
