"""The bot under Discord's rate limits: place updates are coalesced, a finished piece gives its
composer slot back before it is uploaded, and the request worker composes the next song while the
last one is posted."""

from __future__ import annotations

import asyncio

from bot.progress import ProgressMessage
from tests.test_bot_support import ALICE, BOB, GUILD_ID


class Message:
    """Discord's side of one message: what it says, and every edit with its time."""

    def __init__(self, content: str) -> None:
        self.content = content
        self.edits: list[tuple[float, dict]] = []

    async def edit(self, **content) -> Message:
        self.edits.append((asyncio.get_running_loop().time(), content))
        self.content = content.get("content", self.content)
        return self


def progress(every: float) -> tuple[ProgressMessage, list[Message]]:
    posted: list[Message] = []

    async def post(text: str) -> Message:
        posted.append(Message(text))
        return posted[-1]

    return ProgressMessage(lambda place: f"#{place}", post, every=every), posted


async def test_places_are_edited_in_at_most_every_few_seconds_and_only_the_latest():
    message, posted = progress(every=1.0)
    await message.show(4)
    for place in (3, 2, 1):  # three pieces end in quick succession
        await message.show(place)
    await asyncio.sleep(0.2)
    assert posted[0].edits == []  # too soon after the post
    await asyncio.sleep(1.0)
    (first,) = posted[0].edits
    assert first[1] == {"content": "#1"}  # the latest place, once
    await message.show(0)
    await asyncio.sleep(0.3)
    assert len(posted[0].edits) == 1  # within a second of the last edit
    await asyncio.sleep(0.8)
    assert posted[0].edits[-1][1] == {"content": "#0"}
    assert posted[0].edits[-1][0] - first[0] >= 1.0
    assert len(posted) == 1


async def test_the_answer_drops_place_updates_not_sent_yet():
    message, posted = progress(every=5.0)
    await message.show(2)
    await message.show(1)
    await message.show(0)
    answer = await message.finish(content=None, embed="the piece")
    await asyncio.sleep(0)
    assert answer is posted[0]
    assert [content for _, content in posted[0].edits] == [{"content": None, "embed": "the piece"}]


async def test_a_finished_piece_gives_its_slot_back_before_it_is_uploaded(make_bot, monkeypatch):
    """With one composer slot, the second member's piece is composed and posted while the first
    member's answer is still held up by Discord (a channel over its upload rate limit)."""
    fake = await make_bot(max_jobs=1)
    answer_discord = fake.bot.http.request
    held = asyncio.Event()
    uploads = []

    async def slow_first_upload(route, **kwargs):
        if route.method == "PATCH" and kwargs.get("files"):
            uploads.append(route)
            if len(uploads) == 1:
                await held.wait()
        return await answer_discord(route, **kwargs)

    monkeypatch.setattr(fake.bot.http, "request", slow_first_upload)
    for author in ({}, {"author": BOB}):
        fake.bot._connection.parsers["MESSAGE_CREATE"](fake.user_message("!compose 8", **author))

    async def second_upload():
        while len(uploads) < 2:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(second_upload(), timeout=60)  # the first upload is still held
    held.set()
    await fake.settle()
    assert len([m for m in fake.bot_messages() if m["attachments"]]) == 2


async def test_a_composed_request_is_posted_while_the_next_one_is_composed(make_bot, monkeypatch):
    """The request worker composes one song at a time; while Discord holds up the first song's
    upload, it composes the second, and the channel still gets the songs in their order."""
    fake = await make_bot()
    answer_discord = fake.bot.http.request
    held = asyncio.Event()
    uploads = []

    async def slow_first_upload(route, **kwargs):
        if route.method == "POST" and kwargs.get("files"):
            uploads.append(route)
            if len(uploads) == 1:
                await held.wait()
        return await answer_discord(route, **kwargs)

    compose = fake.bot.composer.compose
    composed = []

    async def counted(request, out):
        piece = await compose(request, out)
        composed.append(piece)
        return piece

    monkeypatch.setattr(fake.bot.http, "request", slow_first_upload)
    monkeypatch.setattr(fake.bot.composer, "compose", counted)
    for author in ({}, {"author": BOB}):
        fake.bot._connection.parsers["MESSAGE_CREATE"](fake.user_message("!request 8 notes", **author))

    async def second_composed():
        while len(composed) < 2:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(second_composed(), timeout=60)  # the first upload is still held
    assert len(uploads) == 1  # and the second song waits for it, not beside it
    held.set()
    await fake.settle()
    songs = [m["content"] for m in fake.bot_messages() if m["attachments"]]
    assert songs == [
        f"<@{ALICE['id']}> your request #1 is ready.",
        f"<@{BOB['id']}> your request #2 is ready.",
    ]
    states = [(await fake.bot.requests.get(GUILD_ID, n)).state for n in (1, 2)]
    assert states == ["done", "done"]
