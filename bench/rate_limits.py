"""Twelve members composing at once, against a stand-in Discord with and without its rate limits.

A real :class:`bot.app.CadenzaBot` with the bundled model gets twelve ``!compose`` messages from
twelve members in one channel at the same moment, through discord.py's own gateway parser; only
Discord's HTTP edge is the test suite's fake (``tests/test_bot_support.py``). With limits on, the
fake applies Discord's per-channel budgets as observed, 5 message creates and 5 message edits in
any 5 s, by holding a request until its budget allows it: what the bot sees when discord.py meets
a 429 and waits ``retry_after``. The figure is the time from the messages to the twelfth posted
piece, and how many creates and edits the bot spent.

The second case is the same twelve members filing community song requests at once
(``!request 300 notes``): each is confirmed at once, and the request worker composes them one at
a time and posts each song as a new message; the figure is the time to the twelfth posted song.

    python bench/rate_limits.py                    # both cases, 300 notes, BOT_MAX_JOBS=2, limits off then on
    python bench/rate_limits.py --case requests    # only the song requests
    python bench/rate_limits.py --quick            # 50 notes
    python bench/rate_limits.py --rounds 3         # each row 3 times: median (fastest-slowest)
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
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


COMMANDS = {"compose": "!compose {length} seed={seed}", "requests": "!request {length} notes seed={seed}"}
"""What each member sends, by case."""


def is_song(message: dict) -> bool:
    """A post that carries a piece (a MIDI file)."""
    return any(a["filename"].endswith(".mid") for a in message["attachments"])


async def twelve_at_once(
    composer: Composer, length: int, data: Path, limits: ChannelLimits | None, case: str = "compose"
):
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
            message = fake.user_message(COMMANDS[case].format(length=length, seed=seed), author=member)
            bot._connection.parsers["MESSAGE_CREATE"](message)
        await fake.settle(timeout=600)
        seconds = time.perf_counter() - started
        posted = [m for m in fake.bot_messages() if is_song(m)]
        assert len(posted) == len(MEMBERS), [m["content"] for m in fake.bot_messages()]
        creates = len(fake.requests_to("POST", "/messages"))
        edits = len(fake.requests_to("PATCH", "/messages"))
        await bot.close()
    return seconds, creates, edits


LIMITED = "5 creates + 5 edits / 5 s a channel"


async def run(length: int, cases: list[str], rounds: int = 1) -> None:
    composer = Composer(ComposerSettings(), workers=BotSettings.model_fields["max_jobs"].default)
    with tempfile.TemporaryDirectory() as tmp:
        await twelve_at_once(composer, 8, Path(tmp) / "warm", None)  # model, pools, music21, matplotlib
        for case in cases:
            asked = COMMANDS[case].format(length=length, seed="N")
            print(f"\n12 members, `{asked}` each at once, BOT_MAX_JOBS=2, bundled model")
            print("| Discord | all 12 posted | message creates | edits | time held by the limits |")
            print("|---|---|---|---|---|")
            for name, limited in (("no limits", False), (LIMITED, True)):
                times, helds = [], []
                for n in range(rounds):
                    limits = ChannelLimits() if limited else None
                    data = Path(tmp) / f"{case} {name} {n}"
                    seconds, creates, edits = await twelve_at_once(composer, length, data, limits, case)
                    times.append(seconds)
                    helds.append(limits.waited if limits else 0.0)
                shown = f"{statistics.median(times):.1f} s"
                if rounds > 1:
                    shown += f" ({min(times):.1f}-{max(times):.1f})"
                held = f"{statistics.median(helds):.0f} s (all requests)" if limited else "-"
                print(f"| {name} | {shown} | {creates} | {edits} | {held} |", flush=True)
    composer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=300)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--case", choices=("compose", "requests", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=1, help="times each row is measured (median)")
    args = parser.parse_args()
    cases = ["compose", "requests"] if args.case == "both" else [args.case]
    asyncio.run(run(50 if args.quick else args.length, cases, args.rounds))


if __name__ == "__main__":
    main()
