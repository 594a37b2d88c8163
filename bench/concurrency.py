"""Issue 7, item 3: 1, 4 and 16 compositions at once; total time and each one's latency.

Why: a busy server sends many commands at once. Every request in flight is generated in the same
network steps (the composer's batcher), so generation for 16 should cost little more than for
one; the file stages (MIDI, picture, audio) run ``COMPOSER_WORKERS`` at a time and are bounded by
the CPU. This measures, in one run, with the model loaded and a first piece made (not timed):

- generation only (MIDI written, no audio or picture), with micro-batching (``COMPOSER_BATCH``
  64) and without it (batch 1: pieces take turns step by step, as one call per request would);
- whole pieces (MIDI, picture, audio), with micro-batching.

For each: total wall time, each request's latency (median and maximum), the largest batch seen,
the total against the total for one piece, and the CPU time a piece costs: this process's
(generation, MIDI, picture, reading FluidSynth's output and encoding the audio) and FluidSynth's
(its child processes), from the operating system's accounting over the whole burst.

Run ``python bench/concurrency.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import asyncio
import resource
import tempfile
import time
from pathlib import Path

from _common import median, parser, print_footer, print_header, print_table


async def burst(model: Path, count: int, length: int, batch: int, whole: bool, out: Path) -> dict[str, float]:
    """``count`` compositions started together; their latencies and the total."""
    from composer.service import Composer, ComposeRequest
    from composer.settings import ComposerSettings

    composer = Composer(ComposerSettings(model=model, batch=batch))
    try:
        composer.load()
        await composer.compose(ComposeRequest(length=20, seed=0, audio=whole, picture=whole), out / "warm")

        async def one(seed: int) -> tuple[float, int]:
            request = ComposeRequest(length=length, seed=seed, audio=whole, picture=whole)
            start = time.perf_counter()
            piece = await composer.compose(request, out / f"{count}-{batch}-{seed}")
            return time.perf_counter() - start, piece.events

        before = _cpu()
        start = time.perf_counter()
        results = await asyncio.gather(*(one(seed) for seed in range(1, count + 1)))
        total = time.perf_counter() - start
        after = _cpu()
        latencies = [r[0] for r in results]
        return {
            "total": total,
            "median": median(latencies),
            "max": max(latencies),
            "events": sum(r[1] for r in results),
            "largest batch": composer.largest_batch,
            "cpu self": (after[0] - before[0]) / count,
            "cpu children": (after[1] - before[1]) / count,
        }
    finally:
        composer.close()


def _cpu() -> tuple[float, float]:
    """CPU seconds (user and system) used so far by this process and by its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--length", type=int, default=500, help="events per piece")
    p.add_argument("--counts", default="1,4,16", help="how many compositions at once, comma separated")
    args = p.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if args.quick:
        args.length, counts = 60, [1, 4]
    title = f"Concurrency: {', '.join(map(str, counts))} compositions of {args.length} at once"
    print_header(title, args.model)
    modes = [
        ("generation only, micro-batched", 64, False),
        ("generation only, batch 1", 1, False),
        ("whole piece (MIDI, picture, audio), micro-batched", 64, True),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-") as tmp:
        for label, batch, whole in modes:
            single = None
            for count in counts:
                r = asyncio.run(burst(args.model, count, args.length, batch, whole, Path(tmp)))
                single = single or r["total"]
                rows.append(
                    [
                        label,
                        count,
                        f"{r['total']:.2f}",
                        f"{r['median']:.2f}",
                        f"{r['max']:.2f}",
                        int(r["largest batch"]),
                        f"{r['events'] / r['total']:.0f}",
                        f"{r['total'] / single:.2f}×",
                        f"{r['cpu self']:.2f} + {r['cpu children']:.2f}",
                    ]
                )
                print(f"  {label}, {count} at once: {r['total']:.2f} s", flush=True)
    print()
    print_table(
        [
            "what",
            "at once",
            "total s",
            "latency median s",
            "latency max s",
            "largest batch",
            "events/s",
            "total / total for 1",
            "CPU s a piece (Python + FluidSynth)",
        ],
        rows,
    )
    print_footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
