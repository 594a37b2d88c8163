"""Finding the piece to continue and fetching it, within the size limit.

The size Discord declares is checked before a byte is downloaded. What the bytes are is the
composer's business: it looks at the content, never at the file name, which is only used here to
choose among several files (one of the bot's own answers has a MIDI, an audio file and a picture)
and in messages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import discord

from bot.failures import Refusal

log = logging.getLogger(__name__)

MUSIC_SUFFIXES = (".mid", ".midi", ".kar", ".mxl", ".musicxml", ".xml", ".abc")
_NAME_LIMIT = 60


def shown_name(attachment: discord.Attachment) -> str:
    """The file name as shown in messages: never used as a path, and cut short."""
    name = attachment.filename
    return name if len(name) <= _NAME_LIMIT else name[: _NAME_LIMIT - 1] + "…"


def pick_music(attachments: Sequence[discord.Attachment]) -> discord.Attachment | None:
    """The attachment that is most likely a piece: the first with a music file name, else the first."""
    for attachment in attachments:
        if attachment.filename.lower().endswith(MUSIC_SUFFIXES):
            return attachment
    return attachments[0] if attachments else None


async def replied_message(message: discord.Message) -> discord.Message | None:
    """The message that ``message`` replies to, fetched when the gateway did not include it."""
    reference = message.reference
    if reference is None or reference.message_id is None:
        return None
    if isinstance(reference.resolved, discord.Message):
        return reference.resolved
    try:
        return await message.channel.fetch_message(reference.message_id)
    except discord.NotFound:
        raise Refusal("The message you replied to is gone, so there is no piece to continue.") from None


def check_size(attachment: discord.Attachment, limit: int) -> None:
    """Refuse a file whose declared size is over the limit, before downloading it."""
    if attachment.size > limit:
        raise Refusal(
            f"{shown_name(attachment)} is {attachment.size / 1000:.0f} KB; I read pieces up to "
            f"{limit / 1000:.0f} KB (a piano MIDI is usually under 60 KB)."
        )


async def download(attachment: discord.Attachment, limit: int) -> bytes:
    """The bytes of ``attachment``, size-checked before and after the download."""
    check_size(attachment, limit)
    try:
        data = await attachment.read()
    except discord.HTTPException as error:
        log.warning("could not download attachment %s: %s", attachment.id, error)
        raise Refusal(f"I couldn't download {shown_name(attachment)}; please upload it again.") from None
    if len(data) > limit:
        raise Refusal(f"{shown_name(attachment)} is over {limit / 1000:.0f} KB, the most I read.")
    return data
