"""HPA with an in-place VPA (``hpa+vpa-inplace@T``): what an operator runs since Kubernetes 1.33.

``hpa+vpa`` pairs the HPA with the VPA in Recreate mode: each memory change evicts half the
ready pods. Kubernetes 1.33 resizes pods in place (the ``resize`` subresource, beta and on by
default; the VPA's ``InPlaceOrRecreate`` update mode), so the same recommendations reach pods
without restarts. This is that pairing: replicas from the HPA on CPU, memory limits from the
VPA's recommender and updater (``policies.vpa``), applied in place. CPU limits stay as they are
by default, since an HPA and a VPA acting on CPU fight; ``cpu=True`` lets the VPA set them too.
"""

from __future__ import annotations

from typing import Any

from envs.metrics import ScalingDecision
from envs.observation import ServiceView
from policies.base import EnvContext
from policies.hpa_vpa import HPAVPAPolicy
from policies.vpa import VPAPolicy


class HPAVPAInPlacePolicy(HPAVPAPolicy):
    """Replicas from the HPA on CPU; memory (and optionally CPU) limits from the VPA, resized in place."""

    name = "hpa+vpa-inplace"
    vertical_mode = "in-place"

    def __init__(self, ctx: EnvContext, target_utilization: float = 0.6, cpu: bool = False):
        super().__init__(ctx, target_utilization)
        self.cpu = cpu
        if cpu:
            self.vpa = VPAPolicy(ctx, cpu=True, memory=True)

    def decide(self, view: ServiceView, current: ScalingDecision, state: Any, now_s: float) -> ScalingDecision:
        if not self.cpu:
            return super().decide(view, current, state, now_s)
        replicas = self.hpa.replicas(view, state["hpa"], now_s)
        cpu, mem = self.vpa.limits(view, current, state["vpa"], now_s)
        return ScalingDecision(replicas, cpu, mem)
