"""Settings of the Redis job queue between the bot and composition workers (``COMPOSER_*``).

Kept apart from :mod:`composer.settings` and light to import: the bot reads them before it loads
anything heavy, to report a wrong value in one line. With ``COMPOSER_REDIS_URL`` empty (the
default) there is no queue and the bot composes in its own process.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class QueueSettings(BaseSettings):
    """Where the queue is, and the time limits that make a job survive the death of its worker."""

    model_config = SettingsConfigDict(
        env_prefix="COMPOSER_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    redis_url: str = Field(
        "", description="Redis of the job queue (redis://host:6379/0); empty: compose in the bot's process"
    )
    queue_name: str = Field("cadenza:compose", min_length=1, description="name of the queue in Redis")
    worker_jobs: int = Field(
        8, ge=1, le=256, description="jobs one worker process composes at once, generated in one batch"
    )
    lease_seconds: float = Field(
        15.0,
        ge=1,
        le=600,
        description="a job whose worker stops renewing its lease this long goes to another one",
    )
    job_timeout: float = Field(300.0, ge=5, description="longest one job may run on a worker before it fails")
    job_tries: int = Field(3, ge=1, le=20, description="times a job is started before it is given up")
    result_timeout: float = Field(
        600.0, ge=1, description="longest the bot waits for a job, time in the queue included"
    )

    def health_key(self, worker: str) -> str:
        """The Redis key where ``worker`` reports its health; it expires when the worker stops."""
        return f"{self.queue_name}:health-check:{worker}"

    @property
    def health_pattern(self) -> str:
        """A Redis ``SCAN`` pattern that matches the health keys of every worker of this queue."""
        return self.health_key("*")
