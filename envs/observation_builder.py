"""ObservationBuilder: the one place an interval's metrics become the policy's observation.

The gymnasium env, the vector env and the live controller all feed it the same two things per
interval: the ``ServiceMetrics`` the backend reported and the action that was applied (after the
rules, in [-1, 1], one row per service). It keeps everything the observation remembers across
intervals: the last action, the previous external rate, the history window and the long load
context. Whoever owns a builder gets bit-identical observations for the same metrics, so a policy
served to a cluster sees exactly what it saw in training.

Usage, for one app instance (a vector env holds one ``ObservationBatch`` for all its sub-envs,
of which this is a batch of one, so both build with the same code)::

    builder = ObservationBuilder(app, layout, interval_s)
    obs = builder.reset(backend.observe())
    ...                                     # act, apply, let the interval run
    obs = builder.step(backend.observe(), applied_action, reward)

``step`` needs the interval's reward because the history window (the meta-learner's input)
records what each action earned; callers without a reward (a cluster where none is computed)
pass the one ``envs.reward`` gives for the observed metrics.
"""

from __future__ import annotations

import numpy as np

from envs.action import ACTION_DIMS
from envs.app import AppSpec
from envs.load_context import load_context_batch, partly_idle_batch
from envs.metrics import ServiceMetrics
from envs.metrics_batch import MetricsBatch
from envs.observation import N_HISTORY_FEATURES, A, ObservationLayout, build_batch, history_rows

OBS_LOW, OBS_HIGH = -10.0, 10.0
"""Every observation entry is clipped to this range (the env's observation space)."""


class ObservationBatch:
    """Observations of ``batch`` instances of one app at once, each with its own memory.

    What each instance remembers, as arrays with a leading batch axis: the last action, the
    previous external rate, the history window and the window of log external rates the long
    load context summarises (with how many of its entries were seen). ``reset`` starts given
    rows over; ``step`` moves every row by one interval. ``ObservationBuilder`` is a batch of one.
    """

    def __init__(self, app: AppSpec, layout: ObservationLayout, interval_s: float, batch: int):
        if app.n_services > layout.max_services:
            raise ValueError(f"app {app.name!r}: {app.n_services} services, above max_services {layout.max_services}")
        self.app = app
        self.layout = layout
        self.interval_s = float(interval_s)
        self.batch = int(batch)
        B = self.batch
        self.last_action = np.zeros((B, layout.max_services, ACTION_DIMS))
        self.prev_external = np.zeros(B)
        self.external = np.zeros(B)
        self.history = np.zeros((B, layout.history_window, N_HISTORY_FEATURES), dtype=np.float32)
        self.window = np.zeros((B, layout.context_span))
        """Log1p of the external rate of the last ``context_span`` intervals, oldest first."""
        self.seen = np.zeros(B, dtype=np.int64)
        """How many of ``window``'s last entries are intervals that ran (at most context_span)."""
        self.base = np.zeros((B, layout.history_start), dtype=np.float32)

    def reset(self, metrics: MetricsBatch, rows: np.ndarray | None = None) -> None:
        """Forget the past of `rows` (all when None) and take `metrics` (their rows) as their first interval."""
        rows = np.arange(self.batch) if rows is None else np.asarray(rows)
        self.last_action[rows] = 0.0
        self.prev_external[rows] = 0.0
        self.external[rows] = metrics.external_rps
        self.history[rows] = 0.0
        self.window[rows] = 0.0
        self.seen[rows] = 0
        self.base[rows] = self._base(metrics, self.last_action[rows], self.prev_external[rows])

    def step(self, metrics: MetricsBatch, action: np.ndarray, reward: np.ndarray) -> None:
        """Every row after an interval in which `action` (batch, max_services, 3), already clipped
        to [-1, 1], was applied and earned `reward` (batch,)."""
        self.prev_external = self.external
        self.external = np.asarray(metrics.external_rps, dtype=np.float64).copy()
        self.last_action = np.asarray(action, dtype=np.float64).reshape(
            self.batch, self.layout.max_services, ACTION_DIMS
        )
        self.base = self._base(metrics, self.last_action, self.prev_external)
        if self.layout.context_span:
            self.window[:, :-1] = self.window[:, 1:]
            self.window[:, -1] = np.log1p(np.maximum(self.external, 0.0))
            self.seen = np.minimum(self.seen + 1, self.layout.context_span)
        if self.layout.history_window:
            self.history[:, :-1] = self.history[:, 1:]
            self.history[:, -1] = history_rows(self.base, self.app.n_services, self.layout, self.last_action, reward)

    def observations(self) -> np.ndarray:
        """The current observations, (batch, layout.size) float32."""
        parts = [self.base]
        if self.layout.history_window:
            parts.append(self.history.reshape(self.batch, -1))
        if self.layout.context_span:
            # The external rates of the intervals run so far (none at reset: no interval has been
            # measured yet, and a zero there would read as a surge from nothing).
            ctx = load_context_batch(self.window, self.seen, self.layout.context_buckets)
            parts.append(np.clip(ctx, OBS_LOW, OBS_HIGH).astype(np.float32))
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts, axis=1)

    def partly_idle(self) -> np.ndarray:
        """(batch,): whether each row's load context is partly idle (``envs.load_context``)."""
        if not self.layout.context_span:
            return np.zeros(self.batch, dtype=bool)
        return partly_idle_batch(self.window, self.seen)

    def services(self, b: int) -> np.ndarray:
        """Row `b`'s per-service block, (n_services, N_SERVICE_FEATURES): what the rules read."""
        return self.layout.services(self.base[b])[: self.app.n_services]

    def e2e_latency(self, b: int) -> float:
        """Row `b`'s end-to-end p99 over the SLO, as the observation holds it."""
        return float(self.layout.app(self.base[b])[A["e2e_latency"]])

    def _base(self, metrics: MetricsBatch, last_action: np.ndarray, prev_external: np.ndarray) -> np.ndarray:
        obs = build_batch(metrics, self.app, self.layout, last_action, prev_external, self.interval_s)
        return np.clip(obs, OBS_LOW, OBS_HIGH)


class ObservationBuilder:
    """Observations of one app instance, interval after interval (see the module docstring)."""

    def __init__(self, app: AppSpec, layout: ObservationLayout, interval_s: float):
        self.app = app
        self.layout = layout
        self.interval_s = float(interval_s)
        self.state = ObservationBatch(app, layout, interval_s, 1)
        self.metrics: ServiceMetrics | None = None

    def reset(self, metrics: ServiceMetrics) -> np.ndarray:
        """Forget the past and return the observation of the first interval's `metrics`."""
        self.metrics = metrics
        self.state.reset(MetricsBatch.of(metrics))
        return self.observation()

    def step(self, metrics: ServiceMetrics, action: np.ndarray, reward: float) -> np.ndarray:
        """The observation after an interval in which `action` was applied and earned `reward`.

        ``action``: the applied action, (max_services, 3) or flat, already clipped to [-1, 1]
        (rows beyond the app's services are ignored).
        """
        assert self.metrics is not None, "call reset() first"
        self.metrics = metrics
        self.state.step(MetricsBatch.of(metrics), np.asarray(action, dtype=np.float64)[None], np.array([reward]))
        return self.observation()

    def observation(self) -> np.ndarray:
        """The current observation: service and app blocks, history window, load context."""
        return self.state.observations()[0]

    @property
    def last_action(self) -> np.ndarray:
        """The last applied action, (max_services, 3)."""
        return self.state.last_action[0]

    @property
    def prev_external(self) -> float:
        return float(self.state.prev_external[0])

    @property
    def history(self) -> np.ndarray:
        """The history window, (history_window, N_HISTORY_FEATURES), oldest first."""
        return self.state.history[0]

    @property
    def load_log(self) -> list[float]:
        """log1p of the external rate of the intervals run so far (at most context_span)."""
        span, seen = self.layout.context_span, int(self.state.seen[0])
        return [float(v) for v in self.state.window[0, span - seen :]] if seen else []

    @property
    def base(self) -> np.ndarray:
        """Service and app blocks of the current observation."""
        return self.state.base[0]

    @property
    def services(self) -> np.ndarray:
        """The current per-service block, (n_services, N_SERVICE_FEATURES): what the rules read."""
        return self.state.services(0)

    @property
    def e2e_latency(self) -> float:
        """The current end-to-end p99 over the SLO, as the observation holds it."""
        return self.state.e2e_latency(0)
