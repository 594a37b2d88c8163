"""One job, from request to posted piece: the progress message, the composition, the answer.

Everything a person sees for one piece is one message. It shows the place in the queue while the
job waits and "Composing…" while it runs (:mod:`bot.progress`), and is then edited into the answer:
the MIDI, the audio that plays inline, the piano-roll picture, an embed with the settings and the
line that makes the same piece again, and the buttons. The answer is uploaded after the job has
given its composer slot back, so a channel's rate limit on uploads never holds up the next piece.
If something fails after the message is up, the message says so.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord

from bot.buttons import piece_view
from bot.failures import explain
from bot.options import format_options, request_options
from bot.progress import Post, ProgressMessage
from bot.uploads import read_files
from composer.service import ComposeRequest, Composition

if TYPE_CHECKING:
    from bot.app import CadenzaBot

log = logging.getLogger(__name__)

_MB = 2**20
HOW_LIMIT = 1024
"""Longest "make it again" line (an embed field's limit): a longer melody is not repeated there."""


@dataclass(frozen=True)
class Job:
    """What to compose, for whom, and how much the answer may upload."""

    request: ComposeRequest
    user: discord.abc.User
    channel: discord.abc.Messageable | None
    upload_limit: int
    source_id: int | None = None
    """The message whose piece is continued, so the Variation button can continue it again."""

    @property
    def label(self) -> str:
        """What is being done, for the progress message."""
        if self.request.harmonizing:
            return f"Harmonizing {self.request.primer_name or 'your melody'}"
        if self.request.primer is None:
            return f"Composing {self.request.length} notes and chords"
        name = self.request.primer_name or "your piece"
        return f"Continuing {name} with {self.request.length} notes and chords"


def upload_limit(guild: discord.Guild | None, interaction: discord.Interaction | None = None) -> int:
    """The most bytes one message may upload where the answer goes (10 MB in direct messages)."""
    if interaction is not None:
        return interaction.filesize_limit
    return guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES


def progress_text(job: Job, place: int) -> str:
    """The progress message for a job at ``place`` in line (0: running)."""
    if place == 0:
        return f"🎼 {job.label}…"
    return f"⏳ {job.label}… you are #{place} in the queue."


async def run_job(bot: CadenzaBot, job: Job, post: Post) -> discord.Message | None:
    """Queue, compose and post ``job``; returns the answer, or ``None`` when the job failed visibly.

    Errors before the progress message is posted (the user already has a job, cooldown) are
    raised for the caller to answer; later ones are written into the progress message.
    """
    progress = ProgressMessage(lambda place: progress_text(job, place), post)
    out_dir: Path | None = None
    try:
        async with bot.jobs.turn(job.user.id, progress.show):
            out_dir = Path(tempfile.mkdtemp(prefix="job-", dir=bot.settings.data_dir))
            piece = await bot.composer.compose(job.request, out_dir)
        # The slot is free for the next piece while this one is uploaded and edited in.
        log.info("composed %s for %s in %.1f s", piece.midi.name, job.user, piece.timings["total"])
        return await progress.finish(content=None, **await answer(job, piece, bot.settings.prefix))
    except Exception as error:
        if progress.message is None:
            raise
        text = explain(error, what=job.label.lower(), user=job.user, channel=job.channel)
        await progress.finish(content=f"⚠️ {text}", embed=None, attachments=[], view=None)
        return None
    finally:
        if out_dir is not None:
            shutil.rmtree(out_dir, ignore_errors=True)


async def answer(job: Job, piece: Composition, prefix: str) -> dict[str, Any]:
    """The embed, files and buttons of the answer, as keyword arguments for ``Message.edit``."""
    paths, notes = files_within(piece, job.upload_limit)
    embed = piece_embed(job, piece, prefix, notes)
    if piece.picture in paths:
        embed.set_image(url=f"attachment://{piece.picture.name}")
    return {
        "embed": embed,
        "attachments": await read_files(paths),
        "view": piece_view(job.request, piece, job.source_id),
    }


def files_within(piece: Composition, limit: int) -> tuple[list[Path], list[str]]:
    """The MIDI, then the picture and the audio while they fit the upload limit; notes on what didn't."""
    paths = [piece.midi]
    total = piece.midi.stat().st_size
    notes = []
    for path, what in ((piece.picture, "picture"), (piece.audio, "audio")):
        if path is None:
            continue
        size = path.stat().st_size
        if total + size <= limit:
            paths.append(path)
            total += size
        else:
            notes.append(
                f"No {what} this time: it would make the message {(total + size) / _MB:.1f} MB, over the "
                f"{limit / _MB:.0f} MB upload limit here. The MIDI plays in any music app."
            )
    return paths, notes


def piece_embed(job: Job, piece: Composition, prefix: str, notes: list[str]) -> discord.Embed:
    """The settings and seed of a piece, and the command that makes it again."""
    request = job.request
    minutes, seconds = divmod(round(piece.seconds), 60)
    length = f"{minutes}:{seconds:02d}"
    again = format_options(request_options(request) | {"seed": piece.seed})
    if request.harmonizing:
        title = f"🎼 {request.primer_name or 'Your melody'}, harmonized"
        description = (
            f"{piece.events} melody notes in {piece.voices} voices ({piece.notes} notes in all), {length} "
            f"in {piece.key} at {piece.tempo:g} bpm."
        )
        typed = f"`{prefix}harmonize {request.melody} {again}`"
        if request.melody is not None and len(typed) <= HOW_LIMIT:
            how = typed
        else:
            how = f"Send the same melody with `{prefix}harmonize {again}`"
    elif request.primer is None:
        title = "🎼 A new piece"
        description = (
            f"{piece.events} notes and chords ({piece.notes} notes in all), {length} in {piece.key} "
            f"at {piece.tempo:g} bpm."
        )
        how = f"`{prefix}compose {again}`"
    else:
        title = f"🎼 {request.primer_name or 'Your piece'}, continued"
        description = (
            f"{piece.events} new notes and chords ({piece.notes} notes) after the {piece.primer_events} "
            f"of yours, {length} in all, "
            f"in {piece.key} at {piece.tempo:g} bpm."
        )
        how = f"Reply to the same file with `{prefix}continue {again}`"
    embed = discord.Embed(title=title, description=description, colour=discord.Colour.blurple())
    embed.set_author(name=f"For {job.user.display_name}", icon_url=job.user.display_avatar.url)
    for name, value in piece.settings.items():
        embed.add_field(name=name.capitalize(), value=value)
    embed.add_field(name="Make it again", value=how, inline=False)
    footer = " · ".join((*piece.warnings, *notes))
    if footer:
        embed.set_footer(text=footer[:2048])
    return embed
