"""The scoreboard's comparisons: the heuristic frontier, the oracle floor, and the gap closed.

Pure functions over summary rows (dicts with the fields of ``rollout.SUMMARY_FIELDS``).

**Money.** A cluster pays for the CPU and the memory its pods request, so a policy's cost is its
money: CPU core-hours plus memory GiB-hours times a memory price in cores per GiB
(``DEFAULT_MEMORY_PRICE``, 1/9: GKE Autopilot and AWS Fargate list prices both put one vCPU-hour
at about nine GiB-hours). Money is computed here from the two, which every row and score still
reports apart, so rows recorded before money was scored are scored the same way.

**The frontier.** For one workload, every heuristic a user would run gives a point (violation
rate v, money c), means over seeds: the HPA, the HPA with an in-place VPA and the predictive HPA
(``policies.registry.FRONTIER_FAMILIES``), each at targets 0.2 .. 0.9. The heuristic frontier is
the lower-left envelope of all those points (a point both cheaper and safer than another removes
it), with money interpolated linearly in v between them: H(v). Each family's own frontier is
reported too (``gap_closed_<family>``). With the oracle's money O, a policy at (v, c) closes the
gap ``(H(v) - c) / (H(v) - O)``: 1 matches the oracle, 0 is no better than the best heuristic,
negative is worse.

Off the frontier's ends a comparison is kept only where it is conservative. A policy safer
than every heuristic point is compared with the safest point's money: H is non-increasing in v,
so the true H(v) is at least that, and the gap closed reported is a lower bound. Likewise a policy
cheaper than every point is compared with the cheapest point's violation rate. The other
two ends would flatter the policy, so they give no figure: a policy riskier than every point
has no gap closed (a riskier heuristic, were one measured, would be cheaper than the
cheapest one measured), and a policy dearer than every point has no violation reduction.
The basis of each gap is recorded (``gap_basis``).

Choosing among policies needs one figure per workload even where the gap has none, and the
riskier end is exactly where a policy that cuts too far lands. ``risk_gap`` gives it one: the
gap against the cheapest point (which flatters it; counted no higher than 1, since past that
point a cost below the oracle's is bought with violations) less its violations above the
riskiest point's, relative to them; it meets the gap closed at the frontier's end and falls to -1. Training
keeps the checkpoint with the best mean of it (``aware_ray.training.validation``); the quality
goal itself stays on the gap closed and the violation reduction (``goal_met``), with its
violation cap and, beside it, its memory condition (``memory_met``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from policies.registry import FRONTIER_FAMILIES

DEFAULT_MEMORY_PRICE = 1.0 / 9.0
"""Cores per GiB that one GiB-hour of memory costs against one core-hour: list prices of GKE
Autopilot (us-central1: $0.0445 per vCPU-hour, $0.0049225 per GiB-hour, a ratio of 9.0) and AWS
Fargate (us-east-1, Linux/x86: $0.04048 per vCPU-hour, $0.004445 per GB-hour, 9.1)."""
GOAL_GAP = 0.5
"""The goal's share of the money gap to close."""
GOAL_VIOLATION_REDUCTION = 0.5
"""Or the goal's share of the frontier's violations to avoid at equal money."""
GOAL_VIOLATION_CAP = 0.02
"""Violations the goal allows at most: this, or the safest heuristic point's rate if higher."""
GOAL_MEMORY_RATIO = 1.5
"""Memory the goal allows at most, as a multiple of the HPA with an in-place VPA's."""
MEMORY_REFERENCE = "hpa+vpa-inplace"
"""The family whose memory a policy's is held against (the point nearest its violation rate)."""


def money(cpu_core_hours: float, mem_gib_hours: float, memory_price: float = DEFAULT_MEMORY_PRICE) -> float:
    """Core-hours plus GiB-hours priced in cores per GiB: what a cluster pays for the requests."""
    return cpu_core_hours + memory_price * mem_gib_hours


def heuristic_family(policy: str) -> str | None:
    """The frontier family of a policy name (``hpa@0.6`` -> ``hpa``); None for any other policy."""
    family, sep, target = policy.partition("@")
    if not sep or family not in FRONTIER_FAMILIES:
        return None
    try:
        float(target)
    except ValueError:
        return None
    return family


def mean_by(
    rows: list[dict[str, Any]],
    keys: tuple[str, ...] = ("policy", "trace"),
    memory_price: float = DEFAULT_MEMORY_PRICE,
) -> dict[tuple, dict[str, float]]:
    """Mean of the numeric scoreboard fields per group (over seeds), and their money."""
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
        out[k]["money"] = money(out[k]["cpu_core_hours"], out[k]["mem_gib_hours"], memory_price)
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
    """H(v): the frontier's cost at violation rate v; None where v is outside its points' range."""
    if not front or v < front[0][0] - 1e-12 or v > front[-1][0] + 1e-12:
        return None
    vs = np.array([p[0] for p in front])
    cs = np.array([p[1] for p in front])
    return float(np.interp(v, vs, cs))


def frontier_violation(front: list[tuple[float, float]], c: float) -> float | None:
    """V(c): the frontier's violation rate at cost c; None where c is outside its points' range."""
    if not front:
        return None
    vs = np.array([p[0] for p in front])[::-1]
    cs = np.array([p[1] for p in front])[::-1]
    if c < cs[0] - 1e-12 or c > cs[-1] + 1e-12:
        return None
    return float(np.interp(c, cs, vs))


# Violations above the riskiest heuristic point are charged relative to its rate, but never relative to
# less than 1 % of intervals: where every point is nearly free of violations, a policy at 1 % is
# a whole unit worse, not infinitely so.
RISK_FLOOR = 0.01


def risk_gap(v: float, c: float, front: list[tuple[float, float]], oracle_cost: float | None) -> float | None:
    """The gap closed, extended past the riskiest heuristic point: there ``min((C - c) / (C - O), 1)
    - (v - V) / max(V, RISK_FLOOR)``, with (V, C) that point and O the oracle's cost, no lower
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
        # Past the riskiest point its cost can sit next to the oracle's, and the gap's denominator
        # with it: a policy that violates every interval for almost nothing would then score in
        # the hundreds. Cheaper than the oracle is bought with violations here, so no more than
        # the whole gap counts before the charge.
        gap = max(-1.0, min(gap, 1.0) - (v - v_max) / max(v_max, RISK_FLOOR))
    return gap


def _gap(
    front: list[tuple[float, float]], v: float, c: float, oracle: float | None
) -> tuple[float | None, str, float | None]:
    """Gap closed against `front` at (v, c), its basis and the frontier money it used (see the
    module docstring)."""
    h = frontier_cost(front, v)
    basis = "interpolated"
    if h is None and front and v < front[0][0]:
        h, basis = front[0][1], "safer than every heuristic point (lower bound)"
    if h is None or oracle is None or h - oracle <= 1e-12:
        return None, basis, h
    return (h - c) / (h - oracle), basis, h


def _memory_reference(points: list[tuple[float, float, float]], v: float) -> float | None:
    """GiB-hours of the reference family's point (violations, money, memory) nearest violation rate
    `v`, the cheaper one on a tie: the operator who accepts the same risk."""
    if not points:
        return None
    return min(points, key=lambda p: (abs(p[0] - v), p[1]))[2]


def scores(rows: list[dict[str, Any]], memory_price: float = DEFAULT_MEMORY_PRICE) -> list[dict[str, Any]]:
    """Per (policy, trace): means over seeds, their money, and, against the heuristic frontier in
    money, the gap closed and the violation reduction (also the gap against each family's own
    frontier), the goal's violation cap and memory reference."""
    means = mean_by(rows, memory_price=memory_price)
    traces = sorted({k[1] for k in means})
    out = []
    for trace in traces:
        points: dict[str, list[tuple[float, float]]] = defaultdict(list)
        mem_points: list[tuple[float, float, float]] = []
        for (p, t), m in means.items():
            family = heuristic_family(p)
            if t != trace or family is None:
                continue
            points[family].append((m["slo_violation_rate"], m["money"]))
            if family == MEMORY_REFERENCE:
                mem_points.append((m["slo_violation_rate"], m["money"], m["mem_gib_hours"]))
        front = frontier([pt for pts in points.values() for pt in pts])
        family_fronts = {f: frontier(points[f]) for f in FRONTIER_FAMILIES if points.get(f)}
        oracle = means.get(("oracle", trace))
        o = oracle["money"] if oracle else None
        safest = min((pt[0] for pts in points.values() for pt in pts), default=None)
        cap = None if safest is None else max(GOAL_VIOLATION_CAP, safest)
        for (policy, t), m in sorted(means.items()):
            if t != trace:
                continue
            v, c = m["slo_violation_rate"], m["money"]
            gap, basis, h = _gap(front, v, c, o)
            fv = frontier_violation(front, c)
            if fv is None and front and c < front[-1][1]:
                fv = front[-1][0]  # cheaper than every point: compare with the cheapest one's violations
            reduction = None if fv is None or fv <= 0 else 1.0 - v / fv
            mem_ref = _memory_reference(mem_points, v)
            family = heuristic_family(policy)
            out.append(
                {
                    "policy": policy,
                    "trace": trace,
                    **m,
                    "memory_price": memory_price,
                    "frontier_cost_at_v": h,
                    "gap_closed": gap,
                    "gap_basis": basis if gap is not None else None,
                    "risk_gap": risk_gap(v, c, front, o),
                    "frontier_violation_at_c": fv,
                    "violation_reduction": reduction,
                    **{f"gap_closed_{f}": _gap(ff, v, c, o)[0] for f, ff in family_fronts.items()},
                    "violation_cap": cap,
                    "memory_reference_gib_hours": mem_ref,
                    "memory_ratio": None if not mem_ref else m["mem_gib_hours"] / mem_ref,
                    "heuristic_family": family,
                    "on_frontier": family is not None and (v, c) in front,
                }
            )
    return out


def seed_goals(
    rows: list[dict[str, Any]], policy: str, memory_price: float = DEFAULT_MEMORY_PRICE
) -> dict[str, tuple[int, int]]:
    """Per trace: on how many seeds `policy` meets the goal (``goal_met`` and ``memory_met``)
    against that seed's own frontier and oracle, and of how many seeds. The goal is judged on
    means over seeds; this says whether a workload near the goal line is met on every seed or
    carried by some of them."""
    by_seed: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_seed[r["seed"]].append(r)
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for seed_rows in by_seed.values():
        for s in scores(seed_rows, memory_price):
            if s["policy"] == policy:
                out[s["trace"]][0] += goal_met(s) and memory_met(s) is not False
                out[s["trace"]][1] += 1
    return {t: (met, n) for t, (met, n) in sorted(out.items())}


def goal_met(row: dict[str, Any]) -> bool:
    """The quality goal on one held-out workload, in money against the heuristic frontier: at least
    half the gap to the oracle closed, or at least 50 % fewer violating intervals than the frontier
    at the same money; either with violations at most max(2 %, the safest heuristic point's)."""
    gap, red = row.get("gap_closed"), row.get("violation_reduction")
    cap = row.get("violation_cap")
    if cap is not None and row["slo_violation_rate"] > cap + 1e-12:
        return False
    return (gap is not None and gap >= GOAL_GAP) or (red is not None and red >= GOAL_VIOLATION_REDUCTION)


def memory_met(row: dict[str, Any]) -> bool | None:
    """The goal's memory condition: at most 1.5 times the GiB-hours of the HPA with an in-place VPA
    at the violation rate nearest the policy's; None where that family was not measured."""
    ratio = row.get("memory_ratio")
    return None if ratio is None else ratio <= GOAL_MEMORY_RATIO + 1e-12
