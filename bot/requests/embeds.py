"""What members see of requests: the confirmation, one request, the queue, the history, the song."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import discord

from bot.buttons import piece_view
from bot.options import format_options
from bot.pieces import files_within
from bot.requests.parse import LENGTH_WORDS, MOOD_KEYS, TEMPO_WORDS, Understood
from bot.requests.store import SongRequest
from bot.uploads import read_files
from composer.keys import parse_key
from composer.service import ComposeRequest, Composition

PAGE_SIZE = 10
"""Requests on one page of ``!queue`` and ``!history``."""
_TEXT_LIMIT = 200
_STATES = {
    "pending": "⏳ waiting",
    "composing": "🎼 being composed",
    "posting": "📮 being posted",
    "done": "✅ played",
    "failed": "⚠️ failed",
    "cancelled": "✖️ cancelled",
}


def quoted(text: str, limit: int = _TEXT_LIMIT) -> str:
    """A member's text for an embed: cut short, and without backticks that would break the quote."""
    text = " ".join(text.replace("`", "'").split()) or "(no words)"
    return f"“{text if len(text) <= limit else text[: limit - 1] + '…'}”"


def settings_line(settings: dict[str, Any]) -> str:
    """``folk · 300 notes and chords · D minor · 66 bpm``: a request's settings, in words."""
    parts = []
    if "style" in settings:
        parts.append(str(settings["style"]))
    if "length" in settings:
        parts.append(f"{settings['length']} notes and chords")
    if "key" in settings:
        key = parse_key(str(settings["key"]))
        parts.append(f"{str(key).rstrip('m')} {'minor' if key.minor else 'major'}")
    if "tempo" in settings:
        parts.append(f"{settings['tempo']:g} bpm")
    rest = {
        name: value for name, value in settings.items() if name not in ("style", "length", "key", "tempo")
    }
    if rest:
        parts.append(format_options(rest))
    return " · ".join(parts) or "the model's own choices"


def votes_text(votes: int) -> str:
    """``1 vote``, ``3 votes``."""
    return f"{votes} vote{'' if votes == 1 else 's'}"


def confirmation_embed(
    request: SongRequest, understood: Understood, place: int, prefix: str
) -> discord.Embed:
    """The answer to ``!request``: how it was read, its id and its place."""
    embed = discord.Embed(
        title=f"🎶 Request #{request.id} is in the queue",
        description=f"{quoted(request.text)}\nI'll compose **{settings_line(request.settings)}**.",
        colour=discord.Colour.blurple(),
    )
    embed.add_field(name="Place", value=f"{place} in line")
    if request.primer_name:
        embed.add_field(name="Continues", value=request.primer_name)
    if understood.reading:
        embed.add_field(name="How I read it", value="\n".join(understood.reading)[:1024], inline=False)
    if understood.skipped:
        embed.add_field(name="Words I skipped", value=", ".join(understood.skipped)[:1024], inline=False)
    embed.set_footer(
        text=f"Vote for it with the button or {prefix}vote {request.id} · {prefix}queue shows the order · "
        f"{prefix}cancel {request.id} takes it back"
    )
    return embed


def request_embed(request: SongRequest, place: int | None) -> discord.Embed:
    """One request, for ``!request show``."""
    embed = discord.Embed(
        title=f"🎶 Request #{request.id}",
        description=f"{quoted(request.text)}\n**{settings_line(request.settings)}**",
        colour=discord.Colour.blurple(),
    )
    embed.add_field(name="By", value=f"<@{request.author_id}>")
    state = _STATES[request.state]
    embed.add_field(name="State", value=f"{state}, {place} in line" if place else state)
    embed.add_field(name="Votes", value=str(request.votes))
    embed.add_field(name="Asked", value=discord.utils.format_dt(_time(request.created), "R"))
    if request.state in ("failed", "cancelled") and request.error:
        embed.add_field(name="Why", value=request.error[:1024], inline=False)
    if request.posted_message_id:
        link = f"https://discord.com/channels/{request.guild_id}/{request.channel_id}/{request.posted_message_id}"
        embed.add_field(name="Song", value=link, inline=False)
    return embed


def queue_embed(
    page_requests: Sequence[SongRequest], start: int, total: int, page: int, paused: bool, prefix: str
) -> discord.Embed:
    """One page of the queue; ``start`` is the place of the page's first request, from 1."""
    pages = max(1, -(-total // PAGE_SIZE))
    lines = [
        f"**{place}.** #{r.id} <@{r.author_id}>: {quoted(r.text, 60)} ({settings_line(r.settings)}) · "
        f"{votes_text(r.votes)}"
        for place, r in enumerate(page_requests, start=start)
    ]
    embed = discord.Embed(
        title=f"🎶 The queue: {total} waiting" + (" (paused)" if paused else ""),
        description="\n".join(lines) or f"Nothing is waiting. Ask for a song with `{prefix}request`.",
        colour=discord.Colour.blurple(),
    )
    footer = "Members take turns; votes move a request up within its round; then the oldest goes first."
    if pages > 1:
        footer = f"Page {page} of {pages} · {prefix}queue {min(page + 1, pages)} for more · " + footer
    embed.set_footer(text=footer)
    return embed


def history_embed(page_requests: Sequence[SongRequest], total: int, page: int, prefix: str) -> discord.Embed:
    """One page of the guild's finished songs, newest first."""
    pages = max(1, -(-total // PAGE_SIZE))
    lines = [
        f"#{r.id} <@{r.author_id}>: {quoted(r.text, 60)} · {discord.utils.format_dt(_time(r.finished), 'R')}"
        + (f" · `{prefix}replay {r.id}`" if r.stored else " · files pruned")
        for r in page_requests
    ]
    embed = discord.Embed(
        title=f"🎶 Songs played here: {total}",
        description="\n".join(lines) or "No song has been played here yet.",
        colour=discord.Colour.blurple(),
    )
    if pages > 1:
        embed.set_footer(text=f"Page {page} of {pages} · {prefix}history {min(page + 1, pages)} for more")
    return embed


async def song_message(
    request: SongRequest, piece: Composition, compose_request: ComposeRequest, limit: int, *, replay: bool
) -> dict[str, Any]:
    """The embed, files and buttons of a finished song, as keyword arguments for ``send``."""
    paths, notes = files_within(piece, limit)
    minutes, seconds = divmod(round(piece.seconds), 60)
    embed = discord.Embed(
        title=f"🎶 Request #{request.id}" + (" (replay)" if replay else ""),
        description=(
            f"{quoted(request.text)}\nFor <@{request.author_id}>: {piece.events} notes and chords, "
            f"{minutes}:{seconds:02d} in {piece.key} at {piece.tempo:g} bpm."
        ),
        colour=discord.Colour.blurple(),
    )
    embed.add_field(name="Asked for", value=settings_line(request.settings), inline=False)
    for name, value in piece.settings.items():
        embed.add_field(name=name.capitalize(), value=value)
    if piece.picture in paths:
        embed.set_image(url=f"attachment://{piece.picture.name}")
    footer = " · ".join((*piece.warnings, *notes))
    if footer:
        embed.set_footer(text=footer[:2048])
    return {
        "embed": embed,
        "files": await read_files(paths),
        "view": piece_view(compose_request, piece, None),
    }


def _time(stamp: float | None) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(stamp or 0, tz=datetime.UTC)


def request_help_embed(prefix: str, styles: Sequence[str], max_length: int) -> discord.Embed:
    """``!help request``: how requests are written, served and moderated."""
    p = prefix
    tempos = ", ".join(f"{word} {bpm}" for word, bpm in TEMPO_WORDS.items())
    embed = discord.Embed(
        title="🎶 Song requests",
        description=(
            "Ask in words; I answer at once with how I read it, its number and its place, and post the "
            "song here when its turn comes, mentioning you.\n"
            f"`{p}request a sad slow folk tune in D minor, 300 notes`\n"
            f"`{p}request style=bach length=400 tempo=70` (attach a MIDI to have it continued)"
        ),
        colour=discord.Colour.blurple(),
    )
    embed.add_field(
        name="Words I know",
        value=(
            f"**Styles**: {', '.join(styles)} (or `style=`) · "
            f"**Moods**: sad, melancholy, dark… → minor, 66 bpm (no key named: {MOOD_KEYS[True]}); "
            f"happy, bright, cheerful… → major, 126 bpm (no key named: {MOOD_KEYS[False]}); "
            "calm, gentle… → 72 bpm; energetic, excited… → 150 bpm · "
            f"**Tempo**: {tempos}, or `90 bpm` · "
            "**Keys**: in D minor, F# major, in Bb, key of E flat · "
            f"**Length**: 300 notes, a number alone, short {LENGTH_WORDS['short']}, long "
            f"{LENGTH_WORDS['long']} (at most {max_length}) · "
            "**Options** as in compose: length= tempo= key= temperature= seed= style= instrument=; "
            "an option wins over words"
        ),
        inline=False,
    )
    embed.add_field(
        name="The queue",
        value=(
            f"`{p}queue` the order · `{p}request show 12` one request · `{p}vote 12` or the Vote button · "
            f"`{p}cancel 12` yours · `{p}history` songs played · `{p}replay 12` post one again\n"
            "Members take turns: everyone's first request, then everyone's second… Votes move a "
            "request up within its round; then the oldest goes first."
        ),
        inline=False,
    )
    embed.add_field(
        name="Moderators",
        value=(
            f"`{p}queue pause`, `{p}queue resume`, `{p}queue clear`, `{p}queue remove 12`, "
            f"`{p}queue limits 3 50` (per member, in all), `{p}queue voice on` (done requests also "
            "play in voice when their author listens there)"
        ),
        inline=False,
    )
    return embed
