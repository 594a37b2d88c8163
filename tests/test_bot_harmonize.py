"""``!harmonize`` and ``/harmonize`` end to end: a real discord.py bot and the tiny model, Discord faked."""

from __future__ import annotations

import io
import re

import mido
import pytest

from bot.options import (
    HARMONY_OPTIONS,
    build_harmony_request,
    format_options,
    parse_options,
    request_options,
)
from composer.errors import InvalidOptionError
from composer.service import ComposeRequest
from tests.test_bot import answer, buttons, fields, files
from tests.test_bot_support import midi_file


def tracks(midi: bytes) -> dict[str, list[tuple[int, int]]]:
    """Each named track's notes as (start tick, pitch)."""
    song = mido.MidiFile(file=io.BytesIO(midi))
    found = {}
    for track in song.tracks[1:]:
        tick, notes = 0, []
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity:
                notes.append((tick, message.note))
        found[track.name] = notes
    return found


def assert_is_a_harmonization(fake, message, melody: list[tuple[int, int]]) -> dict[str, bytes]:
    """MIDI with the melody unchanged on its own track over three voices, audio, picture, buttons."""
    made = files(fake, message)
    assert set(made) == {".mid", ".ogg", ".png"}
    parts = tracks(made[".mid"])
    assert list(parts) == ["Soprano", "Alto", "Tenor", "Bass"]
    assert parts["Soprano"] == melody
    for voice in ("Alto", "Tenor", "Bass"):
        assert parts[voice], voice
    assert {"Voices", "Seed", "Key", "Tempo", "Instrument", "Style", "Make it again"} <= set(fields(message))
    assert set(buttons(message)) == {"Harmonize again", "Continue"}
    return made


C_MAJOR = [(i * 480, p) for i, p in enumerate((60, 62, 64, 65))] + [(1920, 67), (2880, 69), (3840, 67)]


async def test_a_typed_melody_and_the_line_that_makes_it_again(discord_fake):
    await discord_fake.send("!harmonize C4 D E F G2 A G seed=3 tempo=80")

    message = answer(discord_fake)
    made = assert_is_a_harmonization(discord_fake, message, C_MAJOR)
    assert message["embeds"][0]["title"] == "🎼 Your melody, harmonized"
    assert message["embeds"][0]["description"].startswith("7 melody notes in 4 voices")
    again = re.fullmatch(r"`(.*)`", fields(message)["Make it again"]).group(1)
    assert again == "!harmonize C4 D E F G2 A G tempo=80 seed=3"
    progress = discord_fake.requests_to("POST", "/messages")[0].payload["content"]
    assert progress == "🎼 Harmonizing your melody…"

    await discord_fake.send(again)
    assert files(discord_fake, answer(discord_fake))[".mid"] == made[".mid"]


async def test_slash_harmonize_takes_abc(discord_fake):
    command = {p.name: p for p in discord_fake.bot.tree.get_command("harmonize").parameters}
    assert command["voices"].min_value == 2 and command["voices"].max_value == 4
    assert command["file"].type.name == "attachment" and all(p.description for p in command.values())

    await discord_fake.interact(discord_fake.slash("harmonize", {"melody": "K:D |d2 f2 a4|g2 e2 d4|]"}))

    message = answer(discord_fake)
    melody = [(0, 74), (480, 78), (960, 81), (1920, 79), (2400, 76), (2880, 74)]
    assert_is_a_harmonization(discord_fake, message, melody)
    assert discord_fake.requests[1].payload["type"] == 5  # deferred at once


@pytest.mark.parametrize("how", ["attached", "replied-to"])
async def test_a_midi_file_attached_or_replied_to(discord_fake, how):
    pitches = (67, 69, 71, 72, 74, 72, 71, 67)
    if how == "attached":
        await discord_fake.send("!harmonize voices=4", files={"tune.mid": midi_file(pitches)})
    else:
        upload = await discord_fake.send("here is my tune", files={"tune.mid": midi_file(pitches)})
        await discord_fake.send("!harmonize", reply_to=upload)

    message = answer(discord_fake)
    assert_is_a_harmonization(discord_fake, message, [(i * 480, p) for i, p in enumerate(pitches)])
    assert message["embeds"][0]["title"] == "🎼 tune.mid, harmonized"


async def test_the_buttons_harmonize_again_and_continue(discord_fake):
    await discord_fake.send("!harmonize C4 D E F G2 A G tempo=90 transpose=2 voices=4")
    first = answer(discord_fake)
    # The MIDI already holds the transposed melody: harmonizing it again does not move it again.
    assert buttons(first)["Harmonize again"] == "cadenza:reharmonize::tempo=90"
    c_major = [(tick, pitch + 2) for tick, pitch in C_MAJOR]

    await discord_fake.interact(discord_fake.press(first, "Harmonize again"))
    second = answer(discord_fake)
    assert second["id"] != first["id"]
    assert_is_a_harmonization(discord_fake, second, c_major)  # the melody read back from the MIDI
    assert fields(second)["Seed"] != fields(first)["Seed"] and fields(second)["Tempo"] == "90"

    await discord_fake.interact(discord_fake.press(second, "Continue"))
    continued = answer(discord_fake)
    assert continued["embeds"][0]["title"].endswith(".mid, continued")
    assert len(tracks(files(discord_fake, continued)[".mid"])) == 5  # the four parts and the new one


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("!harmonize", "Send a melody to harmonize, like `!harmonize C4 D E F G2 A G`"),
        ("!harmonize hello there", "I could not read that melody: 'h' is neither ABC nor a note name"),
        ("!harmonize K:C |[CEG]2 D2|", "I found a chord (notes in [brackets]) where a melody was expected"),
        ("!harmonize C4 D c'''''", "The note C9 is off the piano keyboard"),
        ("!harmonize " + "C8 D " * 201, "That melody has 402 notes; I harmonize up to 400."),
        ("!harmonize C D E voices=5", "Voices means parts in all, the melody included: 2 to 4, not 5."),
        ("!harmonize C D E key=Am", "There is no option 'key' here; you can use instrument, seed, style"),
    ],
    ids=["empty", "unreadable", "chord", "off-keyboard", "too-long", "voices", "key"],
)
async def test_bad_melodies_get_one_friendly_line(discord_fake, command, expected):
    await discord_fake.send(command)
    text = answer(discord_fake)["content"]
    assert expected in text and "\n" not in text


def test_harmony_options_round_trip_through_the_text_buttons_carry():
    request = ComposeRequest(melody="C D E", harmonize=True, voices=3, temperature=0.5, seed=4, style="folk")
    values = request_options(request)
    assert values == {"voices": 3, "seed": 4, "style": "folk"}  # 0.5 is a harmonization's default
    text = format_options(values)
    assert build_harmony_request(parse_options(text, allowed=HARMONY_OPTIONS), melody="C D E") == request
    with pytest.raises(InvalidOptionError, match="no option 'voices'"):
        parse_options("300 voices=3")  # not for compose, continue or song requests
