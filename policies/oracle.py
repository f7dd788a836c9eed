"""The clairvoyant oracle: the cheapest allocation that meets the SLO, knowing the future load.

It is the floor of the scoreboard, not a deployable policy. For every interval it knows the
external request rate that will arrive and uses the simulator's own latency model
(``envs.latency``) to find, per service, the fewest cores that keep the end-to-end p99 under
``slo_margin x SLO``:

1. a common utilisation target u for all services with a floor of q cores per replica (light
   services are latency-bound by throttling, not by load): the cheapest (u, q) on a grid that
   meets the SLO, all candidates evaluated at once;
2. then each service alone, largest first, cut to the fewest cores that still meet it with
   the others fixed.

Cores are turned into (replicas, CPU limit) with as few replicas as the CPU limit bounds allow,
since above one core a bigger replica is as good as more replicas and resizes in place without
a start-up delay. Replicas are then requested early enough to be ready when needed (start-up
delays) and never faster than the guard's scale-up limit allows; CPU limits are sized for the
replicas that will actually be ready. Memory limits follow the memory the allocation needs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from envs.latency import CallGraph, sojourn
from envs.metrics import ScalingDecision
from envs.observation import ServiceView
from policies.base import EnvContext, HeuristicPolicy

_U_GRID = np.linspace(0.05, 0.95, 46)
_Q_GRID = np.array([0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0])
_S_GRID = np.linspace(1.0, 0.3, 71)


class AllocationSearch:
    """Cheapest per-service cores meeting the SLO at a given external rate (memoised)."""

    def __init__(self, ctx: EnvContext, slo_margin: float = 0.85):
        app = ctx.app
        self.app = app
        self.graph = CallGraph.of(app)
        self.target_s = app.slo_ms * slo_margin / 1000.0
        self.cpu_ms = app.column("cpu_ms_mean")
        self.cv = app.column("cpu_ms_cv")
        self.cache: dict[int, np.ndarray] = {}

    def split(self, cores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(replicas, CPU limit) giving `cores` per service with the fewest replicas."""
        app = self.app
        r = np.maximum(app.column("min_replicas"), np.ceil(cores / app.column("cpu_limit_max") - 1e-9))
        r = np.minimum(r, app.column("max_replicas"))
        limit = np.clip(cores / r, app.column("cpu_limit_min"), app.column("cpu_limit_max"))
        return r, limit

    def p99(self, lam: np.ndarray, cores: np.ndarray) -> np.ndarray:
        """End-to-end p99 (s) for allocations `cores` of shape (K, S) at per-service rates `lam`."""
        r, limit = self.split(cores)
        sj = sojourn(lam, r, limit, self.cpu_ms, self.cv)
        ok = lam < 0.98 * 1000.0 * r * limit / self.cpu_ms
        return np.where(ok.all(axis=-1), self.graph.p99(sj.mean, sj.var), np.inf)

    def cores(self, external_rps: float) -> np.ndarray:
        """Cores per service for an external rate, rounded up to a 1 % grid for memoisation."""
        key = math.ceil(math.log(max(external_rps, 0.01)) / math.log(1.01))
        hit = self.cache.get(key)
        if hit is None:
            hit = self._search(1.01**key)
            self.cache[key] = hit
        return hit

    def _search(self, external_rps: float) -> np.ndarray:
        lam = external_rps * self.app.visits
        demand = lam * self.cpu_ms / 1000.0  # cores busy at 100 % utilisation
        app = self.app
        floor = app.column("min_replicas") * app.column("cpu_limit_min")
        most = app.column("max_replicas") * app.column("cpu_limit_max")
        # Candidates: a common utilisation u, with at least q cores per replica at low load
        # (below one core a request is throttled, so light services still need some CPU).
        u = np.repeat(_U_GRID, _Q_GRID.size)[:, None]
        q = np.tile(_Q_GRID, _U_GRID.size)[:, None]
        cand = np.clip(np.maximum(demand[None, :] / u, q * app.column("min_replicas")), floor, most)
        ok = self.p99(lam, cand) <= self.target_s
        if not ok.any():
            return most.copy()
        total = np.where(ok, cand.sum(axis=1), np.inf)
        best = cand[int(np.argmin(total))].copy()
        # Then each service alone, largest first, down to the fewest cores that still meet it
        # (two passes: a cut in one service can make room for another).
        for s in np.concatenate([np.argsort(-best), np.argsort(-best)]):
            trial = np.repeat(best[None, :], _S_GRID.size, axis=0)
            trial[:, s] = np.clip(best[s] * _S_GRID, floor[s], most[s])
            good = self.p99(lam, trial) <= self.target_s
            if good.any():
                best[s] = trial[np.flatnonzero(good)[-1], s]
        return best

    def memory(self, external_rps: float, cores: np.ndarray) -> np.ndarray:
        """Memory per replica (MiB) the allocation uses at that rate, by Little's law."""
        lam = external_rps * self.app.visits
        r, limit = self.split(cores)
        sj = sojourn(lam, r, limit, self.cpu_ms, self.cv)
        inflight = lam * sj.mean / r
        return self.app.column("mem_base_mib") + self.app.column("mem_per_inflight_mib") * inflight


def plan(ctx: EnvContext, rates: np.ndarray, slo_margin: float = 0.85, mem_headroom: float = 1.5) -> ScalingDecision:
    """Replicas and limits for every interval (arrays (T, S)) of a known rate series."""
    app, guard = ctx.app, ctx.guard
    search = AllocationSearch(ctx, slo_margin)
    T = len(rates)
    cores = np.stack([search.cores(float(x)) for x in rates])
    r_need, _ = search.split(cores)
    lead = np.ceil(app.column("startup_s") / ctx.interval_s - 1e-9).astype(int)
    r_plan = np.empty_like(r_need)
    for s in range(app.n_services):
        d = lead[s]
        for t in range(T):
            r_plan[t, s] = r_need[t : t + d + 1, s].max()
    # Scale-up is rate limited: start earlier when the next step is out of reach. The guard
    # allows max(max_up_pods, max_up_percent) more pods per interval, so either bound suffices.
    for t in range(T - 2, -1, -1):
        nxt = r_plan[t + 1]
        reach = np.minimum(nxt - guard.max_up_pods, np.ceil(nxt / (1.0 + guard.max_up_percent / 100.0) - 1e-9))
        r_plan[t] = np.maximum(r_plan[t], reach)
    # Replicas ready at t were requested at least `lead` steps before; the app's initial
    # replicas are ready from the start.
    init_r = app.column("initial_replicas")
    pad = int(lead.max())
    hist = np.vstack([np.tile(init_r, (pad, 1)), r_plan])
    ready = np.empty_like(r_plan)
    for s in range(app.n_services):
        d = lead[s]
        for t in range(T):
            ready[t, s] = hist[t + pad - d : t + pad + 1, s].min()
    lo, hi = app.column("cpu_limit_min"), app.column("cpu_limit_max")
    limit = np.clip(cores / np.maximum(ready, 1.0), lo, hi)
    f = guard.max_limit_factor
    for t in range(T - 2, -1, -1):
        limit[t] = np.maximum(limit[t], limit[t + 1] / f)
    # Forward from the initial state: a limit grows at most f-fold per interval, so where the
    # planned limit is out of reach, keep replicas that are already ready instead.
    prev_limit, prev_ready = app.column("cpu_limit_initial"), init_r
    for t in range(T):
        cap = np.minimum(prev_limit * f, hi)
        short = ready[t] * cap < cores[t] - 1e-9
        if short.any():
            keep = np.minimum(np.ceil(cores[t] / cap - 1e-9), np.maximum(prev_ready, ready[t]))
            r_plan[t] = np.where(short, np.maximum(r_plan[t], keep), r_plan[t])
            ready[t] = np.where(short, np.maximum(ready[t], np.minimum(keep, prev_ready)), ready[t])
            limit[t] = np.where(short, np.clip(cores[t] / np.maximum(ready[t], 1.0), lo, hi), limit[t])
        limit[t] = np.minimum(limit[t], cap)
        prev_limit, prev_ready = limit[t], ready[t]
    mem = np.stack([search.memory(float(x), c) for x, c in zip(rates, cores, strict=True)])
    # Memory must also hold what the previous interval left in flight.
    mem = np.maximum(mem, np.vstack([mem[:1], mem[:-1]]))
    mem = np.clip(mem * mem_headroom, app.column("mem_limit_min"), app.column("mem_limit_max"))
    return ScalingDecision(replicas=r_plan.astype(np.int64), cpu_limit=np.round(limit, 3), mem_limit=np.ceil(mem))


class OraclePolicy(HeuristicPolicy):
    """Plays the precomputed plan for the episode's known rate series."""

    name = "oracle"

    def __init__(self, ctx: EnvContext, rates: np.ndarray, slo_margin: float = 0.85):
        super().__init__(ctx)
        self.plan = plan(ctx, np.asarray(rates, dtype=np.float64), slo_margin)

    def initial_state(self) -> Any:
        return {"t": 0.0, "step": 0}

    def decide(self, view: ServiceView, current: ScalingDecision, state: Any, now_s: float) -> ScalingDecision:
        i = min(state["step"], len(self.plan.replicas) - 1)
        state["step"] += 1
        return ScalingDecision(
            replicas=self.plan.replicas[i], cpu_limit=self.plan.cpu_limit[i], mem_limit=self.plan.mem_limit[i]
        )
