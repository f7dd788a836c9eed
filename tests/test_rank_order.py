"""How ``aware-ray rank`` orders candidates: the quality goal's count on validation, then the score."""

from __future__ import annotations

from typing import Any

import pytest

from aware_ray.training.rank import combine_sets, goal_count, ranking_key, seed_goal_count, validation_dirs
from envs.errors import ConfigError


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


def _val(score_by: dict[str, float], met: dict[str, bool], seeds: dict[str, int], money: float) -> dict[str, Any]:
    """A validation row as ``validate`` writes it, on the named workloads (3 seeds each)."""
    return {
        "score": sum(score_by.values()) / len(score_by),
        "risk_gap": dict(score_by),
        "gap_closed": dict(score_by),
        "goal_met": dict(met),
        "memory_met": {t: True for t in met},
        "violations": {t: 0.01 for t in met},
        "seeds_goal_met": dict(seeds),
        "seeds_run": {t: 3 for t in met},
        "violation_rate": 0.01,
        "cpu_core_hours": money - 1.0,
        "mem_gib_hours": 9.0,
        "money": money,
        "memory_price": 1 / 9,
        "time_compression": 1.0,
    }


def test_sets_combine_over_all_their_workloads() -> None:
    """Ten workloads weigh five times two: the score and money are means over all twelve, not a mean
    of the two sets' means; the counts add up and each set's own figures stay under ``sets``."""
    ten = _val(
        {f"a{k}": 0.5 for k in range(10)}, {f"a{k}": True for k in range(10)}, {f"a{k}": 3 for k in range(10)}, 30.0
    )
    two = _val({"b0": -0.1, "b1": 0.1}, {"b0": False, "b1": True}, {"b0": 0, "b1": 2}, 42.0)
    row = combine_sets([("runs/ten", ten), ("runs/two", two)])
    assert row["score"] == pytest.approx((10 * 0.5 + 0.0) / 12)
    assert row["money"] == pytest.approx((10 * 30.0 + 2 * 42.0) / 12)
    assert goal_count(row) == 11 and seed_goal_count(row) == 32 and sum(row["seeds_run"].values()) == 36
    assert row["sets"]["runs/two"] == {"score": 0.0, "goal_count": 1, "seed_goal_count": 2, "workloads": 2}
    assert row["memory_price"] == pytest.approx(1 / 9)


def test_sets_that_share_a_workload_are_refused() -> None:
    one = _val({"w": 0.5}, {"w": True}, {"w": 3}, 10.0)
    with pytest.raises(ConfigError, match="workload 'w' is in both runs/a and runs/b"):
        combine_sets([("runs/a", one), ("runs/b", one)])


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("runs/a,", "names an empty validation folder"),
        ("runs/a,runs/a", "'runs/a' is named twice"),
    ],
)
def test_validation_dirs_refuse_bad_lists(spec: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        validation_dirs(spec)


def test_validation_dirs_split_a_list() -> None:
    assert [str(d) for d in validation_dirs("runs/a, runs/b")] == ["runs/a", "runs/b"]
