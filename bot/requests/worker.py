"""The worker that serves the queue: take the next request, compose it, post it, record it.

It composes one request at a time through the bot's :class:`~composer.service.Composer`, in the
composer's thread pool, so the event loop never waits and the queue takes at most one of the
composer's ``BOT_MAX_JOBS`` threads; instant ``!compose`` keeps the rest.

The worker runs as a task only while there is work: :meth:`RequestWorker.wake` starts it (or
tells a running one to look again) and it ends when nothing is left to do, so a bot with an
empty queue has no task polling anything.

A composed song is posted by a task of its own, and the worker goes on to compose the next
request at once: under Discord's rate limits (5 message creates in 5 s a channel) an upload can
wait seconds, and the composer thread should not wait with it. Posts to one channel go out one
after another, in the order their songs were composed. The worker edits no message, so it has
no place updates to coalesce (a request's confirmation says its place once).

A post carries a nonce made of the request id, with ``enforce_nonce``: Discord then answers a
second post with the same nonce, sent within a few minutes (a bot killed after posting and before
recording the post, then restarted), with the first message instead of a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import discord

from bot.failures import explain, friendly_message, unwrap
from bot.options import COMPOSE_LENGTH, build_request
from bot.pieces import upload_limit
from bot.requests.embeds import quoted, song_message
from bot.requests.songs import SongShelf
from bot.requests.store import RequestStore, SongRequest
from bot.voice.session import Queued
from composer.service import ComposeRequest

if TYPE_CHECKING:
    from bot.app import CadenzaBot

log = logging.getLogger(__name__)


def compose_request(request: SongRequest, max_length: int) -> ComposeRequest:
    """The composer's request for a stored song request."""
    return build_request(
        request.settings,
        default_length=COMPOSE_LENGTH,
        max_length=max_length,
        primer=request.primer,
        primer_name=request.primer_name,
    )


def mention_only(user_id: int) -> discord.AllowedMentions:
    """Allowed mentions that can ping this one member and nobody else."""
    return discord.AllowedMentions(
        everyone=False, roles=False, replied_user=False, users=[discord.Object(user_id)]
    )


class RequestWorker:
    """Serves the requests of every guild, one at a time."""

    def __init__(self, bot: CadenzaBot, store: RequestStore, shelf: SongShelf) -> None:
        self.bot = bot
        self.store = store
        self.shelf = shelf
        self._task: asyncio.Task[None] | None = None
        self._more = False
        self._last_served: dict[int, float] = {}
        self._posts: dict[int, asyncio.Task[None]] = {}
        """Posts under way, by request id."""
        self._last_post: dict[int, asyncio.Task[None]] = {}
        """The latest post task of each channel, which the channel's next post waits for."""
        self._stuck: set[int] = set()
        """Requests whose post broke unexpectedly: left ``posting``, for the next start."""
        self._pruning = asyncio.Lock()

    def wake(self) -> None:
        """There may be work: start the worker, or have the running one look again before it ends."""
        self._more = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="cadenza-requests")

    async def stop(self) -> None:
        """Stop now; a request being composed stays ``composing`` and is composed again at the next
        start, one being posted stays ``posting`` and is posted at the next start."""
        tasks = [task for task in (self._task, *self._posts.values()) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            self._more = False
            try:
                request = await self.store.next_request(self._last_served, self._posts.keys() | self._stuck)
                if request is None:
                    if self._more:
                        continue
                    return
                self._last_served[request.guild_id] = time.monotonic()
                await self.serve(request)
            except Exception:
                # A broken database or channel: stop rather than spin; the next request wakes the worker.
                log.exception("the request worker stopped")
                return

    async def serve(self, request: SongRequest) -> None:
        """Compose one request (unless already composed) and start its post, without waiting for it."""
        if request.state == "pending":
            if request.attempts > self.bot.settings.request_retries:
                await self._give_up(
                    request,
                    f"I tried {request.attempts} times and the bot stopped each time before it was done.",
                )
                return
            request = await self.store.start(request.id)
            try:
                ask = compose_request(request, self.bot.settings.max_length)
                piece = await self.bot.composer.compose(ask, self.shelf.scratch(request.id))
                kept = self.shelf.keep(request.id, piece)
            except Exception as error:
                await self._failed(request, error)
                return
            log.info("composed request #%d in %.1f s", request.id, piece.timings["total"])
            await self.store.composed(request.id, kept)
            request = await self.store.get(request.guild_id, request.id)
        self._start_post(request)

    def _start_post(self, request: SongRequest) -> None:
        """Post a composed request in a task of its own, after the channel's earlier posts."""
        before = self._last_post.get(request.channel_id)
        task = asyncio.create_task(self._post_after(request, before), name=f"cadenza-post-{request.id}")
        self._posts[request.id] = self._last_post[request.channel_id] = task
        task.add_done_callback(lambda _: self._forget_post(request, task))

    def _forget_post(self, request: SongRequest, task: asyncio.Task[None]) -> None:
        del self._posts[request.id]
        if self._last_post.get(request.channel_id) is task:
            del self._last_post[request.channel_id]

    async def _post_after(self, request: SongRequest, before: asyncio.Task[None] | None) -> None:
        if before is not None:
            await asyncio.wait([before])
        try:
            await self._post(request)
        except Exception:  # a broken database: the request stays ``posting`` for the next start
            self._stuck.add(request.id)
            log.exception("could not post request #%d", request.id)

    async def _post(self, request: SongRequest) -> None:
        piece = self.shelf.load(request.id, request.piece)
        if piece is None:
            await self.store.put_back(request.id, "its files were gone before it was posted")
            self.wake()
            return
        channel = self.bot.get_partial_messageable(request.channel_id, guild_id=request.guild_id)
        limit = upload_limit(self.bot.get_guild(request.guild_id))
        content = await song_message(
            request, piece, compose_request(request, self.bot.settings.max_length), limit, replay=False
        )
        try:
            message = await channel.send(
                f"<@{request.author_id}> your request #{request.id} is ready.",
                allowed_mentions=mention_only(request.author_id),
                reference=self._reference(request),
                nonce=f"cadenza-song-{request.id}",
                **content,
            )
        except discord.HTTPException as error:
            log.warning("could not post request #%d: %s", request.id, error)
            await self.store.fail(request.id, f"Discord refused the post: {error.text or error.status}")
            return
        await self.store.posted(request.id, message.id)
        await self._play_in_voice(request, piece.seed, channel, limit)
        await self._prune()

    async def _play_in_voice(
        self, request: SongRequest, seed: int, channel: discord.abc.Messageable, limit: int
    ) -> None:
        """Queue a done request in the server's voice session too, when the server wants it and the
        request's author listens there (its files are already posted, so voice only plays it)."""
        voice = self.bot.get_cog("Voice")
        session = voice.session(self.bot.get_guild(request.guild_id)) if voice is not None else None
        if session is None or not (await self.store.rules(request.guild_id)).voice:
            return
        author = session.guild.get_member(request.author_id)
        if author is None or author not in session.listeners():
            return
        ask = replace(compose_request(request, self.bot.settings.max_length), seed=seed)
        await session.play(Queued(ask, author, channel, limit, post=False))
        log.info("request #%d plays in voice in %s", request.id, session.guild)

    async def _failed(self, request: SongRequest, error: Exception) -> None:
        """A composition failed: the member's mistake fails at once, anything else is tried again."""
        error = unwrap(error)
        if friendly_message(error) is None and request.attempts <= self.bot.settings.request_retries:
            log.warning(
                "request #%d failed (attempt %d), trying again: %r", request.id, request.attempts, error
            )
            await self.store.put_back(request.id, f"attempt {request.attempts} failed: {error}")
            return
        channel = self.bot.get_partial_messageable(request.channel_id, guild_id=request.guild_id)
        text = explain(
            error, what=f"request #{request.id}", user=discord.Object(request.author_id), channel=channel
        )
        await self._give_up(request, text)

    async def _give_up(self, request: SongRequest, why: str) -> None:
        """Mark a request failed, then tell its author why (recorded first: the state is what counts)."""
        await self.store.fail(request.id, why)
        channel = self.bot.get_partial_messageable(request.channel_id, guild_id=request.guild_id)
        try:
            await channel.send(
                f"<@{request.author_id}> ⚠️ I couldn't make your request #{request.id} "
                f"{quoted(request.text, 80)}: {why}",
                allowed_mentions=mention_only(request.author_id),
                reference=self._reference(request),
            )
        except discord.HTTPException as error:
            log.warning("could not tell the author of request #%d that it failed: %s", request.id, error)

    def _reference(self, request: SongRequest) -> discord.MessageReference | None:
        """A reply to the member's ``!request`` message, when there was one (not for slash commands)."""
        if request.message_id is None:
            return None
        return discord.MessageReference(
            message_id=request.message_id, channel_id=request.channel_id, fail_if_not_exists=False
        )

    async def _prune(self) -> None:
        """Remove the oldest posted songs' files while all of them take more than the cap."""
        async with self._pruning:  # posts to several channels end at once
            total = await asyncio.to_thread(self.shelf.size)
            for request_id in await self.store.kept_songs():
                if total <= self.shelf.cap_bytes:
                    return
                total -= await asyncio.to_thread(self.shelf.remove, request_id)
                await self.store.forget_files(request_id)
                log.info("pruned the files of request #%d to keep songs under the storage cap", request_id)
