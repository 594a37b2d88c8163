"""Argument parsing for the command lines (``python -m composer``, ``python -m training``).

Every mistake there is one line and exit status 2, argparse's own included (``compose abc``,
``--seed abc``), with a pointer to ``--help``; ``--help`` shows each option's default.
"""

from __future__ import annotations

import argparse
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line, ``error: ...; see PROG --help``, status 2.

    Sub-command parsers made with ``add_subparsers`` are of this class too.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``message`` on one line, without the usage block, and exit with status 2."""
        self.exit(2, f"error: {' '.join(message.split()).rstrip('.')}; see {self.prog} --help\n")


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, except for options without one (None, off, empty)
    and those whose help says it in words (``default: the style's``)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        default = action.default
        if default is None or default is False or (isinstance(default, list | tuple) and not default):
            return action.help
        if action.help and "default:" in action.help:
            return action.help
        return super()._get_help_string(action)
