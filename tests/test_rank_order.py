"""How ``aware-ray rank`` orders candidates: the quality goal's count on validation, then the score."""

from __future__ import annotations

from typing import Any

import pytest

from aware_ray.training.rank import goal_count, ranking_key, seed_goal_count


def _row(
    score: float, goal: list[bool], memory: list[bool] | None = None, seeds: list[int] | None = None
) -> dict[str, Any]:
    traces = [f"w{k}" for k in range(len(goal))]
    row: dict[str, Any] = {"score": score, "goal_met": dict(zip(traces, goal, strict=True))}
    if memory is not None:
        row["memory_met"] = dict(zip(traces, memory, strict=True))
    if seeds is not None:
        row["seeds_goal_met"] = dict(zip(traces, seeds, strict=True))
    return row


@pytest.mark.parametrize(
    ("row", "count"),
    [
        (_row(0.5, [True, True, False]), 2),
        (_row(0.5, [True, True, False], [True, False, True]), 1),  # memory over 1.5x: not met
        (_row(0.5, [False, False], [True, True]), 0),
        (_row(0.5, [True], None), 1),  # rows from before memory was scored
    ],
)
def test_goal_count_by_hand(row: dict[str, Any], count: int) -> None:
    assert goal_count(row) == count


def test_more_workloads_met_outranks_a_higher_score() -> None:
    """The validation table that made the rule: 4 of 6 at +0.709 against 5 of 6 at +0.705."""
    first = _row(0.709, [True, False, True, True, True, False])
    second = _row(0.705, [True, False, True, True, True, True])
    third = _row(0.303, [True, False, True, True, True, True])
    ranked = sorted([first, third, second], key=ranking_key, reverse=True)
    assert ranked == [second, third, first]


def test_more_seeds_met_outranks_a_higher_score_at_the_same_workload_count() -> None:
    """Both meet the goal on 2 of 3 workloads; one carries a workload on 1 seed of 3, the other on
    all 3. The sturdier one ranks first though its score is lower; the workload count still rules."""
    lucky = _row(0.60, [True, True, False], seeds=[3, 1, 0])
    sturdy = _row(0.55, [True, True, False], seeds=[3, 3, 1])
    more = _row(0.20, [True, True, True], seeds=[1, 1, 1])
    assert seed_goal_count(sturdy) == 7 and seed_goal_count(_row(0.1, [True])) == 0
    assert sorted([lucky, sturdy, more], key=ranking_key, reverse=True) == [more, sturdy, lucky]
