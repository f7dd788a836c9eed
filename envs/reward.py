"""The reward: SLO preservation plus utilisation, minus violations, cost and flapping.

Following FIRM/AWARE, the agent is paid for keeping latency under the SLO and for using what
it allocates, and charged for changing things. Utilisation alone is a weak cost signal where
it matters most: far above the need, utilisation is near zero and hardly changes as capacity
grows, so a learner that over-provisions gets no gradient back down. The cost term (reserved
CPU over the node pool's cores) is linear in what is reserved and keeps that gradient.
Pure function of one interval's outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.errors import ConfigError


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the reward terms (all >= 0)."""

    slo: float = 1.0
    """Weight of SLO preservation, min(1, SLO / p99) x (1 - drop share), in [0, 1]."""
    utilization: float = 1.0
    """Weight of mean CPU utilisation of the allocated capacity (cost efficiency), in [0, 1]."""
    violation: float = 2.0
    """Penalty for an interval that violated the SLO (p99 above it, or any request dropped)."""
    flapping: float = 0.1
    """Penalty per service whose replicas or limits changed, divided by the number of services."""
    cost: float = 1.0
    """Penalty per unit of reserved CPU (replicas x CPU limit) over the node pool's cores."""
    memory: float = 0.0
    """Penalty per unit of reserved memory (replicas x memory limit) over the node pool's memory.
    Without it memory is free to the policy: the guard keeps limits inside each service's bounds,
    and nothing else pulls them down, so a trained policy drifts to the top of the range
    (measured on spikes: over half its service-intervals within 10 % of the maximum, seven times
    the HPA's GiB-hours). Pods are scheduled on their limits, so that memory is taken from the
    node pool. Off by default so that existing configs replay unchanged."""
    overridden: float = 0.0
    """Penalty per unit of action the env's controller rules (``env.rules``) changed, summed over
    a service's three outputs and averaged over services. An ask a rule overrides otherwise costs
    the policy nothing, so a policy trained under ``lean@U`` drifts to asking for growth everywhere
    and lets the rule brake (measured: CPU asks all positive, four to six times the cores)."""

    def __post_init__(self) -> None:
        for name in ("slo", "utilization", "violation", "flapping", "cost", "memory", "overridden"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and np.isfinite(v) and v >= 0):
                raise ConfigError(f"reward.{name}: must be a finite number >= 0, got {v!r}")


def slo_preservation(e2e_p99_ms: float, slo_ms: float, drop_share: float) -> float:
    """1 when p99 is within the SLO and nothing dropped; falls as SLO / p99 beyond it."""
    keep = 1.0 if e2e_p99_ms <= slo_ms else slo_ms / e2e_p99_ms
    return keep * (1.0 - min(max(drop_share, 0.0), 1.0))


def reward(
    *,
    e2e_p99_ms: float,
    slo_ms: float,
    drop_share: float,
    violated: bool,
    cpu_utilization: float,
    changed_services: int,
    n_services: int,
    weights: RewardWeights,
    reserved_share: float = 0.0,
    reserved_mem_share: float = 0.0,
    overridden: float = 0.0,
) -> float:
    """Reward of one control interval (``reserved_share``: reserved CPU over the node pool's cores;
    ``reserved_mem_share``: reserved memory over the node pool's memory;
    ``overridden``: mean per service of how far the rules moved its action)."""
    return (
        weights.slo * slo_preservation(e2e_p99_ms, slo_ms, drop_share)
        + weights.utilization * min(max(cpu_utilization, 0.0), 1.0)
        - weights.violation * float(violated)
        - weights.flapping * changed_services / max(n_services, 1)
        - weights.cost * max(reserved_share, 0.0)
        - weights.memory * max(reserved_mem_share, 0.0)
        - weights.overridden * max(overridden, 0.0)
    )
