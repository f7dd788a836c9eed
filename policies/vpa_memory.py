"""Any policy with its memory limits set by the VPA (``vpa-mem:POLICY``).

The learned policy's reward charges reserved CPU but not memory, so nothing pulls its memory asks
down: it drifts them to the top of each service's range (on spikes, over half its service-intervals
within 10 % of the maximum; about 15 times the oracle's GiB-hours). Pods are scheduled on their
limits, so on a cluster that memory is lost to every other workload. A charge on memory in the
reward was tried and cost the CPU side more than it saved.

The VPA already knows how to size memory: a decaying histogram of per-pod peaks, a percentile plus a
safety margin, and an update only when the current limit leaves the recommendation's bounds, so a
limit is not changed (and, without in-place resize, pods restarted) every interval. ``vpa-mem:``
keeps POLICY's replicas and CPU limits and replaces its memory asks with what ``policies.vpa``
decides for memory alone, as ``hpa+vpa`` pairs the HPA with it. The policy still sees the limits
in its observation; only the memory output is overridden, and services whose memory the VPA left
as POLICY had it keep POLICY's action bit for bit.

Why it is not one of the rules in ``envs.rules`` (wrapped by ``policies.base.PolicyRule``): those
are pure functions of the observation, so the env can apply them in training and envs/ stays free
of policies. ``vpa-mem:`` runs a whole recommender (``policies.vpa``, with its histograms), which
lives in policies/; envs/ may not import it. It shares the rules' decode, change and re-encode step
(``envs.rules.rewrite_actions``), so it changes actions exactly as they do.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from envs.action import ACTION_DIMS
from envs.observation import service_view
from envs.rules import rewrite_actions
from policies.base import EnvContext, Policy
from policies.vpa import VPAPolicy


class VPAMemoryPolicy:
    """`policy` sets replicas and CPU limits; the VPA sets memory limits (see the module docstring)."""

    def __init__(self, policy: Policy, ctx: EnvContext):
        self.policy = policy
        self.ctx = ctx
        self.vpa = VPAPolicy(ctx, cpu=False, memory=True)
        self.name = f"vpa-mem:{getattr(policy, 'name', 'policy')}"
        self.vertical_mode = getattr(policy, "vertical_mode", "in-place")

    def initial_state(self) -> Any:
        return {"policy": self.policy.initial_state(), "vpa": self.vpa.initial_state()}

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        action, state["policy"] = self.policy.act(observation, state["policy"])
        n = self.ctx.app.n_services
        view = service_view(np.asarray(observation, dtype=np.float64), self.ctx.app, self.ctx.layout)
        current = view.settings()
        vpa = state["vpa"]
        _, mem = self.vpa.limits(view, current, vpa, vpa["t"])
        vpa["t"] += self.ctx.interval_s
        grid = np.array(action, dtype=np.float32).reshape(self.ctx.layout.max_services, ACTION_DIMS)
        grid[:n] = rewrite_actions(grid[:n], current, self.ctx.guard, lambda want: replace(want, mem_limit=mem))
        return grid.ravel(), state
