"""One simulator batch shared by the envs of a vector env, each env owning one copy of it.

``ClusterSim`` already steps ``batch`` copies of an app as one numpy computation, but it seeds
and resets them together. A vector env needs each copy to live its own episodes: reset on its
own, at its own time, with its own seed, so that sub-env ``k`` replays exactly what a single
``AutoscaleEnv`` with the same seed does. ``SimBatch`` gives every copy its own random streams
(the ones a batch-of-one simulator would draw from that seed) and its own clock; ``CopyBackend``
is the ``SimBackend`` face of one copy that an ``AutoscaleEnv`` drives unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.app import AppSpec
from envs.metrics import ScalingDecision, ServiceMetrics
from envs.metrics_batch import MetricsBatch
from envs.sim_backend import SimBackend
from envs.simulator import ClusterSim, SimConfig


def copy_streams(seed: int | None) -> tuple[np.random.Generator, np.random.Generator]:
    """The dynamics and noise streams a batch-of-one ``ClusterSim.reset(seed)`` draws from."""
    dyn, noise = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(dyn), np.random.default_rng(noise)


class SimBatch(ClusterSim):
    """``batch`` copies of one app, each with its own seed, random streams, clock and resets."""

    def __init__(self, app: AppSpec, batch: int, config: SimConfig | None = None):
        super().__init__(app, batch=batch, config=config, seed=None)

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        streams = [copy_streams(None if seed is None else [seed, b]) for b in range(self.batch)]
        self.rngs = [s[0] for s in streams]
        self.noise_rngs = [s[1] for s in streams]
        self.clock = np.zeros(self.batch)
        self.fresh = np.ones(self.batch, dtype=bool)
        """Copies reset since the last interval: they report no measured interval yet."""

    def reset_copy(self, b: int, seed: int | None) -> None:
        """Copy ``b`` back to the app's initial state with streams from ``seed``; others untouched."""
        init = np.array([s.initial_replicas for s in self.app.services], dtype=np.float64)
        self.ready[b] = init
        self.starting[b] = 0.0
        self.unscheduled[b] = 0.0
        self.replicas[b] = init
        self.cpu_limit[b] = self.app.column("cpu_limit_initial")
        self.mem_limit[b] = self.app.column("mem_limit_initial")
        self.backlog[b] = 0.0
        self.rngs[b], self.noise_rngs[b] = copy_streams(seed)
        self.clock[b] = 0.0
        self.fresh[b] = True

    def advance(self, external_rps: np.ndarray | float):
        truth = super().advance(external_rps)
        self.clock += self.config.interval_s
        self.fresh[:] = False
        return truth

    def observe(self, b: int = 0) -> ServiceMetrics:
        truth = self.truth
        if self.fresh[b]:
            self.truth = None  # as a freshly reset batch of one: no interval measured yet
        try:
            metrics = super().observe(b)
        finally:
            self.truth = truth
        metrics.t_seconds = float(self.clock[b])
        return metrics

    def observe_all(self) -> MetricsBatch:
        """``observe`` of every copy at once: the same numbers, each copy's noise from its own
        stream (copies reset since the last interval report no measured interval, and draw none)."""
        tr = self.truth
        B, S = self.batch, self.app.n_services
        m = MetricsBatch.zeros(B, S)
        m.t_seconds = self.clock.copy()
        m.replicas = self.replicas.copy()
        m.ready_replicas = self.ready.copy()
        m.pending_replicas = self.starting.sum(axis=-1) + self.unscheduled
        m.cpu_limit = self.cpu_limit.copy()
        m.mem_limit = self.mem_limit.copy()
        m.queue = self.backlog.copy()
        live = np.flatnonzero(~self.fresh) if tr is not None else np.zeros(0, dtype=np.intp)
        if live.size == 0:
            return m
        noisy = np.stack([tr.cpu_usage, tr.arrival_rps, tr.mem_usage, tr.p50_ms, tr.p95_ms, tr.p99_ms], axis=1)[live]
        e2e = np.stack([tr.e2e_p50_ms, tr.e2e_p95_ms, tr.e2e_p99_ms], axis=1)[live]
        if self.config.noise > 0:
            eps = np.stack([self.noise_rngs[b].standard_normal(6 * S + 3) for b in live]) * self.config.noise
            noisy = noisy * np.maximum(1.0 + eps[:, :-3].reshape(noisy.shape), 0.0)
            e2e = e2e * np.maximum(1.0 + eps[:, -3:], 0.0)
        m.cpu_usage[live], m.request_rate[live], m.mem_usage[live] = noisy[:, 0], noisy[:, 1], noisy[:, 2]
        m.p50_ms[live], m.p95_ms[live], m.p99_ms[live] = noisy[:, 3], noisy[:, 4], noisy[:, 5]
        m.e2e_p50_ms[live], m.e2e_p95_ms[live], m.e2e_p99_ms[live] = e2e[:, 0], e2e[:, 1], e2e[:, 2]
        m.dropped[live] = tr.dropped[live]
        m.oom_kills[live] = tr.oom_kills[live]
        m.throttled[live] = tr.throttled[live]
        m.external_rps[live] = tr.external_requests[live] / self.config.interval_s
        m.dropped_total[live] = tr.dropped_total[live]
        return m

    def _oom_kills(self, risky: np.ndarray, p_kill: np.ndarray) -> np.ndarray:
        # Each copy draws from its own stream, element for element as a batch of one would.
        oom = np.zeros_like(p_kill)
        for b in np.flatnonzero(risky.any(axis=1)):
            draws = self.rngs[b].binomial(self.ready[b].astype(np.int64), np.where(risky[b], p_kill[b], 0.0))
            oom[b] = np.where(risky[b], draws, 0.0)
        return oom

    def _noise(self, b: int, n: int) -> np.ndarray:
        return self.noise_rngs[b].standard_normal(n)


class CopyTruth:
    """Ground truth of one copy, indexed as a batch of one (``truth.e2e_p99_ms[0]``)."""

    def __init__(self, sim: SimBatch, b: int):
        self._sim, self._b = sim, b

    def __getattr__(self, name: str) -> Any:
        truth = self._sim.truth
        if truth is None:
            raise AttributeError(name)
        return getattr(truth, name)[self._b : self._b + 1]


class CopyBackend(SimBackend):
    """Copy ``b`` of a ``SimBatch`` as an env's backend.

    ``apply`` stages the decision; the vector env applies every copy's decision and runs the
    interval for all of them at once, so ``advance`` here only moves this copy's rate cursor.
    """

    def __init__(self, sim: SimBatch, b: int):
        self.app = sim.app
        self.sim = sim
        self.b = b
        self.rates = np.zeros(1)
        self.step_index = 0
        self.decision: ScalingDecision | None = None
        self._truth = CopyTruth(sim, b)

    def reset(self, rates: np.ndarray, seed: int | None = None) -> None:
        self.sim.reset_copy(self.b, seed)
        self.rates = np.asarray(rates, dtype=np.float64)
        self.step_index = 0
        self.decision = None

    def observe(self) -> ServiceMetrics:
        return self.sim.observe(self.b)

    def apply(self, decision: ScalingDecision) -> None:
        self.decision = decision

    def next_rate(self) -> float:
        """The external rate of this copy's coming interval."""
        return float(self.rates[min(self.step_index, len(self.rates) - 1)])

    def advance(self, seconds: float) -> None:
        n = max(1, round(seconds / self.sim.config.interval_s))
        if n != 1:
            raise ValueError(f"a batched copy runs one simulator interval per env step, not {n}")
        self.step_index += 1

    @property
    def truth(self) -> Any:
        return None if self.sim.truth is None or self.sim.fresh[self.b] else self._truth
