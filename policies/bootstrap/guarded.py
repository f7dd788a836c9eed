"""A learned policy behind the bootstrap fallback, as one ``Policy``: what the live controller runs.

The controller only sees metrics, so the wrapper judges the last interval from the new
observation, as a controller would: the SLO was violated if the end-to-end p99 is above it or
requests were dropped, and what the policy reserved is replicas x CPU limit and replicas x
memory limit read back from the observation. Then the ``Arbiter`` (in SERVING: the policy acts,
the monitor watches) picks the action. The policy acts from the first interval, as it does
without the fallback; the monitor's cost yardstick is the heuristic deciding in the shadow.
An earlier version let the heuristic act for the first ``window`` intervals to measure its own
cost ratio; the policy then took over a configuration it never saw in training and cut it, and
those hand-overs were most of what the fallback cost on validation
(docs/results/2026-12-07-fallback-on-validation.md). ``aware-ray evaluate --policies
safe:ddpg:PATH`` scores exactly this, and the controller runs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.observation import A, service_view
from policies.base import EnvContext, Policy
from policies.bootstrap.arbiter import Arbiter, reserved
from policies.bootstrap.config import BootstrapConfig
from policies.bootstrap.phase import Phase
from policies.bootstrap.teacher import make_teacher

DROP_SHARE_VIOLATION = 0.0
"""Share of external requests dropped above which an interval violates the SLO (any drop does)."""


def outcome_of(observation: np.ndarray, ctx: EnvContext) -> tuple[bool, float, float]:
    """(violated, reserved CPU cores, reserved memory GiB) of the interval that produced `observation`."""
    app = np.asarray(ctx.layout.app(np.asarray(observation, dtype=np.float64)))
    violated = bool(app[A["e2e_latency"]] > 1.0 or app[A["e2e_drops"]] > DROP_SHARE_VIOLATION)
    view = service_view(observation, ctx.app, ctx.layout)
    return (violated, *reserved(view.replicas, view.cpu_limit, view.mem_limit))


class GuardedPolicy:
    """`policy` acts; the configured heuristic takes over whenever the monitor says it does worse."""

    def __init__(
        self,
        policy: Policy,
        ctx: EnvContext,
        cfg: BootstrapConfig | None = None,
        reference_violation_rate: float = 0.0,
    ):
        self.policy = policy
        self.ctx = ctx
        self.cfg = cfg or BootstrapConfig()
        self.reference_violation_rate = reference_violation_rate
        self.name = f"safe:{getattr(policy, 'name', 'policy')}"
        self.vertical_mode = getattr(policy, "vertical_mode", "in-place")

    def initial_state(self) -> Any:
        arb = Arbiter(self.cfg, make_teacher(self.cfg, self.ctx))
        arb.phase = Phase.SERVING
        arb.set_reference(self.reference_violation_rate)
        arb.start_episode()
        return {"arbiter": arb, "policy": self.policy.initial_state(), "steps": 0}

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        arb: Arbiter = state["arbiter"]
        if state["steps"]:
            arb.observe(*outcome_of(observation, self.ctx))
        action, state["policy"] = self.policy.act(observation, state["policy"])
        chosen, source = arb.choose(observation, action)
        state["steps"] += 1
        state["last_source"] = int(source)
        return chosen, state
