"""Crash safety with a real process that is really killed (SIGKILL), on a real SQLite file.

The bot runs in a child process (``tests/request_bot_child.py``): a real CadenzaBot with the tiny
model, only Discord's network edge faked, every message Discord creates appended to a file that
survives the kill. A second child on the same data folder serves what is left and exits.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHILD = REPO / "tests" / "request_bot_child.py"


def start(tiny_model_path, tmp_path: Path, name: str, *args: str) -> subprocess.Popen:
    log = (tmp_path / f"{name}.log").open("w")
    command = [sys.executable, str(CHILD), "--model", str(tiny_model_path), "--data", str(tmp_path / "data")]
    command += ["--posts", str(tmp_path / "posts.jsonl"), *args]
    return subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)


def states(tmp_path: Path) -> dict[int, tuple[str, int, int | None]]:
    """Every stored request: (state, attempts, posted message id), read as another process would."""
    path = tmp_path / "data" / "requests.sqlite3"
    if not path.exists():
        return {}
    with sqlite3.connect(path, timeout=30) as db:
        try:
            rows = db.execute("SELECT id, state, attempts, posted_message_id FROM requests").fetchall()
        except sqlite3.OperationalError:  # the schema is being created
            return {}
    return {row[0]: row[1:] for row in rows}


def posts(tmp_path: Path) -> tuple[list[int], Counter, int]:
    """Confirmed request ids, song posts per request id, and posts the fake answered by nonce."""
    confirmed, songs, repeated = [], Counter(), 0
    path = tmp_path / "posts.jsonl"
    for line in path.read_text().splitlines() if path.exists() else ():
        record = json.loads(line)
        if "repeated_nonce" in record:
            repeated += 1
            continue
        message = record["message"]
        title = message["embeds"][0]["title"] if message["embeds"] else ""
        if title.endswith("is in the queue"):
            confirmed.append(int(re.search(r"#(\d+)", title).group(1)))
        elif message["attachments"]:
            songs[int(re.search(r"request #(\d+) is ready", message["content"]).group(1))] += 1
    return confirmed, songs, repeated


def wait_until(condition, child: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert child.poll() is None, f"the bot exited early with status {child.returncode}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def finish(tiny_model_path, tmp_path: Path) -> None:
    """Start a second bot on the same files, with no new requests; it serves the rest and exits."""
    second = start(tiny_model_path, tmp_path, "second")
    assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]


def test_a_bot_killed_while_composing_completes_every_request_after_restart(tiny_model_path, tmp_path):
    first = start(tiny_model_path, tmp_path, "first", "--requests", "5")

    def mid_way() -> bool:
        found = Counter(state for state, _, _ in states(tmp_path).values())
        return len(posts(tmp_path)[0]) == 5 and found["done"] >= 1 and found["composing"] == 1

    try:
        wait_until(mid_way, first, timeout=300)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    before = states(tmp_path)
    killed = [rid for rid, (state, _, _) in before.items() if state == "composing"]
    finish(tiny_model_path, tmp_path)

    confirmed, songs, repeated = posts(tmp_path)
    after = states(tmp_path)
    print(
        f"\naccepted {len(confirmed)}; at the kill: {Counter(s for s, _, _ in before.values())}; "
        f"after the restart: {Counter(s for s, _, _ in after.values())}; "
        f"song posts per request {dict(songs)}; posts answered by nonce {repeated}"
    )
    assert sorted(confirmed) == sorted(after) == [1, 2, 3, 4, 5]
    assert all(state == "done" for state, _, _ in after.values())
    assert songs == Counter(dict.fromkeys(confirmed, 1))  # each posted exactly once
    assert [after[rid][1] for rid in killed] == [2]  # composed again
    assert all(after[rid][2] == before[rid][2] for rid, (state, _, _) in before.items() if state == "done")


def test_a_bot_killed_between_posting_and_recording_the_post_does_not_post_twice(tiny_model_path, tmp_path):
    first = start(
        tiny_model_path, tmp_path, "first", "--requests", "3", "--length", "8", "--die-after-song", "2"
    )
    assert first.wait(timeout=600) == -signal.SIGKILL
    before = states(tmp_path)
    # The worker composes the next request while it posts one, so #3 may have started.
    assert [before[rid][0] for rid in (1, 2)] == ["done", "posting"]
    assert before[3][0] in ("pending", "composing")
    finish(tiny_model_path, tmp_path)

    confirmed, songs, repeated = posts(tmp_path)
    after = states(tmp_path)
    print(f"\nat the kill {before}; after the restart {after}; song posts {dict(songs)}; by nonce {repeated}")
    assert sorted(confirmed) == sorted(after) == [1, 2, 3]
    assert all(state == "done" for state, _, _ in after.values())
    assert songs == Counter({1: 1, 2: 1, 3: 1})
    assert repeated == 1  # the restarted bot sent #2 again and Discord answered with the first post
    assert after[2][1] == 1  # posted from the kept files, not composed again
