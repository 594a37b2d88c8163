"""Whether this machine can speak in voice channels: PyNaCl, davey and the Opus library.

discord.py encrypts voice with PyNaCl, does Discord's end-to-end voice encryption (DAVE) with
``davey``, and encodes Opus with the system's libopus. Without them the bot still runs; voice
commands answer with one line and the log says once what to install.
"""

from __future__ import annotations

import ctypes.util

import discord

NEEDS = "pip install 'discord.py[voice]' (PyNaCl, davey) and apt-get install libopus0"


def missing_voice_libraries() -> tuple[str, ...]:
    """The names of what voice lacks here; empty when everything is present (and Opus is loaded)."""
    from discord import voice_client, voice_state

    lacking = []
    if not voice_client.has_nacl:
        lacking.append("PyNaCl")
    if not voice_state.has_dave:
        lacking.append("davey")
    if not discord.opus.is_loaded():
        found = ctypes.util.find_library("opus")
        try:
            if found is None:
                raise OSError("not found")
            discord.opus.load_opus(found)
        except OSError:
            lacking.append("libopus")
    return tuple(lacking)
