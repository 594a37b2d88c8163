"""Song requests: ``!request``, ``!queue``, ``!vote``, ``!cancel``, ``!history``, ``!replay``.

The requests live in :class:`bot.requests.store.RequestStore`, scoped by guild in every call,
so no command sees or changes another server's queue. The worker
(:class:`bot.requests.worker.RequestWorker`) composes and posts them; this cog only reads what
members ask, answers at once, and wakes the worker.

Moderators (Manage Server, or a role in ``BOT_MODERATOR_ROLES``) pause, resume and clear the
queue, remove requests and set the server's limits.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import check_size, download, pick_music, shown_name
from bot.failures import Refusal, explain
from bot.options import COMPOSE_LENGTH, build_request
from bot.requests.button import COG, vote_view
from bot.requests.embeds import (
    PAGE_SIZE,
    confirmation_embed,
    history_embed,
    queue_embed,
    request_embed,
    song_message,
    votes_text,
)
from bot.requests.parse import parse_request
from bot.requests.store import GuildRules, SongRequest
from bot.requests.worker import compose_request
from composer.midi.checks import check_music
from composer.service import resolve_program

if TYPE_CHECKING:
    from bot.app import CadenzaBot


class Requests(commands.Cog, name=COG):
    """A queue of song requests that a whole server shares."""

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot
        self.store = bot.requests
        self.worker = bot.request_worker

    async def cog_check(self, ctx: commands.Context[CadenzaBot]) -> bool:
        """Requests belong to a server: refuse them in direct messages."""
        if ctx.guild is None:
            raise Refusal("Song requests belong to a server; ask in one of its channels.")
        return True

    # -- members ---------------------------------------------------------------------------------

    @commands.hybrid_group(
        name="request", fallback="new", invoke_without_command=True, description="Ask for a song"
    )
    @app_commands.describe(
        text="In words and options: a sad slow folk tune in D minor, 300 notes",
        file="A MIDI file to continue",
    )
    async def request(
        self, ctx: commands.Context[CadenzaBot], file: discord.Attachment | None = None, *, text: str = ""
    ) -> None:
        """File a song request: `!request a sad slow folk tune in D minor, 300 notes`."""
        styles = self.bot.composer.load().vocabulary.styles
        understood = parse_request(text, styles)
        attachment = pick_music(ctx.message.attachments) if ctx.interaction is None else file
        limit = self.bot.settings.max_attachment_bytes
        if attachment is not None:
            check_size(attachment, limit)
        primer = await download(attachment, limit) if attachment is not None else None
        primer_name = shown_name(attachment) if attachment is not None else ""
        if primer is not None:  # a broken file is refused now, not when its turn comes
            await asyncio.to_thread(check_music, primer, primer_name)
        ask = build_request(
            understood.values,
            default_length=COMPOSE_LENGTH,
            max_length=self.bot.settings.max_length,
            primer=primer,
            primer_name=primer_name,
        )
        if ask.instrument is not None:
            await asyncio.to_thread(resolve_program, ask.instrument)
        rules = await self.store.rules(ctx.guild.id)
        stored = await self.store.add(
            guild_id=ctx.guild.id,
            channel_id=ctx.channel.id,
            author_id=ctx.author.id,
            message_id=None if ctx.interaction else ctx.message.id,
            text=text,
            settings=understood.values,
            primer=primer,
            primer_name=primer_name,
            member_limit=rules.member_limit or self.bot.settings.request_member_limit,
            guild_limit=rules.guild_limit or self.bot.settings.request_guild_limit,
        )
        try:
            place = await self._place(ctx.guild.id, stored.id)
            embed = confirmation_embed(stored, understood, place, self.bot.settings.prefix)
            await ctx.reply(embed=embed, view=vote_view(stored.id))
        finally:
            self.worker.wake()

    @request.command(name="show", description="One request: what it asks for, its state and place")
    @app_commands.describe(id="The request's number, as in #12")
    async def show(self, ctx: commands.Context[CadenzaBot], id: int) -> None:
        """Show one request: `!request show 12`."""
        request = await self._get(ctx, id)
        place = await self._place(ctx.guild.id, id) if request.state == "pending" else None
        await ctx.reply(embed=request_embed(request, place))

    @commands.hybrid_command(name="vote", description="Vote for a waiting request to move it up")
    @app_commands.describe(id="The request's number, as in #12")
    async def vote(self, ctx: commands.Context[CadenzaBot], id: int) -> None:
        """Vote for a request: `!vote 12`; one vote per member per request."""
        await ctx.reply(await self._vote(ctx.guild.id, id, ctx.author.id))

    async def press_vote(self, interaction: discord.Interaction[CadenzaBot], request_id: int) -> None:
        """Count a press of the Vote button; the answer is for the voter only."""
        try:
            text = await self._vote(interaction.guild_id, request_id, interaction.user.id)
        except Exception as error:
            text = explain(error, what="the vote button", user=interaction.user, channel=interaction.channel)
        await interaction.response.send_message(text, ephemeral=True)

    @commands.hybrid_command(name="cancel", description="Take back one of your waiting requests")
    @app_commands.describe(id="The request's number, as in #12")
    async def cancel(self, ctx: commands.Context[CadenzaBot], id: int) -> None:
        """Cancel your own waiting request: `!cancel 12`."""
        await self.store.cancel(ctx.guild.id, id, "cancelled by its author", author_id=ctx.author.id)
        await ctx.reply(f"Request #{id} is cancelled.")

    @commands.hybrid_command(name="history", description="The songs played here, newest first")
    @app_commands.describe(page="Which page, from 1")
    async def history(self, ctx: commands.Context[CadenzaBot], page: commands.Range[int, 1] = 1) -> None:
        """List the songs played in this server: `!history`, `!history 2`."""
        songs, total = await self.store.history(ctx.guild.id, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        await ctx.reply(embed=history_embed(songs, total, page, self.bot.settings.prefix))

    @commands.hybrid_command(name="replay", description="Post a song played here again")
    @app_commands.describe(id="The request's number, as in #12")
    async def replay(self, ctx: commands.Context[CadenzaBot], id: int) -> None:
        """Post a finished song again from storage, without composing it again: `!replay 12`."""
        request = await self._get(ctx, id)
        if request.state != "done":
            raise Refusal(
                f"Request #{id} has not been played yet; `{self.bot.settings.prefix}request show {id}`."
            )
        piece = self.worker.shelf.load(id, request.piece) if request.stored else None
        if piece is None:
            raise Refusal(f"The files of #{id} were removed to make room for newer songs.")
        ask = compose_request(request, self.bot.settings.max_length)
        limit = ctx.interaction.filesize_limit if ctx.interaction else ctx.guild.filesize_limit
        await ctx.reply(**await song_message(request, piece, ask, limit, replay=True))

    # -- the queue, and its moderators -----------------------------------------------------------

    @commands.hybrid_group(
        name="queue",
        fallback="show",
        invoke_without_command=True,
        description="The waiting requests, in order",
    )
    @app_commands.describe(page="Which page, from 1")
    async def queue(self, ctx: commands.Context[CadenzaBot], page: commands.Range[int, 1] = 1) -> None:
        """Show the waiting requests in the order they will be played (and what plays in voice):
        `!queue`, `!queue 2`."""
        waiting = await self.store.queue(ctx.guild.id)
        rules = await self.store.rules(ctx.guild.id)
        start = (page - 1) * PAGE_SIZE
        shown = waiting[start : start + PAGE_SIZE]
        embed = queue_embed(shown, start + 1, len(waiting), page, rules.paused, self.bot.settings.prefix)
        voice = self.bot.get_cog("Voice")
        session = voice.session(ctx.guild) if voice is not None else None
        # With a voice session here, what plays in voice comes first, then the song requests.
        await ctx.reply(embeds=[session.describe(), embed] if session is not None else [embed])

    @queue.command(name="pause", description="Moderators: stop playing requests for now")
    async def pause(self, ctx: commands.Context[CadenzaBot]) -> None:
        """Pause the queue: new requests are still taken, none is composed."""
        self._check_moderator(ctx)
        await self.store.set_rules(ctx.guild.id, paused=True)
        await ctx.reply(f"⏸️ The queue is paused; `{self.bot.settings.prefix}queue resume` starts it again.")

    @queue.command(name="resume", description="Moderators: play requests again")
    async def resume(self, ctx: commands.Context[CadenzaBot]) -> None:
        """Resume a paused queue."""
        self._check_moderator(ctx)
        await self.store.set_rules(ctx.guild.id, paused=False)
        self.worker.wake()
        await ctx.reply("▶️ The queue is playing again.")

    @queue.command(
        name="voice", description="Moderators: play requests in voice too, when their author listens"
    )
    @app_commands.describe(
        setting="on: a done request also plays in the bot's voice channel if its author is there"
    )
    async def voice(self, ctx: commands.Context[CadenzaBot], setting: Literal["on", "off"]) -> None:
        """Whether a done song request also plays in voice, where the bot plays and its author listens."""
        self._check_moderator(ctx)
        await self.store.set_rules(ctx.guild.id, voice=setting == "on")
        if setting == "on":
            await ctx.reply(
                "🔊 Done requests also play in voice when I'm playing there and their author listens."
            )
        else:
            await ctx.reply("🔇 Requests are only posted here, not played in voice.")

    @queue.command(name="clear", description="Moderators: cancel every waiting request")
    async def clear(self, ctx: commands.Context[CadenzaBot]) -> None:
        """Cancel every waiting request of this server."""
        self._check_moderator(ctx)
        count = await self.store.clear(ctx.guild.id, f"cleared by {ctx.author.display_name}")
        await ctx.reply(f"🧹 Cancelled {count} waiting request{'' if count == 1 else 's'}.")

    @queue.command(name="remove", description="Moderators: cancel one waiting request")
    @app_commands.describe(id="The request's number, as in #12")
    async def remove(self, ctx: commands.Context[CadenzaBot], id: int) -> None:
        """Cancel any member's waiting request: `!queue remove 12`."""
        self._check_moderator(ctx)
        await self.store.cancel(ctx.guild.id, id, f"removed by {ctx.author.display_name}")
        await ctx.reply(f"Request #{id} is removed from the queue.")

    @queue.command(name="limits", description="Moderators: how many requests may wait, per member and in all")
    @app_commands.describe(member="Most waiting requests per member", server="Most waiting requests in all")
    async def limits(
        self,
        ctx: commands.Context[CadenzaBot],
        member: commands.Range[int, 1, 100] | None = None,
        server: commands.Range[int, 1, 1000] | None = None,
    ) -> None:
        """Show the limits, or set them: `!queue limits 2 30` (per member, in all)."""
        if member is None and server is None:
            rules = await self.store.rules(ctx.guild.id)
        else:
            self._check_moderator(ctx)
            changes = {"member_limit": member, "guild_limit": server}
            rules = await self.store.set_rules(
                ctx.guild.id, **{name: value for name, value in changes.items() if value is not None}
            )
        await ctx.reply(self._limits_text(rules))

    # -- helpers ---------------------------------------------------------------------------------

    async def _get(self, ctx: commands.Context[CadenzaBot], request_id: int) -> SongRequest:
        request = await self.store.get(ctx.guild.id, request_id)
        if request is None:
            raise Refusal(f"There is no request #{request_id} here.")
        return request

    async def _place(self, guild_id: int, request_id: int) -> int | None:
        """A pending request's place in line, from 1."""
        ids = [request.id for request in await self.store.queue(guild_id)]
        return ids.index(request_id) + 1 if request_id in ids else None

    async def _vote(self, guild_id: int, request_id: int, user_id: int) -> str:
        request = await self.store.vote(guild_id, request_id, user_id)
        place = await self._place(guild_id, request_id)
        return f"👍 Counted: #{request_id} has {votes_text(request.votes)} and is {place} in line."

    def _check_moderator(self, ctx: commands.Context[CadenzaBot]) -> None:
        """Raise :class:`Refusal` unless the member has Manage Server or a moderator role."""
        member = ctx.author
        roles = self.bot.settings.moderator_roles
        if member.guild_permissions.manage_guild:
            return
        if any(role.name in roles or str(role.id) in roles for role in member.roles):
            return
        raise Refusal("Only moderators can do that (Manage Server, or a moderator role of this bot).")

    def _limits_text(self, rules: GuildRules) -> str:
        settings = self.bot.settings
        member = rules.member_limit or settings.request_member_limit
        server = rules.guild_limit or settings.request_guild_limit
        return f"Each member may have {member} requests waiting, and the server {server} in all."


async def setup(bot: CadenzaBot) -> None:
    """Add the cog (called by ``bot.load_extension``)."""
    await bot.add_cog(Requests(bot))
