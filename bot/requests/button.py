"""The Vote button under a request's confirmation, which keeps working after a restart.

Its custom_id, ``cadenza:vote:<request id>``, is all it needs: the vote itself is stored with
the request, so once ``Bot.add_dynamic_items(VoteButton)`` has run a restarted bot counts a
press on a week-old confirmation like a new one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Self

import discord

if TYPE_CHECKING:
    from bot.app import CadenzaBot

COG = "Requests"
"""The cog whose ``press_vote`` method counts a press."""


class VoteButton(discord.ui.DynamicItem[discord.ui.Button], template=r"cadenza:vote:(?P<id>[0-9]+)"):
    """Upvote one request."""

    def __init__(self, request_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Vote",
                emoji="👍",
                style=discord.ButtonStyle.primary,
                custom_id=f"cadenza:vote:{request_id}",
            )
        )
        self.request_id = request_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> Self:
        """Rebuild the button from a pressed custom_id."""
        return cls(int(match["id"]))

    async def callback(self, interaction: discord.Interaction[CadenzaBot]) -> None:
        """Hand the press to the requests cog."""
        await interaction.client.get_cog(COG).press_vote(interaction, self.request_id)


def vote_view(request_id: int) -> discord.ui.View:
    """The view holding the Vote button of one request."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton(request_id))
    return view
