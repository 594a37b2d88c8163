"""The bot's parts that need no Discord: options, the job queue, settings, button state, upload sizes."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from discord.ext import commands
from pydantic import ValidationError

from bot.buttons import PieceButton, piece_view
from bot.failures import Refusal, explain
from bot.jobs import JobQueue
from bot.options import build_request, format_options, parse_options, request_options
from bot.pieces import files_within
from bot.settings import BotSettings, settings_problem
from composer.errors import InvalidOptionError
from composer.generation.sampling import DEFAULT_TEMPERATURE
from composer.service import ComposeRequest, Composition
from tests.conftest import FAKE_TOKEN

# -- options ----------------------------------------------------------------------------------


def test_options_are_read_into_typed_values():
    values = parse_options("300 tempo=90 key=Am temperature=0.9 seed=7 style=folk instrument=violin")
    assert values == {
        "length": 300,
        "tempo": 90.0,
        "key": "Am",
        "temperature": 0.9,
        "seed": 7,
        "style": "folk",
        "instrument": "violin",
    }
    assert parse_options("") == {}
    assert parse_options("TEMPO=80 Key=Am") == {"tempo": 80.0, "key": "Am"}
    with pytest.raises(InvalidOptionError, match="no option 'key' here; you can use length, tempo"):
        parse_options("key=Am", allowed=("length", "tempo"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("banana", "length must be a whole number, like !compose 300, not 'banana'"),
        ("8 colour=red", "There is no option 'colour' here; you can use"),
        ("8 tempo=fast", "tempo must be a number, like 90, not 'fast'"),
        ("8 tempo=nan", "tempo must be a number"),
        ("8 seed=1.5", "seed must be a whole number"),
        ("8 tempo=90 tempo=100", "You gave tempo twice"),
        ("8 9", "I don't understand '9'"),
        ('8 style="folk', "A quote is not closed"),
        ("8 style=", "style needs a value"),
        ("8 " + "x" * 300 + "=1", "…"),
    ],
)
def test_bad_option_text_gets_a_message_for_the_user(text, expected):
    with pytest.raises(InvalidOptionError) as caught:
        parse_options(text)
    assert expected in str(caught.value)
    assert len(str(caught.value)) < 200


def test_options_written_back_read_the_same():
    values = {"length": 300, "tempo": 90.5, "key": "F#m", "seed": 7, "instrument": "acoustic guitar"}
    text = format_options(values)
    assert text == "300 tempo=90.5 key=F#m seed=7 instrument='acoustic guitar'"
    assert parse_options(text) == values


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"length": -5}, "This bot composes 1 to 2000 notes and chords at a time, not -5."),
        ({"length": 99999999}, "not 99999999"),
        ({"tempo": 9000.0}, "The tempo must be from 20 to 300 beats a minute, not 9000"),
        ({"temperature": 9.0}, "temperature must be between 0.05 and 3"),
        ({"key": "H"}, "'H' is not a key I know"),
        ({"transpose": 99}, "Transpose by at most 24 semitones"),
        ({"seed": -1}, "The seed must be a whole number"),
    ],
)
def test_option_values_are_checked(values, expected):
    with pytest.raises(InvalidOptionError, match=re.escape(expected)):
        build_request(values, default_length=500, max_length=2000)


def test_the_bots_own_length_cap_applies_on_top():
    with pytest.raises(InvalidOptionError, match="1 to 100 notes and chords at a time, not 300"):
        build_request({"length": 300}, default_length=500, max_length=100)
    assert build_request({}, default_length=500, max_length=100).length == 100
    assert build_request({"tempo": None}, default_length=200, max_length=2000).length == 200


def test_request_options_leave_out_defaults_and_spell_the_key_short():
    request = ComposeRequest(length=300, key="c# minor", seed=7, top_k=0, instrument="violin")
    assert request_options(request) == {"length": 300, "key": "C#m", "seed": 7, "instrument": "violin"}
    # a temperature given is kept even at the composer's default: left out, the style's own applies
    asked = ComposeRequest(length=300, temperature=DEFAULT_TEMPERATURE)
    assert request_options(asked) == {"length": 300, "temperature": DEFAULT_TEMPERATURE}


# -- job queue --------------------------------------------------------------------------------


async def test_jobs_run_in_order_and_waiting_users_hear_their_place():
    queue = JobQueue(max_running=1, max_waiting=5)
    places: dict[int, list[int]] = {1: [], 2: [], 3: []}
    release = {user: asyncio.Event() for user in places}
    order = []

    async def job(user):
        async def tell(place):
            places[user].append(place)

        async with queue.turn(user, tell):
            order.append(user)
            await release[user].wait()

    tasks = [asyncio.create_task(job(user)) for user in (1, 2, 3)]
    await asyncio.sleep(0)
    assert (queue.running, queue.waiting) == (1, 2)
    assert queue.has_job(2)
    with pytest.raises(Refusal, match="already have a piece on the way"):
        async with queue.turn(1, lambda place: asyncio.sleep(0)):
            pass
    for user in (1, 2, 3):
        release[user].set()
        await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)
    assert order == [1, 2, 3]
    assert places == {1: [0], 2: [1, 0], 3: [2, 1, 0]}
    assert (queue.running, queue.waiting) == (0, 0)


async def test_a_failed_job_leaves_the_line():
    queue = JobQueue(max_running=1, max_waiting=0)

    async def silent(place):
        pass

    with pytest.raises(RuntimeError):
        async with queue.turn(1, silent):
            raise RuntimeError("boom")
    async with queue.turn(1, silent):
        with pytest.raises(Refusal, match="line is full"):
            async with queue.turn(2, silent):
                pass


async def test_cooldown_counts_from_the_last_accepted_job():
    queue = JobQueue(max_running=2, max_waiting=2, cooldown_seconds=30)

    async def silent(place):
        pass

    async with queue.turn(1, silent):
        pass
    with pytest.raises(commands.CommandOnCooldown) as caught:
        async with queue.turn(1, silent):
            pass
    assert 29 < caught.value.retry_after <= 30
    async with queue.turn(2, silent):
        pass


# -- settings ---------------------------------------------------------------------------------


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("BOT_CHANNELS", "123, 456")
    monkeypatch.setenv("BOT_LOG_LEVEL", "debug")
    settings = BotSettings(_env_file=None)
    assert settings.token.get_secret_value() == FAKE_TOKEN
    assert settings.channels == {123, 456}
    assert settings.log_level == "DEBUG"
    assert (settings.prefix, settings.max_length, settings.max_attachment_bytes) == ("!", 2000, 500_000)
    assert FAKE_TOKEN not in repr(settings)


def test_empty_lines_of_the_example_env_file_mean_the_defaults(tmp_path):
    env = tmp_path / ".env"
    env.write_text(f"BOT_TOKEN={FAKE_TOKEN}\nBOT_CHANNELS=\nBOT_PREFIX=\nBOT_COOLDOWN_SECONDS=5\n")
    settings = BotSettings(_env_file=env)
    assert (settings.channels, settings.prefix, settings.cooldown_seconds) == (frozenset(), "!", 5.0)


def test_a_bad_setting_is_named_in_one_line(monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("BOT_MAX_JOBS", "many")
    with pytest.raises(ValidationError) as caught:
        BotSettings(_env_file=None)
    line = settings_problem(caught.value, "BOT_")
    assert line.startswith("error: fix these settings") and "BOT_MAX_JOBS" in line and "\n" not in line


def test_a_pasted_client_secret_is_not_taken_for_a_token():
    with pytest.raises(ValidationError) as caught:
        BotSettings(token="aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW", _env_file=None)
    assert "BOT_TOKEN is not a bot token" in settings_problem(caught.value, "BOT_")


# -- buttons ----------------------------------------------------------------------------------


def _piece(tmp_path, **changes) -> Composition:
    fields = dict(
        midi=tmp_path / "a.mid",
        audio=tmp_path / "a.ogg",
        picture=tmp_path / "a.png",
        seed=5,
        events=8,
        primer_events=0,
        seconds=4.0,
        key="C",
        tempo=96.0,
        program=40,
        style="folk",
        ended_naturally=True,
        mapped_values=0,
        timings={"total": 1.0},
    )
    return Composition(**(fields | changes))


async def test_a_buttons_state_survives_its_custom_id():
    button = PieceButton("variation", "200 tempo=90 instrument=40", 1234567890123456789)
    assert button.custom_id == "cadenza:variation:1234567890123456789:200 tempo=90 instrument=40"
    match = PieceButton.__discord_ui_compiled_template__.fullmatch(button.custom_id)
    again = await PieceButton.from_custom_id(None, button.item, match)
    assert (again.action, again.options, again.source_id) == ("variation", button.options, button.source_id)
    assert parse_options(again.options) == {"length": 200, "tempo": 90.0, "instrument": "40"}


def test_buttons_ask_for_a_new_seed_and_carry_what_each_needs(tmp_path):
    request = ComposeRequest(length=300, seed=7, tempo=90, key="Am", transpose=2, instrument="violin")
    ids = [item.custom_id for item in piece_view(request, _piece(tmp_path), None).children]
    assert ids == [
        "cadenza:again::300 tempo=90 key=Am instrument=40 transpose=2",
        "cadenza:continue::300 tempo=90 instrument=40",
    ]
    continuation = ComposeRequest(length=200, primer=b"MThd", primer_name="song.mid")
    ids = [item.custom_id for item in piece_view(continuation, _piece(tmp_path), 42).children]
    assert ids == ["cadenza:again::200", "cadenza:continue::200", "cadenza:variation:42:200"]


def test_a_button_whose_state_does_not_fit_is_left_out(tmp_path, caplog):
    request = ComposeRequest(length=300, style="s" * 90)
    view = piece_view(request, _piece(tmp_path, style="s" * 90), None)
    assert view.children == []
    assert "custom_id would be over 100" in caplog.text


# -- upload sizes -----------------------------------------------------------------------------


def test_audio_is_left_out_with_a_reason_when_the_upload_limit_is_near(tmp_path):
    piece = _piece(tmp_path)
    for path, size in ((piece.midi, 100), (piece.picture, 1_000), (piece.audio, 5_000)):
        path.write_bytes(b"x" * size)
    assert files_within(piece, 10_000) == ([piece.midi, piece.picture, piece.audio], [])
    paths, notes = files_within(piece, 3_000)
    assert paths == [piece.midi, piece.picture]
    assert notes[0].startswith("No audio this time") and "upload limit" in notes[0]


# -- failures ---------------------------------------------------------------------------------


def test_errors_people_cause_read_as_they_are_and_others_get_an_id(caplog):
    class Person:
        id = 1

        def __str__(self):
            return "alice"

    wrapped = commands.CommandInvokeError(InvalidOptionError("The tempo must be from 20 to 300."))
    assert (
        explain(wrapped, what="compose", user=Person(), channel=None) == "The tempo must be from 20 to 300."
    )
    with caplog.at_level(logging.ERROR, logger="bot.failures"):
        text = explain(KeyError("oops"), what="compose", user=Person(), channel=None)
    error_id = re.search(r"error id `([0-9a-f]{8})`", text).group(1)
    assert error_id in caplog.text and "KeyError" in caplog.text
