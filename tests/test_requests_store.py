"""The request store on a real SQLite file: schema versions, limits, isolation, recovery."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from bot.failures import Refusal
from bot.requests.store import MIGRATIONS, RequestStore

GUILD, OTHER = 1, 2


@pytest.fixture
async def store(tmp_path):
    store = RequestStore(tmp_path / "data" / "requests.sqlite3")
    yield store
    await store.close()


async def add(store: RequestStore, author: int = 10, guild: int = GUILD, **limits):
    return await store.add(
        guild_id=guild,
        channel_id=100,
        author_id=author,
        message_id=None,
        text="a tune",
        settings={"length": 8},
        primer=None,
        primer_name="",
        member_limit=limits.get("member_limit", 3),
        guild_limit=limits.get("guild_limit", 50),
    )


async def test_the_file_is_made_on_first_use_in_wal_mode_at_the_newest_schema(store):
    assert not store.path.exists()
    assert await store.schema_version() == len(MIGRATIONS)
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


async def test_reopening_keeps_the_data_and_migrates_nothing_again(store, tmp_path):
    request = await add(store)
    await store.close()
    again = RequestStore(store.path)
    assert (await again.get(GUILD, request.id)).text == "a tune"
    assert await again.schema_version() == len(MIGRATIONS)
    await again.close()


async def test_a_file_from_a_newer_version_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "requests.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    store = RequestStore(path)
    with pytest.raises(RuntimeError, match="newer than this Cadenza knows"):
        await store.schema_version()


async def test_limits_hold_when_requests_arrive_at_once(store):
    results = await asyncio.gather(*(add(store, member_limit=3) for _ in range(8)), return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 3
    assert all(isinstance(r, Refusal) for r in results if isinstance(r, Exception))

    others = await asyncio.gather(*(add(store, author) for author in range(20, 30)), return_exceptions=True)
    assert len(await store.queue(GUILD)) == 13
    await asyncio.gather(
        *(add(store, author, guild_limit=15) for author in range(40, 50)), return_exceptions=True
    )
    assert len(await store.queue(GUILD)) == 15
    assert all(not isinstance(r, Exception) for r in others)


async def test_finished_requests_no_longer_count_against_the_limit(store):
    first = await add(store, member_limit=1)
    with pytest.raises(Refusal):
        await add(store, member_limit=1)
    await store.cancel(GUILD, first.id, "changed my mind", author_id=10)
    await add(store, member_limit=1)


async def test_one_guild_cannot_see_or_change_anothers_requests(store):
    request = await add(store, guild=GUILD)
    assert await store.get(OTHER, request.id) is None
    assert await store.queue(OTHER) == []
    for attempt in (
        store.vote(OTHER, request.id, 99),
        store.cancel(OTHER, request.id, "no"),
        store.cancel(OTHER, request.id, "no", author_id=10),
    ):
        with pytest.raises(Refusal, match=f"There is no request #{request.id} here."):
            await attempt
    assert await store.clear(OTHER, "everything") == 0
    await store.set_rules(OTHER, paused=True, member_limit=1)
    assert (await store.rules(GUILD)).paused is False
    assert (await store.get(GUILD, request.id)).state == "pending"
    assert (await store.get(GUILD, request.id)).votes == 0


async def test_a_request_being_composed_when_the_bot_stopped_is_put_back_in_line(store):
    request = await add(store)
    started = await store.start(request.id)
    assert (started.state, started.attempts) == ("composing", 1)
    await store.close()

    assert await store.recover() == 1
    again = await store.get(GUILD, request.id)
    assert (again.state, again.attempts) == ("pending", 1)


async def test_the_worker_posts_what_is_composed_first_and_skips_paused_guilds(store):
    paused = await add(store, guild=OTHER)
    waiting = await add(store, guild=GUILD)
    await store.set_rules(OTHER, paused=True)
    assert (await store.next_request({})).id == waiting.id

    await store.start(paused.id)
    await store.composed(paused.id, {"midi": "x.mid"})
    chosen = await store.next_request({})
    assert (chosen.id, chosen.state) == (paused.id, "posting")  # composed before the pause: posted
    await store.posted(paused.id, 555)
    assert (await store.next_request({})).id == waiting.id
    await store.set_rules(GUILD, paused=True)
    assert await store.next_request({}) is None


async def test_history_is_newest_first_in_pages(store):
    for author in range(12):
        request = await add(store, author)
        await store.start(request.id)
        await store.composed(request.id, {})
        await store.posted(request.id, 1000 + request.id)
    first, total = await store.history(GUILD, 10)
    second, _ = await store.history(GUILD, 10, 10)
    assert total == 12
    assert [r.id for r in first + second] == list(range(12, 0, -1))
    assert (await store.history(OTHER, 10)) == ([], 0)


async def test_a_request_whose_post_is_under_way_is_not_handed_out_again(store):
    first, second = await add(store), await add(store, 1)
    for request in (first, second):
        await store.start(request.id)
        await store.composed(request.id, {})
    assert (await store.next_request({}, posting=[first.id])).id == second.id
    assert await store.next_request({}, posting={first.id, second.id}) is None
