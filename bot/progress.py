"""The progress message of a job: posted at once, kept at the job's place in line without spending
the channel's edit budget, and replaced by the answer.

Discord allows a channel 5 message edits in 5 s. A place in line changes for every waiting member
each time a piece ends, so with a dozen members waiting, editing on every change would queue the
answers themselves behind place updates. One message is therefore edited at most once every
:data:`PLACE_EDIT_SECONDS`, to the latest place, and updates still pending when the answer is
ready are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

log = logging.getLogger(__name__)

PLACE_EDIT_SECONDS = 5.0
"""Shortest time between two place updates of one progress message."""

Post = Callable[[str], Awaitable[discord.Message]]
"""Sends the first progress message and returns it (a reply, or a slash command's follow-up)."""


class ProgressMessage:
    """One job's message: :meth:`show` a place in line (0: composing), then :meth:`finish` it."""

    def __init__(self, text: Callable[[int], str], post: Post, every: float = PLACE_EDIT_SECONDS) -> None:
        """``text`` words a place; ``post`` sends the first message; ``every``: seconds between edits."""
        self._text = text
        self._post = post
        self._every = every
        self.message: discord.Message | None = None
        self._shown: int | None = None
        self._wanted: int | None = None
        self._edited = 0.0
        self._catching_up: asyncio.Task | None = None

    async def show(self, place: int) -> None:
        """Post the message with ``place``, or note ``place`` for the next edit; never waits for
        an edit, so the line moves on at once."""
        self._wanted = place
        if self.message is None:
            self.message = await self._post(self._text(place))
            self._shown, self._edited = place, asyncio.get_running_loop().time()
        elif self._catching_up is None and place != self._shown:
            self._catching_up = asyncio.create_task(self._catch_up(), name="cadenza-progress")

    async def finish(self, **content: Any) -> discord.Message:
        """Edit the message into ``content`` (the answer, or what went wrong), dropping place
        updates not sent yet."""
        if self._catching_up is not None:
            self._catching_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._catching_up
        self.message = await self.message.edit(**content)
        return self.message

    async def _catch_up(self) -> None:
        """Edit the message to the latest place, at most once every ``every`` seconds."""
        loop = asyncio.get_running_loop()
        try:
            while self._wanted != self._shown:
                await asyncio.sleep(max(0.0, self._edited + self._every - loop.time()))
                place = self._wanted
                self.message = await self.message.edit(content=self._text(place))
                self._shown, self._edited = place, loop.time()
        except discord.HTTPException as error:  # a place update is not worth failing the job for
            log.warning("could not update a place in line: %s", error)
        finally:
            self._catching_up = None
