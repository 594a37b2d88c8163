"""Jobs survive a worker killed mid-job: a real Redis, two worker processes, the bot's queue client.

Twenty pieces are queued; the first worker is killed with SIGKILL while it composes. Every piece
must come back to the client exactly once, the killed worker's unfinished jobs composed again by
the other worker once their lease ran out, and Redis left with no job, lease or result behind.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
import time
from datetime import datetime

from redis.asyncio import Redis

from composer.queue.remote import RemoteComposer
from composer.queue.settings import QueueSettings
from composer.service import ComposeRequest
from composer.settings import ComposerSettings
from tests.test_worker_support import redis_url, start_worker  # noqa: F401 - redis_url is a fixture

JOBS = 20
LEASE = 3.0

STARTED = re.compile(r"→ (\w+):compose")
COMPOSED = re.compile(r"^(\S+ \S+) INFO composer\.worker: composed job (\w+) \(try (\d+)\)", re.M)
RETAKEN = re.compile(r"^(\S+ \S+) INFO arq\.worker: .*→ (\w+):compose\(.*try=(\d+)", re.M)
RECEIVED = re.compile(r"job (\w+): composed by (\S+) \(try (\d+)\)")


def when(stamp: str) -> float:
    """The time of a log line's ``asctime``."""
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


async def wait_for_workers(remote: RemoteComposer, count: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while len((await remote.health()).workers) < count:
        assert time.monotonic() < deadline, f"{count} workers did not start in {timeout:g} s"
        await asyncio.sleep(0.2)


async def test_a_job_whose_worker_is_killed_is_composed_by_another_exactly_once(
    redis_url,  # noqa: F811
    tiny_model_path,
    tmp_path,
    caplog,
):
    caplog.set_level(logging.INFO, logger="composer.queue.remote")
    queue = QueueSettings(redis_url=redis_url, worker_jobs=4, lease_seconds=LEASE, result_timeout=300)
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers = [start_worker(queue, tiny_model_path, log) for log in logs]
    remote = RemoteComposer(ComposerSettings(model=tiny_model_path), queue)
    try:
        await wait_for_workers(remote, 2)
        requests = [ComposeRequest(length=200, seed=i, audio=False, picture=False) for i in range(JOBS)]
        began = time.monotonic()
        jobs = [asyncio.create_task(remote.compose(r, tmp_path / str(i))) for i, r in enumerate(requests)]

        # Kill worker A while it holds a job it has not finished.
        while True:
            text = logs[0].read_text()
            holding = set(STARTED.findall(text)) - {job for _, job, _ in COMPOSED.findall(text)}
            if holding:
                workers[0].send_signal(signal.SIGKILL)
                killed_at = time.time()
                workers[0].wait(10)
                break
            assert time.monotonic() - began < 120, "worker A took no job"
            await asyncio.sleep(0.02)

        pieces = await asyncio.wait_for(asyncio.gather(*jobs), timeout=240)
        took = time.monotonic() - began

        # Every piece came back once, with its files and the notes asked for.
        assert len(pieces) == JOBS
        assert [p.seed for p in pieces] == list(range(JOBS))
        assert all(p.midi.is_file() and p.midi.read_bytes().startswith(b"MThd") for p in pieces)
        received = [m.groups() for r in caplog.records if (m := RECEIVED.search(r.getMessage()))]
        assert len(received) == JOBS
        assert len({job for job, _, _ in received}) == JOBS

        # What A held when it died was composed by B, on a second try, after A's lease ran out.
        a_log, b_log = (log.read_text() for log in logs)
        a_started = set(STARTED.findall(a_log))
        a_composed = {job for _, job, _ in COMPOSED.findall(a_log)}
        lost = a_started - a_composed
        assert lost, "worker A was killed before it held a job"
        by_job = {job: (worker, int(job_try)) for job, worker, job_try in received}
        a_name = f"{socket.gethostname()}:{workers[0].pid}"
        assert all(by_job[job][0] != a_name and by_job[job][1] >= 2 for job in lost)
        retaken = {job: when(stamp) for stamp, job, _ in RETAKEN.findall(b_log)}
        assert lost <= retaken.keys()
        pick_up = max(retaken[job] for job in lost) - killed_at
        # The lease, then a free slot among B's jobs (each well under a few seconds here).
        assert 0 < pick_up < LEASE + 15, pick_up
        print(f"\n{JOBS} jobs in {took:.1f} s; {len(lost)} taken again {pick_up:.1f} s after the kill")

        # Nothing is left in Redis: no job, no lease, no result.
        async with Redis.from_url(redis_url) as redis:
            assert await redis.zcard(queue.queue_name) == 0
            assert await redis.keys("arq:*") == []
    finally:
        await remote.disconnect()
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(30)
