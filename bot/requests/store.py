"""Song requests on disk: one SQLite file (WAL) through aiosqlite, schema versioned and migrated at start.

Every state change is committed before what it announces happens: a request is stored before
it is confirmed, marked ``composing`` before the composer starts, ``posting`` once its files are
kept, and ``done`` with the posted message's id right after the post. So a bot killed at any
moment restarts with every accepted request, composes again only what was being composed, and
never posts again a request whose post was recorded.

States: ``pending`` (waiting its turn), ``composing``, ``posting`` (files kept, the post is next),
``done``, ``failed`` (``error`` says why) and ``cancelled``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import aiosqlite

from bot.failures import Refusal
from bot.requests.order import Waiting, fair_order, next_across_guilds, round_for

log = logging.getLogger(__name__)

ACTIVE = ("pending", "composing", "posting")
"""States that count against the limits: the request is not finished yet."""

MIGRATIONS = (
    """
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        guild_id INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        author_id INTEGER NOT NULL,
        message_id INTEGER,
        text TEXT NOT NULL,
        settings TEXT NOT NULL,
        primer BLOB,
        primer_name TEXT NOT NULL DEFAULT '',
        round INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'composing', 'posting', 'done', 'failed', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        piece TEXT,
        stored INTEGER NOT NULL DEFAULT 0,
        posted_message_id INTEGER
    );
    CREATE INDEX requests_by_guild_and_state ON requests (guild_id, state);
    CREATE TABLE votes (
        request_id INTEGER NOT NULL REFERENCES requests (id),
        user_id INTEGER NOT NULL,
        PRIMARY KEY (request_id, user_id)
    );
    CREATE TABLE guilds (
        guild_id INTEGER PRIMARY KEY,
        paused INTEGER NOT NULL DEFAULT 0,
        member_limit INTEGER,
        guild_limit INTEGER
    );
    """,
    "ALTER TABLE guilds ADD COLUMN voice INTEGER NOT NULL DEFAULT 0",
)
"""The schema, one script per version; version N is ``MIGRATIONS[N - 1]``. Only ever append."""


@dataclass(frozen=True)
class SongRequest:
    """One request as stored, with its vote count."""

    id: int
    guild_id: int
    channel_id: int
    author_id: int
    message_id: int | None
    text: str
    settings: dict[str, Any]
    primer: bytes | None
    primer_name: str
    round: int
    state: str
    attempts: int
    error: str | None
    created: float
    started: float | None
    finished: float | None
    piece: dict[str, Any] | None
    stored: bool
    posted_message_id: int | None
    votes: int = 0

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> Self:
        """A request from a row of ``_SELECT``."""
        values = dict(row)
        values["settings"] = json.loads(values["settings"])
        values["piece"] = json.loads(values["piece"]) if values["piece"] else None
        values["stored"] = bool(values["stored"])
        return cls(**values)

    @property
    def waiting(self) -> Waiting:
        """What :func:`bot.requests.order.fair_order` needs of it."""
        return Waiting(self.id, self.author_id, self.round, self.votes, self.created)


@dataclass(frozen=True)
class GuildRules:
    """A guild's queue settings: paused or not, and its limits (``None``: the bot's defaults)."""

    paused: bool = False
    member_limit: int | None = None
    guild_limit: int | None = None
    voice: bool = False
    """Whether a request also plays in voice when it is done and its author listens to the bot there."""


_SELECT = """
    SELECT requests.*, (SELECT COUNT(*) FROM votes WHERE votes.request_id = requests.id) AS votes
    FROM requests
"""


class RequestStore:
    """The requests of every guild in one SQLite file; every method that members reach takes the guild.

    One connection, and one lock so a transaction of one coroutine never takes in another's
    statements. The file is created by the first call that needs it, so a bot that never takes a
    request leaves no file behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, for one transaction: committed at the end, rolled back on an error."""
        async with self._lock:
            if self._db is None:
                self._db = await self._connect()
            try:
                yield self._db
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()

    async def _connect(self) -> aiosqlite.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path)
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = FULL")
            await db.execute("PRAGMA foreign_keys = ON")
            await _migrate(db)
        except BaseException:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        """Close the connection (the next call opens it again)."""
        async with self._lock:
            if self._db is not None:
                await self._db.close()
                self._db = None

    async def schema_version(self) -> int:
        """The schema version of the file (``PRAGMA user_version``)."""
        async with self._transaction() as db:
            return await _user_version(db)

    # -- members ---------------------------------------------------------------------------------

    async def add(
        self,
        *,
        guild_id: int,
        channel_id: int,
        author_id: int,
        message_id: int | None,
        text: str,
        settings: Mapping[str, Any],
        primer: bytes | None,
        primer_name: str,
        member_limit: int,
        guild_limit: int,
    ) -> SongRequest:
        """Store a new pending request, or raise :class:`Refusal` when a limit is reached.

        The limits are checked in the same transaction as the insert, so two requests sent at
        once cannot both take the last place.
        """
        async with self._transaction() as db:
            marks = ", ".join("?" * len(ACTIVE))
            (mine,) = await _one(
                db,
                f"SELECT COUNT(*) FROM requests WHERE guild_id = ? AND author_id = ? AND state IN ({marks})",
                (guild_id, author_id, *ACTIVE),
            )
            if mine >= member_limit:
                raise Refusal(
                    f"You have {mine} requests waiting, the most one member may have here; "
                    "cancel one or wait for it to be played."
                )
            (everyone,) = await _one(
                db,
                f"SELECT COUNT(*) FROM requests WHERE guild_id = ? AND state IN ({marks})",
                (guild_id, *ACTIVE),
            )
            if everyone >= guild_limit:
                raise Refusal(f"The queue here is full ({everyone} requests); try again when it is shorter.")
            (current,) = await _one(
                db,
                "SELECT COALESCE(MAX(round), 0) FROM requests WHERE guild_id = ? AND started IS NOT NULL",
                (guild_id,),
            )
            (last,) = await _one(
                db,
                "SELECT COALESCE(MAX(round), 0) FROM requests "
                "WHERE guild_id = ? AND author_id = ? AND state != 'cancelled'",
                (guild_id, author_id),
            )
            cursor = await db.execute(
                "INSERT INTO requests (guild_id, channel_id, author_id, message_id, text, settings, primer,"
                " primer_name, round, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    guild_id,
                    channel_id,
                    author_id,
                    message_id,
                    text,
                    json.dumps(dict(settings)),
                    primer,
                    primer_name,
                    round_for(current, last),
                    time.time(),
                ),
            )
            return await _request(db, cursor.lastrowid)

    async def get(self, guild_id: int, request_id: int) -> SongRequest | None:
        """The request with this id in this guild; ``None`` for an id of another guild too."""
        async with self._transaction() as db:
            request = await _request(db, request_id)
        return request if request is not None and request.guild_id == guild_id else None

    async def queue(self, guild_id: int) -> list[SongRequest]:
        """The guild's pending requests in the order they will be served."""
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                _SELECT + " WHERE guild_id = ? AND state = 'pending'", (guild_id,)
            )
        by_id = {request.id: request for request in map(SongRequest.from_row, rows)}
        return [by_id[w.id] for w in fair_order(r.waiting for r in by_id.values())]

    async def vote(self, guild_id: int, request_id: int, user_id: int) -> SongRequest:
        """Count one member's vote for a pending request; raises :class:`Refusal` saying why not."""
        async with self._transaction() as db:
            request = await _request(db, request_id)
            if request is None or request.guild_id != guild_id:
                raise Refusal(f"There is no request #{request_id} here.")
            if request.state != "pending":
                raise Refusal(f"Request #{request_id} is {request.state}; votes only move waiting requests.")
            if request.author_id == user_id:
                raise Refusal("That is your own request; votes are for the requests of others.")
            cursor = await db.execute(
                "INSERT OR IGNORE INTO votes (request_id, user_id) VALUES (?, ?)", (request_id, user_id)
            )
            if cursor.rowcount == 0:
                raise Refusal(f"You already voted for #{request_id}; one vote each.")
            return await _request(db, request_id)

    async def cancel(self, guild_id: int, request_id: int, why: str, author_id: int | None = None) -> None:
        """Cancel a pending request; only the author's when ``author_id`` is given (a moderator's: any)."""
        async with self._transaction() as db:
            request = await _request(db, request_id)
            if request is None or request.guild_id != guild_id:
                raise Refusal(f"There is no request #{request_id} here.")
            if author_id is not None and request.author_id != author_id:
                raise Refusal(f"Request #{request_id} is not yours; only its author can cancel it.")
            if request.state != "pending":
                raise Refusal(
                    f"Request #{request_id} is {request.state}; only waiting requests can be cancelled."
                )
            await db.execute(
                "UPDATE requests SET state = 'cancelled', error = ?, finished = ? WHERE id = ?",
                (why, time.time(), request_id),
            )

    async def clear(self, guild_id: int, why: str) -> int:
        """Cancel every pending request of the guild; how many there were."""
        async with self._transaction() as db:
            cursor = await db.execute(
                "UPDATE requests SET state = 'cancelled', error = ?, finished = ? "
                "WHERE guild_id = ? AND state = 'pending'",
                (why, time.time(), guild_id),
            )
            return cursor.rowcount

    async def history(self, guild_id: int, limit: int, offset: int = 0) -> tuple[list[SongRequest], int]:
        """One page of the guild's finished songs, newest first, and how many there are in all."""
        async with self._transaction() as db:
            (total,) = await _one(
                db, "SELECT COUNT(*) FROM requests WHERE guild_id = ? AND state = 'done'", (guild_id,)
            )
            rows = await db.execute_fetchall(
                _SELECT
                + " WHERE guild_id = ? AND state = 'done' ORDER BY finished DESC, id DESC LIMIT ? OFFSET ?",
                (guild_id, limit, offset),
            )
        return [SongRequest.from_row(row) for row in rows], total

    async def rules(self, guild_id: int) -> GuildRules:
        """The guild's queue settings."""
        async with self._transaction() as db:
            row = await _one(
                db,
                "SELECT paused, member_limit, guild_limit, voice FROM guilds WHERE guild_id = ?",
                (guild_id,),
            )
        return GuildRules(bool(row[0]), row[1], row[2], bool(row[3])) if row else GuildRules()

    async def set_rules(self, guild_id: int, **changes: object) -> GuildRules:
        """Change some of ``paused``, ``member_limit``, ``guild_limit`` and ``voice`` for a guild."""
        async with self._transaction() as db:
            await db.execute("INSERT OR IGNORE INTO guilds (guild_id) VALUES (?)", (guild_id,))
            for name, value in changes.items():
                if name not in ("paused", "member_limit", "guild_limit", "voice"):
                    raise ValueError(f"no guild setting {name}")
                await db.execute(f"UPDATE guilds SET {name} = ? WHERE guild_id = ?", (value, guild_id))
        return await self.rules(guild_id)

    # -- the worker ------------------------------------------------------------------------------

    async def recover(self) -> int:
        """Put back in line the requests a stopped bot was composing; how many there were."""
        async with self._transaction() as db:
            cursor = await db.execute("UPDATE requests SET state = 'pending' WHERE state = 'composing'")
            return cursor.rowcount

    async def next_request(
        self, last_served: Mapping[int, float], posting: Collection[int] = ()
    ) -> SongRequest | None:
        """What to do next: a composed request to post, else the first request of the fairest guild.

        Paused guilds are skipped, but a request already composed there is still posted.
        ``posting``: ids of composed requests whose post is under way already, left out.
        """
        async with self._transaction() as db:
            marks = ", ".join("?" * len(posting))
            row = await _one(
                db,
                _SELECT + f" WHERE state = 'posting' AND id NOT IN ({marks}) ORDER BY id LIMIT 1",
                tuple(posting),
            )
            if row is not None:
                return SongRequest.from_row(row)
            rows = await db.execute_fetchall(
                _SELECT
                + " WHERE state = 'pending' AND guild_id NOT IN (SELECT guild_id FROM guilds WHERE paused)"
            )
        requests = [SongRequest.from_row(row) for row in rows]
        by_guild: dict[int, list[SongRequest]] = {}
        for request in requests:
            by_guild.setdefault(request.guild_id, []).append(request)
        heads = [(guild, fair_order(r.waiting for r in own)[0]) for guild, own in by_guild.items()]
        chosen = next_across_guilds(heads, last_served)
        return next(r for r in requests if r.id == chosen[1].id) if chosen else None

    async def start(self, request_id: int) -> SongRequest:
        """Mark a request ``composing`` and count the attempt, before the composer starts."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE requests SET state = 'composing', attempts = attempts + 1, started = ? WHERE id = ?",
                (time.time(), request_id),
            )
            return await _request(db, request_id)

    async def composed(self, request_id: int, piece: Mapping[str, Any]) -> None:
        """Record a composed piece whose files are kept; the post is next."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE requests SET state = 'posting', piece = ?, stored = 1, error = NULL WHERE id = ?",
                (json.dumps(dict(piece)), request_id),
            )

    async def posted(self, request_id: int, message_id: int) -> None:
        """Record the post: the request is done and is never posted again."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE requests SET state = 'done', posted_message_id = ?, finished = ? WHERE id = ?",
                (message_id, time.time(), request_id),
            )

    async def put_back(self, request_id: int, error: str) -> None:
        """Return a request that failed to the line, to be tried again; ``error`` says why it failed."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE requests SET state = 'pending', error = ? WHERE id = ?", (error, request_id)
            )

    async def fail(self, request_id: int, error: str) -> None:
        """Give up on a request; ``error`` says why."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE requests SET state = 'failed', error = ?, finished = ? WHERE id = ?",
                (error, time.time(), request_id),
            )

    async def kept_songs(self) -> list[int]:
        """Ids of the finished requests whose files are kept, oldest first."""
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                "SELECT id FROM requests WHERE stored AND state = 'done' ORDER BY finished, id"
            )
        return [row[0] for row in rows]

    async def forget_files(self, request_id: int) -> None:
        """Record that a song's files were pruned."""
        async with self._transaction() as db:
            await db.execute("UPDATE requests SET stored = 0 WHERE id = ?", (request_id,))


async def _user_version(db: aiosqlite.Connection) -> int:
    (version,) = await _one(db, "PRAGMA user_version")
    return version


async def _migrate(db: aiosqlite.Connection) -> None:
    """Bring the schema up to the newest version, one committed step per version."""
    version = await _user_version(db)
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"the request database is at schema version {version}, newer than this Cadenza knows "
            f"({len(MIGRATIONS)}); run a newer Cadenza or move the file away"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        await db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        log.info("request database migrated to schema version %d", number)


async def _one(db: aiosqlite.Connection, sql: str, params: tuple[object, ...] = ()) -> aiosqlite.Row | None:
    async with db.execute(sql, params) as cursor:
        return await cursor.fetchone()


async def _request(db: aiosqlite.Connection, request_id: int) -> SongRequest | None:
    row = await _one(db, _SELECT + " WHERE id = ?", (request_id,))
    return SongRequest.from_row(row) if row is not None else None
