"""``compose`` and ``continue`` (``!compose 300 tempo=90``, ``/compose``), and the buttons under each piece.

Every path ends in :func:`bot.pieces.run_job`; this cog only works out what to compose, from
the options and the piece to continue, and acknowledges the request at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import check_size, download, pick_music, replied_message, shown_name
from bot.buttons import COG, PieceButton
from bot.failures import Refusal, explain
from bot.options import (
    COMPOSE_LENGTH,
    CONTINUE_LENGTH,
    ComposeOptions,
    ContinueOptions,
    build_request,
    parse_options,
)
from bot.pieces import Job, run_job, upload_limit
from composer.keys import NAMES

if TYPE_CHECKING:
    from bot.app import CadenzaBot

KEYS = tuple(name + mode for mode in ("", "m") for name in NAMES)
_MAX_CHOICES = 25


async def style_choices(
    interaction: discord.Interaction[CadenzaBot], current: str
) -> list[app_commands.Choice[str]]:
    """The styles the model knows that start with what was typed."""
    styles = interaction.client.composer.load().vocabulary.styles
    found = [style for style in styles if style.lower().startswith(current.lower())]
    return [app_commands.Choice(name=style, value=style) for style in found[:_MAX_CHOICES]]


async def key_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Key names (C, Am, F#m, ...) that start with what was typed."""
    found = [key for key in KEYS if key.lower().startswith(current.strip().lower())]
    return [app_commands.Choice(name=key, value=key) for key in found[:_MAX_CHOICES]]


class Compose(commands.Cog, name=COG):
    """Compose new pieces and continue yours."""

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot

    @commands.hybrid_command(name="compose", description="Compose a new piece of music")
    @app_commands.autocomplete(style=style_choices, key=key_choices)
    async def compose(self, ctx: commands.Context[CadenzaBot], *, options: ComposeOptions) -> None:
        """Compose a new piece: `!compose`, `!compose 300`, `!compose 300 tempo=90 key=Am seed=7`."""
        request = build_request(
            dict(options), default_length=COMPOSE_LENGTH, max_length=self.bot.settings.max_length
        )
        await ctx.typing()
        job = Job(request, ctx.author, ctx.channel, upload_limit(ctx.guild, ctx.interaction))
        await run_job(self.bot, job, post=ctx.reply)

    @commands.hybrid_command(name="continue", description="Continue a MIDI file with new music")
    @app_commands.describe(file="The MIDI file to continue")
    @app_commands.autocomplete(style=style_choices)
    async def continue_(
        self,
        ctx: commands.Context[CadenzaBot],
        file: discord.Attachment | None = None,
        *,
        options: ContinueOptions,
    ) -> None:
        """Continue a piece: `!continue` with a MIDI attached, or in a reply to a message that has one."""
        if ctx.interaction is None:
            # Of several files (one of the bot's own pieces has three), take the music file.
            attachment, source = pick_music(ctx.message.attachments), ctx.message
            if attachment is None:
                source = await replied_message(ctx.message)
                attachment = pick_music(source.attachments) if source is not None else None
        else:
            attachment, source = file, None  # a slash command's upload belongs to no message
        if attachment is None:
            raise Refusal(
                f"Attach a MIDI file to `{self.bot.settings.prefix}continue`, or send it as a reply to a "
                "message that has one (yours or one of my pieces)."
            )
        limit = self.bot.settings.max_attachment_bytes
        check_size(attachment, limit)
        await ctx.typing()
        request = build_request(
            dict(options),
            default_length=CONTINUE_LENGTH,
            max_length=self.bot.settings.max_length,
            primer=await download(attachment, limit),
            primer_name=shown_name(attachment),
        )
        job = Job(
            request,
            ctx.author,
            ctx.channel,
            upload_limit(ctx.guild, ctx.interaction),
            source.id if source else None,
        )
        await run_job(self.bot, job, post=ctx.reply)

    async def press(self, interaction: discord.Interaction[CadenzaBot], button: PieceButton) -> None:
        """Make the piece a button under an earlier piece asks for; answer privately what goes wrong."""
        try:
            self.bot.check_channel(interaction.channel)
            values = parse_options(button.options)
            attachment, source_id = await self._button_source(interaction, button)
            await interaction.response.defer(thinking=True)
            limit = self.bot.settings.max_attachment_bytes
            request = build_request(
                values,
                default_length=COMPOSE_LENGTH if attachment is None else CONTINUE_LENGTH,
                max_length=self.bot.settings.max_length,
                primer=await download(attachment, limit) if attachment is not None else None,
                primer_name=shown_name(attachment) if attachment is not None else "",
            )
            job = Job(
                request, interaction.user, interaction.channel, upload_limit(None, interaction), source_id
            )
            await run_job(self.bot, job, post=lambda text: interaction.followup.send(text, wait=True))
        except Exception as error:
            text = explain(
                error, what=f"the {button.action} button", user=interaction.user, channel=interaction.channel
            )
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)

    async def _button_source(
        self, interaction: discord.Interaction, button: PieceButton
    ) -> tuple[discord.Attachment | None, int | None]:
        """The file a button continues, and the message it is on (``None`` for Again)."""
        if button.action == "again":
            return None, None
        if button.action == "continue":
            message = interaction.message
        else:
            try:
                message = await interaction.channel.fetch_message(button.source_id)
            except discord.NotFound:
                raise Refusal("The piece this variation started from was deleted.") from None
        attachment = pick_music(message.attachments)
        if attachment is None:
            raise Refusal("That message has no music file left to continue.")
        return attachment, message.id


async def setup(bot: CadenzaBot) -> None:
    """Add the cog (called by ``bot.load_extension``)."""
    await bot.add_cog(Compose(bot))
