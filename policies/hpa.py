"""The Kubernetes HPA as a policy: one ``HPAController`` per service, on CPU utilisation.

Each interval the adapter turns what the env reports into the pod list the HPA's replica
calculator sees (ready pods with their CPU usage, starting pods as Pending without metrics)
and lets the controller's exact rules (tolerance, stabilisation, scaling policies, bounds)
choose the replica count. CPU and memory limits are left as they are, as with an HPA alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.metrics import ScalingDecision
from envs.observation import ServiceView
from policies.base import EnvContext, HeuristicPolicy
from policies.hpa_rules import HPABehavior, HPAController, PodSample

_LONG_AGO = -1e9
"""Start and ready time of pods the env reports as ready: past the HPA's CPU initialisation period."""


def pods_of(service: str, replicas: int, ready: int, cpu_utilization: float, cpu_limit: float) -> list[PodSample]:
    """The pod list of one Deployment as the metrics API would show it (requests = limits)."""
    usage = max(float(cpu_utilization), 0.0) * cpu_limit
    pods = [
        PodSample(
            name=f"{service}-{i}",
            ready=True,
            phase="Running",
            started_s=_LONG_AGO,
            ready_changed_s=_LONG_AGO,
            request=cpu_limit,
            usage=usage,
        )
        for i in range(ready)
    ]
    pods += [
        PodSample(
            name=f"{service}-p{i}",
            ready=False,
            phase="Pending",
            started_s=None,
            ready_changed_s=None,
            request=cpu_limit,
            usage=None,
        )
        for i in range(max(replicas - ready, 0))
    ]
    return pods


class HPAPolicy(HeuristicPolicy):
    """Horizontal scaling by the Kubernetes HPA algorithm at one target utilisation."""

    name = "hpa"

    def __init__(self, ctx: EnvContext, target_utilization: float = 0.6, behavior: HPABehavior | None = None):
        super().__init__(ctx)
        self.target = target_utilization
        self.behavior = behavior

    def initial_state(self) -> Any:
        # The env calls act once per 15 s sync period, so the controller's own gate is off.
        return {
            "t": 0.0,
            "hpa": [
                HPAController(self.target, behavior=self.behavior, sync_period_s=0.0) for _ in self.ctx.app.services
            ],
        }

    def replicas(self, view: ServiceView, state: Any, now_s: float) -> np.ndarray:
        app = self.ctx.app
        out = view.replicas.astype(np.int64).copy()
        for i, (svc, hpa) in enumerate(zip(app.services, state["hpa"], strict=True)):
            pods = pods_of(
                svc.name,
                int(view.replicas[i]),
                int(view.ready_replicas[i]),
                float(view.cpu_utilization[i]),
                float(view.cpu_limit[i]),
            )
            out[i], _ = hpa.step(now_s, int(view.replicas[i]), pods, svc.min_replicas, svc.max_replicas)
        return out

    def decide(self, view: ServiceView, current: ScalingDecision, state: Any, now_s: float) -> ScalingDecision:
        return ScalingDecision(self.replicas(view, state, now_s), current.cpu_limit, current.mem_limit)
