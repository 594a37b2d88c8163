"""Song requests end to end: a real bot, the tiny model and a real SQLite file; only Discord's edge faked."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import discord

from tests.test_bot_support import ALICE, BOB, CHANNEL_ID, GUILD_ID, midi_file

CAROL = {"id": "800000000000000003", "username": "carol", "discriminator": "0", "avatar": None}
DAVE = {"id": "800000000000000004", "username": "dave", "discriminator": "0", "avatar": None}


def last(fake) -> dict:
    return fake.bot_messages()[-1]


def songs(fake) -> list[dict]:
    """The bot's posts that carry a song (a MIDI file), oldest first."""
    return [m for m in fake.bot_messages() if any(a["filename"].endswith(".mid") for a in m["attachments"])]


def request_id(confirmation: dict) -> int:
    return int(re.search(r"#(\d+)", confirmation["embeds"][0]["title"]).group(1))


def fields(message: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}


async def ask(fake, text: str, author=ALICE, **kwargs) -> int:
    """File a request; the id the confirmation gives."""
    await fake.send(f"!request {text}", author=author, **kwargs)
    return request_id(
        next(m for m in reversed(fake.bot_messages()) if m["embeds"] and "queue" in m["embeds"][0]["title"])
    )


async def test_a_request_is_confirmed_then_composed_and_posted_mentioning_only_its_author(discord_fake):
    sent = await discord_fake.send("!request a sad slow folk tune in D minor, 8 notes", author=BOB)

    confirmation, song = discord_fake.bot_messages()
    embed = confirmation["embeds"][0]
    assert embed["title"] == "🎶 Request #1 is in the queue"
    assert "folk · 8 notes and chords · D minor · 66 bpm" in embed["description"]
    assert fields(confirmation)["Place"] == "1 in line"
    assert "“in D minor”: key D minor" in fields(confirmation)["How I read it"]
    (button,) = confirmation["components"][0]["components"]
    assert (button["label"], button["custom_id"]) == ("Vote", "cadenza:vote:1")

    assert song["content"] == f"<@{BOB['id']}> your request #1 is ready."
    assert song["allowed_mentions"] == {"parse": [], "users": [int(BOB["id"])]}  # nobody else, no reply ping
    assert str(song["message_reference"]["message_id"]) == sent["id"]
    assert {Path(a["filename"]).suffix for a in song["attachments"]} == {".mid", ".ogg", ".png"}
    shown = fields(song)
    assert (shown["Style"], shown["Key"], shown["Tempo"]) == ("folk", "Dm", "66")
    assert "a sad slow folk tune in D minor, 8 notes" in song["embeds"][0]["description"]

    row = _row(discord_fake, 1)
    assert (row["state"], row["attempts"], row["posted_message_id"]) == ("done", 1, int(song["id"]))
    assert (discord_fake.bot.settings.data_dir / "songs" / "1").is_dir()


async def test_the_queue_is_fair_across_members_and_votes_move_requests_up(discord_fake):
    await discord_fake.send("!queue pause")
    a1 = await ask(discord_fake, "8 notes", ALICE)
    a2 = await ask(discord_fake, "8 notes folk", ALICE)
    a3 = await ask(discord_fake, "8 notes bach", ALICE)
    b1 = await ask(discord_fake, "8 notes", BOB)
    c1 = await ask(discord_fake, "8 notes", CAROL)
    assert fields(last(discord_fake))["Place"] == "3 in line"  # after alice's first and bob's

    await discord_fake.send(f"!vote {a3}", author=BOB)  # alice's third stays in the third round
    assert last(discord_fake)["content"] == f"👍 Counted: #{a3} has 1 vote and is 5 in line."
    for voter in (BOB, DAVE):
        await discord_fake.send(f"!vote {c1}", author=voter)
    await discord_fake.send("!queue")

    listed = last(discord_fake)["embeds"][0]
    assert listed["title"] == "🎶 The queue: 5 waiting (paused)"
    order = [int(n) for n in re.findall(r"#(\d+)", listed["description"])]
    assert order == [c1, a1, b1, a2, a3]  # alice's three never come before bob's one
    assert "2 votes" in listed["description"].splitlines()[0]

    await discord_fake.send("!queue resume")
    posted = [int(re.search(r"#(\d+)", m["content"]).group(1)) for m in songs(discord_fake)]
    assert posted == [c1, a1, b1, a2, a3]


async def test_one_vote_per_member_and_not_for_your_own(discord_fake):
    await discord_fake.send("!queue pause")
    rid = await ask(discord_fake, "8 notes", ALICE)
    confirmation = last(discord_fake)

    await discord_fake.send(f"!vote {rid}")
    assert last(discord_fake)["content"] == "That is your own request; votes are for the requests of others."
    await discord_fake.interact(discord_fake.press(confirmation, "Vote", author=BOB))
    await discord_fake.interact(discord_fake.press(confirmation, "Vote", author=BOB))
    first, second = (r.payload["data"] for r in discord_fake.requests_to("POST", "/callback"))
    assert first["content"] == f"👍 Counted: #{rid} has 1 vote and is 1 in line." and first["flags"] == 64
    assert second["content"] == f"You already voted for #{rid}; one vote each."
    await discord_fake.send(f"!vote {rid}", author=BOB)
    assert last(discord_fake)["content"] == f"You already voted for #{rid}; one vote each."


async def test_the_vote_button_works_after_a_restart(discord_fake, make_bot):
    await discord_fake.send("!queue pause")
    rid = await ask(discord_fake, "8 notes")
    confirmation = last(discord_fake)

    restarted = await make_bot(fake=discord_fake)
    await restarted.interact(restarted.press(confirmation, "Vote", author=BOB))
    (answer,) = (r.payload["data"] for r in restarted.requests_to("POST", "/callback"))
    assert answer["content"] == f"👍 Counted: #{rid} has 1 vote and is 1 in line."


async def test_limits_per_member_and_per_server(make_bot):
    fake = await make_bot(request_member_limit=2, request_guild_limit=3)
    await fake.send("!queue pause")
    await ask(fake, "8 notes")
    await ask(fake, "8 notes")
    await fake.send("!request 8 notes")
    assert last(fake)["content"].startswith("You have 2 requests waiting, the most one member may have here")
    await ask(fake, "8 notes", BOB)
    await fake.send("!request 8 notes", author=CAROL)
    assert last(fake)["content"] == "The queue here is full (3 requests); try again when it is shorter."

    await fake.send("!queue limits 1 10", author=BOB)
    assert last(fake)["content"].startswith("Only moderators can do that")
    await fake.send("!queue limits 1 10")
    assert last(fake)["content"] == "Each member may have 1 requests waiting, and the server 10 in all."
    await fake.send("!request 8 notes", author=CAROL)
    assert "is in the queue" in last(fake)["embeds"][0]["title"]


async def test_cancel_is_for_your_own_waiting_request_and_moderators_remove_any(discord_fake):
    await discord_fake.send("!queue pause")
    mine = await ask(discord_fake, "8 notes", BOB)
    other = await ask(discord_fake, "8 notes", CAROL)

    await discord_fake.send(f"!cancel {other}", author=BOB)
    assert last(discord_fake)["content"] == f"Request #{other} is not yours; only its author can cancel it."
    await discord_fake.send(f"!cancel {mine}", author=BOB)
    assert last(discord_fake)["content"] == f"Request #{mine} is cancelled."
    await discord_fake.send(f"!cancel {mine}", author=BOB)
    assert last(discord_fake)["content"].endswith("is cancelled; only waiting requests can be cancelled.")

    for command in ("!queue pause", "!queue resume", "!queue clear", f"!queue remove {other}"):
        await discord_fake.send(command, author=BOB)
        assert last(discord_fake)["content"].startswith("Only moderators can do that"), command
    await discord_fake.send(f"!queue remove {other}")  # alice owns the server
    assert last(discord_fake)["content"] == f"Request #{other} is removed from the queue."
    await discord_fake.send(f"!request show {other}", author=BOB)
    assert fields(last(discord_fake))["Why"] == "removed by alice"
    await discord_fake.send("!queue resume")
    assert songs(discord_fake) == []


async def test_a_configured_role_moderates_too(make_bot):
    fake = await make_bot(moderator_roles="DJ")
    guild = fake.bot.get_guild(GUILD_ID)
    role_id = fake.next_id()
    guild._add_role(discord.Role(guild=guild, state=fake.bot._connection, data={"id": role_id, "name": "DJ"}))
    message = fake.user_message("!queue clear", author=BOB)
    message["member"]["roles"] = [str(role_id)]
    fake.bot._connection.parsers["MESSAGE_CREATE"](message)
    await fake.settle()
    assert last(fake)["content"] == "🧹 Cancelled 0 waiting requests."


async def test_guilds_see_and_change_only_their_own_queue(make_bot):
    fake = await make_bot()
    await fake.send("!queue pause")
    rid = await ask(fake, "8 notes", BOB)
    other_guild = GUILD_ID + 100
    store = fake.bot.requests
    assert await store.get(other_guild, rid) is None
    assert await store.queue(other_guild) == []

    # Someone in another server types the same commands with this request's id.
    for command in (f"!vote {rid}", f"!cancel {rid}", f"!request show {rid}", f"!replay {rid}"):
        await _send_in_guild(fake, other_guild, command, author=BOB)
        assert last_in(fake, OTHER_GUILD_CHANNEL)["content"] == f"There is no request #{rid} here.", command
    await _send_in_guild(fake, other_guild, "!queue clear", author=BOB)  # bob owns that server
    await _send_in_guild(fake, other_guild, "!queue")
    assert "Nothing is waiting" in last_in(fake, OTHER_GUILD_CHANNEL)["embeds"][0]["description"]
    assert (await store.get(GUILD_ID, rid)).state == "pending"
    assert not (await store.rules(other_guild)).paused and (await store.rules(GUILD_ID)).paused


async def test_history_and_replay_post_the_stored_song_without_composing_again(discord_fake, monkeypatch):
    rid = await ask(discord_fake, "8 notes happy", BOB)
    (song,) = songs(discord_fake)

    def no_composing(*args, **kwargs):
        raise AssertionError("a replay composed again")

    monkeypatch.setattr(discord_fake.bot.composer, "compose", no_composing)
    await discord_fake.send("!history")
    listed = last(discord_fake)["embeds"][0]
    assert listed["title"] == "🎶 Songs played here: 1"
    assert f"#{rid} <@{BOB['id']}>" in listed["description"] and f"`!replay {rid}`" in listed["description"]

    await discord_fake.send(f"!replay {rid}")
    replay = last(discord_fake)
    assert replay["embeds"][0]["title"] == f"🎶 Request #{rid} (replay)"
    assert replay["allowed_mentions"] == {"parse": []}
    original = {a["filename"]: discord_fake.file(a) for a in song["attachments"]}
    assert {a["filename"]: discord_fake.file(a) for a in replay["attachments"]} == original


async def test_old_songs_files_are_pruned_over_the_storage_cap(make_bot):
    fake = await make_bot(song_storage_mb=0.0001)
    first = await ask(fake, "8 notes")
    second = await ask(fake, "8 notes")
    assert not (fake.bot.settings.data_dir / "songs" / str(first)).exists()
    assert not (fake.bot.settings.data_dir / "songs" / str(second)).exists()  # alone over the cap too

    await fake.send(f"!replay {first}")
    assert last(fake)["content"] == f"The files of #{first} were removed to make room for newer songs."
    await fake.send("!history")
    assert "files pruned" in last(fake)["embeds"][0]["description"]


async def test_a_failing_request_is_retried_then_failed_with_a_reply_and_its_state_says_why(
    make_bot, monkeypatch
):
    fake = await make_bot(request_retries=1)
    calls = []

    async def broken(request, out_dir):
        calls.append(request)
        raise OSError("disk full")

    monkeypatch.setattr(fake.bot.composer, "compose", broken)
    rid = await ask(fake, "8 notes", BOB)

    assert len(calls) == 2  # the first try and one retry
    reply = last(fake)
    assert reply["content"].startswith(f"<@{BOB['id']}> ⚠️ I couldn't make your request #{rid}")
    assert "error id" in reply["content"]
    assert reply["allowed_mentions"]["users"] == [int(BOB["id"])]
    row = _row(fake, rid)
    assert (row["state"], row["attempts"]) == ("failed", 2)
    assert "error id" in row["error"]


async def test_a_file_that_is_not_music_is_refused_at_once_and_not_stored(discord_fake):
    await discord_fake.send("!request 8 notes", author=BOB, files={"notes.mid": b"not music at all"})

    assert '"notes.mid" is not a MIDI, MusicXML or ABC file.' in last(discord_fake)["content"]
    assert not discord_fake.bot.requests.path.exists() or _count(discord_fake) == 0


async def test_a_request_the_composer_refuses_fails_at_once_with_its_reason(discord_fake):
    broken = b'<?xml version="1.0"?>\n<score-partwise version="3.1"><part-list><score-part id="P1">'
    rid = await ask(discord_fake, "8 notes", BOB, files={"tune.musicxml": broken})

    reply = last(discord_fake)["content"]
    assert reply.startswith(f"<@{BOB['id']}>") and "tune.musicxml" in reply
    row = _row(discord_fake, rid)
    assert (row["state"], row["attempts"]) == ("failed", 1)  # the user's file: not tried again


async def test_a_request_with_a_midi_continues_it(discord_fake):
    await ask(discord_fake, "8 notes", files={"tune.mid": midi_file()})
    (song,) = songs(discord_fake)
    assert fields(song)["Length"] == "8"
    assert "Continues" in fields(discord_fake.bot_messages()[0])


async def test_bad_requests_get_a_friendly_reply_and_are_not_stored(discord_fake):
    for command, expected in [
        ("!request a jazz tune", "This model knows the styles bach, folk, not 'jazz'."),
        ("!request sad but happy", "'sad' and 'happy' pull different ways; choose one."),
        ("!request 9999 notes", "1 to 2000 notes and chords"),
        ("!request tempo=fast", "tempo must be a number"),
        ("!request 8 notes instrument=kazooo", "I don't know the instrument 'kazooo'"),
    ]:
        await discord_fake.send(command)
        assert expected in last(discord_fake)["content"], command
    assert not (discord_fake.bot.settings.data_dir / "requests.sqlite3").exists() or _count(discord_fake) == 0


async def test_slash_request_and_queue(discord_fake):
    await discord_fake.interact(_slash_group(discord_fake, "queue", "show", {}))
    await discord_fake.interact(_slash_group(discord_fake, "request", "new", {"text": "8 notes bach"}))

    confirmation, song = discord_fake.bot_messages()[-2:]
    assert confirmation["embeds"][0]["title"] == "🎶 Request #1 is in the queue"
    assert song["content"] == f"<@{ALICE['id']}> your request #1 is ready."
    assert "message_reference" not in song  # a slash command has no message to reply to
    assert fields(song)["Style"] == "bach"


async def test_help_request_documents_the_words(discord_fake):
    await discord_fake.send("!help request")
    text = " ".join(f["value"] for f in last(discord_fake)["embeds"][0]["fields"])
    assert "bach, folk" in text and "adagio 66" in text and "in D minor" in text and "!queue pause" in text


# -- helpers ----------------------------------------------------------------------------------------

OTHER_GUILD_CHANNEL = CHANNEL_ID + 1000


def last_in(fake, channel_id: int) -> dict:
    return fake.bot_messages(channel_id)[-1]


async def _send_in_guild(fake, guild_id: int, content: str, author=ALICE) -> None:
    """A message in a second server (owned by bob), with its own channel."""
    state = fake.bot._connection
    if state._get_guild(guild_id) is None:
        state._add_guild_from_data(
            {
                "id": str(guild_id),
                "name": "Other club",
                "owner_id": BOB["id"],
                "roles": [],
                "emojis": [],
                "features": [],
                "members": [],
                "channels": [{"id": str(OTHER_GUILD_CHANNEL), "type": 0, "name": "music", "position": 0}],
            }
        )
    data = fake.user_message(content, author=author, channel_id=OTHER_GUILD_CHANNEL)
    data["guild_id"] = str(guild_id)
    fake.bot._connection.parsers["MESSAGE_CREATE"](data)
    await fake.settle()


def _slash_group(fake, group: str, name: str, options: dict) -> dict:
    """A slash command payload for a subcommand, such as ``/request new``."""
    values = [{"name": key, "type": 3 if isinstance(v, str) else 4, "value": v} for key, v in options.items()]
    data = {"id": str(fake.next_id()), "name": group, "type": 1}
    data["options"] = [{"name": name, "type": 1, "options": values}]
    return fake.interaction(2, data)


def _row(fake, request_id: int) -> sqlite3.Row:
    with sqlite3.connect(fake.bot.requests.path) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()


def _count(fake) -> int:
    with sqlite3.connect(fake.bot.requests.path) as db:
        return db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
