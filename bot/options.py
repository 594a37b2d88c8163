"""What people can ask for (``!compose 300 tempo=90 key=Am``, ``/compose``) and how it becomes a request.

The values themselves are checked by :class:`~composer.service.ComposeRequest`, whose
:class:`~composer.errors.InvalidOptionError` messages are already written for users; this module
only reads text into typed values, refuses names it does not know, and writes a request back as
the same text, for the "make it again" line and for the state the buttons carry.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Collection, Mapping
from typing import Self

from discord.ext import commands

from composer.errors import InvalidOptionError
from composer.generation.sampling import DEFAULT_TEMPERATURE
from composer.harmonize import HARMONY_TEMPERATURE
from composer.keys import parse_key
from composer.service import MAX_LENGTH, SEED_LIMIT, ComposeRequest

COMPOSE_LENGTH = 500
"""Notes in a new piece when no length is given."""
CONTINUE_LENGTH = 200
"""New notes added to a piece when no length is given."""

OPTION_TYPES: dict[str, type] = {
    "length": int,
    "tempo": float,
    "key": str,
    "temperature": float,
    "seed": int,
    "style": str,
    "instrument": str,
    "transpose": int,
    "voices": int,
}
EXAMPLES = {
    "length": "300",
    "tempo": "90",
    "key": "Am",
    "temperature": "0.9",
    "seed": "7",
    "style": "folk",
    "instrument": "violin",
    "transpose": "-2",
    "voices": "3",
}
COMPOSE_OPTIONS = tuple(name for name in OPTION_TYPES if name != "voices")
"""What a new piece, a continuation or a song request may be asked for."""
HARMONY_OPTIONS = ("voices", "tempo", "temperature", "seed", "style", "instrument", "transpose")
"""What a harmonization may be asked for: no length (the melody's) and no key (the melody's)."""
_KINDS = {int: "a whole number", float: "a number"}
_NEEDS_QUOTES = re.compile(r"[\s'\"]")
_ECHO_LIMIT = 40
_TEXT_LIMIT = 50
"""Longest text a slash command option takes (instrument and style names are short)."""

OptionValue = int | float | str


def _echo(text: str) -> str:
    """User text shown back in a message, cut short so a message can't be flooded."""
    return text if len(text) <= _ECHO_LIMIT else text[: _ECHO_LIMIT - 1] + "…"


def parse_options(text: str, allowed: Collection[str] = COMPOSE_OPTIONS) -> dict[str, OptionValue]:
    """``300 tempo=90 key=Am`` -> ``{"length": 300, "tempo": 90.0, "key": "Am"}``.

    A bare first word is the length. Raises :class:`InvalidOptionError` with a message for the
    user for unknown names, repeated names and values of the wrong kind.
    """
    try:
        words = shlex.split(text)
    except ValueError:
        raise InvalidOptionError("A quote is not closed; write options like tempo=90 key=Am.") from None
    values: dict[str, OptionValue] = {}
    for position, word in enumerate(words):
        name, equals, raw = word.partition("=")
        if not equals:
            if position > 0:
                raise InvalidOptionError(
                    f"I don't understand '{_echo(word)}': options look like tempo=90 or key=Am."
                )
            name, raw = "length", word
        name = name.strip().lower().replace("-", "_")
        if name not in allowed:
            raise InvalidOptionError(
                f"There is no option '{_echo(name)}' here; you can use {', '.join(sorted(allowed))}."
            )
        if name in values:
            raise InvalidOptionError(f"You gave {name} twice; give each option once.")
        values[name] = _convert(name, raw.strip())
    return values


def _convert(name: str, raw: str) -> OptionValue:
    """One option value as its type, or a message that says what was expected."""
    kind = OPTION_TYPES[name]
    if kind is str:
        if not raw:
            raise InvalidOptionError(f"{name} needs a value, like {name}={EXAMPLES[name]}.")
        return raw
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or (kind is float and not math.isfinite(value)):
        example = EXAMPLES[name] if name != "length" else f"!compose {EXAMPLES[name]}"
        raise InvalidOptionError(f"{name} must be {_KINDS[kind]}, like {example}, not '{_echo(raw)}'.")
    return value


def format_options(values: Mapping[str, object]) -> str:
    """The text :func:`parse_options` reads back into ``values`` (the length first, bare)."""
    words = []
    for name, value in values.items():
        if value is None:
            continue
        text = f"{value:g}" if isinstance(value, float) else str(value)
        if _NEEDS_QUOTES.search(text):
            text = shlex.quote(text)
        words.append(text if name == "length" else f"{name}={text}")
    return " ".join(words)


def build_request(
    values: Mapping[str, object],
    *,
    default_length: int,
    max_length: int,
    primer: bytes | None = None,
    primer_name: str = "",
) -> ComposeRequest:
    """A checked request from typed option values, within the bot's own length cap."""
    options = {name: value for name, value in values.items() if value is not None}
    length = options.pop("length", min(default_length, max_length))
    if isinstance(length, int) and not 1 <= length <= max_length:
        raise InvalidOptionError(
            f"This bot composes 1 to {max_length} notes and chords at a time, not {length}."
        )
    return ComposeRequest(length=length, primer=primer, primer_name=primer_name, **options)


def build_harmony_request(
    values: Mapping[str, object],
    *,
    melody: str | None = None,
    primer: bytes | None = None,
    primer_name: str = "",
) -> ComposeRequest:
    """A checked harmonization request: the melody typed, or in a file."""
    options = {name: value for name, value in values.items() if value is not None and name in HARMONY_OPTIONS}
    options.setdefault("temperature", HARMONY_TEMPERATURE)
    return ComposeRequest(melody=melody, primer=primer, primer_name=primer_name, harmonize=True, **options)


def request_options(request: ComposeRequest) -> dict[str, OptionValue]:
    """The options that make ``request`` again (defaults left out, the key spelled short); a
    harmonization's without a length, its own default temperature left out too."""
    defaults = ComposeRequest(temperature=HARMONY_TEMPERATURE) if request.harmonizing else ComposeRequest()
    values: dict[str, OptionValue] = {} if request.harmonizing else {"length": request.length}
    for name in HARMONY_OPTIONS if request.harmonizing else OPTION_TYPES:
        if name == "voices" and not request.harmonizing:
            continue
        value = getattr(request, name)
        if name != "length" and value is not None and value != getattr(defaults, name):
            values[name] = str(parse_key(value)) if name == "key" else value
    return values


class ContinueOptions(commands.FlagConverter):
    """The options of ``continue``: typed, described parameters for ``/continue``, text for ``!continue``."""

    length: commands.Range[int, 1, MAX_LENGTH] = commands.flag(
        default=None, description="How many notes and chords"
    )
    tempo: float = commands.flag(
        default=None, description="Beats a minute, 20-300 (default: the piece's own)"
    )
    temperature: float = commands.flag(
        default=None,
        description=f"Lower is safer, higher wilder: 0.05-3 (default {DEFAULT_TEMPERATURE:g} "
        "or the model's own for the style)",
    )
    seed: commands.Range[int, 0, SEED_LIMIT - 1] = commands.flag(
        default=None, description="The same seed and options make the same music again"
    )
    style: commands.Range[str, 1, _TEXT_LIMIT] = commands.flag(
        default=None, description="One of the styles the model learned"
    )
    instrument: commands.Range[str, 1, _TEXT_LIMIT] = commands.flag(
        default=None, description="A General MIDI name such as violin, or 0-127"
    )
    transpose: int = commands.flag(default=None, description="Shift the new music by semitones, -24 to 24")

    @classmethod
    async def convert(cls, ctx: commands.Context, argument: str) -> Self:
        """Read the text of a prefix command with :func:`parse_options` and its friendly errors."""
        values = parse_options(argument, allowed=cls.get_flags())
        options = cls.__new__(cls)
        for name in cls.get_flags():
            setattr(options, name, values.get(name))
        return options


class ComposeOptions(ContinueOptions):
    """The options of ``compose``: those of ``continue`` and the key (a continuation keeps its own)."""

    key: commands.Range[str, 1, _TEXT_LIMIT] = commands.flag(
        default=None, description="The key to compose in, such as C, Am or F#m"
    )


class HarmonizeOptions(commands.FlagConverter):
    """The melody and options of ``harmonize``: typed parameters for ``/harmonize``; for
    ``!harmonize`` the text, whose trailing ``name=value`` words are options and the rest the melody."""

    melody: commands.Range[str, 1, 4000] = commands.flag(
        default=None, description="ABC (K:G |GABc dedB|) or note names (C4 D E F G2 A G)"
    )
    voices: commands.Range[int, 2, 4] = commands.flag(
        default=None, description="Parts in all, the melody included: 2-4, default 4"
    )
    tempo: float = commands.flag(default=None, description="Beats a minute, 20-300 (default: the melody's)")
    temperature: float = commands.flag(
        default=None, description=f"Lower is safer, higher wilder: 0.05-3, default {HARMONY_TEMPERATURE:g}"
    )
    seed: commands.Range[int, 0, SEED_LIMIT - 1] = commands.flag(
        default=None, description="The same seed and options make the same harmonization again"
    )
    style: commands.Range[str, 1, _TEXT_LIMIT] = commands.flag(
        default=None, description="One of the styles the model learned"
    )
    instrument: commands.Range[str, 1, _TEXT_LIMIT] = commands.flag(
        default=None, description="A General MIDI name such as violin, or 0-127"
    )
    transpose: int = commands.flag(default=None, description="Shift the whole piece by semitones, -24 to 24")

    @classmethod
    async def convert(cls, ctx: commands.Context, argument: str) -> Self:
        """Split the text of a prefix command into the melody and the options after it."""
        words = argument.split()
        cut = len(words)
        while cut and words[cut - 1].partition("=")[0].lower().replace("-", "_") in OPTION_TYPES:
            cut -= 1  # options after the melody (an ABC natural, "=F", has no name before the "=")
        values = parse_options(" ".join(words[cut:]), allowed=HARMONY_OPTIONS)
        options = cls.__new__(cls)
        for name in cls.get_flags():
            setattr(options, name, values.get(name))
        melody = argument.strip()
        for word in reversed(words[cut:]):  # the melody keeps its own line breaks
            melody = melody[: melody.rfind(word)].rstrip()
        options.melody = melody or None
        return options
