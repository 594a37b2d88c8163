"""The live stream as a :class:`discord.AudioSource`, for discord.py's own player and Opus encoder."""

from __future__ import annotations

import discord

from composer.render.live import LiveStream


class LiveSource(discord.AudioSource):
    """48 kHz stereo 16-bit PCM, 3,840 bytes every 20 ms, from a :class:`LiveStream`.

    discord.py's player thread calls :meth:`read` every 20 ms and encodes the frame with Opus;
    ``read`` never waits (the stream keeps seconds of audio ready), and an empty frame ends
    playback, which discord.py then reports to the ``after`` callback.
    """

    def __init__(self, stream: LiveStream) -> None:
        self.stream = stream

    def read(self) -> bytes:
        """The next 20 ms of music."""
        return self.stream.read()

    def is_opus(self) -> bool:
        """Raw PCM: discord.py encodes it."""
        return False

    def cleanup(self) -> None:
        """Playback is over: end FluidSynth and the stream's threads (in the player's thread)."""
        self.stream.close()
