"""Throughput of ``compose 500`` jobs through Redis with 1, 2 and 4 worker processes.

Why: with ``COMPOSER_REDIS_URL`` set the bot only queues jobs, and composition scales with the
worker processes (``python -m composer.queue.worker``) on as many machines as the load needs. This
starts a private ``redis-server`` on a free localhost port, then for each worker count starts
that many workers on the model, queues ``--jobs`` whole pieces at once (MIDI, picture and audio,
as the bot asks for) through the bot's client (:class:`composer.queue.remote.RemoteComposer`) and
times them until the last one is back. Each worker's first piece pays the imports of music21
and matplotlib (about 1-2 s), as it does after every worker start.

The workers' CPU seconds per job (their start-up included) say how many jobs a minute a core
can take, whatever else shares the machine. It also times what each job costs Redis: a round
trip, and storing and reading back a result of the median size, to project where many
machines' bottleneck would be.

Run ``python bench/workers.py`` (``--quick`` for a smoke run); needs ``redis-server``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, median, parser, print_footer, print_header, print_table


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """A private redis-server without persistence; its process and URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def start_workers(count: int, url: str, model: Path, logs: Path) -> list[subprocess.Popen]:
    env = os.environ | {"COMPOSER_REDIS_URL": url, "COMPOSER_MODEL": str(model)}
    workers = []
    for i in range(count):
        with (logs / f"worker-{count}-{i}.log").open("wb") as log:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "composer.queue.worker"], cwd=ROOT, env=env, stdout=log, stderr=log
                )
            )
    return workers


def stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        worker.wait(60)


def children_cpu() -> float:
    """CPU seconds of the processes this one has waited for: the workers and their FluidSynth runs."""
    t = os.times()
    return t.children_user + t.children_system


async def run_jobs(
    url: str, model: Path, workers: int, jobs: int, length: int, out: Path
) -> dict[str, float]:
    """Queue ``jobs`` pieces at once once ``workers`` are up; wall time, latencies, events, sizes."""
    from composer.queue.remote import RemoteComposer
    from composer.queue.settings import QueueSettings
    from composer.service import ComposeRequest
    from composer.settings import ComposerSettings

    remote = RemoteComposer(ComposerSettings(model=model), QueueSettings(redis_url=url))
    try:
        while len((await remote.health()).workers) < workers:
            await asyncio.sleep(0.2)

        async def one(seed: int) -> tuple[float, int, int]:
            start = time.perf_counter()
            piece = await remote.compose(ComposeRequest(length=length, seed=seed), out / f"{workers}-{seed}")
            size = sum(p.stat().st_size for p in (piece.midi, piece.audio, piece.picture) if p)
            return time.perf_counter() - start, piece.events, size

        start = time.perf_counter()
        results = await asyncio.gather(*(one(seed) for seed in range(jobs)))
        total = time.perf_counter() - start
        return {
            "total": total,
            "median": median([r[0] for r in results]),
            "max": max(r[0] for r in results),
            "events": sum(r[1] for r in results),
            "bytes": median([r[2] for r in results]),
        }
    finally:
        await remote.disconnect()


async def redis_costs(url: str, size: int, repeats: int = 50) -> dict[str, float]:
    """Median seconds of a Redis round trip, and of storing then reading ``size`` bytes."""
    from redis.asyncio import Redis

    payload = os.urandom(size)
    async with Redis.from_url(url) as redis:
        pings, transfers = [], []
        for i in range(repeats):
            start = time.perf_counter()
            await redis.ping()
            pings.append(time.perf_counter() - start)
            start = time.perf_counter()
            await redis.set(f"bench:{i}", payload)
            await redis.get(f"bench:{i}")
            await redis.delete(f"bench:{i}")
            transfers.append(time.perf_counter() - start)
    return {"ping": median(pings), "transfer": median(transfers)}


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--length", type=int, default=500, help="events per piece")
    p.add_argument("--jobs", type=int, default=12, help="pieces queued at once for each worker count")
    p.add_argument("--workers", default="1,2,4", help="worker processes, comma separated")
    args = p.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    if args.quick:
        args.length, args.jobs, counts = 60, 4, [1, 2]
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (apt-get install redis-server)", file=sys.stderr)
        return 2
    print_header(
        f"Workers: {args.jobs} jobs of compose {args.length} with {args.workers} workers", args.model
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="cadenza-bench-") as tmp:
        folder = Path(tmp)
        server, url = start_redis(folder)
        try:
            single = None
            for count in counts:
                cpu = children_cpu()
                workers = start_workers(count, url, args.model, folder)
                try:
                    r = asyncio.run(run_jobs(url, args.model, count, args.jobs, args.length, folder))
                finally:
                    stop(workers)
                cpu = children_cpu() - cpu  # start-up and imports of the workers included
                single = single or r["total"]
                rows.append(
                    [
                        count,
                        f"{r['total']:.1f}",
                        f"{60 * args.jobs / r['total']:.1f}",
                        f"{r['events'] / r['total']:.0f}",
                        f"{r['median']:.1f}",
                        f"{r['max']:.1f}",
                        f"{single / r['total']:.2f}×",
                        f"{cpu / args.jobs:.1f}",
                    ]
                )
                print(f"  {count} workers: {r['total']:.1f} s", flush=True)
            size = int(r["bytes"])
            costs = asyncio.run(redis_costs(url, size))
        finally:
            server.terminate()
            server.wait(10)
    print()
    print_table(
        [
            "workers",
            "wall s",
            "jobs/min",
            "events/s",
            "latency median s",
            "latency max s",
            "speed-up",
            "worker CPU s per job",
        ],
        rows,
    )
    print(
        f"median result {size / 2**20:.2f} MB (MIDI, picture, audio); Redis round trip "
        f"{costs['ping'] * 1000:.2f} ms; storing and reading back a result {costs['transfer'] * 1000:.1f} ms"
    )
    print_footer()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
