"""``harmonize`` (``!harmonize K:G |GABc dedB|``, ``/harmonize``) and the button for another harmonization.

The melody is the text after the command, or a MIDI, MusicXML or ABC file attached or in the
message replied to (its top line). Every path ends in :func:`bot.pieces.run_job`, like ``compose``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import check_size, download, pick_music, replied_message, shown_name
from bot.buttons import HARMONY_COG, PieceButton
from bot.cogs.compose import style_choices
from bot.failures import Refusal, explain
from bot.options import HARMONY_OPTIONS, HarmonizeOptions, build_harmony_request, parse_options
from bot.pieces import Job, run_job, upload_limit

if TYPE_CHECKING:
    from bot.app import CadenzaBot


class Harmonize(commands.Cog, name=HARMONY_COG):
    """Write voices under a melody."""

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot

    @commands.hybrid_command(name="harmonize", description="Harmonize a melody as a chorale")
    @app_commands.describe(file="A MIDI, MusicXML or ABC file whose top line is the melody")
    @app_commands.autocomplete(style=style_choices)
    async def harmonize(
        self,
        ctx: commands.Context[CadenzaBot],
        file: discord.Attachment | None = None,
        *,
        options: HarmonizeOptions,
    ) -> None:
        """Harmonize a melody: `!harmonize C4 D E F G2 A G`, `!harmonize K:G |GABc dedB| voices=3`,
        or a file attached (or replied to) with `!harmonize`."""
        attachment = file
        source = None
        if ctx.interaction is None and options.melody is None:
            attachment, source = pick_music(ctx.message.attachments), ctx.message
            if attachment is None:
                source = await replied_message(ctx.message)
                attachment = pick_music(source.attachments) if source is not None else None
        if options.melody is None and attachment is None:
            p = self.bot.settings.prefix
            raise Refusal(
                f"Send a melody to harmonize, like `{p}harmonize C4 D E F G2 A G` or "
                f"`{p}harmonize K:G |GABc dedB|c2 A2 G4|]`, or attach a MIDI, MusicXML or ABC file."
            )
        limit = self.bot.settings.max_attachment_bytes
        if options.melody is None:
            check_size(attachment, limit)
        await ctx.typing()
        request = build_harmony_request(
            dict(options),
            melody=options.melody,
            primer=await download(attachment, limit) if options.melody is None else None,
            primer_name=shown_name(attachment) if options.melody is None else "",
        )
        job = Job(request, ctx.author, ctx.channel, upload_limit(ctx.guild, ctx.interaction))
        await run_job(self.bot, job, post=ctx.reply)

    async def press(self, interaction: discord.Interaction[CadenzaBot], button: PieceButton) -> None:
        """Harmonize again the melody of the piece the button is under: its top track, a new seed."""
        try:
            self.bot.check_channel(interaction.channel)
            attachment = pick_music(interaction.message.attachments)
            if attachment is None:
                raise Refusal("That message has no music file left to harmonize.")
            await interaction.response.defer(thinking=True)
            request = build_harmony_request(
                parse_options(button.options, allowed=HARMONY_OPTIONS),
                primer=await download(attachment, self.bot.settings.max_attachment_bytes),
                primer_name=shown_name(attachment),
            )
            job = Job(request, interaction.user, interaction.channel, upload_limit(None, interaction))
            await run_job(self.bot, job, post=lambda text: interaction.followup.send(text, wait=True))
        except Exception as error:
            text = explain(
                error, what="the Harmonize again button", user=interaction.user, channel=interaction.channel
            )
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)


async def setup(bot: CadenzaBot) -> None:
    """Add the cog (called by ``bot.load_extension``)."""
    await bot.add_cog(Harmonize(bot))
