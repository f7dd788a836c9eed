"""The batched maths (decode, guard, scoring, reward, observation, load context) over B rows
equals the one-row functions the single env, the controller and the endpoint call, row for row
and bit for bit: a vector env and a single env must build the same observations."""

from __future__ import annotations

import numpy as np
import pytest

from envs.action import decode, decode_batch
from envs.app import load_app
from envs.guard import REASONS, GuardConfig, fitting_share, guard, guard_batch
from envs.load_context import load_context, load_context_batch, partly_idle, partly_idle_batch
from envs.metrics import ScalingDecision, ServiceMetrics
from envs.metrics_batch import PER_APP, PER_SERVICE, MetricsBatch
from envs.observation import ObservationLayout, build, build_batch, history_row, history_rows
from envs.reward import RewardWeights, reward, reward_batch

APP = load_app("social-network")
S = APP.n_services
B = 64


def _settings(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = rng.integers(1, 12, (B, S))
    c = np.round(rng.uniform(0.1, 3.0, (B, S)), 3)
    m = np.round(rng.uniform(128, 3000, (B, S)))
    return r, c, m


def _metrics(rng: np.random.Generator) -> MetricsBatch:
    m = MetricsBatch.zeros(B, S)
    for k in PER_SERVICE:
        getattr(m, k)[:] = rng.uniform(0.0, 50.0, (B, S))
    for k in PER_APP:
        getattr(m, k)[:] = rng.uniform(0.0, 500.0, B)
    m.ready_replicas[::5] = 0.0  # no ready pod: utilisations are 0
    m.external_rps[::7] = 0.0
    m.cpu_limit += 0.1
    m.mem_limit += 64.0
    return m


@pytest.mark.parametrize("node_capacity", [True, False])
def test_decode_and_guard_rows_equal_one_row_calls(node_capacity: bool) -> None:
    rng = np.random.default_rng(0)
    cfg = GuardConfig(node_capacity=node_capacity)
    r, c, m = _settings(rng)
    r[:8] *= 4  # some apps far over the node pool: the node-capacity bisection runs
    action = rng.uniform(-1.5, 1.5, (B, S, 3))
    action[3, 2, 1] = np.nan
    usage = rng.uniform(-10.0, 3000.0, (B, S))
    usage[4, :3] = np.nan
    want = decode_batch(action, r, c, m, cfg)
    want_r = want[0] + rng.integers(-12, 12, (B, S)).astype(np.float64)  # past the rate limits
    want_r[5, 0] = np.inf  # a non-finite ask (InvalidValue)
    out = guard_batch(want_r, want[1], want[2], r, c, m, usage, APP, cfg)
    seen = set()
    for b in range(B):
        cur = ScalingDecision(replicas=r[b], cpu_limit=c[b], mem_limit=m[b])
        one = decode(action[b], cur, cfg)
        np.testing.assert_array_equal(one.replicas, want[0][b])
        np.testing.assert_array_equal(one.cpu_limit, want[1][b])
        np.testing.assert_array_equal(one.mem_limit, want[2][b])
        ask = ScalingDecision(replicas=want_r[b], cpu_limit=want[1][b], mem_limit=want[2][b])
        res = guard(ask, cur, usage[b], APP, cfg)
        np.testing.assert_array_equal(res.decision.replicas, out.replicas[b])
        np.testing.assert_array_equal(res.decision.cpu_limit, out.cpu_limit[b])
        np.testing.assert_array_equal(res.decision.mem_limit, out.mem_limit[b])
        assert res.reasons == out.result(b).reasons
        assert list(res.counts().values()) == list(out.counts()[:, b])
        assert res.clamped == out.clamped()[b]
        seen |= {name for rs in res.reasons for name in rs}
    # The table exercised most of the guard's steps.
    assert {"InvalidValue", "ScaleUpLimit", "ScaleDownLimit", "MemBelowUsage", "CpuLimitBounds"} <= seen
    assert ("NodeCapacity" in seen) == node_capacity
    assert set(seen) <= set(REASONS)


def test_reward_batch_equals_reward() -> None:
    rng = np.random.default_rng(1)
    w = RewardWeights(memory=0.3, overridden=0.7)
    cols = {
        "e2e_p99_ms": rng.uniform(0.0, 400.0, B),
        "drop_share": rng.uniform(-0.1, 1.2, B),
        "violated": rng.uniform(size=B) > 0.5,
        "cpu_utilization": rng.uniform(-0.1, 1.3, B),
        "changed_services": rng.integers(0, S, B),
        "reserved_share": rng.uniform(-0.1, 2.0, B),
        "reserved_mem_share": rng.uniform(0.0, 2.0, B),
        "overridden": rng.uniform(0.0, 2.0, B),
    }
    out = reward_batch(slo_ms=200.0, n_services=S, weights=w, **cols)
    for b in range(B):
        one = reward(slo_ms=200.0, n_services=S, weights=w, **{k: v[b].item() for k, v in cols.items()})
        assert out[b] == one


def test_observation_rows_equal_one_row_builds() -> None:
    rng = np.random.default_rng(2)
    layout = ObservationLayout(max_services=16, history_window=4)
    m = _metrics(rng)
    last = rng.uniform(-1, 1, (B, 16, 3))
    prev = rng.uniform(0.0, 500.0, B)
    prev[::3] = 0.0
    obs = build_batch(m, APP, layout, last, prev, 15.0)
    rewards = rng.uniform(-12.0, 12.0, B)
    rows = history_rows(obs, S, layout, last, rewards)
    for b in range(B):
        one = build(m.row(b), APP, layout, last[b], float(prev[b]), 15.0)
        np.testing.assert_array_equal(one, obs[b])
        np.testing.assert_array_equal(history_row(one, S, layout, last[b], float(rewards[b])), rows[b])
    assert isinstance(m.row(0), ServiceMetrics)


def test_load_context_rows_equal_one_series() -> None:
    rng = np.random.default_rng(3)
    span, buckets = 32, 8
    window = np.log1p(rng.uniform(0.0, 200.0, (B, span)) * (rng.uniform(size=(B, span)) > 0.3))
    seen = rng.integers(0, span + 1, B)
    seen[:4] = (0, 1, 2, span)
    ctx = load_context_batch(window, seen, buckets)
    idle = partly_idle_batch(window, seen)
    for b in range(B):
        series = window[b, span - seen[b] :] if seen[b] else np.zeros(0)
        np.testing.assert_array_equal(load_context(series, span, buckets), ctx[b])
        assert partly_idle(series, span) == idle[b]
    assert np.all(ctx[0] == 0.0) and not idle[0]  # nothing seen yet


def _bisection(grow: np.ndarray, base: np.ndarray, cpu: np.ndarray, mem: np.ndarray) -> float:
    """The guard's node-capacity search as it was first written: 30 halvings, one app."""

    def over(r: np.ndarray) -> bool:
        return (r * cpu).sum() > APP.node_cores + 1e-9 or (r * mem).sum() > APP.node_mem_mib + 1e-9

    lo, hi = 0.0, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        if over(base + np.floor(grow * mid)):
            hi = mid
        else:
            lo = mid
    return lo


def test_fitting_share_is_what_a_bisection_finds() -> None:
    rng = np.random.default_rng(4)
    n = 200
    base = rng.integers(0, 6, (n, S)).astype(np.float64)
    grow = rng.integers(0, 40, (n, S)).astype(np.float64) * (rng.uniform(size=(n, S)) > 0.4)
    cpu = np.round(rng.uniform(0.1, 4.0, (n, S)), 3)
    mem = np.round(rng.uniform(128, 4096, (n, S)))
    base[:5] *= 30  # over the pool even without growth: share 0
    shares = fitting_share(grow, base, cpu, mem, APP)
    assert 0 < np.count_nonzero(shares) < n and np.any((shares > 0) & (shares < 0.999))
    for b in range(n):  # all at once (the search for many apps) and one by one (for few)
        one = fitting_share(grow[b : b + 1], base[b : b + 1], cpu[b : b + 1], mem[b : b + 1], APP)[0]
        assert shares[b] == one == _bisection(grow[b], base[b], cpu[b], mem[b])
