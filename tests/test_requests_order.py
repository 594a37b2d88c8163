"""The fair order of requests: rounds across members, votes within a round, then age."""

from __future__ import annotations

from bot.requests.order import Waiting, fair_order, next_across_guilds, round_for


class Line:
    """Requests filed one after another, given rounds as the store gives them."""

    def __init__(self) -> None:
        self.filed: list[Waiting] = []
        self.requests: dict[int, Waiting] = {}
        self.current = 0

    def file(self, author: int, votes: int = 0) -> int:
        last = max((r.round for r in self.filed if r.author_id == author), default=0)
        rid = len(self.filed) + 1
        self.filed.append(Waiting(rid, author, round_for(self.current, last), votes, float(rid)))
        self.requests[rid] = self.filed[-1]
        return rid

    def serve(self) -> int:
        first = fair_order(self.requests.values())[0]
        self.current = max(self.current, first.round)
        del self.requests[first.id]
        return first.id

    def order(self) -> list[int]:
        return [r.id for r in fair_order(self.requests.values())]


def test_one_member_cannot_fill_the_queue():
    line = Line()
    alice = [line.file(1) for _ in range(3)]
    bob = line.file(2)
    carol = line.file(3)
    assert line.order() == [alice[0], bob, carol, alice[1], alice[2]]


def test_votes_move_a_request_up_within_its_round_only():
    line = Line()
    a1, a2 = line.file(1), line.file(1, votes=9)
    b1 = line.file(2, votes=1)
    c1 = line.file(3)
    assert line.order() == [b1, a1, c1, a2]


def test_ties_go_to_the_older_request():
    waiting = [Waiting(2, 2, 1, 1, 20.0), Waiting(1, 1, 1, 1, 10.0), Waiting(3, 3, 1, 1, 10.0)]
    assert [r.id for r in fair_order(waiting)] == [1, 3, 2]


def test_the_order_shown_is_the_order_served():
    line = Line()
    for author in (1, 1, 1, 2, 3, 2):
        line.file(author)
    shown = line.order()
    assert [line.serve() for _ in shown] == shown


def test_a_newcomer_joins_the_round_being_played_and_a_served_member_the_next():
    line = Line()
    a1, a2, b1 = line.file(1), line.file(1), line.file(2)
    assert line.serve() == a1
    c1 = line.file(3)  # joins round one, after bob
    a3 = line.file(1)  # alice already had her turn in round one and has a2 in round two
    assert line.order() == [b1, c1, a2, a3]


def test_after_a_quiet_spell_everyone_starts_in_the_current_round():
    assert round_for(current_round=0, author_last_round=0) == 1
    assert round_for(current_round=40, author_last_round=2) == 40
    assert round_for(current_round=40, author_last_round=40) == 41


def test_across_guilds_the_one_served_longest_ago_goes_first():
    one, two = Waiting(1, 1, 1, 0, 10.0), Waiting(2, 1, 1, 0, 20.0)
    assert next_across_guilds([(10, one), (20, two)], {}) == (10, one)
    assert next_across_guilds([(10, one), (20, two)], {10: 5.0}) == (20, two)
    assert next_across_guilds([(10, one), (20, two)], {10: 5.0, 20: 6.0}) == (10, one)
    assert next_across_guilds([], {}) is None
