"""The one place command errors are answered: friendly lines for what users cause, an id for the rest.

Button presses answer their own errors through the same :func:`bot.failures.explain`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord.ext import commands

from bot.failures import WrongChannel, explain

if TYPE_CHECKING:
    from bot.app import CadenzaBot

log = logging.getLogger(__name__)


class Errors(commands.Cog):
    """Answers every failed command, so the person knows what happened and the bot keeps running."""

    @commands.Cog.listener()
    async def on_command_error(self, ctx: commands.Context[CadenzaBot], error: commands.CommandError) -> None:
        """Reply with what went wrong; unknown commands and prefix commands in other channels get no reply."""
        if isinstance(error, commands.CommandNotFound | WrongChannel) and ctx.interaction is None:
            log.debug("ignored %r from %s: %s", ctx.message.content[:100], ctx.author, error)
            return
        what = f"command {ctx.command.qualified_name if ctx.command else '?'}"
        if ctx.interaction is None:
            what += f" {ctx.message.content[:200]!r}"
        await ctx.reply(explain(error, what=what, user=ctx.author, channel=ctx.channel), ephemeral=True)


async def setup(bot: CadenzaBot) -> None:
    """Add the cog (called by ``bot.load_extension``)."""
    await bot.add_cog(Errors())
