"""Any policy kept from growing services that show no pressure (``lean@U:POLICY``).

The HPA cannot add pods to a service whose utilisation is below its target: the rule
``ceil(replicas x utilisation / target)`` never exceeds the current count there. A learned policy
has no such floor under its reasoning. Where its observations leave what it saw in training (a
service with no requests for hours), it can double a CPU limit or add pods with nothing to serve,
then cut them again, interval after interval, and pay for capacity no request uses.
``lean@U:POLICY`` lets POLICY raise a service's replicas or CPU limit only when the service shows
pressure: CPU utilisation of at least U, any throttling, dropped requests, or a backlog. Everything
else (decreases, memory, services under pressure) passes as asked.

Like ``stable@S:POLICY`` it reads the policy's asks back from its actions with the env's own
decoding and needs nothing beyond the observation, so it wraps any policy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.metrics import ScalingDecision
from envs.observation import F
from policies.base import EnvContext, Policy, PolicyRule

BACKLOG_REQUESTS = 1.0
"""A backlog above this many requests counts as pressure."""


def under_pressure(services: np.ndarray, min_utilization: float) -> np.ndarray:
    """Per service (rows of the observation's service block): does anything call for more capacity?"""
    backlog = np.expm1(services[:, F["queue"]] * 10.0)
    return (
        (services[:, F["cpu_util"]] >= min_utilization)
        | (services[:, F["throttled"]] > 0)
        | (services[:, F["drops"]] > 0)
        | (backlog > BACKLOG_REQUESTS)
    )


def hold_growth(want: ScalingDecision, current: ScalingDecision, pressure: np.ndarray) -> ScalingDecision:
    """`want`, with replica and CPU-limit increases of services without `pressure` held at the
    current setting."""
    idle = ~np.asarray(pressure, dtype=bool)
    replicas = np.where(idle & (want.replicas > current.replicas), current.replicas, want.replicas)
    cpu = np.where(idle & (want.cpu_limit > current.cpu_limit), current.cpu_limit, want.cpu_limit)
    return ScalingDecision(replicas=replicas.astype(np.int64), cpu_limit=cpu, mem_limit=want.mem_limit)


class LeanPolicy(PolicyRule):
    """`policy` acts; it may not grow a service that shows no pressure (see the module docstring)."""

    def __init__(self, policy: Policy, ctx: EnvContext, min_utilization: float):
        if not 0 <= min_utilization <= 1:
            raise ValueError(f"utilisation threshold must be in [0, 1], got {min_utilization}")
        self.prefix = f"lean@{min_utilization:g}"
        super().__init__(policy, ctx)
        self.min_utilization = min_utilization

    def apply(self, want: ScalingDecision, current: ScalingDecision, services: np.ndarray, memory: Any):
        return hold_growth(want, current, under_pressure(services, self.min_utilization)), memory
