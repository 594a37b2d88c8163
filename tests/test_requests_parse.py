"""The song request parser: words and options into settings, and friendly refusals."""

from __future__ import annotations

import pytest

from bot.requests.parse import parse_request
from composer.errors import InvalidOptionError

STYLES = ("bach", "folk")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a sad slow folk tune in D minor, 300 notes",
            {"style": "folk", "key": "Dm", "tempo": 66.0, "length": 300},
        ),
        ("style=bach length=400 tempo=70", {"style": "bach", "length": 400, "tempo": 70.0}),
        ("happy song in Bb", {"key": "Bb", "tempo": 126.0}),
        ("a sad tune in F#", {"key": "F#m", "tempo": 66.0}),  # the mood gives the mode
        ("sad but in C major", {"key": "C", "tempo": 66.0}),  # a named mode wins over the mood
        ("something cheerful", {"key": "G", "tempo": 126.0}),
        ("melancholy", {"key": "Dm", "tempo": 66.0}),
        ("F♯ major andante", {"key": "F#", "tempo": 80.0}),
        ("in the key of E flat, allegro", {"key": "Eb", "tempo": 132.0}),
        ("in a minor", {"key": "Am"}),
        ("in a happy mood", {"key": "G", "tempo": 126.0}),  # "a" is no key
        ("A calm Bach chorale at 80 bpm", {"style": "bach", "tempo": 80.0}),
        ("FOLK, fast", {"style": "folk", "tempo": 160.0}),
        ("a folk style tune", {"style": "folk"}),
        ("in the style of bach", {"style": "bach"}),
        ("300", {"length": 300}),
        ("a short piece", {"length": 150}),
        ("long and lively", {"length": 800, "tempo": 132.0}),
        ("sad tempo=100 key=E", {"key": "E", "tempo": 100.0}),  # options win over words
        (
            "fast 200 chords seed=7 temperature=0.9",
            {"tempo": 160.0, "length": 200, "seed": 7, "temperature": 0.9},
        ),
        ("instrument='acoustic guitar' folk", {"instrument": "acoustic guitar", "style": "folk"}),
        ("", {}),
    ],
)
def test_requests_are_read_into_settings(text, expected):
    assert parse_request(text, STYLES).values == expected


def test_the_reading_says_how_each_part_was_understood_and_what_was_skipped():
    understood = parse_request("a sad slow folk tune for my cat in D, 300 notes", STYLES)
    assert understood.reading == (
        "“300 notes”: 300 notes and chords",
        "“in D”: key D",
        "“folk”: style folk",
        "“slow”: 66 bpm",
        "“sad”: key D minor",
    )
    assert understood.skipped == ("cat",)


def test_style_names_are_the_models_own():
    assert parse_request("a Reel", ("reel", "jig")).values == {"style": "reel"}
    assert parse_request("style=JIG", ("reel", "jig")).values == {"style": "jig"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a jazz tune", "This model knows the styles bach, folk, not 'jazz'."),
        ("style=jazz", "This model knows the styles bach, folk, not 'jazz'."),
        ("rock style", "This model knows the styles bach, folk, not 'rock'."),
        ("sad and happy", "'sad' and 'happy' pull different ways; choose one."),
        ("slow and fast", "'fast' asks for another tempo than you gave before; say it once."),
        ("300 notes, 200 notes", "asks for another length than you gave before"),
        ("bach folk", "'folk' asks for another style than you gave before"),
        ("in D, in E", "asks for another key"),
        ("tempo=quick", "tempo must be a number, like 90, not 'quick'."),
        ("colour=red", "There is no option 'colour' here"),
        ("tempo=90 tempo=80", "You gave tempo twice"),
    ],
)
def test_what_cannot_be_read_gets_a_message_for_the_member(text, expected):
    with pytest.raises(InvalidOptionError) as caught:
        parse_request(text, STYLES)
    assert expected in str(caught.value)
