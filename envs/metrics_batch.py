"""MetricsBatch: the ``ServiceMetrics`` of several app instances as arrays with a leading batch axis.

The observation, the reward and the guard are computed for a whole vector env at once, as numpy
over ``(batch, services)`` arrays. They take a ``MetricsBatch``; a single env, the controller and
the endpoint wrap their one ``ServiceMetrics`` as a batch of one (``MetricsBatch.of``), so every
path runs the same code and gets bit-identical results.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from envs.metrics import ServiceMetrics, cpu_utilization

PER_APP = tuple(f.name for f in fields(ServiceMetrics) if f.type == "float")
"""Fields of shape (batch,): the app-wide scalars of ``ServiceMetrics``."""
PER_SERVICE = tuple(f.name for f in fields(ServiceMetrics) if f.name not in PER_APP)
"""Fields of shape (batch, services): its per-service arrays."""


@dataclass
class MetricsBatch:
    """``ServiceMetrics`` fields (see there for their meaning) with a leading batch axis."""

    t_seconds: np.ndarray
    replicas: np.ndarray
    ready_replicas: np.ndarray
    pending_replicas: np.ndarray
    cpu_limit: np.ndarray
    mem_limit: np.ndarray
    cpu_usage: np.ndarray
    mem_usage: np.ndarray
    request_rate: np.ndarray
    queue: np.ndarray
    p50_ms: np.ndarray
    p95_ms: np.ndarray
    p99_ms: np.ndarray
    dropped: np.ndarray
    oom_kills: np.ndarray
    throttled: np.ndarray
    external_rps: np.ndarray
    e2e_p50_ms: np.ndarray
    e2e_p95_ms: np.ndarray
    e2e_p99_ms: np.ndarray
    dropped_total: np.ndarray

    @staticmethod
    def of(metrics: ServiceMetrics) -> MetricsBatch:
        """A batch of one (views of `metrics`' arrays, not copies)."""
        d = {k: np.asarray(getattr(metrics, k), dtype=np.float64)[None] for k in PER_SERVICE}
        d.update({k: np.array([float(getattr(metrics, k))]) for k in PER_APP})
        return MetricsBatch(**d)

    @staticmethod
    def zeros(batch: int, n_services: int) -> MetricsBatch:
        d = {k: np.zeros((batch, n_services)) for k in PER_SERVICE}
        d.update({k: np.zeros(batch) for k in PER_APP})
        return MetricsBatch(**d)

    @property
    def batch(self) -> int:
        return int(self.replicas.shape[0])

    @property
    def cpu_utilization(self) -> np.ndarray:
        """CPU used over CPU limit of the ready replicas (the HPA's metric); 0 with none ready."""
        return cpu_utilization(self.cpu_usage, self.ready_replicas, self.cpu_limit)

    def take(self, rows: np.ndarray) -> MetricsBatch:
        """The batch of the given rows (copies)."""
        return MetricsBatch(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def row(self, b: int) -> ServiceMetrics:
        """Row `b` as a ``ServiceMetrics`` (copies)."""
        d = {k: getattr(self, k)[b].copy() for k in PER_SERVICE}
        d.update({k: float(getattr(self, k)[b]) for k in PER_APP})
        return ServiceMetrics(**d)

    def set_row(self, b: int, metrics: ServiceMetrics) -> None:
        """Overwrite row `b` with `metrics`."""
        for k in PER_SERVICE:
            getattr(self, k)[b] = getattr(metrics, k)
        for k in PER_APP:
            getattr(self, k)[b] = float(getattr(metrics, k))


if [f.name for f in fields(MetricsBatch)] != [f.name for f in fields(ServiceMetrics)]:  # pragma: no cover
    raise TypeError("MetricsBatch must have the fields of ServiceMetrics, in order")
