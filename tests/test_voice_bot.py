"""Voice commands end to end: a real discord.py bot, the tiny model, real FluidSynth; only Discord's
HTTP API and the voice connection (a :class:`discord.VoiceProtocol` passed to ``channel.connect``)
are faked."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import discord
import pytest

from composer.render.audio import find_soundfont
from tests.test_bot_support import ALICE, APP_ID, BOB, BOT_USER, CHANNEL_ID, GUILD_ID, TIMESTAMP
from tests.test_voice_support import FRAME_BYTES, FakeVoiceClient, fluidsynth_children

pytestmark = pytest.mark.skipif(find_soundfont() is None, reason="needs FluidSynth and a SoundFont")

LOUNGE = 900_000_000_000_000_010
HALL = 900_000_000_000_000_011
QUIET = 900_000_000_000_000_012
CAROL = {"id": "800000000000000003", "username": "carol", "discriminator": "0", "avatar": None}
EVERYONE = discord.Permissions(view_channel=True, connect=True, speak=True, send_messages=True)


def voice_channel(state, guild, channel_id: int, name: str, deny: discord.Permissions | None = None):
    overwrites = []
    if deny is not None:
        overwrites = [{"id": str(guild.id), "type": 0, "allow": "0", "deny": str(deny.value)}]
    data = {
        "id": str(channel_id),
        "type": 2,
        "name": name,
        "position": 2,
        "bitrate": 64000,
        "user_limit": 0,
        "permission_overwrites": overwrites,
        "rtc_region": None,
    }
    guild._add_channel(discord.VoiceChannel(state=state, guild=guild, data=data))


def add_voice(fake, guild_id: int = GUILD_ID) -> None:
    """Give the fake's guild an @everyone role, the bot as a member and three voice channels."""
    state = fake.bot._connection
    guild = state._get_guild(guild_id)
    role = {"id": str(guild_id), "name": "@everyone", "permissions": str(EVERYONE.value), "position": 0}
    guild._add_role(discord.Role(guild=guild, state=state, data=role))
    member = {"user": BOT_USER, "roles": [], "joined_at": TIMESTAMP, "deaf": False, "mute": False, "flags": 0}
    guild._add_member(discord.Member(data=member, guild=guild, state=state))
    voice_channel(state, guild, LOUNGE + guild_id - GUILD_ID, "Lounge")
    voice_channel(state, guild, HALL + guild_id - GUILD_ID, "Hall")
    voice_channel(state, guild, QUIET + guild_id - GUILD_ID, "Quiet", deny=discord.Permissions(speak=True))


def enter(fake, user: dict, channel_id: int | None, guild_id: int = GUILD_ID) -> None:
    """``user`` joins (or, with None, leaves) a voice channel: Discord's VOICE_STATE_UPDATE."""
    fake.bot._connection.parsers["VOICE_STATE_UPDATE"](
        {
            "guild_id": str(guild_id),
            "channel_id": str(channel_id) if channel_id else None,
            "user_id": user["id"],
            "member": {
                "user": user,
                "roles": [],
                "joined_at": TIMESTAMP,
                "deaf": False,
                "mute": False,
                "flags": 0,
            },
            "session_id": "s",
            "deaf": False,
            "mute": False,
            "self_deaf": False,
            "self_mute": False,
            "self_video": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }
    )


async def say(fake, content: str, author: dict = ALICE, **kwargs) -> dict:
    """A person posts ``content``; returns the bot's reply to it (without waiting for the music)."""
    data = fake.user_message(content, author=author, **kwargs)
    fake.bot._connection.parsers["MESSAGE_CREATE"](data)
    return await until(lambda: reply_to(fake, data), f"a reply to {content}")


def reply_to(fake, data: dict) -> dict | None:
    for message in fake.messages.values():
        if str((message.get("message_reference") or {}).get("message_id")) == data["id"]:
            return message
    return None


async def until(condition, what: str, timeout: float = 60.0):
    """Wait (on the loop, so the bot runs) until ``condition()`` is truthy; returns its value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := condition()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        await asyncio.sleep(0.02)
    return value


def pieces_posted(fake, channel_id: int = CHANNEL_ID) -> list[dict]:
    return [
        m
        for m in fake.bot_messages(channel_id)
        if any(a["filename"].endswith(".mid") for a in m["attachments"])
    ]


def radio_messages(fake) -> list[dict]:
    return [m for m in fake.bot_messages() if m["embeds"] and m["embeds"][0]["title"].startswith("📻")]


def ephemeral_answers(fake) -> list[str]:
    return [
        r.payload["data"]["content"]
        for r in fake.requests_to("POST", "/callback")
        if r.payload.get("type") == 4 and r.payload["data"].get("flags") == 64
    ]


@pytest.fixture
async def voice(make_bot):
    """A bot with voice channels, the voice connection faked, pulling frames at 20 times real time.

    The buffer is 30 s of music, 1.5 s at that speed: less slack than the default 4 s at real time.
    """
    FakeVoiceClient.made.clear()
    FakeVoiceClient.speed = 20.0
    fakes = []

    async def make(**settings):
        fake = await make_bot(**({"voice_buffer_seconds": 30} | settings))
        add_voice(fake)
        fake.bot.get_cog("Voice").connector = FakeVoiceClient
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        cog = fake.bot.get_cog("Voice")
        if cog is not None:
            await cog.cog_unload()
    await until(lambda: not fluidsynth_children(), "FluidSynth to end", 10)


async def test_play_joins_the_members_channel_plays_exact_frames_and_posts_the_piece(voice):
    fake = await voice()
    enter(fake, ALICE, LOUNGE)
    reply = await say(fake, "!play 8 seed=5")
    assert reply["content"] == f"🎶 Playing in <#{LOUNGE}>; the piece follows here."
    (client,) = FakeVoiceClient.made
    assert client.channel.id == LOUNGE and client.connected
    (posted,) = await until(lambda: pieces_posted(fake), "the piece's message")
    assert {Path(a["filename"]).suffix for a in posted["attachments"]} == {".mid", ".ogg", ".png"}
    fields = {f["name"]: f["value"] for f in posted["embeds"][0]["fields"]}
    assert fields["Seed"] == "5"
    await until(lambda: client.frames and not client.is_playing(), "the piece to play to its end")
    assert client.sizes == {FRAME_BYTES}
    assert client.source.stream.stats.underruns == 0
    await until(lambda: not fluidsynth_children(), "FluidSynth to end")
    session = fake.bot.get_cog("Voice").session(fake.bot.get_guild(GUILD_ID))
    assert session.stream is None and session.now is None  # done, waiting for more or for idleness


async def test_a_second_play_is_queued_and_follows_the_first(voice):
    fake = await voice()
    FakeVoiceClient.speed = 5.0  # slow enough that the first piece still plays
    enter(fake, ALICE, LOUNGE)
    enter(fake, BOB, LOUNGE)
    await say(fake, "!play 30")
    await until(lambda: FakeVoiceClient.made[0].frames, "the first frames")
    reply = await say(fake, "!play 8", author=BOB)
    assert reply["content"] == f"🎶 Queued in <#{LOUNGE}>: 1 before yours."
    queue = await say(fake, "!queue")
    voice_embed, requests_embed = queue["embeds"]
    assert voice_embed["title"] == "🔊 Playing in Lounge"
    assert (
        "▶️ Now:" in voice_embed["description"]
        and "**1.** <@800000000000000002>: `8`" in voice_embed["description"]
    )
    assert requests_embed["title"].startswith("🎶 The queue")
    await until(lambda: len(pieces_posted(fake)) == 2, "both pieces", 90)
    (client,) = FakeVoiceClient.made  # one connection, one player: the second piece followed in it
    await until(lambda: not client.is_playing(), "the end of the music")


async def test_radio_plays_piece_after_piece_with_a_now_playing_message_and_its_buttons(voice):
    fake = await voice()
    enter(fake, ALICE, LOUNGE)
    reply = await say(fake, "!radio sad folk length=8")
    assert reply["content"].startswith(f"📻 Radio on in <#{LOUNGE}>: ")
    assert "“sad”" in reply["content"] and "“folk”" in reply["content"]
    (message,) = await until(lambda: radio_messages(fake), "the now-playing message")
    labels = [b["label"] for row in message["components"] for b in row["components"]]
    assert labels == ["Skip", "Calmer", "Livelier", "Another style", "Keep this one"]
    session = fake.bot.get_cog("Voice").session(fake.bot.get_guild(GUILD_ID))
    assert (session.now.piece.style, session.now.piece.key, session.now.piece.tempo) == ("folk", "Dm", 66)
    first_seed = session.now.piece.seed
    # Pieces follow one another in the same stream, and the same message shows each.
    await until(lambda: session.stream and session.stream.stats.pieces >= 3, "three pieces")
    assert len(radio_messages(fake)) == 1
    assert str(first_seed) not in radio_messages(fake)[0]["embeds"][0]["description"]
    assert session.stream.stats.underruns == 0
    assert FakeVoiceClient.made[0].sizes == {FRAME_BYTES}

    await fake.interact(fake.press(radio_messages(fake)[0], "Calmer"))
    assert ephemeral_answers(fake)[-1] == "The next piece will be calmer."
    assert session.radio.tempo_factor == pytest.approx(0.8)
    await fake.interact(fake.press(radio_messages(fake)[0], "Another style"))
    assert ephemeral_answers(fake)[-1] == "The next piece will be in the style bach."
    await until(lambda: session.now.piece.style == "bach", "a piece in the other style")
    assert session.now.piece.tempo == round(66 * 0.8)

    kept = radio_messages(fake)[0]
    seed = session.now.piece.seed if str(session.now.piece.seed) in kept["embeds"][0]["description"] else None
    await fake.interact(fake.press(kept, "Keep this one"))
    posted = await until(lambda: pieces_posted(fake), "the kept piece")
    if seed is not None:
        assert {f["name"]: f["value"] for f in posted[0]["embeds"][0]["fields"]}["Seed"] == str(seed)

    assert (await say(fake, "!stop"))["content"] == "⏹️ Stopped."
    await until(lambda: not FakeVoiceClient.made[0].is_playing(), "the music to stop")
    await until(lambda: not fluidsynth_children(), "FluidSynth to end", 10)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("live-")]
    assert FakeVoiceClient.made[0].connected  # stopped, still there until idle or told to leave
    assert (await say(fake, "!leave"))["content"] == "👋 Left the voice channel."
    assert not FakeVoiceClient.made[0].connected


async def test_skip_needs_a_majority_when_several_listen(voice):
    fake = await voice()
    FakeVoiceClient.speed = 2.0
    for user in (ALICE, BOB, CAROL):
        enter(fake, user, LOUNGE)
    await say(fake, "!radio length=200")
    session = fake.bot.get_cog("Voice").session(fake.bot.get_guild(GUILD_ID))
    await until(lambda: session.now, "the first piece")
    first = session.now
    assert (await say(fake, "!skip", author=BOB))["content"] == "🗳️ 1 of 2 votes to skip."
    assert (await say(fake, "!skip", author=BOB))["content"] == "🗳️ 1 of 2 votes to skip."  # once each
    assert (await say(fake, "!skip", author=CAROL))["content"] == "⏭️ Skipped."
    await until(lambda: session.now is not first, "the next piece")
    assert session.stream.stats.pieces == 2


async def test_the_bot_leaves_a_channel_left_empty(voice):
    fake = await voice()
    fake.bot.settings.voice_idle_seconds = 0.5
    enter(fake, ALICE, LOUNGE)
    await say(fake, "!radio length=8")
    cog = fake.bot.get_cog("Voice")
    (client,) = FakeVoiceClient.made
    await until(lambda: client.frames, "music")
    enter(fake, ALICE, None)
    await until(lambda: not client.connected, "the bot to leave", 10)
    assert cog.sessions == {}
    await until(lambda: not fluidsynth_children(), "FluidSynth to end", 10)


async def test_the_bot_moves_only_when_nobody_listens_where_it_plays(voice):
    fake = await voice()
    FakeVoiceClient.speed = 2.0
    enter(fake, BOB, LOUNGE)
    await say(fake, "!radio length=100", author=BOB)
    await until(lambda: FakeVoiceClient.made[0].frames, "music in the lounge")
    enter(fake, ALICE, HALL)
    reply = await say(fake, "!play 8")
    assert reply["content"] == f"I'm playing in <#{LOUNGE}> already; join us there."
    enter(fake, BOB, None)
    await say(fake, "!play 8")
    (client,) = FakeVoiceClient.made
    assert client.moves == [HALL] and client.channel.id == HALL


async def test_one_answer_line_when_voice_cannot_be_used(voice, make_bot):
    fake = await voice(max_voice=1)
    assert (await say(fake, "!play 8"))["content"] == "Join a voice channel first, then ask again."
    enter(fake, ALICE, LOUNGE)
    assert (await say(fake, "!play 8 style=jazz"))[
        "content"
    ] == "This model knows the styles bach, folk, not 'jazz'."
    enter(fake, ALICE, QUIET)
    assert (await say(fake, "!radio"))[
        "content"
    ] == f"I need the Speak permission in <#{QUIET}> to play there."
    assert FakeVoiceClient.made == []

    # A second server, while the one session this bot may have plays in the first.
    other_guild, other_text = GUILD_ID + 100, CHANNEL_ID + 100
    fake.bot._connection._add_guild_from_data(
        {
            "id": str(other_guild),
            "name": "Other club",
            "owner_id": ALICE["id"],
            "roles": [],
            "emojis": [],
            "features": [],
            "members": [],
            "channels": [{"id": str(other_text), "type": 0, "name": "music", "position": 0}],
        }
    )
    add_voice(fake, other_guild)
    enter(fake, BOB, LOUNGE)
    await say(fake, "!radio length=8", author=BOB)
    enter(fake, ALICE, LOUNGE + 100, guild_id=other_guild)
    data = fake.user_message("!play 8", channel_id=other_text)
    data["guild_id"] = str(other_guild)
    fake.bot._connection.parsers["MESSAGE_CREATE"](data)
    refused = await until(lambda: reply_to(fake, data), "the refusal")
    assert refused["content"] == (
        "I'm playing in 1 voice channels already, as many as this bot can; try again when one of them ends."
    )


async def test_without_voice_libraries_the_bot_starts_says_so_once_and_answers_one_line(
    make_bot, monkeypatch, caplog
):
    monkeypatch.setattr("bot.app.missing_voice_libraries", lambda: ("PyNaCl", "libopus"))
    with caplog.at_level(logging.WARNING, logger="bot.app"):
        fake = await make_bot()
    said = [r.getMessage() for r in caplog.records if "voice" in r.getMessage()]
    assert said == [
        "voice channels are off: this host lacks PyNaCl, libopus "
        "(pip install 'discord.py[voice]' (PyNaCl, davey) and apt-get install libopus0)"
    ]
    add_voice(fake)
    enter(fake, ALICE, LOUNGE)
    reply = await say(fake, "!play 8")
    assert reply["content"] == "I can't play in voice channels on this host: it lacks PyNaCl, libopus."


async def test_slash_play_and_radio_take_typed_options(voice):
    fake = await voice()
    play = fake.bot.tree.get_command("play")
    radio = fake.bot.tree.get_command("radio")
    assert {p.name for p in play.parameters} >= {"length", "tempo", "key", "style", "seed"}
    assert [p.name for p in radio.parameters] == ["words"]
    assert {"play", "radio", "skip", "stop", "leave"} <= {c.name for c in fake.bot.tree.get_commands()}
    # A refusal comes before the command is deferred, so only the member sees it.
    fake.bot._connection.parsers["INTERACTION_CREATE"](fake.slash("play", {"length": 8}))
    await until(lambda: ephemeral_answers(fake), "the refusal")
    assert ephemeral_answers(fake) == ["Join a voice channel first, then ask again."]
    enter(fake, ALICE, LOUNGE)
    fake.bot._connection.parsers["INTERACTION_CREATE"](fake.slash("play", {"length": 8, "seed": 3}))
    await until(lambda: pieces_posted(fake), "the piece")
    (client,) = FakeVoiceClient.made
    assert client.channel.id == LOUNGE
    await until(lambda: not client.is_playing(), "the end")
    assert APP_ID  # the slash answers went through Discord's interaction webhooks
    assert fake.requests_to("POST", "/callback")


async def test_a_song_request_also_plays_in_voice_when_the_server_wants_it_and_its_author_listens(voice):
    fake = await voice()
    FakeVoiceClient.speed = 2.0
    enter(fake, ALICE, LOUNGE)
    await say(fake, "!radio length=8")
    session = fake.bot.get_cog("Voice").session(fake.bot.get_guild(GUILD_ID))
    await until(lambda: session.now, "the radio")
    assert (await say(fake, "!queue voice on"))["content"].startswith("🔊 Done requests also play in voice")
    await say(fake, "!request 8 notes seed=4")
    await until(lambda: session.now and session.now.queued, "the request in voice")
    assert session.now.queued.user.id == int(ALICE["id"]) and session.now.piece.seed == 4
    (posted,) = pieces_posted(fake)  # posted once, by the request worker, not again by voice
    assert posted["content"].startswith("<@800000000000000001> your request #1 is ready.")

    # Bob's request is only posted: he is not listening.
    await say(fake, "!request 8 notes seed=5", author=BOB)
    await until(lambda: len(pieces_posted(fake)) == 2, "Bob's song")
    await asyncio.sleep(0.5)
    assert session.next_up is None and not session.queue
