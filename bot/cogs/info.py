"""``help`` (what the bot does, with examples to copy) and ``status`` (model, queue, uptime, version)."""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from redis.exceptions import RedisError

from bot import __version__
from bot.options import COMPOSE_LENGTH
from bot.requests.embeds import request_help_embed
from composer.remote import RemoteComposer

if TYPE_CHECKING:
    from bot.app import CadenzaBot

log = logging.getLogger(__name__)

STATUS_LINES = 15
"""Most shards or workers listed one by one in ``status`` (an embed field holds 1024 characters)."""


class Info(commands.Cog):
    """Help and status."""

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot

    @commands.hybrid_command(name="help", description="How to ask for music, with examples")
    @app_commands.describe(topic="request: how song requests are written and served")
    async def show_help(self, ctx: commands.Context[CadenzaBot], topic: str | None = None) -> None:
        """Show how to use the bot, with examples to copy; `!help request` for song requests."""
        if topic is not None and topic.strip().lower() in ("request", "requests", "queue"):
            settings = self.bot.settings
            styles = self.bot.composer.load().vocabulary.styles
            await ctx.reply(embed=request_help_embed(settings.prefix, styles, settings.max_length))
        else:
            await ctx.reply(embed=self.help_embed())

    @commands.hybrid_command(name="status", description="The model, the queue, uptime and version")
    async def show_status(self, ctx: commands.Context[CadenzaBot]) -> None:
        """Show what the bot is running and how busy it is, with its workers and shards when it has them."""
        embed = self.status_embed()
        if isinstance(self.bot.composer, RemoteComposer):
            embed.add_field(name="Workers", value=await workers_text(self.bot.composer), inline=False)
        if isinstance(self.bot, commands.AutoShardedBot):
            embed.add_field(name="Shards", value=shards_text(self.bot), inline=False)
        await ctx.reply(embed=embed)

    def help_embed(self) -> discord.Embed:
        """The help text, with this bot's prefix, styles and limits filled in."""
        settings = self.bot.settings
        p = settings.prefix
        styles = ", ".join(self.bot.composer.load().vocabulary.styles)
        embed = discord.Embed(
            title="🎼 Cadenza composes music",
            description=(
                "I write new pieces with a neural network and continue yours. Every piece comes with its "
                "MIDI file, audio you can play right here, a piano-roll picture and buttons for more."
            ),
            colour=discord.Colour.blurple(),
        )
        embed.add_field(
            name="Compose",
            value=(
                f"`{p}compose`: a piece of {min(COMPOSE_LENGTH, settings.max_length)} notes and chords\n"
                f"`{p}compose 300`: a shorter one\n"
                f"`{p}compose 300 tempo=90 key=Am temperature=0.9 seed=7 style=folk instrument=violin`"
            ),
            inline=False,
        )
        embed.add_field(
            name="Continue your music",
            value=(
                f"`{p}continue` with a MIDI file attached, or in a reply to a message that has one "
                f"(yours or one of my pieces). Same options, except key: `{p}continue 200 temperature=0.8`"
            ),
            inline=False,
        )
        embed.add_field(
            name="Harmonize a melody",
            value=(
                f"`{p}harmonize C4 D E F G2 A G` (note names, lengths 4 a quarter, 2 a half) or "
                f"`{p}harmonize K:G |GABc dedB|c2 A2 G4|]` (ABC), or a MIDI, MusicXML or ABC file attached: "
                "your melody on top, unchanged, and the other voices under it. "
                f"Options: **voices** 2-4, and tempo, temperature, seed, style, instrument, transpose"
            ),
            inline=False,
        )
        embed.add_field(
            name="Options",
            value=(
                "**tempo** 20-300 beats a minute · **key** C, Am, F#m, Bb... · "
                "**temperature** 0.05-3, lower is safer, higher wilder · "
                "**seed** a number: the same seed and options give the same piece · "
                f"**style** {styles} · **instrument** a name like violin, or 0-127 · "
                "**transpose** -24 to 24 semitones"
            ),
            inline=False,
        )
        embed.add_field(
            name="Buttons under each piece",
            value=(
                "**Again**: a new piece with the same settings · **Continue**: carry on from its end · "
                "**Variation**: continue the same original piece again, differently · "
                "**Harmonize again**: the same melody, new voices"
            ),
            inline=False,
        )
        embed.add_field(
            name="Song requests",
            value=(
                f"`{p}request a sad slow folk tune in D minor, 300 notes`: a song that waits its turn in "
                f"this server's queue and is posted here when done. `{p}queue`, `{p}vote 12`, "
                f"`{p}history`; `{p}help request` tells all."
            ),
            inline=False,
        )
        embed.add_field(
            name="Limits",
            value=(
                f"Up to {settings.max_length} notes and chords a piece, one piece at a time each, "
                f"{settings.cooldown_seconds:g} s between pieces, files up to "
                f"{settings.max_attachment_bytes / 1000:.0f} KB."
            ),
            inline=False,
        )
        embed.set_footer(
            text="Slash commands work too: /compose, /continue, /request, /queue, /help, /status"
        )
        return embed

    def status_embed(self) -> discord.Embed:
        """The model, the queue, how long the bot has been up and its version."""
        model = self.bot.composer.load()
        jobs = self.bot.jobs
        embed = discord.Embed(title="🎼 Cadenza status", colour=discord.Colour.blurple())
        embed.add_field(
            name="Model",
            value=f"{self.bot.composer.settings.model.name}\n{', '.join(model.vocabulary.styles)}",
        )
        embed.add_field(
            name="Queue", value=f"{jobs.running} of {jobs.max_running} composing\n{jobs.waiting} waiting"
        )
        embed.add_field(name="Up since", value=discord.utils.format_dt(self.bot.started, "R"))
        embed.add_field(name="Version", value=__version__)
        return embed


async def workers_text(composer: RemoteComposer) -> str:
    """The composition workers alive and the jobs in their Redis queue, or why they can't be seen."""
    try:
        health = await composer.health()
    except (RedisError, OSError) as error:
        log.warning("status: the job queue is unreachable: %s", error)
        return "⚠️ The job queue (Redis) is unreachable; pieces can't be composed now."
    if not health.workers:
        return f"⚠️ No worker is running; {health.jobs} pieces wait for one (`python -m composer.worker`)."
    lines = [f"{len(health.workers)} online · {health.running} composing · {health.waiting} waiting"]
    for worker in health.workers[:STATUS_LINES]:
        done = f"{worker.ongoing} composing, {worker.complete} done, {worker.failed} failed"
        lines.append(f"`{worker.name}` {done}")
    if len(health.workers) > STATUS_LINES:
        lines.append(f"… and {len(health.workers) - STATUS_LINES} more")
    return "\n".join(lines)


def shards_text(bot: commands.AutoShardedBot) -> str:
    """The shards this process runs, each with its latency and servers, out of all the bot's shards."""
    servers = Counter(guild.shard_id for guild in bot.guilds)
    shards = sorted(bot.shards.items())
    lines = [f"{len(shards)} connected here, of {bot.shard_count or 'not yet known'} in all"]
    for shard_id, shard in shards[:STATUS_LINES]:
        latency = "closed" if shard.is_closed() else "connecting"
        if not shard.is_closed() and math.isfinite(shard.latency):
            latency = f"{shard.latency * 1000:.0f} ms"
        lines.append(f"#{shard_id}: {latency}, {servers[shard_id]} servers")
    if len(shards) > STATUS_LINES:
        lines.append(f"… and {len(shards) - STATUS_LINES} more")
    return "\n".join(lines)


async def setup(bot: CadenzaBot) -> None:
    """Add the cog (called by ``bot.load_extension``)."""
    await bot.add_cog(Info(bot))
