"""A VPA-like vertical autoscaler: CPU and memory limits from decaying usage histograms.

One ``VPARecommender`` per service takes each interval's per-replica CPU and memory use; an
updater pass every ``update_period_s`` sets a limit to the recommender's target when the
current one falls outside its [lower, upper] bounds, as the VPA updater does. The VPA's
Recreate mode applies new limits by evicting pods, so this policy asks the env for
``vertical_mode = 'recreate'`` and pays the restarts. Replicas stay as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.metrics import ScalingDecision
from envs.observation import ServiceView
from policies.base import EnvContext, HeuristicPolicy
from policies.vpa_recommender import VPARecommender, needs_update

OOM_SIGNAL = 0.98
"""Memory use at this share of the limit is taken as an OOM kill (the env reports no OOM events)."""


class VPAPolicy(HeuristicPolicy):
    """Vertical scaling of CPU and/or memory limits."""

    name = "vpa"
    vertical_mode = "recreate"

    def __init__(
        self,
        ctx: EnvContext,
        cpu: bool = True,
        memory: bool = True,
        half_life_s: float = 1800.0,
        update_period_s: float = 60.0,
        mem_aggregation_s: float = 300.0,
    ):
        super().__init__(ctx)
        self.cpu, self.memory = cpu, memory
        self.half_life_s = half_life_s
        self.update_period_s = update_period_s
        self.mem_aggregation_s = mem_aggregation_s

    def initial_state(self) -> Any:
        app = self.ctx.app
        recs = [
            VPARecommender(
                self.half_life_s,
                self.half_life_s,
                min_cpu=s.cpu_limit_min,
                min_mem=s.mem_limit_min,
                mem_aggregation_interval_s=self.mem_aggregation_s,
            )
            for s in app.services
        ]
        return {"t": 0.0, "vpa": recs, "next_update": self.update_period_s}

    def limits(self, view: ServiceView, current: ScalingDecision, state: Any, now_s: float):
        cpu = current.cpu_limit.copy()
        mem = current.mem_limit.copy()
        for i, rec in enumerate(state["vpa"]):
            if view.ready_replicas[i] <= 0:
                continue
            rec.add_cpu_sample(float(view.cpu_utilization[i] * view.cpu_limit[i]), now_s, float(view.cpu_limit[i]))
            rec.add_mem_sample(float(view.mem_usage[i]), now_s)
            if view.mem_usage[i] >= OOM_SIGNAL * view.mem_limit[i]:
                rec.add_oom(float(view.mem_limit[i]), now_s)
        if now_s + 1e-9 < state["next_update"]:
            return cpu, mem
        state["next_update"] = now_s + self.update_period_s
        for i, rec in enumerate(state["vpa"]):
            r = rec.recommend()
            if self.cpu and needs_update(cpu[i], r.lower_cpu, r.upper_cpu):
                cpu[i] = r.target_cpu
            if self.memory and needs_update(mem[i], r.lower_mem, r.upper_mem):
                mem[i] = r.target_mem
        app = self.ctx.app
        # Never ask for less memory than the guard lets through (usage x headroom): the guard
        # would raise it again and, in Recreate mode, every such round trip restarts pods.
        mem = np.maximum(mem, np.ceil(view.mem_usage * self.ctx.guard.mem_headroom))
        cpu = np.clip(cpu, app.column("cpu_limit_min"), app.column("cpu_limit_max"))
        mem = np.clip(mem, app.column("mem_limit_min"), app.column("mem_limit_max"))
        return np.round(cpu, 3), np.round(mem)

    def decide(self, view: ServiceView, current: ScalingDecision, state: Any, now_s: float) -> ScalingDecision:
        cpu, mem = self.limits(view, current, state, now_s)
        return ScalingDecision(current.replicas, cpu, mem)
