"""``python -m composer.queue.worker``: a composition worker that serves the bot's Redis job queue.

The queue is arq's: a job stays in Redis until a worker records its result, so nothing is lost
when a worker dies. Each worker loads the model once and runs up to ``COMPOSER_WORKER_JOBS``
jobs at a time through one :class:`~composer.service.Composer`, whose batcher generates all of
them in the same network steps, as in the bot's own process.

A running job holds a lease in Redis (arq's in-progress key, taken for ``COMPOSER_LEASE_SECONDS``)
that the worker renews every third of that time. When a worker is killed the lease runs out and
the next worker to poll takes the job again (arq counts the tries), so the time to recover is the
lease, not the longest job: ``COMPOSER_JOB_TIMEOUT`` can stay generous for long pieces on a busy
machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix
from arq.worker import Worker, func
from pydantic import ValidationError
from redis.exceptions import RedisError

from composer.errors import ComposerError
from composer.queue.settings import QueueSettings
from composer.queue.wire import COMPOSE, piece_to_result, request_from_job
from composer.service import Composer
from composer.settings import ComposerSettings

log = logging.getLogger("composer.queue.worker")

HEALTH_SECONDS = 5
"""How often a worker writes its health record (it lives one second longer)."""


async def compose(ctx: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The job: compose one request and return the piece with its files."""
    composer: Composer = ctx["composer"]
    started = time.time()
    async with _lease(ctx["redis"], ctx["job_id"], ctx["lease_seconds"]):
        with tempfile.TemporaryDirectory(prefix="cadenza-job-") as out_dir:
            piece = await composer.compose(request_from_job(fields), out_dir)
            piece.timings["queue"] = round(max(0.0, started - ctx["enqueue_time"].timestamp()), 3)
            result = piece_to_result(piece, worker=ctx["worker"], job_try=ctx["job_try"])
    log.info(
        "composed job %s (try %d): %d notes in %.1f s",
        ctx["job_id"],
        ctx["job_try"],
        piece.events,
        time.time() - started,
    )
    return result


@contextlib.asynccontextmanager
async def _lease(redis: Any, job_id: str, seconds: float) -> AsyncIterator[None]:
    """Hold the job's in-progress key for ``seconds`` at a time while the body runs."""
    key = in_progress_key_prefix + job_id

    async def renew() -> None:
        while True:
            try:
                await redis.pexpire(key, int(seconds * 1000))
            except RedisError as error:  # a short outage: the next renewal may still be in time
                log.warning("could not renew the lease of job %s: %s", job_id, error)
            await asyncio.sleep(seconds / 3)

    renewing = asyncio.create_task(renew(), name=f"lease-{job_id}")
    try:
        yield
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing


def build_worker(queue: QueueSettings, composer: Composer, name: str | None = None, **options: Any) -> Worker:
    """An arq worker for ``queue`` that composes with ``composer``; ``options`` go to arq's Worker.

    The caller owns the composer: load it first (a missing model is better told before the
    first job) and close it once the worker has stopped.
    """
    name = name or f"{socket.gethostname()}:{os.getpid()}"
    worker = Worker(
        functions=[func(compose, name=COMPOSE)],
        queue_name=queue.queue_name,
        redis_settings=RedisSettings.from_dsn(queue.redis_url),
        ctx={"composer": composer, "worker": name, "lease_seconds": queue.lease_seconds},
        max_jobs=queue.worker_jobs,
        job_timeout=queue.job_timeout,
        max_tries=queue.job_tries,
        keep_result=queue.result_timeout,
        health_check_interval=HEALTH_SECONDS,
        health_check_key=queue.health_key(name),
        poll_delay=0.25,
        log_results=False,  # a result holds megabytes of audio: no repr of it in the log
        **options,
    )
    # arq takes a job with a lock of job_timeout + 10 s; a lease from the start bounds the time to
    # recover from a worker killed before the job's first renewal too.
    worker.in_progress_timeout_s = queue.lease_seconds
    return worker


def main() -> int:
    """Serve the queue until SIGTERM or Ctrl-C; jobs running then go back to the queue for others."""
    try:
        queue = QueueSettings()
        settings = ComposerSettings()
    except ValidationError as error:
        names = ", ".join(f"COMPOSER_{str(e['loc'][0]).upper()} ({e['msg']})" for e in error.errors())
        print(f"error: fix these settings in .env or the environment: {names}.", file=sys.stderr)
        return 2
    if not queue.redis_url:
        print("error: set COMPOSER_REDIS_URL to the Redis the bot queues its jobs in.", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    composer = Composer(settings)
    try:
        composer.load()
    except ComposerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    log.info("model %s; %d jobs at once from %s", settings.model.name, queue.worker_jobs, queue.queue_name)
    try:
        build_worker(queue, composer).run()
    except (RedisError, OSError) as error:
        print(f"error: the Redis in COMPOSER_REDIS_URL cannot be reached: {error}", file=sys.stderr)
        return 2
    finally:
        composer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
