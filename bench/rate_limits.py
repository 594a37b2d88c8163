"""Twelve members composing at once, against a stand-in Discord with and without its rate limits.

A real :class:`bot.app.CadenzaBot` with the bundled model gets twelve ``!compose`` messages from
twelve members in one channel at the same moment, through discord.py's own gateway parser; only
Discord's HTTP edge is the test suite's fake (``tests/test_bot_support.py``). With limits on, the
fake applies Discord's per-channel budgets as observed, 5 message creates and 5 message edits in
any 5 s, by holding a request until its budget allows it: what the bot sees when discord.py meets
a 429 and waits ``retry_after``. The figure is the time from the messages to the twelfth posted
piece, and how many creates and edits the bot spent.

    python bench/rate_limits.py                 # !compose 300, BOT_MAX_JOBS=2, limits off then on
    python bench/rate_limits.py --quick         # !compose 50
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import defaultdict, deque
from pathlib import Path

import _common  # noqa: F401 - puts the repository root on sys.path, for tests.test_bot_support
import pytest

from bot.app import create_bot
from bot.settings import BotSettings
from composer.service import Composer
from composer.settings import ComposerSettings
from tests.test_bot_support import FakeDiscord

TOKEN = "MTA" + "x" * 21 + ".abcdef." + "y" * 27  # shaped like a token; nothing logs in
MEMBERS = [
    {"id": str(810_000_000_000_000_000 + n), "username": f"m{n}", "discriminator": "0", "avatar": None}
    for n in range(12)
]
BUDGETS = {
    ("POST", "/channels/{channel_id}/messages"): "create",
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"): "edit",
}


class ChannelLimits:
    """Per channel and kind (create, edit), at most ``count`` requests in any ``seconds``."""

    def __init__(self, count: int = 5, seconds: float = 5.0) -> None:
        self.count, self.seconds = count, seconds
        self.sent: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self.waited = 0.0

    async def wait(self, kind: str, channel: str) -> None:
        loop = asyncio.get_running_loop()
        window = self.sent[(kind, channel)]
        asked = loop.time()
        while True:
            now = loop.time()
            while window and now - window[0] >= self.seconds:
                window.popleft()
            if len(window) < self.count:
                window.append(now)
                self.waited += now - asked
                return
            await asyncio.sleep(self.seconds - (now - window[0]))


def limited(fake: FakeDiscord, limits: ChannelLimits):
    """``fake``'s HTTP edge, holding message creates and edits to their channel's budget."""
    answer = fake._http_request

    async def request(route, **kwargs):
        kind = BUDGETS.get((route.method, route.path))
        if kind is not None:
            await limits.wait(kind, str(route.channel_id))
        return await answer(route, **kwargs)

    return request


async def twelve_at_once(composer: Composer, length: int, data: Path, limits: ChannelLimits | None):
    """Seconds until all twelve pieces are posted, and the creates and edits spent."""
    settings = BotSettings(_env_file=None, token=TOKEN, cooldown_seconds=0, data_dir=data)
    bot = create_bot(settings, composer)
    fake = FakeDiscord()
    with pytest.MonkeyPatch.context() as patch:
        fake.install(bot, patch)
        if limits is not None:
            patch.setattr(bot.http, "request", limited(fake, limits))
        await bot._async_setup_hook()
        await bot.setup_hook()
        fake.requests.clear()
        started = time.perf_counter()
        for seed, member in enumerate(MEMBERS):
            message = fake.user_message(f"!compose {length} seed={seed}", author=member)
            bot._connection.parsers["MESSAGE_CREATE"](message)
        await fake.settle(timeout=600)
        seconds = time.perf_counter() - started
        posted = [m for m in fake.bot_messages() if m["attachments"]]
        assert len(posted) == len(MEMBERS), [m["content"] for m in fake.bot_messages()]
        creates = len(fake.requests_to("POST", "/messages"))
        edits = len(fake.requests_to("PATCH", "/messages"))
        await bot.close()
    return seconds, creates, edits


async def run(length: int) -> None:
    composer = Composer(ComposerSettings(), workers=BotSettings.model_fields["max_jobs"].default)
    with tempfile.TemporaryDirectory() as tmp:
        await twelve_at_once(composer, 8, Path(tmp) / "warm", None)  # model, pools, music21, matplotlib
        print(f"12 members, !compose {length} each at once, BOT_MAX_JOBS=2, bundled model")
        print("| Discord | all 12 posted | message creates | edits | time held by the limits |")
        print("|---|---|---|---|---|")
        for name, limits in (("no limits", None), ("5 creates + 5 edits / 5 s a channel", ChannelLimits())):
            seconds, creates, edits = await twelve_at_once(composer, length, Path(tmp) / name, limits)
            held = f"{limits.waited:.0f} s (all requests)" if limits else "-"
            print(f"| {name} | {seconds:.1f} s | {creates} | {edits} | {held} |")
    composer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(50 if args.quick else args.length))


if __name__ == "__main__":
    main()
