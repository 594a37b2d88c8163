"""The errors a user can cause, as one family with friendly messages.

Callers (the CLI, the bot) catch :class:`ComposerError` in one place and show ``str(error)``:
every message is a single sentence meant for the person who typed the command.
"""

from __future__ import annotations


class ComposerError(Exception):
    """Base of every error a user can cause; ``str()`` is a friendly one-line message."""


class InvalidOptionError(ComposerError):
    """An option value out of range or of the wrong kind (``length=-5``, ``tempo=9000``)."""


class InputFileError(ComposerError):
    """An input piece that cannot be read: not MIDI, truncated, empty, drum-only."""


class InputLimitError(InputFileError):
    """An input piece that breaks a safety limit (size, notes, length, parse time or memory)."""


class ModelError(ComposerError):
    """A model artifact that is missing, damaged or made for another format version."""
