"""Event-loop lag of the bot's process while compositions run.

The bot awaits ``Composer.compose``, which runs in the composer's thread pool; everything
Discord needs (heartbeats, other commands) shares the event loop. This measures how late a
10 ms timer fires while N compositions of ``--length`` events run at once, against an idle
baseline in the same run.

    python bench/loop_lag.py            # 8 compositions of 500 events
    python bench/loop_lag.py --quick    # 2 compositions of 50, for a smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from composer.service import Composer, ComposeRequest
from composer.settings import ComposerSettings

TICK = 0.010


async def sample_lag(stop: asyncio.Event) -> list[float]:
    """How late (ms) each 10 ms sleep wakes up until ``stop`` is set."""
    lags = []
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(TICK)
        lags.append((time.perf_counter() - start - TICK) * 1000)
    return lags


def summary(lags: list[float]) -> str:
    ordered = sorted(lags)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return f"median {statistics.median(ordered):6.2f} ms   p99 {p99:6.2f} ms   max {ordered[-1]:6.2f} ms"


async def measure(composer: Composer, jobs: int, length: int, out: Path) -> tuple[list[float], float]:
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_lag(stop))
    started = time.perf_counter()
    requests = [ComposeRequest(length=length, seed=i) for i in range(jobs)]
    await asyncio.gather(*(composer.compose(r, out / str(i)) for i, r in enumerate(requests)))
    elapsed = time.perf_counter() - started
    stop.set()
    return await sampler, elapsed


async def idle(seconds: float) -> list[float]:
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_lag(stop))
    await asyncio.sleep(seconds)
    stop.set()
    return await sampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--model", type=Path, help="a .cadenza model (default: the bundled one)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.length = 2, 50
    settings = ComposerSettings(**({"model": args.model} if args.model else {}))
    composer = Composer(settings, workers=args.jobs)
    composer.load()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(measure(composer, 1, 20, Path(tmp) / "warm"))  # warm imports and caches
        baseline = asyncio.run(idle(3.0))
        lags, elapsed = asyncio.run(measure(composer, args.jobs, args.length, Path(tmp)))
    composer.close()
    print(f"event-loop lag, 10 ms timer, {args.jobs} compositions of {args.length} events in flight")
    print(f"  idle:                 {summary(baseline)}")
    print(f"  while composing:      {summary(lags)}   ({len(lags)} samples over {elapsed:.1f} s)")
    ordered = sorted(lags)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    print(f"  target p99 < 100 ms:  {'met' if p99 < 100 else 'missed'} ({p99:.1f} ms)")


if __name__ == "__main__":
    main()
