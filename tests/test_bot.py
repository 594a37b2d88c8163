"""The bot end to end: a real discord.py bot and the tiny model, with only Discord's edge faked.

Messages and interactions arrive as gateway payloads through discord.py's own ``ConnectionState``
parsers and run through its command machinery, checks, converters, hybrid commands and dynamic
items; what the bot sends is read back from :class:`tests.test_bot_support.FakeDiscord`.
"""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import discord
import mido
import pytest

from bot.__main__ import main
from bot.app import CadenzaBot
from tests.conftest import FAKE_TOKEN
from tests.test_bot_support import BOB, CHANNEL_ID, OTHER_CHANNEL_ID, midi_file

REPO = Path(__file__).resolve().parent.parent


def answer(fake) -> dict:
    """The bot's latest message in the music channel."""
    return fake.bot_messages()[-1]


def files(fake, message) -> dict[str, bytes]:
    """A message's attachments by file-name suffix."""
    return {Path(a["filename"]).suffix: fake.file(a) for a in message["attachments"]}


def fields(message) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}


def notes_in(midi: bytes) -> int:
    song = mido.MidiFile(file=io.BytesIO(midi))
    return sum(1 for track in song.tracks for m in track if m.type == "note_on" and m.velocity > 0)


def buttons(message) -> dict[str, str]:
    return {b["label"]: b["custom_id"] for row in message["components"] for b in row["components"]}


def assert_is_a_piece(fake, message) -> dict[str, bytes]:
    """One answer with a MIDI that parses, audio, a picture, the settings and buttons."""
    made = files(fake, message)
    assert set(made) == {".mid", ".ogg", ".png"}
    assert notes_in(made[".mid"]) > 0
    assert made[".ogg"].startswith(b"OggS")
    assert made[".png"].startswith(b"\x89PNG")
    assert {"Length", "Seed", "Key", "Tempo", "Instrument", "Style", "Make it again"} <= set(fields(message))
    picture = next(a["filename"] for a in message["attachments"] if a["filename"].endswith(".png"))
    assert message["embeds"][0]["image"]["url"] == f"attachment://{picture}"
    assert {"Again", "Continue"} <= set(buttons(message))
    assert message["content"] == ""
    return made


# -- compose ----------------------------------------------------------------------------------


async def test_compose_answers_with_one_message_holding_midi_audio_and_picture(discord_fake):
    await discord_fake.send("!compose 8")

    (message,) = discord_fake.bot_messages()
    assert_is_a_piece(discord_fake, message)
    # Acknowledged at once (typing), then one progress reply edited into the answer.
    steps = [(r.method, r.path.rsplit("/", 1)[-1]) for r in discord_fake.requests[1:]]
    assert steps == [("POST", "typing"), ("POST", "messages"), ("PATCH", "{message_id}")]
    assert discord_fake.requests[2].payload["content"] == "🎼 Composing 8 notes and chords…"
    left = [p.name for p in discord_fake.bot.settings.data_dir.iterdir()]
    assert left == ["slash-commands.sha256"]  # the job's files are gone


PUBLISH = ("PUT", "/applications/{application_id}/commands")


async def test_slash_commands_are_published_only_when_they_change(discord_fake, make_bot):
    def published(fake):
        return [r for r in fake.requests if (r.method, r.path) == PUBLISH]

    assert len(published(discord_fake)) == 1  # the first start publishes them
    await make_bot(fake=discord_fake)  # a restart with the same commands
    assert len(published(discord_fake)) == 1
    (discord_fake.bot.settings.data_dir / "slash-commands.sha256").write_text("an older set\n")
    await make_bot(fake=discord_fake)  # the commands changed since the last publication
    assert len(published(discord_fake)) == 2


async def test_compose_without_options_takes_the_default_length_within_the_bots_cap(make_bot):
    fake = await make_bot(max_length=8)
    await fake.send("!compose")
    assert fake.requests_to("POST", "/messages")[0].payload["content"] == "🎼 Composing 8 notes and chords…"
    assert_is_a_piece(fake, answer(fake))

    await fake.send("!compose 9")
    assert answer(fake)["content"] == "This bot composes 1 to 8 notes and chords at a time, not 9."


async def test_the_make_it_again_line_makes_the_same_piece(discord_fake):
    await discord_fake.send("!compose 8 tempo=90 key=Am temperature=0.9 seed=7 style=folk instrument=violin")
    first = answer(discord_fake)
    shown = fields(first)
    assert (shown["Seed"], shown["Tempo"], shown["Style"], shown["Instrument"]) == (
        "7",
        "90",
        "folk",
        "Violin (40)",
    )
    assert shown["Length"] == "8"  # the length asked for, which the piece ends near
    again = re.fullmatch(r"`(.*)`", shown["Make it again"]).group(1)
    assert again == "!compose 8 tempo=90 key=Am temperature=0.9 seed=7 style=folk instrument=violin"

    await discord_fake.send(again)
    second = answer(discord_fake)
    assert second["id"] != first["id"]
    assert files(discord_fake, second)[".mid"] == files(discord_fake, first)[".mid"]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("!compose -5", "This bot composes 1 to 2000 notes and chords at a time, not -5."),
        ("!compose 99999999", "not 99999999."),
        ("!compose banana", "length must be a whole number, like !compose 300, not 'banana'."),
        ("!compose tempo=9000", "The tempo must be from 20 to 300 beats a minute, not 9000."),
        ("!compose 8 colour=red", "There is no option 'colour' here; you can use instrument, key, length"),
        ("!compose 8 temperature=hot", "temperature must be a number, like 0.9, not 'hot'."),
        ("!compose 8 key=H", "'H' is not a key I know; try C, Am, F#m or Bb."),
        ("!compose 8 style=jazz", "This model knows the styles bach, folk, not 'jazz'."),
        ("!compose 8 instrument=kazooo", "I don't know the instrument 'kazooo'"),
        ("!compose @everyone", "not '@everyone'."),
        ("!continue", "Attach a MIDI file to `!continue`, or send it as a reply to a message that has one"),
    ],
)
async def test_bad_input_gets_a_friendly_reply(discord_fake, command, expected):
    await discord_fake.send(command)

    (message,) = discord_fake.bot_messages()
    assert expected in message["content"]
    assert "error id" not in message["content"]
    assert message["attachments"] == [] and message["embeds"] == []
    assert message["allowed_mentions"] == {"parse": []}  # echoed text never pings


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("song.mid", b"just some text, not music", '"song.mid" is not a MIDI, MusicXML or ABC file.'),
        ("song.mid", b"", '"song.mid" is empty.'),
        ("drums.mid", midi_file(channel=9), '"drums.mid" has only drums: Cadenza needs pitched notes.'),
        ("cut.mid", midi_file()[:40], '"cut.mid" is truncated or damaged'),
    ],
    ids=["not-music", "empty", "drums-only", "truncated"],
)
async def test_a_file_that_is_not_usable_music_gets_a_reply_saying_what_is_wrong(
    discord_fake, filename, content, expected
):
    await discord_fake.send("!continue 8", files={filename: content})

    (message,) = discord_fake.bot_messages()
    assert expected in message["content"]
    assert message["attachments"] == []


async def test_an_oversized_file_is_refused_before_it_is_downloaded(discord_fake):
    await discord_fake.send(
        "!continue 8", files={"big.mid": midi_file()}, declared_sizes={"big.mid": 600_000}
    )

    assert "big.mid is 600 KB; I read pieces up to 500 KB" in answer(discord_fake)["content"]
    assert discord_fake.downloads == []


async def test_one_piece_at_a_time_per_person_and_the_queue_says_your_place(make_bot):
    fake = await make_bot(max_jobs=1)
    for payload in (
        fake.user_message("!compose 8"),
        fake.user_message("!compose 8"),
        fake.user_message("!compose 8", author=BOB),
    ):
        fake.bot._connection.parsers["MESSAGE_CREATE"](payload)
    await fake.settle()

    busy = "You already have a piece on the way; it will be posted here when it is ready."
    assert [m["content"] for m in fake.bot_messages()].count(busy) == 1
    pieces = [m for m in fake.bot_messages() if m["attachments"]]
    assert len(pieces) == 2
    first_posts = [r.payload["content"] for r in fake.requests_to("POST", "/messages")]
    assert "⏳ Composing 8 notes and chords… you are #1 in the queue." in first_posts


async def test_the_cooldown_asks_people_to_wait(make_bot):
    fake = await make_bot(cooldown_seconds=60)
    await fake.send("!compose 8")
    await fake.send("!compose 8")

    first, second = fake.bot_messages()
    assert first["attachments"]
    assert re.fullmatch(r"Easy there: you can ask for another piece in (5\d|60) s\.", second["content"])


async def test_an_unexpected_error_is_logged_with_an_id_and_the_bot_carries_on(
    discord_fake, monkeypatch, caplog
):
    compose = discord_fake.bot.composer.compose
    calls = []

    async def broken_once(request, out_dir):
        calls.append(request)
        if len(calls) == 1:
            raise OSError("disk full")
        return await compose(request, out_dir)

    monkeypatch.setattr(discord_fake.bot.composer, "compose", broken_once)
    with caplog.at_level(logging.ERROR):
        await discord_fake.send("!compose 8")

    text = answer(discord_fake)["content"]
    error_id = re.search(r"error id `([0-9a-f]{8})`", text).group(1)
    assert text.startswith("⚠️ Sorry, something went wrong on my side")
    record = next(r for r in caplog.records if error_id in r.getMessage())
    assert "alice" in record.getMessage() and "Music club" in record.getMessage()
    assert record.exc_info[1].args == ("disk full",)

    await discord_fake.send("!compose 8")
    assert_is_a_piece(discord_fake, answer(discord_fake))


async def test_the_bot_stays_out_of_channels_it_is_not_allowed_in(make_bot):
    fake = await make_bot(channels=str(CHANNEL_ID))
    await fake.send("!compose 8", channel_id=OTHER_CHANNEL_ID)
    assert fake.bot_messages(OTHER_CHANNEL_ID) == []

    await fake.interact(fake.slash("compose", {"length": 8}, channel_id=OTHER_CHANNEL_ID))
    (response,) = fake.requests_to("POST", "/callback")
    assert response.payload["data"]["content"] == f"I only make music in <#{CHANNEL_ID}>."
    assert response.payload["data"]["flags"] == 64  # ephemeral


# -- continue ---------------------------------------------------------------------------------


async def test_continue_an_attached_midi(discord_fake):
    sent = await discord_fake.send("!continue 8 temperature=0.7", files={"melody.mid": midi_file()})

    message = answer(discord_fake)
    made = assert_is_a_piece(discord_fake, message)
    assert notes_in(made[".mid"]) > 8
    embed = message["embeds"][0]
    assert embed["title"] == "🎼 melody.mid, continued"
    assert re.match(r"\d+ new notes and chords \(\d+ notes\) after the 8 of yours", embed["description"])
    assert buttons(message)["Variation"] == f"cadenza:variation:{sent['id']}:8 temperature=0.7"


async def test_the_content_counts_not_the_file_name(discord_fake):
    await discord_fake.send("!continue 8", files={"holiday-photo.png": midi_file()})

    assert_is_a_piece(discord_fake, answer(discord_fake))


@pytest.mark.parametrize("included", [True, False], ids=["reply-included", "reply-fetched"])
async def test_continue_in_a_reply_to_one_of_the_bots_pieces(discord_fake, included):
    await discord_fake.send("!compose 8")
    piece = answer(discord_fake)

    await discord_fake.send("!continue 8", reply_to=piece, include_referenced=included)

    message = answer(discord_fake)
    assert_is_a_piece(discord_fake, message)
    assert message["embeds"][0]["title"].endswith(".mid, continued")
    assert buttons(message)["Variation"] == f"cadenza:variation:{piece['id']}:8"
    assert bool(discord_fake.requests_to("GET", "/messages/{message_id}")) is not included


# -- slash commands ---------------------------------------------------------------------------


async def test_slash_commands_have_typed_described_parameters_with_autocomplete(discord_fake):
    compose = {p.name: p for p in discord_fake.bot.tree.get_command("compose").parameters}
    assert (compose["length"].type.name, compose["length"].min_value, compose["length"].max_value) == (
        "integer",
        1,
        2000,
    )
    assert compose["tempo"].type.name == "number" and compose["seed"].max_value == 2**32 - 1
    assert compose["style"].autocomplete and compose["key"].autocomplete
    assert all(p.description and not p.required for p in compose.values())
    cont = {p.name: p for p in discord_fake.bot.tree.get_command("continue").parameters}
    assert cont["file"].type.name == "attachment" and "key" not in cont

    data = {
        "id": "1",
        "name": "compose",
        "type": 1,
        "options": [{"name": "style", "type": 3, "value": "fo", "focused": True}],
    }
    await discord_fake.interact(discord_fake.interaction(4, data))
    (response,) = discord_fake.requests_to("POST", "/callback")
    assert response.payload == {"type": 8, "data": {"choices": [{"name": "folk", "value": "folk"}]}}


async def test_slash_compose_defers_at_once_then_posts_one_piece(discord_fake):
    await discord_fake.interact(discord_fake.slash("compose", {"length": 8, "tempo": 100, "style": "bach"}))

    calls = [(r.method, r.path.split("/")[1]) for r in discord_fake.requests[1:]]
    assert calls == [("POST", "interactions"), ("POST", "webhooks"), ("PATCH", "webhooks")]
    assert discord_fake.requests[1].payload["type"] == 5  # deferred: "Cadenza is thinking…"
    (message,) = discord_fake.bot_messages()
    assert_is_a_piece(discord_fake, message)
    assert (fields(message)["Tempo"], fields(message)["Style"]) == ("100", "bach")


async def test_slash_continue_takes_an_uploaded_file(discord_fake):
    payload = discord_fake.slash("continue", {"length": 8}, attachments={"file": ("tune.mid", midi_file())})
    await discord_fake.interact(payload)

    message = answer(discord_fake)
    assert_is_a_piece(discord_fake, message)
    assert message["embeds"][0]["title"] == "🎼 tune.mid, continued"
    assert "Variation" not in buttons(message)  # a slash upload belongs to no message


async def test_audio_is_left_out_when_the_upload_limit_would_be_passed(discord_fake):
    await discord_fake.interact(discord_fake.slash("compose", {"length": 8, "seed": 3}))
    sizes = {Path(a["filename"]).suffix: a["size"] for a in answer(discord_fake)["attachments"]}
    limit = sizes[".mid"] + sizes[".png"] + sizes[".ogg"] // 2

    await discord_fake.interact(discord_fake.slash("compose", {"length": 8, "seed": 3}, upload_limit=limit))

    message = answer(discord_fake)
    assert set(files(discord_fake, message)) == {".mid", ".png"}
    assert "No audio this time" in message["embeds"][0]["footer"]["text"]
    assert "upload limit" in message["embeds"][0]["footer"]["text"]


# -- buttons ----------------------------------------------------------------------------------


async def test_the_buttons_make_new_pieces_even_after_a_restart(discord_fake, make_bot):
    await discord_fake.send("!compose 8 tempo=80")
    piece = answer(discord_fake)

    await discord_fake.interact(discord_fake.press(piece, "Again"))
    again = answer(discord_fake)
    assert_is_a_piece(discord_fake, again)
    assert fields(again)["Tempo"] == "80" and fields(again)["Seed"] != fields(piece)["Seed"]
    assert discord_fake.requests_to("POST", "/callback")[-1].payload["type"] == 5

    await discord_fake.interact(discord_fake.press(again, "Continue"))
    continued = answer(discord_fake)
    assert_is_a_piece(discord_fake, continued)
    assert continued["embeds"][0]["title"] == f"🎼 {again['attachments'][0]['filename']}, continued"
    assert buttons(continued)["Variation"].startswith(f"cadenza:variation:{again['id']}:")

    restarted = await make_bot(fake=discord_fake)  # a new bot on the same Discord
    await restarted.interact(restarted.press(continued, "Variation"))
    variation = answer(restarted)
    assert_is_a_piece(restarted, variation)
    assert variation["embeds"][0]["title"] == continued["embeds"][0]["title"]
    assert fields(variation)["Seed"] != fields(continued)["Seed"]


async def test_a_button_on_a_deleted_piece_says_so(discord_fake):
    payload = discord_fake.user_message("!continue 8", files={"gone.mid": midi_file()})
    discord_fake.bot._connection.parsers["MESSAGE_CREATE"](payload)
    await discord_fake.settle()
    continued = answer(discord_fake)
    del discord_fake.messages[int(payload["id"])]

    await discord_fake.interact(discord_fake.press(continued, "Variation"))
    (response,) = discord_fake.requests_to("POST", "/callback")
    assert response.payload["data"]["content"] == "The piece this variation started from was deleted."
    assert response.payload["data"]["flags"] == 64


# -- help, status, start ----------------------------------------------------------------------


async def test_help_and_status(discord_fake):
    await discord_fake.send("!help")
    help_embed = answer(discord_fake)["embeds"][0]
    text = " ".join(f["value"] for f in help_embed["fields"])
    assert "`!compose 300 tempo=90 key=Am temperature=0.9 seed=7 style=folk instrument=violin`" in text
    assert "bach, folk" in text and "Variation" in text

    await discord_fake.interact(discord_fake.slash("status", {}))
    status = answer(discord_fake)["embeds"][0]
    shown = {f["name"]: f["value"] for f in status["fields"]}
    assert shown["Model"].startswith("tiny.cadenza")
    assert shown["Queue"] == "0 of 2 composing\n0 waiting"
    assert re.fullmatch(r"<t:\d+:R>", shown["Up since"])
    assert shown["Version"]


def test_without_a_token_the_bot_says_what_to_set_in_one_line(tmp_path):
    env = {"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "")}
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        "error: BOT_TOKEN is missing. Set BOT_TOKEN to your bot's token in a .env file"
    )
    assert "https://discord.com/developers/applications" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        (
            discord.LoginFailure("Improper token has been passed."),
            "error: Discord refused BOT_TOKEN. Set BOT_TOKEN",
        ),
        (discord.PrivilegedIntentsRequired(None), "error: turn on the Message Content intent"),
    ],
)
def test_what_discord_refuses_at_login_is_one_line_too(refusal, expected, monkeypatch, tmp_path, capsys):
    async def refused(self, token, *, reconnect=True):
        raise refusal

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOT_TOKEN", FAKE_TOKEN)
    monkeypatch.setattr(discord.utils, "setup_logging", lambda **kwargs: None)
    monkeypatch.setattr(CadenzaBot, "start", refused)

    assert main() == 2
    error = capsys.readouterr().err
    assert error.startswith(expected) and error.count("\n") == 1
