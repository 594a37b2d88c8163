"""The Again, Continue and Variation buttons under each piece, which keep working after a restart.

Each button is a :class:`discord.ui.DynamicItem` whose custom_id carries everything it needs, in
the words people type: ``cadenza:again::300 tempo=90 style=folk``. Variation also names the
message whose piece it continues again: ``cadenza:variation:<message id>:200``. Nothing is kept in
memory, so once ``Bot.add_dynamic_items(PieceButton)`` has run, a restarted bot reads a button
on a week-old piece exactly like a new one.

- **Again**: a new piece with the same settings and a new seed.
- **Continue**: carries on from the end of the piece the button is under.
- **Variation** (on continuations): continues the same original piece again, with a new seed.
- **Harmonize again** (on harmonizations): the melody of the piece (its top track) harmonized
  again, with a new seed; Continue carries a harmonization on like any piece.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Self

import discord

from bot.options import format_options, request_options
from composer.service import ComposeRequest, Composition

if TYPE_CHECKING:
    from bot.app import CadenzaBot

log = logging.getLogger(__name__)

CUSTOM_ID_LIMIT = 100
"""Discord's limit on a component's custom_id."""
COG = "Compose"
"""The cog whose ``press`` method does what a button asks..."""
HARMONY_COG = "Harmonize"
"""...but for the Harmonize again button, this one's."""

_LOOKS = {
    "again": ("Again", "🔁", discord.ButtonStyle.primary),
    "continue": ("Continue", "➡️", discord.ButtonStyle.secondary),
    "variation": ("Variation", "🔀", discord.ButtonStyle.secondary),
    "reharmonize": ("Harmonize again", "🎶", discord.ButtonStyle.primary),
}


def custom_id(action: str, options: str, source_id: int | None = None) -> str:
    """The custom_id of a button: ``cadenza:<action>:<source message id or nothing>:<options>``."""
    return f"cadenza:{action}:{source_id or ''}:{options}"


class PieceButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"cadenza:(?P<action>again|continue|variation|reharmonize):(?P<source>[0-9]*):(?P<options>.*)",
):
    """One of the buttons under a piece; its state lives in its custom_id."""

    def __init__(self, action: str, options: str, source_id: int | None = None) -> None:
        label, emoji, style = _LOOKS[action]
        super().__init__(
            discord.ui.Button(
                label=label, emoji=emoji, style=style, custom_id=custom_id(action, options, source_id)
            )
        )
        self.action = action
        self.options = options
        self.source_id = source_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> Self:
        """Rebuild the button from a pressed custom_id, after a restart too."""
        source = match["source"]
        return cls(match["action"], match["options"], int(source) if source else None)

    async def callback(self, interaction: discord.Interaction[CadenzaBot]) -> None:
        """Hand the press to the cog that makes the new piece."""
        cog = HARMONY_COG if self.action == "reharmonize" else COG
        await interaction.client.get_cog(cog).press(interaction, self)


def piece_view(request: ComposeRequest, piece: Composition, source_id: int | None) -> discord.ui.View:
    """The buttons for the answer to ``request``; ``source_id`` is the message it continued, if any."""
    options = request_options(request)
    options.pop("seed", None)  # every button asks for a new seed
    if "instrument" in options:
        options["instrument"] = piece.program  # a number: names may have spaces and need more room
    kept = ("key", "transpose", "voices")  # the piece already has them; a continuation keeps them
    continued = {name: value for name, value in options.items() if name not in kept}
    if request.harmonizing:
        again = {name: value for name, value in options.items() if name != "transpose"}
        wanted = [("reharmonize", again, None), ("continue", continued, None)]
    else:
        wanted = [("again", options, None), ("continue", continued, None)]
    if request.primer is not None and source_id is not None:
        wanted.append(("variation", options, source_id))
    view = discord.ui.View(timeout=None)
    for action, values, source in wanted:
        text = format_options(values)
        if len(custom_id(action, text, source)) > CUSTOM_ID_LIMIT:
            log.warning("no %s button: its custom_id would be over %d characters", action, CUSTOM_ID_LIMIT)
            continue
        view.add_item(PieceButton(action, text, source))
    return view
