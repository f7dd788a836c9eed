"""What a backend reports each control interval, and what a policy asks it to do.

Both are plain arrays over services (index order of the AppSpec), so the simulator, the
Kubernetes backend, the guard and every policy speak the same shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


def cpu_utilization(cpu_usage: np.ndarray, ready_replicas: np.ndarray, cpu_limit: np.ndarray) -> np.ndarray:
    """CPU used over CPU limit of the ready replicas (the HPA's metric); 0 with none ready. Elementwise,
    so one app's services and a batch of apps (``envs.metrics_batch``) share it."""
    cap = ready_replicas * cpu_limit
    return np.divide(cpu_usage, cap, out=np.zeros_like(cpu_usage, dtype=float), where=cap > 0)


@dataclass
class ServiceMetrics:
    """Per-service observations for one control interval (arrays of shape (n_services,))."""

    t_seconds: float
    """Time at the end of the interval, seconds since the episode start."""
    replicas: np.ndarray
    """Replicas the Deployment asks for (spec.replicas), ready or not."""
    ready_replicas: np.ndarray
    """Replicas that are ready and serving."""
    pending_replicas: np.ndarray
    """Replicas starting up, restarting after an OOM kill, or unschedulable for lack of capacity."""
    cpu_limit: np.ndarray
    """CPU limit per replica, cores (the simulator treats request = limit, as a Guaranteed pod)."""
    mem_limit: np.ndarray
    """Memory limit per replica, MiB."""
    cpu_usage: np.ndarray
    """CPU used by all ready replicas together, cores (mean over the interval)."""
    mem_usage: np.ndarray
    """Mean memory in use per ready replica, MiB."""
    request_rate: np.ndarray
    """Requests per second arriving at the service."""
    queue: np.ndarray
    """Requests waiting (backlog) at the end of the interval."""
    p50_ms: np.ndarray
    """Median time a request spends at this service (waiting + its own processing), ms."""
    p95_ms: np.ndarray
    """95th percentile of that time, ms."""
    p99_ms: np.ndarray
    """99th percentile of that time, ms."""
    dropped: np.ndarray
    """Requests dropped in the interval (timed out in the queue or lost to an OOM kill)."""
    oom_kills: np.ndarray
    """Replicas killed for exceeding their memory limit in the interval."""
    throttled: np.ndarray
    """Share of the interval the service spent CPU-saturated (demand at or above its limit)."""
    external_rps: float
    """Requests per second entering the app in the interval."""
    e2e_p50_ms: float
    """End-to-end median latency over the call graph, ms."""
    e2e_p95_ms: float
    """End-to-end 95th percentile latency, ms."""
    e2e_p99_ms: float
    """End-to-end 99th percentile latency, ms (compared with the SLO)."""
    dropped_total: float
    """External requests that failed in the interval (dropped anywhere along their path)."""

    @property
    def cpu_utilization(self) -> np.ndarray:
        """CPU used over CPU limit of the ready replicas (the HPA's metric); 0 with none ready."""
        return cpu_utilization(self.cpu_usage, self.ready_replicas, self.cpu_limit)

    @property
    def mem_utilization(self) -> np.ndarray:
        """Memory used per ready replica over its limit."""
        return self.mem_usage / self.mem_limit

    @property
    def n_services(self) -> int:
        return int(self.replicas.shape[0])


@dataclass
class ScalingDecision:
    """Desired state per service: what a policy asks for and what the guard lets through."""

    replicas: np.ndarray
    """Desired replica count (integers)."""
    cpu_limit: np.ndarray
    """Desired CPU limit per replica, cores."""
    mem_limit: np.ndarray
    """Desired memory limit per replica, MiB."""

    def copy(self) -> ScalingDecision:
        return replace(
            self, replicas=self.replicas.copy(), cpu_limit=self.cpu_limit.copy(), mem_limit=self.mem_limit.copy()
        )

    @staticmethod
    def of(metrics: ServiceMetrics) -> ScalingDecision:
        """The decision that keeps everything as it is."""
        return ScalingDecision(
            replicas=metrics.replicas.astype(np.int64).copy(),
            cpu_limit=metrics.cpu_limit.astype(float).copy(),
            mem_limit=metrics.mem_limit.astype(float).copy(),
        )
