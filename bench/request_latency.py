"""Time from a ``!request`` message to the posted song, with an empty queue, through the real bot.

A real :class:`bot.app.CadenzaBot` with the bundled model and a real SQLite file receives the
message through discord.py's own gateway parser; only Discord's HTTP edge is the test suite's
fake (``tests/test_bot_support.py``), which answers at once. Two figures per request: until the
confirmation (parsing, storing, the place in line) and until the song is posted (the worker
taking it, composing MIDI, picture and audio, keeping the files, posting).

    python bench/request_latency.py              # !request 500 notes, 5 runs
    python bench/request_latency.py --quick      # !request 50 notes, 2 runs
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import _common
import pytest

from bot.app import create_bot
from bot.settings import BotSettings
from composer.service import Composer
from composer.settings import ComposerSettings
from tests.test_bot_support import FakeDiscord

TOKEN = "MTA" + "x" * 21 + ".abcdef." + "y" * 27  # shaped like a token; nothing logs in


class TimedDiscord(FakeDiscord):
    """The fake, noting when each message was created."""

    def __init__(self) -> None:
        super().__init__()
        self.created: dict[int, float] = {}

    def _create(self, channel_id, request):
        message = super()._create(channel_id, request)
        self.created[int(message["id"])] = time.perf_counter()
        return message


async def run(model: Path, length: int, runs: int, data: Path) -> list[tuple[float, float]]:
    composer = Composer(ComposerSettings(model=model))
    settings = BotSettings(_env_file=None, token=TOKEN, cooldown_seconds=0, data_dir=data)
    bot = create_bot(settings, composer)
    fake = TimedDiscord()
    times = []
    with pytest.MonkeyPatch.context() as patch:
        fake.install(bot, patch)
        await bot._async_setup_hook()
        await bot.setup_hook()
        await fake.send("!request 8 notes")  # warm the pool, music21, matplotlib and the database
        for seed in range(runs):
            started = time.perf_counter()
            await fake.send(f"!request {length} notes seed={seed}")
            confirmation, song = fake.bot_messages()[-2:]
            assert song["attachments"], song.get("content")
            times.append(
                (fake.created[int(confirmation["id"])] - started, fake.created[int(song["id"])] - started)
            )
        await bot.close()
    composer.close()
    return times


def main() -> None:
    parser = _common.parser(__doc__)
    parser.add_argument("--length", type=int, default=500, help="notes in each request")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.length, args.runs = 50, 2
    _common.print_header("Song request latency, empty queue", args.model)
    with tempfile.TemporaryDirectory() as tmp:
        times = asyncio.run(run(args.model, args.length, args.runs, Path(tmp)))
    confirmed = [c for c, _ in times]
    posted = [p for _, p in times]
    print(f"!request {args.length} notes: over {args.runs} runs")
    for what, values in (("to the confirmation", confirmed), ("to the posted song", posted)):
        print(
            f"  {what}: median {_common.median(values):.2f} s, "
            f"min {min(values):.2f} s, max {max(values):.2f} s"
        )
    _common.print_footer()


if __name__ == "__main__":
    main()
