"""A real Cadenza bot in its own process, for the kill-and-restart test (``test_requests_kill.py``).

It builds a real :class:`bot.app.CadenzaBot` on a model and a data folder (the SQLite file and the
songs), with only Discord's network edge faked by :class:`tests.test_bot_support.FakeDiscord`.
Every message Discord creates is appended to ``--posts`` as a JSON line, flushed and fsynced, so
the parent can count posts after a ``kill -9``; a later process loads that file back, as Discord
keeps its messages (and answers a repeated nonce with the first message) across restarts of a bot.

    python tests/request_bot_child.py --model M --data DIR --posts FILE --requests 5
    python tests/request_bot_child.py --model M --data DIR --posts FILE   # serve what is left, exit

``--die-after-song N`` kills the process (SIGKILL) right after Discord created its Nth song post,
before the bot can record it: the worst moment for duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402 - after the path, for the MonkeyPatch that installs the fake

from tests.test_bot_support import ALICE, BOB, FakeDiscord, Request  # noqa: E402

TOKEN = "MTA" + "x" * 21 + ".abcdef." + "y" * 27
CAROL = {"id": "800000000000000003", "username": "carol", "discriminator": "0", "avatar": None}


class RecordingDiscord(FakeDiscord):
    """The fake, with the messages it creates kept in a file that outlives the process."""

    def __init__(self, posts: Path, die_after_song: int | None) -> None:
        super().__init__()
        self.posts = posts
        self.die_after_song = die_after_song
        self.songs = 0
        if posts.exists():
            for line in posts.read_text().splitlines():
                record = json.loads(line)
                if "message" in record:
                    message = record["message"]
                    self.messages[int(message["id"])] = message
                    if message.get("nonce"):
                        self.nonces[int(message["channel_id"]), message["nonce"]] = int(message["id"])

    def _create_once(self, channel_id: int, request: Request) -> dict[str, Any]:
        payload = request.payload or {}
        repeated = payload.get("enforce_nonce") and (channel_id, payload.get("nonce")) in self.nonces
        message = super()._create_once(channel_id, request)
        self._append({"repeated_nonce": payload["nonce"]} if repeated else {"message": message})
        if not repeated and message["attachments"]:
            self.songs += 1
            if self.songs == self.die_after_song:
                os.kill(os.getpid(), signal.SIGKILL)
        return message

    def _append(self, record: dict[str, Any]) -> None:
        with self.posts.open("a") as out:
            out.write(json.dumps(record) + "\n")
            out.flush()
            os.fsync(out.fileno())


async def main(args: argparse.Namespace) -> None:
    from bot.app import create_bot
    from bot.settings import BotSettings
    from composer.service import Composer
    from composer.settings import ComposerSettings

    composer = Composer(ComposerSettings(model=args.model), workers=1)
    settings = BotSettings(_env_file=None, token=TOKEN, cooldown_seconds=0, max_jobs=1, data_dir=args.data)
    bot = create_bot(settings, composer)
    fake = RecordingDiscord(args.posts, args.die_after_song)
    with pytest.MonkeyPatch.context() as patch:
        fake.install(bot, patch)
        await bot._async_setup_hook()
        await bot.setup_hook()  # goes on with what an earlier process left
        authors = (ALICE, BOB, CAROL)
        for number in range(args.requests):
            author = authors[number % len(authors)]
            mood = ("sad", "happy", "calm")[number % 3]
            text = f"!request {args.length} notes, a {mood} tune for {author['username']}"
            payload = fake.user_message(text, author=author)
            bot._connection.parsers["MESSAGE_CREATE"](payload)
        await fake.settle(timeout=600)
        await bot.close()
    composer.close()
    print("idle", flush=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--posts", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=0, help="!request messages to send")
    parser.add_argument("--length", type=int, default=60, help="notes in each request")
    parser.add_argument("--die-after-song", type=int, default=None)
    asyncio.run(main(parser.parse_args()))
