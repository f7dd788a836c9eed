"""The scoreboard maths: frontier, H(v), V(c) and gap closed, on hand-made rows."""

from __future__ import annotations

import numpy as np
import pytest

from aware_ray.evaluation.scoreboard import frontier, frontier_cost, frontier_violation, scores


def row(policy: str, v: float, c: float, seed: int = 0, trace: str = "t") -> dict:
    return {
        "policy": policy,
        "trace": trace,
        "seed": seed,
        "slo_violation_rate": v,
        "cpu_core_hours": c,
        "mem_gib_hours": 1.0,
        "mean_cpu_utilization": 0.5,
        "scaling_actions": 3,
        "dropped_requests": 0.0,
        "reward": 1.0,
    }


def test_frontier_drops_dominated_points() -> None:
    # (0.00, 10) and (0.01, 8) and (0.05, 6) are efficient; (0.02, 9) is dominated by (0.01, 8).
    pts = [(0.05, 6.0), (0.0, 10.0), (0.02, 9.0), (0.01, 8.0)]
    assert frontier(pts) == [(0.0, 10.0), (0.01, 8.0), (0.05, 6.0)]


@pytest.mark.parametrize(
    ("v", "expected"),
    [(0.0, 10.0), (0.005, 9.0), (0.01, 8.0), (0.03, 7.0), (0.05, 6.0), (0.5, None), (-0.001, None)],
)
def test_frontier_cost_interpolates(v: float, expected: float | None) -> None:
    front = [(0.0, 10.0), (0.01, 8.0), (0.05, 6.0)]
    assert frontier_cost(front, v) == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize(
    ("c", "expected"), [(5.0, None), (6.0, 0.05), (7.0, 0.03), (9.0, 0.005), (10.0, 0.0), (12.0, None)]
)
def test_frontier_violation_interpolates(c: float, expected: float | None) -> None:
    front = [(0.0, 10.0), (0.01, 8.0), (0.05, 6.0)]
    assert frontier_violation(front, c) == (None if expected is None else pytest.approx(expected))


def test_gap_closed_and_violation_reduction() -> None:
    rows = [
        row("hpa@0.4", 0.0, 10.0),
        row("hpa@0.6", 0.01, 8.0),
        row("hpa@0.8", 0.05, 6.0),
        row("oracle", 0.0, 4.0),
        # Two seeds average to v = 0.01, c = 6: H(0.01) = 8, so gap = (8 - 6) / (8 - 4) = 0.5.
        row("ddpg", 0.0, 5.0, seed=0),
        row("ddpg", 0.02, 7.0, seed=1),
        # Safer than every HPA: no H(v); at c = 9 the frontier violates 0.005, this one 0.
        row("careful", -0.0, 9.0),
    ]
    by = {s["policy"]: s for s in scores(rows)}
    assert by["ddpg"]["gap_closed"] == pytest.approx(0.5)
    assert by["ddpg"]["seeds"] == 2
    assert by["oracle"]["gap_closed"] == pytest.approx(1.0)
    assert by["hpa@0.6"]["gap_closed"] == pytest.approx(0.0)
    assert by["hpa@0.6"]["on_frontier"] is True
    assert by["careful"]["violation_reduction"] == pytest.approx(1.0)
    assert by["careful"]["gap_basis"] == "interpolated"
    # ddpg at c = 6: the frontier violates 0.05 there, ddpg 0.01: 80 % fewer.
    assert by["ddpg"]["violation_reduction"] == pytest.approx(0.8)


def test_off_the_frontier_ends_compare_conservatively() -> None:
    rows = [
        row("hpa@0.4", 0.02, 10.0),
        row("hpa@0.9", 0.10, 6.0),
        row("oracle", 0.0, 4.0),
        # Safer than the safest HPA (0.02) and cheaper than it: compared with H = 10.
        row("safe", 0.01, 7.0),
        # Cheaper than the cheapest HPA (6.0): its violations against that target's 0.10.
        row("cheap", 0.05, 5.0),
    ]
    by = {s["policy"]: s for s in scores(rows)}
    assert by["safe"]["gap_closed"] == pytest.approx((10 - 7) / (10 - 4))
    assert by["safe"]["gap_basis"].startswith("safer than every heuristic point")
    assert by["cheap"]["violation_reduction"] == pytest.approx(1 - 0.05 / 0.10)
    # H(0.05) interpolates (0.02, 10) and (0.10, 6): 8.5.
    assert by["cheap"]["gap_closed"] == pytest.approx((8.5 - 5) / (8.5 - 4))


def test_the_flattering_ends_give_no_figure() -> None:
    """Riskier than every HPA target: no gap (the cheapest target's cost would flatter it).
    Dearer than every target: no violation reduction (the safest target's rate would)."""
    rows = [
        row("hpa@0.4", 0.02, 10.0),
        row("hpa@0.9", 0.10, 6.0),
        row("oracle", 0.0, 4.0),
        row("reckless", 0.20, 5.0),
        row("lavish", 0.01, 12.0),
    ]
    by = {s["policy"]: s for s in scores(rows)}
    assert by["reckless"]["gap_closed"] is None and by["reckless"]["gap_basis"] is None
    # Cheaper than every target, so its violations still compare with the cheapest one's: worse.
    assert by["reckless"]["violation_reduction"] == pytest.approx(1 - 0.20 / 0.10)
    assert by["lavish"]["violation_reduction"] is None
    assert by["lavish"]["gap_closed"] == pytest.approx((10 - 12) / (10 - 4))  # safer: lower bound


def test_scores_are_per_trace() -> None:
    rows = [
        row("hpa@0.5", 0.0, 10.0, trace="a"),
        row("oracle", 0.0, 5.0, trace="a"),
        row("hpa@0.5", 0.0, 3.0, trace="b"),
    ]
    out = scores(rows)
    assert {(s["policy"], s["trace"]) for s in out} == {("hpa@0.5", "a"), ("oracle", "a"), ("hpa@0.5", "b")}
    assert next(s for s in out if s["trace"] == "b")["gap_closed"] is None  # no oracle on b


def test_validation_reports_the_goal_beside_the_score() -> None:
    """On `t`, a policy with no violations at 9.5 core-hours closes 1/12 of the gap but has all
    of the frontier's violations less at that cost: it meets the goal with a low score. On `u` it
    sits on the frontier and meets neither test."""
    from aware_ray.training.validation import validation_score

    hpa = [row("hpa@0.4", 0.0, 10.0), row("hpa@0.6", 0.01, 8.0), row("hpa@0.8", 0.05, 6.0), row("oracle", 0.0, 4.0)]
    baselines = hpa + [{**r, "trace": "u"} for r in hpa]
    val = validation_score([row("p", 0.0, 9.5), row("p", 0.05, 6.0, trace="u")], baselines, "p")
    assert val["gap_closed"] == {"t": pytest.approx(1 / 12), "u": 0.0}
    assert val["goal_met"] == {"t": True, "u": False}
    assert val["score"] == pytest.approx(1 / 24)


def test_validation_counts_the_seeds_that_meet_the_goal() -> None:
    """Seed 0: two thirds of the gap closed, met. Seed 1: on the frontier's cheapest point, not
    met. Each seed is judged against its own frontier, and the count says 1 of 2 whatever the mean."""
    from aware_ray.evaluation.scoreboard import seed_goals
    from aware_ray.training.validation import validation_score

    hpa = [row("hpa@0.4", 0.0, 10.0), row("hpa@0.6", 0.01, 8.0), row("hpa@0.8", 0.05, 6.0), row("oracle", 0.0, 4.0)]
    baselines = hpa + [{**r, "seed": 1} for r in hpa]
    mine = [row("p", 0.0, 6.0), row("p", 0.05, 6.0, seed=1)]
    val = validation_score(mine, baselines, "p")
    assert val["seeds_goal_met"] == {"t": 1}
    assert val["seeds_run"] == {"t": 2}
    assert seed_goals(baselines + mine, "p") == {"t": (1, 2)}
    both = validation_score([row("p", 0.0, 6.0), row("p", 0.0, 6.0, seed=1)], baselines, "p")
    assert both["seeds_goal_met"] == {"t": 2}


FRONT = [(0.0, 10.0), (0.01, 8.0), (0.05, 6.0)]


@pytest.mark.parametrize(
    ("v", "c", "want"),
    [
        (0.01, 7.0, (8 - 7) / (8 - 4)),  # on the frontier's range: the gap closed itself
        (0.0, 12.0, (10 - 12) / (10 - 4)),  # safer than every target: the same lower bound
        (0.05, 5.0, (6 - 5) / (6 - 4)),  # at the riskiest target: no charge yet
        (0.06, 5.0, (6 - 5) / (6 - 4) - 0.01 / 0.05),  # a fifth riskier than it: a fifth charged
        (0.10, 4.0, 1.0 - 1.0),  # twice its violations cancel an oracle's cost
        (0.30, 4.0, -1.0),  # no lower than -1
    ],
)
def test_risk_gap_charges_violations_past_the_riskiest_target(v: float, c: float, want: float) -> None:
    from aware_ray.evaluation.scoreboard import risk_gap

    assert risk_gap(v, c, FRONT, 4.0) == pytest.approx(want)


def test_risk_gap_is_continuous_at_the_frontier_end_and_floors_the_relative_charge() -> None:
    from aware_ray.evaluation.scoreboard import RISK_FLOOR, risk_gap

    assert risk_gap(0.05 + 1e-9, 5.0, FRONT, 4.0) == pytest.approx(risk_gap(0.05, 5.0, FRONT, 4.0), abs=1e-6)
    # Every target free of violations: charged per RISK_FLOOR of intervals, not divided by zero.
    assert risk_gap(0.005, 4.0, [(0.0, 10.0)], 4.0) == pytest.approx(1.0 - 0.005 / RISK_FLOOR)
    assert risk_gap(0.02, 5.0, FRONT, None) is None  # no oracle
    assert risk_gap(0.02, 5.0, [], 4.0) is None  # no frontier
    assert risk_gap(0.02, 5.0, [(0.0, 3.0)], 4.0) is None  # frontier cheaper than the oracle


def test_risk_gap_past_a_riskiest_point_near_the_oracle_does_not_reward_violations() -> None:
    """The riskiest point can cost almost what the oracle does; a policy that violates far more
    for less is not scored in the hundreds (an untrained policy once scored +121 so), and being
    cheaper than the oracle there counts as closing the whole gap at most."""
    from aware_ray.evaluation.scoreboard import risk_gap

    near = [(0.0, 10.0), (0.05, 4.01)]
    assert risk_gap(1.0, 0.5, near, 4.0) == -1.0
    assert risk_gap(0.06, 3.0, near, 4.0) == pytest.approx(1.0 - 0.01 / 0.05)


def test_validation_charges_a_policy_riskier_than_every_target() -> None:
    """Cheap and risky on `u`, where the riskiest target violates 5 %: the plain gap closed has
    no figure there (counted 0, as good as a tuned HPA); the score charges it, so the safe policy
    that closes a tenth to a fifth of the gap ranks above it."""
    from aware_ray.training.validation import validation_score

    hpa = [row("hpa@0.4", 0.0, 10.0), row("hpa@0.6", 0.01, 8.0), row("hpa@0.8", 0.05, 6.0), row("oracle", 0.0, 4.0)]
    baselines = hpa + [{**r, "trace": "u"} for r in hpa]
    reckless = validation_score([row("r", 0.01, 6.0), row("r", 0.20, 4.5, trace="u")], baselines, "r")
    assert reckless["gap_closed"] == {"t": pytest.approx(0.5), "u": 0.0}
    assert reckless["risk_gap"] == {"t": pytest.approx(0.5), "u": -1.0}
    assert reckless["violations"] == {"t": pytest.approx(0.01), "u": pytest.approx(0.20)}
    careful = validation_score([row("c", 0.01, 7.6), row("c", 0.05, 5.6, trace="u")], baselines, "c")
    assert careful["score"] == pytest.approx(0.15) and reckless["score"] == pytest.approx(-0.25)
    assert careful["score"] > reckless["score"]
    assert sum(careful["gap_closed"].values()) < sum(reckless["gap_closed"].values())  # the old order


def test_seed_goals_judge_each_seed_against_its_own_frontier() -> None:
    # Both seeds: frontier (0, 10) - (0.05, 6), oracle 4. Seed 0's policy at (0.0, 5) closes 5/6 of
    # the gap. Seed 1's at (0.04, 9.5): H(0.04) = 6.8, so the gap is negative, and the frontier at
    # 9.5 violates 0.00625, less than the policy: not met. On the means, (0.02, 7.25): H = 8.4, gap
    # (8.4 - 7.25) / 4.4 = 0.26, and V(7.25) = 0.034375, 42 % fewer: not met either.
    from aware_ray.evaluation.scoreboard import goal_met, seed_goals

    rows = []
    for seed, (v, c) in enumerate([(0.0, 5.0), (0.04, 9.5)]):
        rows += [
            row("hpa@0.4", 0.0, 10.0, seed),
            row("hpa@0.8", 0.05, 6.0, seed),
            row("oracle", 0.0, 4.0, seed),
            row("ddpg", v, c, seed),
            row("ddpg", v, c, seed, trace="u"),
        ]
    assert seed_goals(rows, "ddpg") == {"t": (1, 2), "u": (0, 2)}  # "u" has no HPA or oracle rows
    mean_row = next(s for s in scores(rows) if s["policy"] == "ddpg" and s["trace"] == "t")
    assert mean_row["gap_closed"] == pytest.approx(1.15 / 4.4)
    assert mean_row["violation_reduction"] == pytest.approx(1 - 0.02 / 0.034375)
    assert not goal_met(mean_row)


def test_bench_rows_carry_the_per_seed_count() -> None:
    from aware_ray.bench.runner import quality_rows

    rows = []
    for seed, (v, c) in enumerate([(0.0, 5.0), (0.04, 9.5)]):
        rows += [row("hpa@0.4", 0.0, 10.0, seed), row("hpa@0.8", 0.05, 6.0, seed), row("oracle", 0.0, 4.0, seed)]
        rows.append(row("lean@0.1:ddpg:pretrained", v, c, seed))
    got = quality_rows({"results": rows, "scores": scores(rows)}, "lean@0.1:ddpg:pretrained")
    assert got == {
        "t": {
            "gap_closed": 0.261,
            "violation_reduction": 0.418,
            "slo_violation_rate": 0.02,
            "violation_cap": 0.02,
            "money": 7.36,  # 7.25 core-h + 1 GiB-h x 1/9
            "cpu_core_hours": 7.25,
            "mem_gib_hours": 1.0,
            "oracle_money": 4.11,
            "oracle_mem_gib_hours": 1.0,
            "memory_reference_gib_hours": None,  # no hpa+vpa-inplace rows
            "memory_ratio": None,
            "gap_closed_hpa": 0.261,
            "goal_met": False,
            "memory_met": None,
            "seeds_goal_met": 1,
        }
    }


def mrow(policy: str, v: float, cpu: float, mem: float, trace: str = "m", seed: int = 0) -> dict:
    return {**row(policy, v, cpu, seed, trace), "mem_gib_hours": mem}


def money_rows() -> list[dict]:
    """One workload: HPA points that hold memory high, in-place VPA points with the same CPU and a
    ninth of the memory, one predictive point, the oracle and a learned policy."""
    return [
        mrow("hpa@0.4", 0.00, 10.0, 45.0),
        mrow("hpa@0.8", 0.06, 6.0, 27.0),
        mrow("hpa+vpa-inplace@0.4", 0.00, 10.0, 9.0),
        mrow("hpa+vpa-inplace@0.8", 0.06, 6.0, 9.0),
        mrow("predictive@0.6", 0.01, 9.0, 36.0),
        mrow("vpa", 0.30, 2.0, 1.0),  # not a frontier family: never on it
        mrow("oracle", 0.0, 3.0, 9.0),
        mrow("ddpg", 0.03, 5.0, 18.0),
    ]


def test_money_is_cpu_plus_priced_memory_and_cpu_and_memory_stay_apart() -> None:
    from aware_ray.evaluation.scoreboard import DEFAULT_MEMORY_PRICE, money

    assert pytest.approx(1 / 9) == DEFAULT_MEMORY_PRICE
    by = {s["policy"]: s for s in scores(money_rows())}
    for r in money_rows():
        s = by[r["policy"]]
        assert s["money"] == pytest.approx(r["cpu_core_hours"] + r["mem_gib_hours"] / 9)
        assert s["money"] == pytest.approx(money(r["cpu_core_hours"], r["mem_gib_hours"]))
        assert (s["cpu_core_hours"], s["mem_gib_hours"]) == (r["cpu_core_hours"], r["mem_gib_hours"])
    priced = {s["policy"]: s for s in scores(money_rows(), memory_price=0.5)}
    assert priced["hpa@0.4"]["money"] == pytest.approx(10.0 + 0.5 * 45.0)
    assert priced["hpa@0.4"]["memory_price"] == 0.5


def test_the_frontier_holds_every_heuristic_family_in_money() -> None:
    """Money: hpa@0.4 15, hpa@0.8 9, in-place 11 and 7, predictive@0.6 (0.01, 13), oracle 4.
    The envelope is (0, 11) then (0.06, 7): the in-place points dominate the HPA's at equal CPU,
    and every heuristic point is on or above it; the same HPA points alone make the HPA frontier."""
    from aware_ray.evaluation.scoreboard import frontier, heuristic_family

    board = scores(money_rows())
    heuristic = [(s["slo_violation_rate"], s["money"]) for s in board if heuristic_family(s["policy"])]
    assert len(heuristic) == 5
    front = frontier(heuristic)
    assert front == [(0.0, pytest.approx(11.0)), (0.06, pytest.approx(7.0))]
    for v, c in heuristic:  # the envelope includes every heuristic point: none lies below it
        assert c >= np.interp(v, [p[0] for p in front], [p[1] for p in front]) - 1e-9
    by = {s["policy"]: s for s in board}
    assert by["hpa+vpa-inplace@0.8"]["on_frontier"] and not by["hpa@0.8"]["on_frontier"]
    assert not by["vpa"]["on_frontier"] and by["vpa"]["heuristic_family"] is None
    # ddpg at (0.03, 7): H(0.03) = 9 in money, O = 4: (9 - 7) / (9 - 4) = 0.4 of the gap; against
    # the HPA alone H(0.03) = 12 (15 .. 9), so 5 / 8; riskier than the predictive family's only
    # point (0.01), it has no figure against that one.
    assert by["ddpg"]["gap_closed"] == pytest.approx(0.4)
    assert by["ddpg"]["gap_closed_hpa"] == pytest.approx(0.625)
    assert by["ddpg"]["gap_closed_hpa+vpa-inplace"] == pytest.approx(0.4)
    assert by["ddpg"]["gap_closed_predictive"] is None


def test_goal_caps_violations_and_memory_is_held_against_the_in_place_vpa() -> None:
    from aware_ray.evaluation.scoreboard import goal_met, memory_met

    by = {s["policy"]: s for s in scores(money_rows())}
    d = by["ddpg"]
    # The safest heuristic point has no violations, so the cap is 2 %: ddpg's 3 % fails it even
    # though it has half the frontier's violations at its money (V(7) = 0.06).
    assert d["violation_cap"] == pytest.approx(0.02)
    assert d["violation_reduction"] == pytest.approx(0.5)
    assert not goal_met(d)
    assert goal_met({**d, "slo_violation_rate": 0.02})
    # Memory: the in-place points are at 0 and 6 % violations, equally near ddpg's 3 %; the cheaper
    # one (0.8, 9 GiB-h) is the reference: 18 / 9 = 2, above 1.5.
    assert d["memory_reference_gib_hours"] == pytest.approx(9.0)
    assert d["memory_ratio"] == pytest.approx(2.0)
    assert memory_met(d) is False
    assert memory_met({**d, "memory_ratio": None}) is None
    # Where the safest heuristic point violates more than 2 %, the cap is its rate.
    risky = [r for r in money_rows() if r["policy"] not in ("hpa@0.4", "hpa+vpa-inplace@0.4", "predictive@0.6")]
    assert {s["policy"]: s for s in scores(risky)}["ddpg"]["violation_cap"] == pytest.approx(0.06)
