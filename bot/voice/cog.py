"""``play``, ``radio``, ``skip``, ``stop`` and ``leave``: Cadenza in voice channels, one session a server.

The cog owns the sessions: it joins the member's voice channel (or moves there when nobody
listens where the bot is), refuses with one line what cannot be done (no voice libraries here,
the member not in a voice channel, no Connect or Speak permission, every session taken), and
ends sessions whose channel stays empty or silent for ``BOT_VOICE_IDLE_SECONDS``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.compose import key_choices, style_choices
from bot.failures import Refusal, explain
from bot.options import COMPOSE_LENGTH, ComposeOptions, build_request, parse_options
from bot.pieces import Job, run_job, upload_limit
from bot.requests.parse import parse_request
from bot.voice.buttons import COG, RadioButton
from bot.voice.session import Queued, Radio, VoiceSession
from composer.errors import InvalidOptionError

if TYPE_CHECKING:
    from bot.app import CadenzaBot

log = logging.getLogger(__name__)


class Voice(commands.Cog, name=COG):
    """Play new music in voice channels, as it is composed."""

    def __init__(self, bot: CadenzaBot) -> None:
        self.bot = bot
        self.sessions: dict[int, VoiceSession] = {}
        self.connector: type[discord.VoiceProtocol] = discord.VoiceClient
        """What ``channel.connect(cls=...)`` makes: discord.py's voice client (tests put a fake here)."""

    async def cog_unload(self) -> None:
        """Leave every voice channel."""
        for session in list(self.sessions.values()):
            await self.end(session)

    def session(self, guild: discord.Guild | None) -> VoiceSession | None:
        """The voice session of ``guild``, if any."""
        return self.sessions.get(guild.id) if guild is not None else None

    async def end(self, session: VoiceSession) -> None:
        """Leave the session's channel and forget it."""
        if self.sessions.get(session.guild.id) is session:
            del self.sessions[session.guild.id]
        await session.leave()

    # -- joining -------------------------------------------------------------------------------

    async def join(self, ctx: commands.Context[CadenzaBot]) -> VoiceSession:
        """The session in the author's voice channel: joined, moved to, or the one there already.

        Whatever refuses is checked first, so a refusal stays a private one-line answer; then the
        command is deferred (a slash command must be answered within 3 s) and the bot connects.
        """
        missing = self.bot.voice_missing
        if missing:
            raise Refusal(f"I can't play in voice channels on this host: it lacks {', '.join(missing)}.")
        if self.bot.settings.max_voice == 0:
            raise Refusal("Voice is switched off on this bot.")
        if ctx.guild is None:
            raise Refusal("Voice channels are in servers; ask me there.")
        state = getattr(ctx.author, "voice", None)
        if state is None or state.channel is None:
            raise Refusal("Join a voice channel first, then ask again.")
        channel = state.channel
        allowed = channel.permissions_for(ctx.guild.me)
        lacking = [name for name, ok in (("Connect", allowed.connect), ("Speak", allowed.speak)) if not ok]
        if lacking:
            raise Refusal(
                f"I need the {' and '.join(lacking)} permission in {channel.mention} to play there."
            )
        session = self.session(ctx.guild)
        if (
            session is not None
            and session.channel.id != channel.id
            and session.listeners()
            and session.playing
        ):
            raise Refusal(f"I'm playing in {session.channel.mention} already; join us there.")
        if session is None and len(self.sessions) >= self.bot.settings.max_voice:
            raise Refusal(
                f"I'm playing in {len(self.sessions)} voice channels already, as many as this bot can; "
                "try again when one of them ends."
            )
        # Checked: joining and the first piece take longer than a slash command may wait unanswered.
        await ctx.defer()
        if session is not None:
            if session.channel.id != channel.id:
                await session.voice.move_to(channel)
                log.info("moved to voice channel %s in %s", channel.id, ctx.guild)
            session.text = ctx.channel
            return session
        voice = await channel.connect(cls=self.connector, self_deaf=True)
        session = VoiceSession(self.bot, voice, ctx.channel)
        self.sessions[ctx.guild.id] = session
        log.info("joined voice channel %s in %s (%d)", channel.id, ctx.guild, ctx.guild.id)
        return session

    # -- commands ------------------------------------------------------------------------------

    @commands.hybrid_command(
        name="play", description="Play a new piece in your voice channel as it is composed"
    )
    @app_commands.autocomplete(style=style_choices, key=key_choices)
    async def play(self, ctx: commands.Context[CadenzaBot], *, options: ComposeOptions) -> None:
        """Play a new piece in your voice channel: `!play`, `!play 300 tempo=90 key=Am`."""
        request = build_request(
            dict(options), default_length=COMPOSE_LENGTH, max_length=self.bot.settings.max_length
        )
        styles = self.bot.composer.load().vocabulary.styles
        if request.style is not None and request.style not in styles:  # refused before joining
            raise InvalidOptionError(
                f"This model knows the styles {', '.join(styles)}, not '{request.style}'."
            )
        session = await self.join(ctx)
        queued = Queued(request, ctx.author, ctx.channel, upload_limit(ctx.guild, ctx.interaction))
        ahead = await session.play(queued)
        if ahead:
            await ctx.reply(f"🎶 Queued in {session.channel.mention}: {ahead} before yours.")
        else:
            await ctx.reply(f"🎶 Playing in {session.channel.mention}; the piece follows here.")

    @commands.hybrid_command(name="radio", description="Endless new music in your voice channel")
    @app_commands.describe(words="Words and options, as in a song request: sad folk slow, key=Am")
    async def radio(self, ctx: commands.Context[CadenzaBot], *, words: str = "") -> None:
        """Endless new music, steered by words: `!radio`, `!radio sad folk slow`, `!radio calm key=Am`."""
        styles = tuple(self.bot.composer.load().vocabulary.styles)
        understood = parse_request(words, styles)
        session = await self.join(ctx)
        await session.start_radio(Radio(dict(understood.values), words.strip(), styles))
        read = "; ".join(understood.reading) or "anything"
        await ctx.reply(f"📻 Radio on in {session.channel.mention}: {read}.")

    @commands.hybrid_command(
        name="skip", description="Skip the piece playing in voice (a vote when several listen)"
    )
    async def skip(self, ctx: commands.Context[CadenzaBot]) -> None:
        """Skip the piece playing now: at once alone, with a majority when several listen."""
        await ctx.reply(self._skip(self._listening(ctx.guild, ctx.author), ctx.author))

    @commands.hybrid_command(name="stop", description="Stop the music in voice and clear its queue")
    async def stop(self, ctx: commands.Context[CadenzaBot]) -> None:
        """Stop the music and the radio, and clear the voice queue."""
        session = self._listening(ctx.guild, ctx.author)
        await session.stop()
        await ctx.reply("⏹️ Stopped.")

    @commands.hybrid_command(name="leave", description="Leave the voice channel")
    async def leave(self, ctx: commands.Context[CadenzaBot]) -> None:
        """Stop and leave the voice channel."""
        session = self._listening(ctx.guild, ctx.author)
        await self.end(session)
        await ctx.reply("👋 Left the voice channel.")

    def _listening(self, guild: discord.Guild | None, member: discord.abc.User) -> VoiceSession:
        """The guild's session, if ``member`` listens to it (only listeners control the music)."""
        session = self.session(guild)
        if session is None:
            raise Refusal("I'm not in a voice channel here.")
        state = getattr(member, "voice", None)
        if state is None or state.channel is None or state.channel.id != session.channel.id:
            raise Refusal(f"Join {session.channel.mention} to control the music there.")
        return session

    def _skip(self, session: VoiceSession, member: discord.abc.User) -> str:
        skipped, votes, needed = session.skip(member)
        if skipped:
            return "⏭️ Skipped."
        return f"🗳️ {votes} of {needed} votes to skip."

    # -- the radio's buttons ---------------------------------------------------------------------

    async def press(self, interaction: discord.Interaction[CadenzaBot], button: RadioButton) -> None:
        """A radio button; answers privately, except Keep, which posts the piece for everyone."""
        try:
            self.bot.check_channel(interaction.channel)
            if button.action == "keep":
                await self._keep(interaction, button.options)
                return
            session = self.session(interaction.guild)
            if session is None or session.radio is None:
                raise Refusal(f"The radio is off; `{self.bot.settings.prefix}radio` starts it.")
            session = self._listening(interaction.guild, interaction.user)
            if button.action == "skip":
                text = self._skip(session, interaction.user)
            else:
                text = f"The next piece will be {await session.steer(button.action)}."
            await interaction.response.send_message(text, ephemeral=True)
        except Exception as error:
            text = explain(
                error, what=f"the radio's {button.action} button", user=interaction.user, channel=None
            )
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)

    async def _keep(self, interaction: discord.Interaction[CadenzaBot], options: str) -> None:
        """Post a radio piece's files: its options and seed compose it again, note for note."""
        request = build_request(
            parse_options(options), default_length=self.bot.settings.radio_length, max_length=2000
        )
        await interaction.response.defer(thinking=True)
        job = Job(request, interaction.user, interaction.channel, upload_limit(None, interaction))
        await run_job(self.bot, job, post=lambda text: interaction.followup.send(text, wait=True))

    # -- leaving empty channels ------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_voice_state_update(
        self, member: discord.Member, before: discord.VoiceState, after: discord.VoiceState
    ) -> None:
        """Someone joined or left: start or stop the countdown to leaving an empty channel.

        Also notices the bot itself being disconnected or moved by a moderator.
        """
        session = self.session(member.guild)
        if session is None:
            return
        if member.id == self.bot.user.id and after.channel is None and not session.closed:
            await self.end(session)
            return
        session.check_idle()
