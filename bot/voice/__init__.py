"""Cadenza live in voice channels: ``play``, ``radio``, ``skip``, ``stop``, ``leave``.

- :mod:`bot.voice.cog`: the commands, joining and leaving, one session a server, the global cap;
- :mod:`bot.voice.session`: one server's session: queue, radio steering, now playing, votes;
- :mod:`bot.voice.source`: the live stream as discord.py's :class:`~discord.AudioSource`;
- :mod:`bot.voice.buttons`: the radio's buttons, which survive restarts;
- :mod:`bot.voice.libraries`: whether PyNaCl, davey and libopus are here.

The music comes from :mod:`composer.render.live`, which knows nothing of Discord.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.voice.buttons import RadioButton
from bot.voice.cog import Voice

if TYPE_CHECKING:
    from bot.app import CadenzaBot


async def setup(bot: CadenzaBot) -> None:
    """Add the cog and the radio's buttons (called by ``bot.load_extension``)."""
    await bot.add_cog(Voice(bot))
    bot.add_dynamic_items(RadioButton)
