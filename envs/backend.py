"""The Backend protocol: the one seam between the environment and a cluster.

The gymnasium env, the evaluation harness and the live controller talk to a Backend only, so
the same decoding, guard and reward run against the simulator (``SimBackend``) during training
and against Kubernetes (``cluster.KubernetesBackend``) in production.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from envs.app import AppSpec
from envs.metrics import ScalingDecision, ServiceMetrics


@runtime_checkable
class Backend(Protocol):
    """A cluster running one app that can be observed, scaled and left to run."""

    app: AppSpec

    def observe(self) -> ServiceMetrics:
        """Metrics of the interval that just ended."""
        ...

    def apply(self, decision: ScalingDecision) -> None:
        """Ask for the replicas and limits of `decision` (already checked by the guard)."""
        ...

    def advance(self, seconds: float) -> None:
        """Let `seconds` of time pass (the simulator computes it; a live cluster waits)."""
        ...
