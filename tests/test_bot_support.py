"""Discord's edge, faked: the bot runs for real, only HTTP requests and gateway events are stand-ins.

:class:`FakeDiscord` replaces exactly three things of a real :class:`discord.ext.commands.Bot`:
``bot.http.request`` (the REST API), ``bot.http.get_from_cdn`` (attachment downloads) and
``AsyncWebhookAdapter.request`` (interaction responses and follow-ups). It answers like Discord
(message payloads with ids, attachments with CDN URLs) and records every request, so tests can
feed gateway payloads (``MESSAGE_CREATE``, ``INTERACTION_CREATE``) to discord.py's own
``ConnectionState`` parsers and read what the bot sent.

This module holds no tests; it is named ``test_bot_*`` only because the bot's test files are.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import discord
from discord.http import Route
from discord.webhook.async_ import AsyncWebhookAdapter

APP_ID = 900_000_000_000_000_001
GUILD_ID = 900_000_000_000_000_002
CHANNEL_ID = 900_000_000_000_000_003
OTHER_CHANNEL_ID = 900_000_000_000_000_004
BOT_USER = {"id": str(APP_ID), "username": "Cadenza", "discriminator": "0", "avatar": None, "bot": True}
ALICE = {"id": "800000000000000001", "username": "alice", "discriminator": "0", "avatar": None}
BOB = {"id": "800000000000000002", "username": "bob", "discriminator": "0", "avatar": None}
TIMESTAMP = "2025-01-01T12:00:00+00:00"


@dataclass
class Request:
    """One request the bot made: method, route template, ids from the URL, JSON payload, uploads."""

    method: str
    path: str
    ids: dict[str, str]
    payload: Any
    files: dict[str, bytes] = field(default_factory=dict)


class _Response:
    """Enough of an aiohttp response for discord.HTTPException."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason


def _ids(route: Route) -> dict[str, str]:
    """The values of the placeholders of ``route.path``, read back from its URL."""
    names = re.findall(r"{(\w+)}", route.path)
    pattern = re.escape(route.path)
    for name in names:
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)")
    match = re.search(pattern + "$", route.url)
    return match.groupdict() if match else {}


def _payload(json_payload: Any, form: list[dict[str, Any]] | None) -> Any:
    if form:
        return json.loads(next(part["value"] for part in form if part["name"] == "payload_json"))
    return json_payload


def _uploads(files: Any) -> dict[str, bytes]:
    uploads = {}
    for file in files or ():
        file.reset()
        uploads[file.filename] = file.fp.read()
    return uploads


class FakeDiscord:
    """The Discord API, in memory, for one bot in one guild with two text channels."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.cdn: dict[str, bytes] = {}
        self.downloads: list[str] = []
        # Snowflakes carry their creation time; discord.py treats old interactions as expired.
        self._snowflakes = itertools.count(discord.utils.time_snowflake(discord.utils.utcnow()))
        self._interaction_channels: dict[str, int] = {}
        self._originals: dict[str, int] = {}
        self.nonces: dict[tuple[int, str], int] = {}
        self.bot: discord.Client | None = None

    # -- wiring -------------------------------------------------------------------------------

    def install(self, bot: discord.Client, monkeypatch: Any) -> None:
        """Point ``bot`` at this fake and give it a guild, two channels, a user and an app id."""
        self.bot = bot
        monkeypatch.setattr(bot.http, "request", self._http_request)
        monkeypatch.setattr(bot.http, "get_from_cdn", self._get_from_cdn)
        monkeypatch.setattr(AsyncWebhookAdapter, "request", self._webhook_request)
        state = bot._connection
        state.application_id = APP_ID
        state.user = discord.ClientUser(state=state, data=BOT_USER)
        state._add_guild_from_data(
            {
                "id": str(GUILD_ID),
                "name": "Music club",
                "owner_id": ALICE["id"],
                "premium_tier": 0,
                "roles": [],
                "emojis": [],
                "features": [],
                "members": [],
                "channels": [
                    {"id": str(CHANNEL_ID), "type": 0, "name": "music", "position": 0},
                    {"id": str(OTHER_CHANNEL_ID), "type": 0, "name": "general", "position": 1},
                ],
            }
        )

    def next_id(self) -> int:
        """A fresh snowflake."""
        return next(self._snowflakes)

    async def settle(self, timeout: float = 120.0) -> None:
        """Wait until every task the bot started (event handlers, button presses) has finished."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            pending = asyncio.all_tasks() - {asyncio.current_task()}
            if not pending:
                return
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"bot tasks still running: {pending}")
            await asyncio.wait(pending, timeout=left)

    # -- what tests send ------------------------------------------------------------------------

    def user_message(
        self,
        content: str,
        *,
        author: dict[str, Any] = ALICE,
        channel_id: int = CHANNEL_ID,
        files: dict[str, bytes] | None = None,
        reply_to: dict[str, Any] | None = None,
        include_referenced: bool = True,
        declared_sizes: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE payload from a person, stored so the bot can fetch it later."""
        message_id = self.next_id()
        data = self._message_payload(message_id, channel_id, author, content, self._attach(channel_id, files))
        for attachment in data["attachments"]:
            attachment["size"] = (declared_sizes or {}).get(attachment["filename"], attachment["size"])
        data["member"] = {"roles": [], "joined_at": TIMESTAMP, "deaf": False, "mute": False, "flags": 0}
        if reply_to is not None:
            data["type"] = 19
            data["message_reference"] = {"message_id": reply_to["id"], "channel_id": str(channel_id)}
            if include_referenced:
                data["referenced_message"] = reply_to
        self.messages[message_id] = data
        return data

    async def send(self, content: str, **kwargs: Any) -> dict[str, Any]:
        """A person posts ``content`` (through the gateway); returns once the bot has finished."""
        data = self.user_message(content, **kwargs)
        self.bot._connection.parsers["MESSAGE_CREATE"](data)
        await self.settle()
        return data

    def interaction(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        author: dict[str, Any] = ALICE,
        channel_id: int = CHANNEL_ID,
        message: dict[str, Any] | None = None,
        upload_limit: int = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES,
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload: 2 slash command, 3 button, 4 autocomplete."""
        token = f"token-{self.next_id()}"
        self._interaction_channels[token] = channel_id
        payload = {
            "id": str(self.next_id()),
            "application_id": str(APP_ID),
            "type": kind,
            "token": token,
            "version": 1,
            "guild_id": str(GUILD_ID),
            "channel_id": str(channel_id),
            "channel": {"id": str(channel_id), "type": 0, "guild_id": str(GUILD_ID), "name": "music"},
            "member": {
                "user": author,
                "roles": [],
                "joined_at": TIMESTAMP,
                "deaf": False,
                "mute": False,
                "permissions": "0",
                "flags": 0,
            },
            "data": data,
            "app_permissions": "0",
            "locale": "en-US",
            "attachment_size_limit": upload_limit,
            "entitlements": [],
            "authorizing_integration_owners": {},
            "context": 0,
        }
        if message is not None:
            payload["message"] = message
        return payload

    async def interact(self, payload: dict[str, Any]) -> None:
        """Deliver an INTERACTION_CREATE payload; returns once the bot has finished."""
        self.bot._connection.parsers["INTERACTION_CREATE"](payload)
        await self.settle()

    def slash(
        self,
        name: str,
        options: dict[str, Any],
        *,
        attachments: dict[str, bytes] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A slash command payload; ``attachments`` become attachment options named by their key."""
        command = self.bot.tree.get_command(name)
        types = {p.name: p.type.value for p in command.parameters}
        data = {"id": str(self.next_id()), "name": name, "type": 1, "options": []}
        for key, value in options.items():
            data["options"].append({"name": key, "type": types[key], "value": value})
        if attachments:
            resolved = {}
            for key, (filename, content) in attachments.items():
                (attachment,) = self._attach(CHANNEL_ID, {filename: content})
                resolved[attachment["id"]] = attachment
                data["options"].append({"name": key, "type": types[key], "value": attachment["id"]})
            data["resolved"] = {"attachments": resolved}
        return self.interaction(2, data, **kwargs)

    def press(self, message: dict[str, Any], label: str, **kwargs: Any) -> dict[str, Any]:
        """A button press on ``message``: the button with this label."""
        button = next(
            b for row in message["components"] for b in row["components"] if b.get("label") == label
        )
        data = {"custom_id": button["custom_id"], "component_type": 2}
        return self.interaction(3, data, message=message, **kwargs)

    # -- what the bot sent ----------------------------------------------------------------------

    def bot_messages(self, channel_id: int = CHANNEL_ID) -> list[dict[str, Any]]:
        """The bot's messages in a channel as they look now (edits applied), oldest first."""
        return [
            m
            for m in self.messages.values()
            if m["author"]["id"] == BOT_USER["id"] and int(m["channel_id"]) == channel_id
        ]

    def file(self, attachment: dict[str, Any]) -> bytes:
        """The bytes the bot uploaded for an attachment."""
        return self.cdn[attachment["url"]]

    def requests_to(self, method: str, path_part: str) -> list[Request]:
        """The recorded requests with this method whose route contains ``path_part``."""
        return [r for r in self.requests if r.method == method and path_part in r.path]

    # -- the API --------------------------------------------------------------------------------

    async def _http_request(self, route: Route, *, files: Any = None, form: Any = None, **kwargs: Any) -> Any:
        ids = _ids(route)
        request = Request(route.method, route.path, ids, _payload(kwargs.get("json"), form), _uploads(files))
        self.requests.append(request)
        key = (route.method, route.path)
        if key == ("POST", "/channels/{channel_id}/messages"):
            return self._create_once(int(ids["channel_id"]), request)
        if key == ("PATCH", "/channels/{channel_id}/messages/{message_id}"):
            return self._edit(int(ids["message_id"]), request)
        if key == ("GET", "/channels/{channel_id}/messages/{message_id}"):
            return self._get(int(ids["message_id"]))
        if key == ("POST", "/channels/{channel_id}/typing"):
            return None
        if key == ("PUT", "/applications/{application_id}/commands"):
            return [
                {**command, "id": str(self.next_id()), "application_id": str(APP_ID), "version": "1"}
                for command in request.payload
            ]
        raise AssertionError(f"the fake does not know {route.method} {route.path}")

    async def _webhook_request(self, route: Route, session: Any = None, **kwargs: Any) -> Any:
        ids = _ids(route)
        payload = _payload(kwargs.get("payload"), kwargs.get("multipart"))
        request = Request(route.method, route.path, ids, payload, _uploads(kwargs.get("files")))
        self.requests.append(request)
        token = ids.get("webhook_token", "")
        channel_id = self._interaction_channels.get(token, CHANNEL_ID)
        key = (route.method, route.path)
        if key == ("POST", "/interactions/{webhook_id}/{webhook_token}/callback"):
            answer = {"interaction": {"id": ids["webhook_id"], "type": payload["type"]}}
            if payload["type"] == 4:  # a message at once
                message = self._create(channel_id, Request("POST", "", {}, payload["data"], request.files))
                self._originals[token] = int(message["id"])
                answer["resource"] = {"type": 4, "message": message}
            return answer
        if key == ("POST", "/webhooks/{webhook_id}/{webhook_token}"):
            message = self._create(channel_id, request)
            self._originals.setdefault(token, int(message["id"]))
            return message
        if key == ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"):
            target = ids["message_id"]
            return self._edit(self._originals[token] if target == "@original" else int(target), request)
        if key == ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"):
            return self._get(self._originals[token])
        raise AssertionError(f"the fake does not know webhook {route.method} {route.path}")

    async def _get_from_cdn(self, url: str) -> bytes:
        self.downloads.append(url)
        return self.cdn[url]

    def _get(self, message_id: int) -> dict[str, Any]:
        if message_id not in self.messages:
            raise discord.NotFound(_Response(404, "Not Found"), {"code": 10008, "message": "Unknown Message"})
        return self.messages[message_id]

    def _attach(self, channel_id: int, files: dict[str, bytes] | None) -> list[dict[str, Any]]:
        attachments = []
        for filename, content in (files or {}).items():
            attachment_id = self.next_id()
            url = f"https://cdn.discordapp.com/attachments/{channel_id}/{attachment_id}/{filename}"
            self.cdn[url] = content
            attachments.append(
                {
                    "id": str(attachment_id),
                    "filename": filename,
                    "size": len(content),
                    "url": url,
                    "proxy_url": url,
                }
            )
        return attachments

    def _message_payload(
        self, message_id: int, channel_id: int, author: dict[str, Any], content: str, attachments: list[Any]
    ) -> dict[str, Any]:
        return {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "guild_id": str(GUILD_ID),
            "author": author,
            "content": content,
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }

    def _create(self, channel_id: int, request: Request) -> dict[str, Any]:
        payload = request.payload or {}
        message_id = self.next_id()
        message = self._message_payload(
            message_id,
            channel_id,
            BOT_USER,
            payload.get("content") or "",
            self._attach(channel_id, request.files),
        )
        message["embeds"] = payload.get("embeds") or []
        message["components"] = payload.get("components") or []
        message["flags"] = payload.get("flags") or 0
        message["allowed_mentions"] = payload.get("allowed_mentions")
        if payload.get("message_reference"):
            message["type"] = 19
            message["message_reference"] = payload["message_reference"]
        self.messages[message_id] = message
        return message

    def _create_once(self, channel_id: int, request: Request) -> dict[str, Any]:
        """A new message, unless one with the same nonce was sent with ``enforce_nonce``: then that one.

        This is how Discord answers a repeated nonce (within a few minutes; the fake has no clock).
        """
        payload = request.payload or {}
        nonce = payload.get("nonce") if payload.get("enforce_nonce") else None
        if nonce is not None and (channel_id, nonce) in self.nonces:
            return self.messages[self.nonces[channel_id, nonce]]
        message = self._create(channel_id, request)
        if nonce is not None:
            message["nonce"] = nonce
            self.nonces[channel_id, nonce] = int(message["id"])
        return message

    def _edit(self, message_id: int, request: Request) -> dict[str, Any]:
        message = self._get(message_id)
        payload = request.payload or {}
        for key in ("embeds", "components"):
            if key in payload:
                message[key] = payload[key] or []
        if "content" in payload:
            message["content"] = payload["content"] or ""
        if "attachments" in payload:
            kept = {a["id"] for a in payload["attachments"]}
            old = [a for a in message["attachments"] if a["id"] in kept]
            message["attachments"] = old + self._attach(int(message["channel_id"]), request.files)
        message["edited_timestamp"] = TIMESTAMP
        return message


def midi_file(pitches: tuple[int, ...] = (60, 62, 64, 65, 67, 69, 71, 72), *, channel: int = 0) -> bytes:
    """A small MIDI file: one quarter note per pitch, as a person might upload."""
    import mido

    track = mido.MidiTrack()
    for pitch in pitches:
        track.append(mido.Message("note_on", note=pitch, velocity=80, time=0, channel=channel))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=480, channel=channel))
    song = mido.MidiFile(ticks_per_beat=480)
    song.tracks.append(track)
    out = io.BytesIO()
    song.save(file=out)
    return out.getvalue()
