"""The files an answer uploads, read with aiofiles so the event loop never waits on the disk.

discord.py's ``File(path)`` opens the file where it is made, on the event loop, and the upload
then reads it there too; a piece's audio runs to megabytes, and every other command would wait
while the disk answers. aiofiles reads each file on its thread pool instead, and the upload
sends the bytes from memory.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import aiofiles
import discord


async def read_files(paths: Sequence[Path]) -> list[discord.File]:
    """Each path as a ``discord.File`` of its bytes, under its own name."""
    files = []
    for path in paths:
        async with aiofiles.open(path, "rb") as handle:
            files.append(discord.File(io.BytesIO(await handle.read()), filename=path.name))
    return files
