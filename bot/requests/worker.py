"""The worker that serves the queue: take the next request, compose it, post it, record it.

It composes one request at a time through the bot's :class:`~composer.service.Composer`, in the
composer's thread pool, so the event loop never waits and the queue takes at most one of the
composer's ``BOT_MAX_JOBS`` threads; instant ``!compose`` keeps the rest.

The worker runs as a task only while there is work: :meth:`RequestWorker.wake` starts it (or
tells a running one to look again) and it ends when nothing is left to do, so a bot with an
empty queue has no task polling anything.

A post carries a nonce made of the request id, with ``enforce_nonce``: Discord then answers a
second post with the same nonce, sent within a few minutes (a bot killed after posting and before
recording the post, then restarted), with the first message instead of a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import discord

from bot.failures import explain, friendly_message, unwrap
from bot.options import COMPOSE_LENGTH, build_request
from bot.pieces import upload_limit
from bot.requests.embeds import quoted, song_message
from bot.requests.songs import SongShelf
from bot.requests.store import RequestStore, SongRequest
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

    def wake(self) -> None:
        """There may be work: start the worker, or have the running one look again before it ends."""
        self._more = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="cadenza-requests")

    async def stop(self) -> None:
        """Stop now; a request being composed stays ``composing`` and is composed again at the next start."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self._more = False
            try:
                request = await self.store.next_request(self._last_served)
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
        """Compose (unless already composed) and post one request."""
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
        await self._post(request)

    async def _post(self, request: SongRequest) -> None:
        piece = self.shelf.load(request.id, request.piece)
        if piece is None:
            await self.store.put_back(request.id, "its files were gone before it was posted")
            return
        channel = self.bot.get_partial_messageable(request.channel_id, guild_id=request.guild_id)
        limit = upload_limit(self.bot.get_guild(request.guild_id))
        content = song_message(
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
        await self._prune()

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
        total = await asyncio.to_thread(self.shelf.size)
        for request_id in await self.store.kept_songs():
            if total <= self.shelf.cap_bytes:
                return
            total -= await asyncio.to_thread(self.shelf.remove, request_id)
            await self.store.forget_files(request_id)
            log.info("pruned the files of request #%d to keep songs under the storage cap", request_id)
