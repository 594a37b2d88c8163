"""What a person reads when something goes wrong, for commands and buttons alike.

Errors people cause (a bad option, a file that isn't music, a cooldown) become one friendly line.
Anything else is logged with its context under a short error id, and the person gets an apology
with that id, so a report in the channel can be matched with the log.
"""

from __future__ import annotations

import logging
import math
import secrets

import discord
from discord import app_commands
from discord.ext import commands

from composer.errors import ComposerError

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 1000
"""Longest reply: messages may quote what people typed, and Discord refuses messages over 2000."""


class Refusal(commands.CommandError):
    """A request the bot turns down (a second job, a full line, a file too big); ``str()`` says why."""


class WrongChannel(commands.CheckFailure):
    """A command in a channel the bot does not answer in; ``str()`` says where it does."""


def unwrap(error: BaseException) -> BaseException:
    """The error a command raised, out of the wrappers discord.py puts around it."""
    while True:
        inner = getattr(error, "original", None)
        if isinstance(error, app_commands.TransformerError) and isinstance(error.__cause__, Exception):
            inner = error.__cause__
        if not isinstance(inner, BaseException):
            return error
        error = inner


def friendly_message(error: BaseException) -> str | None:
    """The message for an error a user caused, or ``None`` for one that is the bot's fault."""
    if isinstance(error, ComposerError | Refusal | WrongChannel):
        return str(error)
    if isinstance(error, commands.CommandOnCooldown):
        return f"Easy there: you can ask for another piece in {math.ceil(error.retry_after)} s."
    if isinstance(error, commands.MissingRequiredArgument):
        return f"Something is missing: {error.param.name}. Type `/help` for examples."
    if isinstance(error, commands.UserInputError | app_commands.TransformerError):
        return f"I couldn't read that: {error} Type `/help` for examples."
    return None


def explain(
    error: BaseException,
    *,
    what: str,
    user: discord.abc.User,
    channel: discord.abc.Messageable | None,
) -> str:
    """The reply for ``error``; an unexpected one is logged with its context and gets an error id."""
    error = unwrap(error)
    message = friendly_message(error)
    if message is not None:
        log.info("%s for %s (%s): %s", what, user, user.id, message)
        return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"
    error_id = secrets.token_hex(4)
    guild = getattr(channel, "guild", None)
    log.error(
        "error %s in %s for %s (%s) in %s, channel %s",
        error_id,
        what,
        user,
        user.id,
        f"guild {guild} ({guild.id})" if guild else "direct messages",
        getattr(channel, "id", None),
        exc_info=(type(error), error, error.__traceback__),
    )
    return f"Sorry, something went wrong on my side (error id `{error_id}`). It is logged; please try again."
