"""The bot's queue client and a worker on a real Redis: the same pieces, errors and limits as at home.

The worker runs in the test's event loop on the shared tiny-model composer, so these tests are
quick; tests/test_worker_kill.py runs workers as processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest
from redis.asyncio import Redis

from composer.errors import InputLimitError, InvalidOptionError
from composer.queue.remote import RemoteComposer
from composer.queue.settings import QueueSettings
from composer.queue.worker import build_worker
from composer.service import ComposeRequest
from composer.settings import ComposerSettings
from tests.test_bot_support import midi_file
from tests.test_worker_support import redis_url  # noqa: F401 - a fixture


@contextlib.contextmanager
def running_worker(queue: QueueSettings, composer, name: str = "test-worker"):
    """An arq worker serving ``queue`` on a thread with its own event loop until the block ends.

    Its own loop keeps its never-ending tasks out of the test's loop, which the bot tests wait
    to be idle.
    """
    started = threading.Event()
    running = {}

    async def serve():
        worker = build_worker(queue, composer, name, handle_signals=False)
        runner = asyncio.create_task(worker.async_run())
        running.update(worker=worker, loop=asyncio.get_running_loop(), stop=asyncio.Event())
        started.set()
        await running["stop"].wait()
        await worker.close()
        with contextlib.suppress(asyncio.CancelledError):
            await runner

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name=name)
    thread.start()
    started.wait(30)
    try:
        yield running["worker"]
    finally:
        running["loop"].call_soon_threadsafe(running["stop"].set)
        thread.join(60)


@pytest.fixture
async def remote(redis_url, tiny_model_path):  # noqa: F811
    composer = RemoteComposer(ComposerSettings(model=tiny_model_path), QueueSettings(redis_url=redis_url))
    yield composer
    await composer.disconnect()


async def test_a_piece_composed_by_a_worker_is_the_piece_composed_here(remote, tiny_composer, tmp_path):
    request = ComposeRequest(length=16, seed=5, audio=False)
    with running_worker(remote.queue, tiny_composer):
        far = await remote.compose(request, tmp_path / "remote")
    near = await tiny_composer.compose(request, tmp_path / "here")

    assert far.midi.parent == tmp_path / "remote"
    assert far.midi.read_bytes() == near.midi.read_bytes()
    assert far.picture.read_bytes().startswith(b"\x89PNG")
    assert far.audio is None
    assert (far.seed, far.events, far.key, far.tempo, far.style) == (
        near.seed,
        near.events,
        near.key,
        near.tempo,
        near.style,
    )
    assert {"generate", "total", "queue", "round_trip"} <= far.timings.keys()


async def test_a_continuation_takes_the_primer_along(remote, tiny_composer, tmp_path):
    request = ComposeRequest(length=8, seed=3, primer=midi_file(), primer_name="mine.mid", audio=False)
    with running_worker(remote.queue, tiny_composer):
        far = await remote.compose(request, tmp_path / "remote")
    near = await tiny_composer.compose(request, tmp_path / "here")

    assert far.primer_events == near.primer_events == 8
    assert far.midi.name == "continuation-3.mid"
    assert far.midi.read_bytes() == near.midi.read_bytes()


async def test_a_mistake_comes_back_as_the_same_friendly_error(remote, tiny_composer, tmp_path):
    with (
        running_worker(remote.queue, tiny_composer),
        pytest.raises(InvalidOptionError, match="This model knows the styles bach, folk, not 'jazz'"),
    ):
        await remote.compose(ComposeRequest(length=8, style="jazz"), tmp_path)


async def test_a_primer_over_the_input_limit_is_refused_before_it_is_queued(tiny_model_path, tmp_path):
    settings = ComposerSettings(model=tiny_model_path, max_input_bytes=1000)
    unreachable = QueueSettings(redis_url="redis://127.0.0.1:1/0")
    piece = tmp_path / "big.mid"
    piece.write_bytes(midi_file(tuple(range(40, 90)) * 4))
    request = ComposeRequest(length=8, primer=piece, primer_name="big.mid")
    with pytest.raises(InputLimitError, match=r"big.mid is 1,\d{3} bytes; the limit is 1,000 bytes"):
        await RemoteComposer(settings, unreachable).compose(request, tmp_path)


async def test_the_model_card_has_the_styles_without_loading_the_network(remote):
    card = remote.load()
    assert card.vocabulary.styles == ("bach", "folk")
    assert remote.load() is card


async def test_health_shows_the_live_workers_and_forgets_a_stopped_one(remote, tiny_composer, tmp_path):
    with running_worker(remote.queue, tiny_composer, "worker-1"):
        await remote.compose(ComposeRequest(length=8, audio=False, picture=False), tmp_path)
        health = await remote.health()
        assert [w.name for w in health.workers] == ["worker-1"]
        assert health.jobs == 0
        # Counts are as of the worker's last health record, written every few seconds.
        async with asyncio.timeout(30):
            while health.workers[0].complete == 0:
                await asyncio.sleep(0.2)
                health = await remote.health()
        assert (health.running, health.waiting, health.workers[0].failed) == (0, 0, 0)
    assert (await remote.health()).workers == ()


async def test_without_workers_the_client_gives_up_in_time_and_withdraws_the_job(
    redis_url,  # noqa: F811
    tiny_model_path,
    tmp_path,
):
    queue = QueueSettings(redis_url=redis_url, result_timeout=1)
    remote = RemoteComposer(ComposerSettings(model=tiny_model_path), queue)
    try:
        with pytest.raises(TimeoutError, match=r"no worker composed job \w+ within 1 s"):
            await remote.compose(ComposeRequest(length=8), tmp_path)
        health = await remote.health()
        assert (health.jobs, health.workers) == (0, ())
    finally:
        await remote.disconnect()


async def test_no_job_lease_or_result_stays_in_redis_once_the_client_has_the_piece(
    remote, tiny_composer, tmp_path
):
    with running_worker(remote.queue, tiny_composer):
        await remote.compose(ComposeRequest(length=8, audio=False), tmp_path)
    async with Redis.from_url(remote.queue.redis_url) as redis:
        assert await redis.keys("arq:*") == []


def test_a_worker_whose_redis_cannot_be_reached_says_so_in_one_line(tiny_model_path, tmp_path):
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {
        "COMPOSER_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "COMPOSER_MODEL": str(tiny_model_path),
    }
    done = subprocess.run(
        [sys.executable, "-m", "composer.queue.worker"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("error: the Redis in COMPOSER_REDIS_URL cannot be reached")
    )
    assert "Traceback" not in done.stderr
