"""The bot with ``COMPOSER_REDIS_URL`` set: pieces and song requests go to a worker through Redis.

A real bot on :class:`tests.test_bot_support.FakeDiscord`, a real Redis and an arq worker in the
test's event loop on the tiny model.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bot.app import create_bot
from bot.settings import BotSettings
from composer.queue.remote import RemoteComposer
from composer.queue.settings import QueueSettings
from tests.conftest import FAKE_TOKEN
from tests.test_bot import answer, assert_is_a_piece, fields
from tests.test_bot_support import FakeDiscord
from tests.test_worker_remote import running_worker
from tests.test_worker_support import REPO, redis_url  # noqa: F401 - a fixture


async def remote_bot(url: str, model: Path, data: Path, monkeypatch) -> FakeDiscord:
    """A bot whose composer is the job queue at ``url``, set up as at login on a FakeDiscord."""
    monkeypatch.setenv("COMPOSER_REDIS_URL", url)
    monkeypatch.setenv("COMPOSER_MODEL", str(model))
    bot = create_bot(BotSettings(_env_file=None, token=FAKE_TOKEN, cooldown_seconds=0, data_dir=data))
    fake = FakeDiscord()
    fake.install(bot, monkeypatch)
    await bot._async_setup_hook()
    await bot.setup_hook()
    return fake


async def test_with_redis_configured_the_bot_composes_through_the_workers(
    redis_url,  # noqa: F811
    tiny_model_path,
    tiny_composer,
    tmp_path,
    monkeypatch,
):
    fake = await remote_bot(redis_url, tiny_model_path, tmp_path / "data", monkeypatch)
    bot = fake.bot
    try:
        assert isinstance(bot.composer, RemoteComposer)
        await fake.send("!status")
        assert fields(answer(fake))["Workers"].startswith("⚠️ No worker is running; 0 pieces wait")

        with running_worker(bot.composer.queue, tiny_composer, "worker-1") as worker:
            await fake.send("!compose 8 seed=4")
            assert_is_a_piece(fake, answer(fake))
            assert fields(answer(fake))["Seed"] == "4"
            assert worker.jobs_complete == 1

            await fake.send("!status")
            shown = fields(answer(fake))
            assert shown["Workers"].startswith("1 online · ")
            assert "`worker-1` " in shown["Workers"]
            assert shown["Model"].startswith("tiny.cadenza")
        assert list((tmp_path / "data").glob("job-*")) == []  # the job's files are gone
    finally:
        await bot.close()
    assert bot.composer._redis is None  # the bot's connections to Redis are closed


async def test_status_says_when_redis_is_unreachable(tiny_model_path, tmp_path, monkeypatch):
    fake = await remote_bot("redis://127.0.0.1:1/0", tiny_model_path, tmp_path / "data", monkeypatch)
    try:
        await fake.send("!status")
        assert fields(answer(fake))["Workers"] == (
            "⚠️ The job queue (Redis) is unreachable; pieces can't be composed now."
        )
    finally:
        await fake.bot.close()


def test_without_redis_the_bot_composes_in_its_own_process(monkeypatch, tmp_path):
    monkeypatch.delenv("COMPOSER_REDIS_URL", raising=False)
    bot = create_bot(BotSettings(_env_file=None, token=FAKE_TOKEN, data_dir=tmp_path))
    assert type(bot.composer).__name__ == "Composer"
    assert QueueSettings(_env_file=None).redis_url == ""


def test_a_worker_without_redis_or_model_says_what_to_set_in_one_line(tmp_path):
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    for env, expected in (
        ({}, "error: set COMPOSER_REDIS_URL to the Redis the bot queues its jobs in.\n"),
        (
            {"COMPOSER_REDIS_URL": "redis://127.0.0.1:1", "COMPOSER_MODEL": str(tmp_path / "none.cadenza")},
            f"error: No model at {tmp_path / 'none.cadenza'}.",
        ),
        ({"COMPOSER_REDIS_URL": "redis://x", "COMPOSER_WORKER_JOBS": "0"}, "error: fix these settings"),
    ):
        result = subprocess.run(
            [sys.executable, "-m", "composer.queue.worker"],
            cwd=tmp_path,
            env=base | env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2
        assert result.stderr.startswith(expected)
        assert result.stderr.count("\n") == 1, result.stderr
