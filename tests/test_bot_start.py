"""Starting the bot without a network: a real ``python -m bot`` whose Discord is a closed port.

Only the address of Discord's HTTP API is changed (to a port on this machine that refuses
connections); everything else, from the settings to discord.py's login and aiohttp, runs as in
production.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAKE_TOKEN

REPO = Path(__file__).resolve().parent.parent
START_AGAINST = (
    "import sys, discord.http\n"
    "discord.http.Route.BASE = sys.argv[1]\n"
    "from bot.__main__ import main\n"
    "sys.exit(main())\n"
)


@pytest.fixture
def refusing_url():
    """An http address on this machine where nothing listens: a bound socket that never accepts."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{closed.getsockname()[1]}/api/v10"


def bot_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A well-formed token and a data folder of the test's own, and nothing from this machine's .env."""
    return {
        "PYTHONPATH": str(REPO),
        "PATH": os.environ.get("PATH", ""),
        "BOT_TOKEN": FAKE_TOKEN,
        "BOT_DATA_DIR": str(tmp_path / "data"),
        **settings,
    }


def start_bot(url: str, tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", START_AGAINST, url],
        cwd=tmp_path,
        env=bot_env(tmp_path, **settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bot_that_cannot_reach_discord_says_so_in_one_line(refusing_url, tmp_path):
    result = start_bot(refusing_url, tmp_path, BOT_CONNECT_RETRY_SECONDS="0", BOT_LOG_LEVEL="WARNING")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: cannot reach Discord (Cannot connect to host 127.0.0.1:")
    assert "tried once. Check the network" in result.stderr
    assert "BOT_CONNECT_RETRY_SECONDS" in result.stderr


def test_it_tries_again_with_back_off_before_giving_up(refusing_url, tmp_path):
    result = start_bot(refusing_url, tmp_path, BOT_CONNECT_RETRY_SECONDS="2.5")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    retries = [line for line in lines if "cannot reach Discord" in line and "trying again" in line]
    assert len(retries) == 2 and retries[0].endswith("trying again in 1 s")  # then what is left of 2.5 s
    assert lines[-1].startswith("error: cannot reach Discord (Cannot connect to host 127.0.0.1:")
    assert "tried 3 times in 3 s" in lines[-1]


def test_sigterm_while_it_waits_to_try_again_stops_it_at_once(refusing_url, tmp_path):
    bot = subprocess.Popen(
        [sys.executable, "-c", START_AGAINST, refusing_url],
        cwd=tmp_path,
        env=bot_env(tmp_path, BOT_CONNECT_RETRY_SECONDS="600"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while "trying again" not in (line := bot.stderr.readline()):
            assert line, "the bot stopped before it tried again"
        bot.terminate()
        assert bot.wait(timeout=30) == 0
        assert "Traceback" not in bot.stderr.read()
    finally:
        bot.kill()
        bot.stderr.close()
