"""The order requests are served in: members take turns (rounds), votes order a round, then age.

Each request gets a round when it is filed: one after its author's latest request (waiting or
already played), and never a round already finished. So a member's first request joins the
round being played now, their second the next one, and so on: someone who files three requests
waits behind everyone's first, however many votes they gather. Within a round, more votes go
first, and ties go to the older request.

The round is kept with the request, so the order ``!queue`` shows is the order the songs are
played in, unless votes or new members' requests change it. These are pure functions, so the
rule is tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Waiting:
    """What the order needs to know of one pending request."""

    id: int
    author_id: int
    round: int
    votes: int
    created: float


def round_for(current_round: int, author_last_round: int) -> int:
    """The round of a new request.

    ``current_round`` is the latest round a request was started in (0 before any),
    ``author_last_round`` the latest round of the author's requests that were not cancelled
    (0 if none).
    """
    return max(current_round, author_last_round + 1, 1)


def _rank(request: Waiting) -> tuple[int, int, float, int]:
    """Earlier round, then more votes, then older, then the lower id (two in the same instant)."""
    return (request.round, -request.votes, request.created, request.id)


def fair_order(requests: Iterable[Waiting]) -> list[Waiting]:
    """``requests`` in the order they will be served (see the module's docstring)."""
    return sorted(requests, key=_rank)


def next_across_guilds(
    heads: Sequence[tuple[int, Waiting]], last_served: Mapping[int, float]
) -> tuple[int, Waiting] | None:
    """Of each guild's first request (``(guild id, request)``), the one to compose next.

    The guild served longest ago (or never) goes first, so one busy server cannot hold the
    composer while another waits; ties go to the older request.
    """
    if not heads:
        return None
    return min(heads, key=lambda head: (last_served.get(head[0], float("-inf")), head[1].created, head[1].id))
