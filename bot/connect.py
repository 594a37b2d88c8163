"""Starting the bot when Discord cannot be reached yet: try again with back-off for a while, then give up.

Operators start the bot with systemd or Docker, which restart it anyway, so a network that is not
up yet (no DNS, a refused connection, Discord's own 5xx) is worth a few quiet tries, one log line
each, and then one line that says what is wrong, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
import discord

if TYPE_CHECKING:
    from bot.app import CadenzaBot

log = logging.getLogger(__name__)

# What a missing or broken network raises from ``bot.start``: aiohttp's connection errors (DNS
# failures and refused connections among them) are OSErrors, and so are time-outs.
UNREACHABLE: tuple[type[BaseException], ...] = (
    OSError,
    aiohttp.ClientError,
    discord.DiscordServerError,
    discord.GatewayNotFound,
)
LONGEST_WAIT = 60.0


class DiscordUnreachable(Exception):
    """Discord could not be reached for ``BOT_CONNECT_RETRY_SECONDS``; the message is one line."""


def reason(error: BaseException) -> str:
    """What went wrong, in one line (aiohttp names the host and the operating system's words)."""
    text = " ".join(str(error).split())
    return text or type(error).__name__


async def start_with_retries(
    make_bot: Callable[[], CadenzaBot],
    token: str,
    retry_seconds: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run a bot from ``make_bot`` until it is closed (SIGTERM closes it gracefully).

    When Discord cannot be reached, a fresh bot tries again after 1, 2, 4... seconds (at most a
    minute apart) for ``retry_seconds``; then :class:`DiscordUnreachable` is raised. A bot that ran
    longer than that before it lost Discord starts a new round of tries.
    """
    stopping = asyncio.Event()
    bots: list[CadenzaBot] = []
    closing: set[asyncio.Task] = set()

    def stop() -> None:
        stopping.set()
        if bots:
            closing.add(asyncio.ensure_future(bots[-1].close()))

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)
    failing_since: float | None = None
    tries = 0
    while not stopping.is_set():
        bot = make_bot()
        bots[:] = [bot]
        started = clock()
        try:
            async with bot:
                await bot.start(token)
            return
        except UNREACHABLE as error:
            if stopping.is_set():
                return
            now = clock()
            if failing_since is None or now - started > retry_seconds:
                failing_since, tries = now, 0
            tries += 1
            left = failing_since + retry_seconds - now
            if left <= 0:
                raise DiscordUnreachable(_giving_up(error, tries, now - failing_since)) from None
            delay = min(2.0 ** (tries - 1), LONGEST_WAIT, left)
            log.warning("cannot reach Discord (%s); trying again in %.0f s", reason(error), delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)


def _giving_up(error: BaseException, tries: int, seconds: float) -> str:
    """The one line printed when the bot stops trying."""
    tried = "once" if tries == 1 else f"{tries} times in {seconds:.0f} s"
    return (
        f"error: cannot reach Discord ({reason(error)}); tried {tried}. Check the network, DNS, "
        "firewall or proxy; BOT_CONNECT_RETRY_SECONDS sets how long the bot keeps trying."
    )
