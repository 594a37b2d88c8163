"""Building the bot: :class:`CadenzaBot` gets its dependencies as arguments, :func:`create_bot` makes them.

Nothing here connects to Discord, so tests and other programs can build a complete bot (commands,
buttons, limits) and drive it without a network.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any

import aiofiles
import aiofiles.os
import discord
from discord import app_commands
from discord.ext import commands

from bot.buttons import PieceButton
from bot.failures import WrongChannel, explain
from bot.jobs import JobQueue
from bot.requests.button import VoteButton
from bot.requests.songs import SongShelf
from bot.requests.store import RequestStore
from bot.requests.worker import RequestWorker
from bot.settings import BotSettings
from bot.voice.libraries import NEEDS as VOICE_NEEDS
from bot.voice.libraries import missing_voice_libraries
from composer.queue.remote import RemoteComposer
from composer.queue.settings import QueueSettings
from composer.service import Composer
from composer.settings import ComposerSettings

log = logging.getLogger(__name__)

EXTENSIONS = (
    "bot.cogs.compose",
    "bot.cogs.harmonize",
    "bot.cogs.requests",
    "bot.cogs.info",
    "bot.cogs.errors",
    "bot.voice",
)
# What the bot needs in a channel: post pieces (in threads too), with files and embeds, and read the
# message a member replies to with !continue; in voice channels, join and play. The README's
# invitation carries the same number.
INVITE_PERMISSIONS = discord.Permissions(
    send_messages=True,
    send_messages_in_threads=True,
    attach_files=True,
    embed_links=True,
    read_message_history=True,
    connect=True,
    speak=True,
)


def invite_url(application_id: int) -> str:
    """The URL that adds the bot to a server, with its slash commands and the permissions it needs."""
    return discord.utils.oauth_url(
        application_id, permissions=INVITE_PERMISSIONS, scopes=("bot", "applications.commands")
    )


class CadenzaTree(app_commands.CommandTree):
    """The slash command tree; answers what reaches it, so nobody sees "the application did not respond".

    Errors inside the hybrid commands go to the errors cog; what reaches this handler is rare,
    such as a slash command Discord still shows after it changed.
    """

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Apologise with an error id, which is logged with the error."""
        name = interaction.command.qualified_name if interaction.command else "a slash command"
        text = explain(error, what=f"/{name}", user=interaction.user, channel=interaction.channel)
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)


class CadenzaBot(commands.Bot):
    """The Discord bot: commands in cogs, a composer that does the music, a queue that shares it,
    and the song requests a server files, with the worker that serves them."""

    def __init__(
        self, settings: BotSettings, composer: Composer | RemoteComposer, jobs: JobQueue, **options: Any
    ) -> None:
        """``options`` go to discord.py's client (the shards of a sharded bot)."""
        self.voice_missing = missing_voice_libraries()
        """What voice lacks on this host (empty: voice works); voice commands then answer one line."""
        if self.voice_missing:
            # Said once here, instead of discord.py's warning at every start for each library.
            for warning in ("warn_nacl", "warn_dave"):
                if hasattr(discord.VoiceClient, warning):
                    setattr(discord.VoiceClient, warning, False)
            log.warning(
                "voice channels are off: this host lacks %s (%s)", ", ".join(self.voice_missing), VOICE_NEEDS
            )
        intents = discord.Intents.default()
        intents.message_content = True  # prefix commands read the text of messages
        super().__init__(
            command_prefix=commands.when_mentioned_or(settings.prefix),
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),  # echoed text never pings anyone
            help_command=None,  # the info cog has a readable one with examples
            tree_cls=CadenzaTree,
            description="Cadenza composes music with a neural network.",
            **options,
        )
        self.settings = settings
        self.composer = composer
        self.jobs = jobs
        self.requests = RequestStore(settings.data_dir / "requests.sqlite3")
        shelf = SongShelf(settings.data_dir / "songs", int(settings.song_storage_mb * 2**20))
        self.request_worker = RequestWorker(self, self.requests, shelf)
        self.started = discord.utils.utcnow()
        self.add_check(self._in_allowed_channel)

    async def setup_hook(self) -> None:
        """Load the model, the cogs and the buttons of earlier pieces, publish the slash commands, and
        go on with the song requests an earlier run left (the one it was composing is composed again)."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.composer.load)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.add_dynamic_items(PieceButton, VoteButton)
        await self._publish_slash_commands()
        if self.requests.path.exists():
            recovered = await self.requests.recover()
            log.info("song requests: schema version %d", await self.requests.schema_version())
            if recovered:
                log.info(
                    "%d song requests were being composed when the bot stopped; composing again", recovered
                )
            self.request_worker.wake()

    async def _publish_slash_commands(self) -> None:
        """Send the slash commands to Discord when they differ from the last ones this data folder sent.

        Discord limits how often commands may be created (200 a day), so a bot restarted in a
        loop must not publish the same commands every time.
        """
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        record = self.settings.data_dir / "slash-commands.sha256"
        name = self.composer.settings.model.name
        sent = ""
        if await aiofiles.os.path.exists(record):
            async with aiofiles.open(record) as handle:
                sent = (await handle.read()).strip()
        if sent == digest:
            log.info("loaded %s; %d slash commands unchanged, not published again", name, len(payload))
            return
        synced = await self.tree.sync()
        async with aiofiles.open(record, "w") as handle:
            await handle.write(digest + "\n")
        log.info("loaded %s; %d slash commands published", name, len(synced))

    async def close(self) -> None:
        """Stop the request worker and close the request database, then disconnect (unloading the
        cogs on the way: the voice cog leaves its channels)."""
        await self.request_worker.stop()
        await self.requests.close()
        if isinstance(self.composer, RemoteComposer):
            await self.composer.disconnect()
        await super().close()

    async def on_ready(self) -> None:
        """Log who the bot is once it is connected."""
        log.info("connected as %s (%s) to %d servers", self.user, self.user.id, len(self.guilds))
        if self.application_id is not None:
            log.info("add it to a server with %s", invite_url(self.application_id))

    def check_channel(self, channel: discord.abc.Messageable | None) -> None:
        """Raise :class:`WrongChannel` outside ``BOT_CHANNELS`` (a thread counts as its parent channel)."""
        allowed = self.settings.channels
        here = {getattr(channel, "id", None), getattr(channel, "parent_id", None)}
        if allowed and allowed.isdisjoint(here):
            places = ", ".join(f"<#{channel_id}>" for channel_id in sorted(allowed))
            raise WrongChannel(f"I only make music in {places}.")

    async def _in_allowed_channel(self, ctx: commands.Context) -> bool:
        self.check_channel(ctx.channel)
        return True


class ShardedCadenzaBot(CadenzaBot, commands.AutoShardedBot):
    """The same bot on several gateway connections (shards), as Discord requires past 2,500 servers."""


def make_composer(
    settings: BotSettings, composer_settings: ComposerSettings, queue: QueueSettings
) -> Composer | RemoteComposer:
    """The composer in this process, or with ``COMPOSER_REDIS_URL`` set the workers' job queue."""
    if queue.redis_url:
        return RemoteComposer(composer_settings, queue)
    return Composer(composer_settings, workers=settings.max_jobs)


def create_bot(settings: BotSettings, composer: Composer | RemoteComposer | None = None) -> CadenzaBot:
    """A bot ready to start; without ``composer`` one is made from the ``COMPOSER_*`` settings.

    With ``BOT_SHARD_COUNT`` set it is a :class:`ShardedCadenzaBot`. The caller owns the composer:
    close it (``composer.close()``) once the bot has stopped.
    """
    if composer is None:
        composer = make_composer(settings, ComposerSettings(), QueueSettings())
    jobs = JobQueue(settings.max_jobs, settings.max_queue, settings.cooldown_seconds)
    if settings.shard_count is None:
        return CadenzaBot(settings, composer, jobs)
    return ShardedCadenzaBot(
        settings,
        composer,
        jobs,
        shard_count=None if settings.shard_count == "auto" else settings.shard_count,
        shard_ids=list(settings.shard_ids) or None,
    )
