"""Time from a ``!compose`` message to the posted piece, through the real bot, and its cold start.

A real :class:`bot.app.CadenzaBot` with the bundled model receives the message through
discord.py's own gateway parser; only Discord's HTTP edge is the test suite's fake
(``tests/test_bot_support.py``), which answers at once, so the figure is the bot's own time:
command parsing, queueing, composing (MIDI, picture, audio) and building the answer.

    python bench/bot_latency.py              # !compose 500, 5 runs; 3 cold starts
    python bench/bot_latency.py --quick      # !compose 50, 2 runs; 1 cold start

The cold start is a fresh ``python`` process from its start until the bot is ready (imports,
model loaded, cogs and buttons added, slash commands handed to the fake edge), as ``python -m bot``
does before it connects.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401 - puts the repository root on sys.path, for tests.test_bot_support
import pytest

from bot.app import create_bot
from bot.settings import BotSettings
from composer.service import Composer
from composer.settings import ComposerSettings
from tests.test_bot_support import FakeDiscord

TOKEN = "MTA" + "x" * 21 + ".abcdef." + "y" * 27  # shaped like a token; nothing logs in


async def ready(data: Path) -> None:
    """Set a bot up as ``python -m bot`` does, then stop (the cold-start child)."""
    composer = Composer(ComposerSettings())
    bot = create_bot(BotSettings(_env_file=None, token=TOKEN, data_dir=data), composer)
    with pytest.MonkeyPatch.context() as patch:
        FakeDiscord().install(bot, patch)
        await bot._async_setup_hook()
        await bot.setup_hook()
        print("ready", flush=True)
        await bot.close()
    composer.close()


def cold_starts(count: int) -> list[float]:
    """Seconds from starting a fresh process to its bot being ready."""
    times = []
    for _ in range(count):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            child = subprocess.Popen(
                [sys.executable, __file__, "--ready-only", tmp], stdout=subprocess.PIPE, text=True
            )
            for line in child.stdout:
                if line.strip() == "ready":
                    times.append(time.perf_counter() - started)
                    break
            child.wait()
    return times


async def run(length: int, runs: int, data: Path) -> tuple[list[float], list[float]]:
    """Message-to-answer seconds per run, and the composer's own total for the same pieces."""
    composer = Composer(ComposerSettings())
    composing: list[float] = []
    compose = composer.compose

    async def timed(request, out_dir):  # the composer's own figure for the piece the bot posts
        piece = await compose(request, out_dir)
        composing.append(piece.timings["total"])
        return piece

    bot = create_bot(BotSettings(_env_file=None, token=TOKEN, cooldown_seconds=0, data_dir=data), composer)
    fake = FakeDiscord()
    with pytest.MonkeyPatch.context() as patch:
        fake.install(bot, patch)
        patch.setattr(composer, "compose", timed)
        started = time.perf_counter()
        await bot._async_setup_hook()
        await bot.setup_hook()
        print(f"bot set up (model loaded, cogs, buttons) in {time.perf_counter() - started:.2f} s")
        await fake.send("!compose 8")  # warm the pool, music21 and matplotlib
        times = []
        for seed in range(runs):
            started = time.perf_counter()
            await fake.send(f"!compose {length} seed={seed}")
            times.append(time.perf_counter() - started)
            answer = fake.bot_messages()[-1]
            assert answer["attachments"], answer.get("content")
        await bot.close()
    composer.close()
    return times, composing[1:]  # the first piece warmed the pool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ready-only", type=Path, help=argparse.SUPPRESS)  # the cold-start child
    args = parser.parse_args()
    if args.ready_only:
        asyncio.run(ready(args.ready_only))
        return
    if args.quick:
        args.length, args.runs = 50, 2
    colds = cold_starts(1 if args.quick else 3)
    print(
        f"bot cold start, process start to ready, {len(colds)} runs: "
        f"median {statistics.median(colds):.2f} s, "
        f"max {max(colds):.2f} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        times, composing = asyncio.run(run(args.length, args.runs, Path(tmp)))
    print(f"!compose {args.length}: command to posted piece over {args.runs} runs")
    print(f"  median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s")
    extra = [total - own for total, own in zip(times, composing, strict=True)]
    print(
        f"  the composer's own time {statistics.median(composing):.2f} s median; the bot adds "
        f"median {statistics.median(extra):.3f} s, max {max(extra):.3f} s"
    )


if __name__ == "__main__":
    main()
