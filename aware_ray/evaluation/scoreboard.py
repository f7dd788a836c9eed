"""The scoreboard's comparisons: the tuned-HPA frontier, the oracle floor, and the gap closed.

Pure functions over summary rows (dicts with the fields of ``rollout.SUMMARY_FIELDS``).

For one workload, every ``hpa@X`` gives a point (violation rate v, CPU core-hours c), means
over seeds. The frontier is the lower-left envelope of those points (an HPA target that is
both cheaper and safer than another removes it), with cost interpolated linearly in v
between them: H(v). With the oracle's cost O, a policy at (v, c) closes the gap
``(H(v) - c) / (H(v) - O)``: 1 matches the oracle, 0 is no better than a tuned HPA,
negative is worse.

Off the frontier's ends a comparison is kept only where it is conservative. A policy safer
than every HPA target is compared with the safest target's cost: H is non-increasing in v, so
the true H(v) is at least that, and the gap closed reported is a lower bound. Likewise a policy
cheaper than every target is compared with the cheapest target's violation rate. The other
two ends would flatter the policy, so they give no figure: a policy riskier than every target
has no gap closed (a riskier HPA target, were one measured, would be cheaper than the
cheapest one measured), and a policy dearer than every target has no violation reduction.
The basis of each gap is recorded (``gap_basis``).

Choosing among policies needs one figure per workload even where the gap has none, and the
riskier end is exactly where a policy that cuts too far lands. ``risk_gap`` gives it one: the
gap against the cheapest target (which flatters it) less its violations above the riskiest
target's, relative to them; it meets the gap closed at the frontier's end and falls to -1. Training
keeps the checkpoint with the best mean of it (``aware_ray.training.train.validation_score``); the
quality goal itself stays on the gap closed and the violation reduction, as the benchmark states it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np


def mean_by(rows: list[dict[str, Any]], keys: tuple[str, ...] = ("policy", "trace")) -> dict[tuple, dict[str, float]]:
    """Mean of the numeric scoreboard fields per group (over seeds)."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in keys)].append(r)
    out = {}
    for k, rs in groups.items():
        out[k] = {
            f: float(np.mean([r[f] for r in rs]))
            for f in (
                "slo_violation_rate",
                "cpu_core_hours",
                "mem_gib_hours",
                "mean_cpu_utilization",
                "scaling_actions",
                "dropped_requests",
                "reward",
            )
        }
        out[k]["seeds"] = len(rs)
    return out


def frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Pareto-efficient (violation, cost) points, violation ascending and cost descending."""
    pts = sorted(set(points))
    out: list[tuple[float, float]] = []
    for v, c in pts:
        if out and c >= out[-1][1]:
            continue
        out.append((v, c))
    return out


def frontier_cost(front: list[tuple[float, float]], v: float) -> float | None:
    """H(v): the frontier's cost at violation rate v; None where v is outside the HPA points' range."""
    if not front or v < front[0][0] - 1e-12 or v > front[-1][0] + 1e-12:
        return None
    vs = np.array([p[0] for p in front])
    cs = np.array([p[1] for p in front])
    return float(np.interp(v, vs, cs))


def frontier_violation(front: list[tuple[float, float]], c: float) -> float | None:
    """V(c): the frontier's violation rate at cost c; None where c is outside the HPA points' range."""
    if not front:
        return None
    vs = np.array([p[0] for p in front])[::-1]
    cs = np.array([p[1] for p in front])[::-1]
    if c < cs[0] - 1e-12 or c > cs[-1] + 1e-12:
        return None
    return float(np.interp(c, cs, vs))


# Violations above the riskiest HPA target are charged relative to its rate, but never relative to
# less than 1 % of intervals: where every target is nearly free of violations, a policy at 1 % is
# a whole unit worse, not infinitely so.
RISK_FLOOR = 0.01


def risk_gap(v: float, c: float, front: list[tuple[float, float]], oracle_cost: float | None) -> float | None:
    """The gap closed, extended past the riskiest HPA target: there ``(C - c) / (C - O) -
    (v - V) / max(V, RISK_FLOOR)``, with (V, C) that target and O the oracle's cost, no lower
    than -1. None where the gap has no figure for another reason (no frontier, no oracle, or a
    frontier no dearer than the oracle)."""
    if not front or oracle_cost is None:
        return None
    h = frontier_cost(front, v)
    if h is None:
        h = front[0][1] if v < front[0][0] else front[-1][1]
    if h - oracle_cost <= 1e-12:
        return None
    gap = (h - c) / (h - oracle_cost)
    v_max = front[-1][0]
    if v > v_max + 1e-12:
        gap = max(-1.0, gap - (v - v_max) / max(v_max, RISK_FLOOR))
    return gap


def scores(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (policy, trace): means over seeds plus gap closed and violation reduction."""
    means = mean_by(rows)
    traces = sorted({k[1] for k in means})
    out = []
    for trace in traces:
        hpa = [
            (m["slo_violation_rate"], m["cpu_core_hours"])
            for (p, t), m in means.items()
            if t == trace and p.startswith("hpa@")
        ]
        front = frontier(hpa)
        oracle = means.get(("oracle", trace))
        for (policy, t), m in sorted(means.items()):
            if t != trace:
                continue
            v, c = m["slo_violation_rate"], m["cpu_core_hours"]
            h = frontier_cost(front, v)
            basis = "interpolated"
            if h is None and front and v < front[0][0]:
                h, basis = front[0][1], "safer than every HPA target (lower bound)"
            gap = None
            if h is not None and oracle is not None and h - oracle["cpu_core_hours"] > 1e-12:
                gap = (h - c) / (h - oracle["cpu_core_hours"])
            fv = frontier_violation(front, c)
            if fv is None and front and c < front[-1][1]:
                fv = front[-1][0]  # cheaper than every target: compare with the cheapest one's violations
            reduction = None if fv is None or fv <= 0 else 1.0 - v / fv
            out.append(
                {
                    "policy": policy,
                    "trace": trace,
                    **m,
                    "frontier_cost_at_v": h,
                    "gap_closed": gap,
                    "gap_basis": basis if gap is not None else None,
                    "risk_gap": risk_gap(v, c, front, oracle["cpu_core_hours"] if oracle else None),
                    "frontier_violation_at_c": fv,
                    "violation_reduction": reduction,
                    "on_frontier": policy.startswith("hpa@") and (v, c) in front,
                }
            )
    return out


def seed_goals(rows: list[dict[str, Any]], policy: str) -> dict[str, tuple[int, int]]:
    """Per trace: on how many seeds `policy` meets the goal against that seed's own frontier and
    oracle, and of how many seeds. The goal is judged on means over seeds; this says whether a
    workload near the goal line is met on every seed or carried by some of them."""
    by_seed: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_seed[r["seed"]].append(r)
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for seed_rows in by_seed.values():
        for s in scores(seed_rows):
            if s["policy"] == policy:
                out[s["trace"]][0] += goal_met(s)
                out[s["trace"]][1] += 1
    return {t: (met, n) for t, (met, n) in sorted(out.items())}


def goal_met(row: dict[str, Any]) -> bool:
    """The quality goal on one held-out workload: at least half the HPA-to-oracle gap closed, or at
    least 50 % fewer violating intervals than the frontier at the same cost."""
    gap, red = row.get("gap_closed"), row.get("violation_reduction")
    return (gap is not None and gap >= 0.5) or (red is not None and red >= 0.5)
