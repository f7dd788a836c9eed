"""ObservationBuilder: the one place an interval's metrics become the policy's observation.

The gymnasium env, the vector env and the live controller all feed it the same two things per
interval: the ``ServiceMetrics`` the backend reported and the action that was applied (after the
rules, in [-1, 1], one row per service). It keeps everything the observation remembers across
intervals: the last action, the previous external rate, the history window and the long load
context. Whoever owns a builder gets bit-identical observations for the same metrics, so a policy
served to a cluster sees exactly what it saw in training.

Usage, for one app instance (a vector env holds one builder per sub-env)::

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
from envs.load_context import load_context
from envs.metrics import ServiceMetrics
from envs.observation import N_HISTORY_FEATURES, A, ObservationLayout, build, history_row

OBS_LOW, OBS_HIGH = -10.0, 10.0
"""Every observation entry is clipped to this range (the env's observation space)."""


class ObservationBuilder:
    """Observations of one app instance, interval after interval (see the module docstring)."""

    def __init__(self, app: AppSpec, layout: ObservationLayout, interval_s: float):
        if app.n_services > layout.max_services:
            raise ValueError(f"app {app.name!r}: {app.n_services} services, above max_services {layout.max_services}")
        self.app = app
        self.layout = layout
        self.interval_s = float(interval_s)
        self.last_action = np.zeros((layout.max_services, ACTION_DIMS))
        self.prev_external = 0.0
        self.history = np.zeros((layout.history_window, N_HISTORY_FEATURES), dtype=np.float32)
        self.load_log: list[float] = []
        self.metrics: ServiceMetrics | None = None
        self.base = np.zeros(layout.history_start, dtype=np.float32)

    def reset(self, metrics: ServiceMetrics) -> np.ndarray:
        """Forget the past and return the observation of the first interval's `metrics`."""
        self.last_action = np.zeros((self.layout.max_services, ACTION_DIMS))
        self.prev_external = 0.0
        self.history[:] = 0.0
        self.load_log = []
        self.metrics = metrics
        self.base = self._base(metrics)
        return self.observation()

    def step(self, metrics: ServiceMetrics, action: np.ndarray, reward: float) -> np.ndarray:
        """The observation after an interval in which `action` was applied and earned `reward`.

        ``action``: the applied action, (max_services, 3) or flat, already clipped to [-1, 1]
        (rows beyond the app's services are ignored).
        """
        assert self.metrics is not None, "call reset() first"
        self.prev_external = self.metrics.external_rps
        self.last_action = np.asarray(action, dtype=np.float64).reshape(self.layout.max_services, ACTION_DIMS)
        self.metrics = metrics
        self.base = self._base(metrics)
        span = self.layout.context_span
        if span:
            self.load_log.append(float(np.log1p(max(metrics.external_rps, 0.0))))
            del self.load_log[:-span]
        if self.layout.history_window:
            self.history[:-1] = self.history[1:]
            self.history[-1] = history_row(self.base, self.app.n_services, self.layout, self.last_action, reward)
        return self.observation()

    def observation(self) -> np.ndarray:
        """The current observation: service and app blocks, history window, load context."""
        parts = [self.base]
        if self.layout.history_window:
            parts.append(self.history.ravel())
        span = self.layout.context_span
        if span:
            # The external rates of the intervals run so far (none at reset: no interval has been
            # measured yet, and a zero there would read as a surge from nothing).
            ctx = load_context(np.asarray(self.load_log), span, self.layout.context_buckets)
            parts.append(np.clip(ctx, OBS_LOW, OBS_HIGH).astype(np.float32))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    @property
    def services(self) -> np.ndarray:
        """The current per-service block, (n_services, N_SERVICE_FEATURES): what the rules read."""
        return self.layout.services(self.base)[: self.app.n_services]

    @property
    def e2e_latency(self) -> float:
        """The current end-to-end p99 over the SLO, as the observation holds it."""
        return float(self.layout.app(self.base)[A["e2e_latency"]])

    def _base(self, metrics: ServiceMetrics) -> np.ndarray:
        obs = build(metrics, self.app, self.layout, self.last_action, self.prev_external, self.interval_s)
        return np.clip(obs, OBS_LOW, OBS_HIGH)
