"""Static provisioning: fixed replicas at the app's initial limits, sized for the peak load.

What a team does without an autoscaler: provision for the highest load it expects. The size
comes from the same latency model as the oracle (fewest replicas at the initial CPU limits
that keep the end-to-end p99 under the SLO at the peak), so it is the safe, expensive end of
the scoreboard.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.latency import CallGraph, sojourn
from envs.metrics import ScalingDecision
from envs.observation import ServiceView
from policies.base import EnvContext, HeuristicPolicy


def peak_replicas(ctx: EnvContext, peak_rps: float, slo_margin: float = 0.85) -> np.ndarray:
    """Fewest replicas per service (initial CPU limits) meeting the SLO at `peak_rps`."""
    app = ctx.app
    graph = CallGraph.of(app)
    lam = peak_rps * app.visits
    limit = app.column("cpu_limit_initial")
    cpu_ms, cv = app.column("cpu_ms_mean"), app.column("cpu_ms_cv")
    lo, hi = app.column("min_replicas"), app.column("max_replicas")
    # Start at the fewest stable replicas, then add one where it helps the p99 most.
    r = np.clip(np.ceil(lam * cpu_ms / 1000.0 / limit / 0.95), lo, hi)
    target = app.slo_ms * slo_margin / 1000.0
    for _ in range(int(hi.sum())):
        sj = sojourn(lam, r, limit, cpu_ms, cv)
        if graph.p99(sj.mean, sj.var) <= target:
            break
        trials = np.repeat(r[None, :], app.n_services, axis=0) + np.eye(app.n_services)
        trials = np.minimum(trials, hi)
        sj = sojourn(lam, trials, limit, cpu_ms, cv)
        r = trials[int(np.argmin(graph.p99(sj.mean, sj.var)))]
    return r


class StaticPolicy(HeuristicPolicy):
    """Holds the peak-sized replicas and the initial limits for the whole episode."""

    name = "static"

    def __init__(self, ctx: EnvContext, peak_rps: float):
        super().__init__(ctx)
        self.replicas = peak_replicas(ctx, peak_rps).astype(np.int64)

    def decide(self, view: ServiceView, current: ScalingDecision, state: Any, now_s: float) -> ScalingDecision:
        app = self.ctx.app
        return ScalingDecision(
            replicas=self.replicas, cpu_limit=app.column("cpu_limit_initial"), mem_limit=app.column("mem_limit_initial")
        )
