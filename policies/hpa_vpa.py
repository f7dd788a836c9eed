"""HPA and VPA together, as AWARE's bootstrap teacher.

They must not act on the same signal or they fight (the HPA adds pods because CPU is high
while the VPA raises the CPU limit for the same reason). So, as Kubernetes advises, the HPA
scales replicas on CPU and the VPA manages memory limits only.
"""

from __future__ import annotations

from typing import Any

from envs.metrics import ScalingDecision
from envs.observation import ServiceView
from policies.base import EnvContext, HeuristicPolicy
from policies.hpa import HPAPolicy
from policies.vpa import VPAPolicy


class HPAVPAPolicy(HeuristicPolicy):
    """Replicas from the HPA on CPU, memory limits from the VPA; CPU limits unchanged."""

    name = "hpa+vpa"
    vertical_mode = "recreate"

    def __init__(self, ctx: EnvContext, target_utilization: float = 0.6):
        super().__init__(ctx)
        self.hpa = HPAPolicy(ctx, target_utilization)
        self.vpa = VPAPolicy(ctx, cpu=False, memory=True)

    def initial_state(self) -> Any:
        return {"t": 0.0, "hpa": self.hpa.initial_state(), "vpa": self.vpa.initial_state()}

    def decide(self, view: ServiceView, current: ScalingDecision, state: Any, now_s: float) -> ScalingDecision:
        replicas = self.hpa.replicas(view, state["hpa"], now_s)
        _, mem = self.vpa.limits(view, current, state["vpa"], now_s)
        return ScalingDecision(replicas, current.cpu_limit, mem)
