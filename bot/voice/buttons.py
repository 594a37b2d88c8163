"""The buttons under the radio's now-playing message, which keep working after a restart.

``cadenza:radio:skip:`` and the steering buttons act on the server's voice session, whatever
message they are pressed on (after a restart there is none, and the press says so). **Keep this
one** carries the piece's options and seed in its custom_id,
``cadenza:radio:keep:300 tempo=66 key=Dm seed=42``, so it posts that piece's files, composed
again from its seed, even after the bot restarted.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Self

import discord

from bot.buttons import CUSTOM_ID_LIMIT

if TYPE_CHECKING:
    from bot.app import CadenzaBot

log = logging.getLogger(__name__)

COG = "Voice"
_LOOKS = {
    "skip": ("Skip", "⏭️", discord.ButtonStyle.secondary),
    "calmer": ("Calmer", "🌙", discord.ButtonStyle.secondary),
    "livelier": ("Livelier", "☀️", discord.ButtonStyle.secondary),
    "style": ("Another style", "🎨", discord.ButtonStyle.secondary),
    "keep": ("Keep this one", "💾", discord.ButtonStyle.primary),
}


def custom_id(action: str, options: str = "") -> str:
    """``cadenza:radio:<action>:<options>``; only Keep carries options."""
    return f"cadenza:radio:{action}:{options}"


class RadioButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"cadenza:radio:(?P<action>skip|calmer|livelier|style|keep):(?P<options>.*)",
):
    """One of the radio's buttons; its state lives in its custom_id."""

    def __init__(self, action: str, options: str = "") -> None:
        label, emoji, style = _LOOKS[action]
        super().__init__(
            discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id(action, options))
        )
        self.action = action
        self.options = options

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> Self:
        """Rebuild the button from a pressed custom_id, after a restart too."""
        return cls(match["action"], match["options"])

    async def callback(self, interaction: discord.Interaction[CadenzaBot]) -> None:
        """Hand the press to the voice cog."""
        await interaction.client.get_cog(COG).press(interaction, self)


def radio_view(options: str) -> discord.ui.View:
    """The radio's buttons; ``options`` (with the seed) make the piece playing now again."""
    view = discord.ui.View(timeout=None)
    for action in ("skip", "calmer", "livelier", "style"):
        view.add_item(RadioButton(action))
    if len(custom_id("keep", options)) <= CUSTOM_ID_LIMIT:
        view.add_item(RadioButton("keep", options))
    else:
        log.warning("no keep button: its custom_id would be over %d characters", CUSTOM_ID_LIMIT)
    return view
