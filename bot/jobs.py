"""The line for the composer: a global cap on running jobs, one job per user, and a per-user cooldown.

Jobs start in arrival order. Whoever waits is told their place and told again when it changes;
a job that is cancelled or fails leaves the line at once, so nobody waits behind a dead job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from discord.ext import commands

from bot.failures import Refusal

log = logging.getLogger(__name__)

PlaceCallback = Callable[[int], Awaitable[None]]
"""Told a job's place in line: 1 is next, 0 means it is running now."""


@dataclass(eq=False)
class Ticket:
    """One job in the line."""

    user_id: int
    started: bool = False
    moved: asyncio.Event = field(default_factory=asyncio.Event)


class JobQueue:
    """At most ``max_running`` jobs at a time, ``max_waiting`` in line, one per user."""

    def __init__(self, max_running: int, max_waiting: int, cooldown_seconds: float = 0.0) -> None:
        self.max_running = max_running
        self.max_waiting = max_waiting
        self.cooldown = (
            commands.CooldownMapping(commands.Cooldown(1, cooldown_seconds), lambda user_id: user_id)
            if cooldown_seconds > 0
            else None
        )
        self._running: list[Ticket] = []
        self._waiting: list[Ticket] = []

    @property
    def running(self) -> int:
        """Jobs composing now."""
        return len(self._running)

    @property
    def waiting(self) -> int:
        """Jobs waiting for a free slot."""
        return len(self._waiting)

    def place(self, ticket: Ticket) -> int:
        """0 while the job runs, else its place in line (1 is next)."""
        return 0 if ticket.started else self._waiting.index(ticket) + 1

    def has_job(self, user_id: int) -> bool:
        """Whether this user has a job running or waiting."""
        return any(t.user_id == user_id for t in (*self._running, *self._waiting))

    @asynccontextmanager
    async def turn(self, user_id: int, on_place: PlaceCallback) -> AsyncIterator[Ticket]:
        """Join the line, wait for a slot (reporting the place), run the body, leave.

        Raises :class:`Refusal` when the user already has a job or the line is full, and
        :class:`commands.CommandOnCooldown` when the user's last job started too recently.
        """
        ticket = self._join(user_id)
        try:
            place = None
            while place != 0:
                ticket.moved.clear()
                if self.place(ticket) != place:
                    place = self.place(ticket)
                    await on_place(place)
                if place != 0:
                    await ticket.moved.wait()
            yield ticket
        finally:
            self._leave(ticket)

    def _join(self, user_id: int) -> Ticket:
        if self.has_job(user_id):
            raise Refusal("You already have a piece on the way; it will be posted here when it is ready.")
        if len(self._running) >= self.max_running and len(self._waiting) >= self.max_waiting:
            raise Refusal("Everyone wants music right now and the line is full; try again in a minute.")
        if self.cooldown is not None:
            bucket = self.cooldown.get_bucket(user_id)
            retry_after = bucket.update_rate_limit()
            if retry_after:
                raise commands.CommandOnCooldown(bucket, retry_after, commands.BucketType.user)
        ticket = Ticket(user_id)
        self._waiting.append(ticket)
        self._advance()
        return ticket

    def _leave(self, ticket: Ticket) -> None:
        for line in (self._running, self._waiting):
            if ticket in line:
                line.remove(ticket)
        self._advance()

    def _advance(self) -> None:
        """Start waiting jobs while there are free slots, and tell every waiting job it moved."""
        while self._waiting and len(self._running) < self.max_running:
            ticket = self._waiting.pop(0)
            ticket.started = True
            self._running.append(ticket)
            ticket.moved.set()
            log.debug(
                "job of user %s started; %d running, %d waiting", ticket.user_id, self.running, self.waiting
            )
        for ticket in self._waiting:
            ticket.moved.set()
