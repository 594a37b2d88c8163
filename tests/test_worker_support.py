"""A real ``redis-server`` on a free localhost port, and composition workers as real processes.

This module holds no tests; it is named ``test_worker_*`` only because the worker tests are.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.queue.settings import QueueSettings

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path) -> Iterator[str]:
    """A fresh, empty Redis for one test; skipped only where ``redis-server`` is not installed."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (scripts/install.sh installs it with apt-get)")
    port = free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def start_worker(queue: QueueSettings, model: Path, log: Path) -> subprocess.Popen:
    """``python -m composer.queue.worker`` on ``queue`` with ``model``, logging into ``log``."""
    env = os.environ | {
        "COMPOSER_REDIS_URL": queue.redis_url,
        "COMPOSER_QUEUE_NAME": queue.queue_name,
        "COMPOSER_MODEL": str(model),
        "COMPOSER_WORKER_JOBS": str(queue.worker_jobs),
        "COMPOSER_LEASE_SECONDS": str(queue.lease_seconds),
        "COMPOSER_WORKERS": "2",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "composer.queue.worker"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
