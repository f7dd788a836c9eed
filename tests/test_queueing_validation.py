"""Validation of the simulator's latency model against independently computed references.

Every expected value here is computed in this file, from textbook formulas or a small
discrete-event simulation, never with the simulator's own queueing functions, so that a change
that makes the model unfaithful fails these tests instead of moving the reference with it.

* Erlang C closed forms for one M/M/c service (mean and p99 waiting time).
* A discrete-event simulation of three FCFS multi-server queues in tandem, compared with the
  simulator's end-to-end mean and p99.
* The fluid overload model, checked by hand: backlog growth, the timeout drop cap, request
  conservation.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from envs.app import AppSpec, app_from_dict, load_app
from envs.queueing import erlang_c, erlang_c_exact
from envs.simulator import ClusterSim, SimConfig, StepTruth

INTERVAL_S = 15.0
"""Control interval of the default SimConfig; the overload checks are written for it."""
TIMEOUT_S = 10.0
BIG_MEM_MIB = 100_000.0
"""Memory limit far above any use in these tests, so OOM kills never disturb the queues."""


# --- references, computed independently of envs.queueing --------------------------------------


def erlang_c_reference(c: int, rho: float) -> float:
    """Erlang C from the textbook formula with factorials and a finite sum.

    C(c, a) = [a^c / c! / (1 - rho)] / [sum_{k<c} a^k / k! + a^c / c! / (1 - rho)], a = c rho.
    Deliberately not the Erlang B recursion the simulator uses, so the two cannot share a slip.
    """
    a = c * rho
    top = a**c / math.factorial(c) / (1.0 - rho)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def mmc_wait_mean_s(c: int, mu: float, lam: float) -> float:
    """Mean waiting time of M/M/c: Wq = C / (c mu - lambda)."""
    return erlang_c_reference(c, lam / (c * mu)) / (c * mu - lam)


def mmc_wait_quantile_s(c: int, mu: float, lam: float, p: float = 0.99) -> float:
    """p-quantile of the M/M/c wait from P(W > t) = C exp(-(c mu - lambda) t); 0 if C <= 1 - p."""
    prob_wait = erlang_c_reference(c, lam / (c * mu))
    tail = 1.0 - p
    if prob_wait <= tail:
        return 0.0
    return math.log(prob_wait / tail) / (c * mu - lam)


def tandem_des(
    lam: float,
    cpu_ms: tuple[float, ...],
    cv: tuple[float, ...],
    servers: tuple[int, ...],
    customers: int = 400_000,
    warmup: int = 40_000,
    seed: int = 20240601,
) -> tuple[float, float]:
    """End-to-end sojourn (mean, p99) in ms of Poisson arrivals through FCFS M/G/c queues in tandem.

    Each station serves customers in order of arrival there; with ``c`` servers a customer starts
    at max(arrival, earliest free server), which a min-heap of server free times gives in
    O(log c). Departures of one station, sorted, are the arrivals of the next. Service times
    are gamma with the station's mean and cv (exponential for cv = 1), on a one-core limit so
    that a request's service time is exactly its CPU time. The first ``warmup`` customers
    (empty-system start) are discarded.
    """
    rng = np.random.default_rng(seed)
    total = customers + warmup
    arrival = np.cumsum(rng.exponential(1.0 / lam, total))
    times = arrival
    who = np.arange(total)
    for mean_ms, cv_s, c in zip(cpu_ms, cv, servers, strict=True):
        mean = mean_ms / 1000.0
        if cv_s == 0.0:
            service = np.full(total, mean)
        else:
            shape = 1.0 / (cv_s * cv_s)
            service = rng.gamma(shape, mean / shape, total)
        free = [0.0] * c
        departure = [0.0] * total
        for i, (t, s) in enumerate(zip(times.tolist(), service.tolist(), strict=True)):
            start = t if t > free[0] else free[0]
            departure[i] = start + s
            heapq.heapreplace(free, start + s)
        dep = np.asarray(departure)
        order = np.argsort(dep, kind="stable")
        times = dep[order]
        who = who[order]
    sojourn = np.empty(total)
    sojourn[who] = times - arrival[who]
    kept = sojourn[warmup:] * 1000.0
    return float(kept.mean()), float(np.quantile(kept, 0.99))


# --- apps and simulator runs --------------------------------------------------------------------


def service(name: str, cpu_ms: float, cv: float, calls: str | None = None) -> dict[str, Any]:
    """One service with a one-core limit (one replica = one server) and no start-up delay."""
    d: dict[str, Any] = {
        "name": name,
        "cpu_ms": {"mean": cpu_ms, "cv": cv},
        "memory_mib": {"base": 100, "per_inflight": 0.01},
        "startup_s": 0,
        "replicas": {"min": 1, "max": 1000, "initial": 1},
        "cpu_limit": {"min": 0.1, "max": 4.0, "initial": 1.0},
        "mem_limit": {"min": 64, "max": BIG_MEM_MIB, "initial": BIG_MEM_MIB},
    }
    if calls is not None:
        d["calls"] = [{"to": calls, "per_request": 1}]
    return d


def make_app(services: list[dict[str, Any]], timeout_s: float = TIMEOUT_S) -> AppSpec:
    """An app on a node pool large enough that no pod ever stays pending."""
    return app_from_dict(
        {
            "name": "validation",
            "slo_ms": 1000,
            "timeout_s": timeout_s,
            "default_peak_rps": 100,
            "node": {"cores": 4096, "mem_gib": 100_000},
            "services": services,
        }
    )


def chain_app(cpu_ms: tuple[float, ...], cv: tuple[float, ...]) -> AppSpec:
    """A sequential chain s0 -> s1 -> ... with one call per request on each edge."""
    names = [f"s{i}" for i in range(len(cpu_ms))]
    return make_app(
        [
            service(n, m, v, names[i + 1] if i + 1 < len(names) else None)
            for i, (n, m, v) in enumerate(zip(names, cpu_ms, cv))
        ]
    )


def stationary_truth(app: AppSpec, replicas: tuple[int, ...], lam: float, intervals: int = 3) -> StepTruth:
    """Truth after ``intervals`` intervals at a constant rate, with every replica ready.

    Noise is off so the truth is deterministic; the checks on readiness, backlog and drops
    guard against comparing a transient (pods still starting, a queue still draining) with a
    stationary reference.
    """
    sim = ClusterSim(app, config=SimConfig(noise=0.0), seed=0)
    n = app.n_services
    sim.apply(np.array(replicas, dtype=float), np.ones(n), np.full(n, BIG_MEM_MIB))
    truth = None
    for _ in range(intervals):
        truth = sim.advance(lam)
    assert truth is not None
    np.testing.assert_array_equal(sim.ready[0], np.array(replicas, dtype=float))
    assert np.all(sim.backlog == 0.0)
    assert truth.oom_kills.sum() == 0.0
    np.testing.assert_allclose(truth.arrival_rps[0], np.full(n, lam), rtol=1e-12)
    return truth


# --- 1. Erlang C --------------------------------------------------------------------------------


def test_erlang_c_exact_matches_closed_form() -> None:
    """The reference Erlang C (B recursion) equals the factorial formula to 1e-9 relative."""
    for c in range(1, 65):
        for rho in [0.0, 0.001, 0.05, *np.linspace(0.0137, 0.9973, 61).tolist(), 0.999]:
            assert math.isclose(erlang_c_exact(c, rho), erlang_c_reference(c, rho), rel_tol=1e-9, abs_tol=0.0), (c, rho)
        assert erlang_c_exact(c, 1.0) == 1.0


def test_erlang_c_table_interpolation_within_half_percent() -> None:
    """The interpolated table is within 0.5 % for integer c and loads off its rho grid.

    An absolute floor of 1e-12 lets through values far too small to move any latency (many
    servers at a tiny load), where linear interpolation of a steep power of rho loses its
    relative accuracy. Loads stop below the table's 0.98 clip.
    """
    cs, rhos = np.meshgrid(np.arange(1, 65), np.linspace(0.0137, 0.9791, 173), indexing="ij")
    got = erlang_c(cs.astype(float), rhos)
    ref = np.vectorize(erlang_c_reference)(cs, rhos)
    err = np.abs(got - ref)
    bad = err > 0.005 * ref + 1e-12
    assert not bad.any(), list(zip(cs[bad][:5], rhos[bad][:5], got[bad][:5], ref[bad][:5]))


SINGLE_CPU_MS = 20.0
"""CPU time per request; with a one-core limit one server serves mu = 50 requests/s."""


@pytest.mark.parametrize("rho", [0.3, 0.5, 0.7, 0.8, 0.9])
@pytest.mark.parametrize("c", range(1, 9))
def test_single_service_waiting_time_matches_erlang_c(c: int, rho: float) -> None:
    """One M/M/c service: the simulator's mean and p99 wait equal the closed forms within 5 %."""
    mu = 1000.0 / SINGLE_CPU_MS
    lam = rho * c * mu
    truth = stationary_truth(make_app([service("api", SINGLE_CPU_MS, 1.0)]), (c,), lam)
    mean_ms = mmc_wait_mean_s(c, mu, lam) * 1000.0
    p99_ms = mmc_wait_quantile_s(c, mu, lam) * 1000.0
    sim_mean, sim_p99 = float(truth.wait_mean_ms[0, 0]), float(truth.wait_p99_ms[0, 0])
    assert sim_mean == pytest.approx(mean_ms, rel=0.05)
    if p99_ms == 0.0:
        assert sim_p99 < 1.0
    else:
        assert sim_p99 == pytest.approx(p99_ms, rel=0.05)


# --- 2. Discrete-event simulation of a three-service chain --------------------------------------


@dataclass(frozen=True)
class ChainCase:
    """A three-station tandem: external rate, CPU ms and cv per service, replicas per service."""

    lam: float
    cpu_ms: tuple[float, float, float]
    cv: tuple[float, float, float]
    replicas: tuple[int, int, int]
    shipped: str | None = None
    """Name of a shipped app whose services (and cv) are used instead of a custom chain."""

    def app(self) -> AppSpec:
        if self.shipped is not None:
            app = load_app(self.shipped)
            assert tuple(s.cpu_ms_mean for s in app.services) == self.cpu_ms
            assert tuple(s.cpu_ms_cv for s in app.services) == self.cv
            return app
        return chain_app(self.cpu_ms, self.cv)


CHAIN_CASES = {
    # Utilisation 0.5 / 0.8 / 0.7, exponential service: a Jackson tandem.
    "mm-c-mid-load": ChainCase(100.0, (10.0, 24.0, 14.0), (1.0, 1.0, 1.0), (2, 3, 2)),
    # Utilisation 0.5 / 0.75 / 0.85: the last station near saturation.
    "mm-c-one-at-0.85": ChainCase(125.0, (8.0, 18.0, 13.6), (1.0, 1.0, 1.0), (2, 3, 2)),
    # The shipped chain3 app at one core per replica: cv 0.8 / 1.0 / 1.2, utilisation 0.4 / 0.8 / 0.6.
    "chain3-app-cv": ChainCase(200.0, (4.0, 12.0, 6.0), (0.8, 1.0, 1.2), (2, 3, 2), shipped="chain3"),
    # Mixed variability (cv 0.5 / 1.5 / 0.8): downstream arrivals are far from Poisson.
    "mg-c-mixed-cv": ChainCase(100.0, (10.0, 24.0, 14.0), (0.5, 1.5, 0.8), (2, 3, 2)),
}


@pytest.mark.parametrize("case", list(CHAIN_CASES.values()), ids=list(CHAIN_CASES))
def test_chain_end_to_end_matches_discrete_event_simulation(case: ChainCase) -> None:
    """End-to-end mean and p99 of the simulator are within 10 % of a discrete-event simulation.

    The simulator sums per-service means and variances and reads the p99 from a gamma fit;
    the DES has none of those approximations (nor Poisson arrivals downstream of an M/G/c
    station), so this bounds what they cost on a realistic chain.
    """
    truth = stationary_truth(case.app(), case.replicas, case.lam)
    des_mean, des_p99 = tandem_des(case.lam, case.cpu_ms, case.cv, case.replicas)
    sim_mean, sim_p99 = float(truth.e2e_mean_ms[0]), float(truth.e2e_p99_ms[0])
    assert sim_mean == pytest.approx(des_mean, rel=0.10), (sim_mean, des_mean)
    assert sim_p99 == pytest.approx(des_p99, rel=0.10), (sim_p99, des_p99)


def test_tandem_des_reproduces_mm1_sojourn() -> None:
    """The DES itself is right: one M/M/1 station has exponential sojourn with rate mu - lambda.

    Checked against the closed form (mean 1 / (mu - lambda), p99 ln(100) / (mu - lambda)),
    so a slip in the event logic cannot pass for a simulator error or hide one.
    """
    mu, lam = 50.0, 35.0
    mean_ms, p99_ms = tandem_des(lam, (1000.0 / mu,), (1.0,), (1,), customers=200_000, warmup=20_000)
    assert mean_ms == pytest.approx(1000.0 / (mu - lam), rel=0.03)
    assert p99_ms == pytest.approx(1000.0 * math.log(100.0) / (mu - lam), rel=0.05)


# --- 3. Fluid overload --------------------------------------------------------------------------

OVERLOAD_REPLICAS = 4
OVERLOAD_CAPACITY = OVERLOAD_REPLICAS * 1000.0 / SINGLE_CPU_MS
"""Requests/s four one-core replicas serve at 20 ms each: 200."""
OVERLOAD_LAM = 1.5 * OVERLOAD_CAPACITY


def overload_sim(timeout_s: float) -> ClusterSim:
    """One service at 1.5x its capacity, already at its replicas (no scaling during the run)."""
    app = make_app([service("api", SINGLE_CPU_MS, 1.0)], timeout_s=timeout_s)
    sim = ClusterSim(app, config=SimConfig(noise=0.0), seed=0)
    sim.apply(np.array([float(OVERLOAD_REPLICAS)]), np.ones(1), np.full(1, BIG_MEM_MIB))
    return sim


def test_overload_first_interval_backlog_exact() -> None:
    """After one interval the backlog is exactly (lambda - capacity) x interval, nothing dropped.

    200 rps capacity, 300 rps offered, 15 s: 1500 requests queued, below the 10 s x 200 rps
    timeout cap of 2000. Fluid delay averages 5 s over the interval (2.5, 5, 7.5 s at the ends
    of the three sub-steps), so the p99 wait is above 5 s but still short of the timeout.
    """
    sim = overload_sim(TIMEOUT_S)
    truth = sim.advance(OVERLOAD_LAM)
    expected = (OVERLOAD_LAM - OVERLOAD_CAPACITY) * INTERVAL_S
    assert sim.backlog[0, 0] == pytest.approx(expected, rel=1e-6)
    assert truth.served_rps[0, 0] == pytest.approx(OVERLOAD_CAPACITY, rel=1e-9)
    assert truth.dropped[0, 0] < 1e-3
    assert 5000.0 < truth.wait_p99_ms[0, 0] < TIMEOUT_S * 1000.0


def test_overload_backlog_grows_linearly_until_timeout_cap() -> None:
    """With a 60 s timeout the backlog grows by 1500 per interval until 200 x 60 = 12000.

    It reaches the cap exactly at the end of interval 8; from then on each interval drops the
    excess arrivals, and the fluid delay (the backlog over capacity) pins the p99 wait at the
    timeout.
    """
    timeout_s = 60.0
    sim = overload_sim(timeout_s)
    growth = (OVERLOAD_LAM - OVERLOAD_CAPACITY) * INTERVAL_S
    cap = OVERLOAD_CAPACITY * timeout_s
    backlogs, dropped, wait_p99 = [], [], []
    for _ in range(12):
        truth = sim.advance(OVERLOAD_LAM)
        backlogs.append(float(sim.backlog[0, 0]))
        dropped.append(float(truth.dropped[0, 0]))
        wait_p99.append(float(truth.wait_p99_ms[0, 0]))
    expected = [min(growth * k, cap) for k in range(1, 13)]
    np.testing.assert_allclose(backlogs, expected, rtol=1e-6)
    assert max(dropped[:7]) < 1e-3, dropped[:7]
    assert all(d >= growth * (1 - 1e-9) for d in dropped[8:]), dropped[8:]
    assert max(wait_p99[:7]) < timeout_s * 1000.0
    assert wait_p99[8:] == pytest.approx([timeout_s * 1000.0] * 4, rel=1e-9)


def test_overload_conserves_requests() -> None:
    """Arrivals = served + dropped + backlog change, in every interval of a sustained overload."""
    sim = overload_sim(TIMEOUT_S)
    before = 0.0
    for _ in range(4):
        truth = sim.advance(OVERLOAD_LAM)
        after = float(sim.backlog[0, 0])
        served = float(truth.served_rps[0, 0]) * INTERVAL_S
        arrivals = OVERLOAD_LAM * INTERVAL_S
        assert served + float(truth.dropped[0, 0]) + (after - before) == pytest.approx(arrivals, rel=1e-6)
        before = after
