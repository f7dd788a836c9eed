"""The heuristic that teaches the policy in OFFLINE and takes control back on a fallback.

HPA and VPA as Kubernetes runs them never touch CPU limits (the VPA here manages memory only,
so the two do not fight over CPU). A fallback, though, takes over a Deployment whose CPU
limits the policy may have cut; a teacher that kept them would inherit a throttled service it
cannot repair. So the teacher raises any CPU limit below the Deployment's own (the app spec's
initial limit) back to it, and leaves higher ones alone (the HPA sized replicas for them, and
taking them away in the middle of the trouble that caused the fallback would make it worse).
While the teacher has been in control from the start this changes nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.metrics import ScalingDecision
from envs.observation import ServiceView
from policies.base import EnvContext, HeuristicPolicy
from policies.bootstrap.config import BootstrapConfig
from policies.hpa import HPAPolicy
from policies.hpa_vpa import HPAVPAPolicy


class _RestoreCpu:
    """Mixin: the heuristic's decision, with no CPU limit below the app spec's."""

    ctx: EnvContext

    def decide(self, view: ServiceView, current: ScalingDecision, state: Any, now_s: float) -> ScalingDecision:
        d = super().decide(view, current, state, now_s)  # type: ignore[misc]
        spec = np.asarray([s.cpu_limit_initial for s in self.ctx.app.services], dtype=np.float64)
        return ScalingDecision(d.replicas, np.maximum(d.cpu_limit, spec), d.mem_limit)


class HPATeacher(_RestoreCpu, HPAPolicy):
    name = "hpa (bootstrap)"


class HPAVPATeacher(_RestoreCpu, HPAVPAPolicy):
    name = "hpa+vpa (bootstrap)"


def make_teacher(cfg: BootstrapConfig, ctx: EnvContext) -> HeuristicPolicy:
    """The configured heuristic (``hpa@T`` or ``hpa+vpa@T``) for an app."""
    kind, target = cfg.teacher
    if kind == "hpa":
        return HPATeacher(ctx, target)
    return HPAVPATeacher(ctx, target)
