"""The reward: SLO preservation plus utilisation, minus violations, cost and flapping.

Following FIRM/AWARE, the agent is paid for keeping latency under the SLO and for using what
it allocates, and charged for changing things. Utilisation alone is a weak cost signal where
it matters most: far above the need, utilisation is near zero and hardly changes as capacity
grows, so a learner that over-provisions gets no gradient back down. The cost term (reserved
CPU over the node pool's cores) is linear in what is reserved and keeps that gradient.
Pure functions of one interval's outcome, or of a batch of them (``reward_batch``, the
same arithmetic elementwise: ``reward`` is a batch of one).
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


def slo_preservation(e2e_p99_ms, slo_ms: float, drop_share):
    """1 when p99 is within the SLO and nothing dropped; falls as SLO / p99 beyond it (arrays
    of any shape, or scalars)."""
    p99 = np.asarray(e2e_p99_ms, dtype=np.float64)
    beyond = ~(p99 <= slo_ms)
    keep = np.divide(slo_ms, p99, out=np.ones_like(p99), where=beyond)
    out = keep * (1.0 - np.minimum(np.maximum(drop_share, 0.0), 1.0))
    return float(out) if out.ndim == 0 else out


def reward_batch(
    *,
    e2e_p99_ms: np.ndarray,
    slo_ms: float,
    drop_share: np.ndarray,
    violated: np.ndarray,
    cpu_utilization: np.ndarray,
    changed_services: np.ndarray,
    n_services: int,
    weights: RewardWeights,
    reserved_share: np.ndarray | float = 0.0,
    reserved_mem_share: np.ndarray | float = 0.0,
    overridden: np.ndarray | float = 0.0,
) -> np.ndarray:
    """``reward`` of a batch of intervals at once (arrays of one shape, or scalars)."""
    return (
        weights.slo * slo_preservation(e2e_p99_ms, slo_ms, drop_share)
        + weights.utilization * np.minimum(np.maximum(cpu_utilization, 0.0), 1.0)
        - weights.violation * np.asarray(violated, dtype=np.float64)
        - weights.flapping * np.asarray(changed_services, dtype=np.float64) / max(n_services, 1)
        - weights.cost * np.maximum(reserved_share, 0.0)
        - weights.memory * np.maximum(reserved_mem_share, 0.0)
        - weights.overridden * np.maximum(overridden, 0.0)
    )


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
    return float(
        reward_batch(
            e2e_p99_ms=e2e_p99_ms,
            slo_ms=slo_ms,
            drop_share=drop_share,
            violated=violated,
            cpu_utilization=cpu_utilization,
            changed_services=changed_services,
            n_services=n_services,
            weights=weights,
            reserved_share=reserved_share,
            reserved_mem_share=reserved_mem_share,
            overridden=overridden,
        )
    )
