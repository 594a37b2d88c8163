"""The bot's side of the job queue: :class:`RemoteComposer` composes through workers over Redis.

It has the interface the bot uses from :class:`~composer.service.Composer` (``load``,
``settings``, ``compose``, ``close``), so instant pieces and song requests go through the queue
unchanged. A job is awaited once, by the one call that queued it, and arq keeps one result per
job id however often the job was started: each piece is handed back, and so posted, once.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import result_key_prefix

from composer.model import artifact
from composer.model.vocabulary import Vocabulary
from composer.queue.settings import QueueSettings
from composer.queue.wire import COMPOSE, piece_from_result, request_to_job
from composer.service import ComposeRequest, Composition
from composer.settings import ComposerSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCard:
    """What the bot needs of the workers' model: its vocabulary (the styles), read without weights."""

    vocabulary: Vocabulary
    path: Path


@dataclass(frozen=True)
class WorkerHealth:
    """One worker's last health record: its jobs done, failed, tried again and running."""

    name: str
    complete: int
    failed: int
    retried: int
    ongoing: int


@dataclass(frozen=True)
class QueueHealth:
    """The queue as the bot sees it: jobs not yet finished, and the workers alive."""

    jobs: int
    workers: tuple[WorkerHealth, ...]

    @property
    def running(self) -> int:
        """Jobs the workers were composing at their last health record (every few seconds)."""
        return sum(w.ongoing for w in self.workers)

    @property
    def waiting(self) -> int:
        """Jobs no worker has taken yet."""
        return max(0, self.jobs - self.running)


class RemoteComposer:
    """Queues each piece as a job for the workers and waits for its files."""

    def __init__(self, settings: ComposerSettings, queue: QueueSettings) -> None:
        self.settings = settings
        self.queue = queue
        self._card: ModelCard | None = None
        self._redis: ArqRedis | None = None

    def load(self) -> ModelCard:
        """The model's description from ``COMPOSER_MODEL`` (the workers' model; no weights are read)."""
        if self._card is None:
            document = artifact.read_document(self.settings.model)
            self._card = ModelCard(Vocabulary.from_dict(document["vocabulary"]), self.settings.model)
        return self._card

    async def compose(self, request: ComposeRequest, out_dir: str | Path) -> Composition:
        """Queue ``request``, wait for a worker to compose it, and write its files into ``out_dir``."""
        fields = request_to_job(request, self.settings.max_input_bytes)
        redis = await self._connect()
        started = time.perf_counter()
        job = await redis.enqueue_job(
            COMPOSE,
            fields,
            _job_id=uuid.uuid4().hex,
            _expires=timedelta(seconds=self.queue.result_timeout),  # nobody waits for it after that
        )
        deadline = asyncio.timeout(self.queue.result_timeout)
        try:
            async with deadline:
                result = await job.result(poll_delay=0.2)
        except BaseException:
            await redis.zrem(self.queue.queue_name, job.job_id)  # nobody waits for it: no worker starts it
            if deadline.expired():
                raise TimeoutError(
                    f"no worker composed job {job.job_id} within {self.queue.result_timeout:g} s; "
                    "are workers running (python -m composer.queue.worker)?"
                ) from None
            raise
        finally:
            await redis.delete(result_key_prefix + job.job_id)  # files are large; they are read now
        piece = piece_from_result(result, out_dir)
        piece.timings["round_trip"] = round(time.perf_counter() - started, 3)
        log.info(
            "job %s: composed by %s (try %d), %.1f s in the queue",
            job.job_id,
            result["worker"],
            result["job_try"],
            piece.timings.get("queue", 0.0),
        )
        return piece

    async def health(self) -> QueueHealth:
        """Jobs in the queue and the workers whose health record has not expired."""
        redis = await self._connect()
        jobs = await redis.zcard(self.queue.queue_name)
        prefix = self.queue.health_key("")
        workers = []
        async for key in redis.scan_iter(match=self.queue.health_pattern):
            record = await redis.get(key)
            if record is None:  # expired between the scan and the read
                continue
            counts = {k: int(v) for k, v in re.findall(rb"j_(\w+)=(\d+)", record)}
            workers.append(
                WorkerHealth(
                    key.decode()[len(prefix) :],
                    counts.get(b"complete", 0),
                    counts.get(b"failed", 0),
                    counts.get(b"retried", 0),
                    counts.get(b"ongoing", 0),
                )
            )
        return QueueHealth(jobs, tuple(sorted(workers, key=lambda w: w.name)))

    async def disconnect(self) -> None:
        """Close the connections to Redis; the next job opens new ones."""
        if self._redis is not None:
            redis, self._redis = self._redis, None
            await redis.aclose()

    def close(self) -> None:
        """Nothing runs here to wait for: the workers compose, and :meth:`disconnect` closes Redis."""

    async def _connect(self) -> ArqRedis:
        if self._redis is None:
            pool = await create_pool(
                RedisSettings.from_dsn(self.queue.redis_url), default_queue_name=self.queue.queue_name
            )
            if self._redis is None:
                self._redis = pool
            else:  # another job connected meanwhile
                await pool.aclose()
        return self._redis
