"""The pure rules of a jam's best-take vote: answer order and the winner."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bot.service.session_votes import MAX_VOTE_TAKES, pick_winner, vote_order


def takes(*ids: str) -> list[Any]:
    return [SimpleNamespace(id=job_id) for job_id in ids]


def test_most_reacted_first_and_equals_keep_the_earlier_take_first():
    made = takes("a", "b", "c", "d")
    order = vote_order(made, {"c": 2, "b": 1, "d": 1})
    assert [(job.id, n) for job, n in order] == [("c", 2), ("b", 1), ("d", 1), ("a", 0)]


def test_at_most_ten_takes_are_offered():
    made = takes(*(f"t{n:02d}" for n in range(12)))
    order = vote_order(made, {"t11": 5})
    assert len(order) == MAX_VOTE_TAKES
    assert order[0][0].id == "t11"
    assert [job.id for job, _ in order[1:]] == [f"t{n:02d}" for n in range(9)]


def test_the_winner_has_most_votes_ties_go_to_the_answer_listed_first_and_no_votes_is_no_winner():
    assert pick_winner(["a", "b", "c"], {2: 3, 3: 1}) == ("b", 3)
    assert pick_winner(["a", "b", "c"], {3: 2, 2: 2}) == ("b", 2)
    assert pick_winner(["a", "b"], {}) == (None, 0)
    assert pick_winner(["a", "b"], {7: 4}) == (None, 0)  # an answer the poll does not have
