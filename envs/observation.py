"""The observation vector: per-service features padded to a maximum size, plus app features.

Layout (float32, flat): ``max_services`` rows of ``N_SERVICE_FEATURES`` per-service features,
then ``N_APP_FEATURES`` app-level features. Padding rows are zero with mask 0. A policy with
shared per-service weights reshapes the first part to (max_services, N_SERVICE_FEATURES), so
the same weights act on an app of any size up to ``max_services``.

Heuristics read the same vector back with ``service_view``: every feature they need (replicas,
utilisation, limits) is stored in a form that inverts exactly, so the HPA sees what it would
see on a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.app import AppSpec
from envs.load_context import context_size
from envs.metrics import ScalingDecision, ServiceMetrics
from envs.metrics_batch import MetricsBatch

SERVICE_FEATURES = (
    "cpu_util",  # CPU used / (ready replicas x CPU limit): the HPA's metric, in [0, 1]
    "mem_util",  # memory used per replica / memory limit, clipped to [0, 2]
    "replicas",  # desired replicas / max replicas
    "ready",  # ready replicas / max replicas
    "pending",  # starting or unschedulable replicas / max replicas
    "cpu_limit",  # CPU limit / largest allowed CPU limit
    "mem_limit",  # memory limit / largest allowed memory limit
    "load",  # arrival rate / capacity of the desired replicas (offered utilisation), clipped to [0, 4]
    "log_rate",  # log1p(arrival rate) / 10
    "queue",  # log1p(backlog) / 10
    "latency",  # service p99 / app SLO, clipped to [0, 10]
    "drops",  # share of the service's arrivals dropped in the interval
    "throttled",  # share of the interval spent CPU-saturated
    "last_replicas",  # last action, replicas component, in [-1, 1]
    "last_cpu",  # last action, CPU component
    "last_mem",  # last action, memory component
    "cpu_cost",  # log1p(CPU ms per request) / 5: how heavy a request is here
    "startup",  # start-up delay / 120 s
    "visits",  # requests this service handles per external request, clipped to [0, 4]
    "mask",  # 1 for a real service, 0 for padding
)
APP_FEATURES = (
    "e2e_latency",  # end-to-end p99 / SLO, clipped to [0, 10]
    "e2e_drops",  # share of external requests dropped
    "log_external",  # log1p(external rps) / 10
    "external_trend",  # external rps / previous external rps - 1, clipped to [-1, 1]
    "node_cpu",  # requested CPU (replicas x limit) / node pool cores
    "node_mem",  # requested memory / node pool memory
    "n_services",  # services / max_services
)
HISTORY_FEATURES = (
    *APP_FEATURES,
    "mean_cpu_util",  # mean over services of cpu_util
    "mean_load",  # mean over services of load
    "action_replicas",  # mean over services of the action's replicas component
    "action_cpu",  # ... CPU component
    "action_mem",  # ... memory component
    "reward",  # the reward of the interval, clipped to [-10, 10]
)
"""One row per past interval in the history window (the meta-learner's input): what the app saw,
what the policy did and what it earned, summarised over services so the row has a fixed size."""
N_SERVICE_FEATURES = len(SERVICE_FEATURES)
N_APP_FEATURES = len(APP_FEATURES)
N_HISTORY_FEATURES = len(HISTORY_FEATURES)
F = {name: i for i, name in enumerate(SERVICE_FEATURES)}
A = {name: i for i, name in enumerate(APP_FEATURES)}


@dataclass(frozen=True)
class ObservationLayout:
    """Sizes of the flat observation: services block, app block, history window, long load context."""

    max_services: int = 16
    history_window: int = 0
    """Past intervals appended (oldest first, newest last), N_HISTORY_FEATURES each; 0 for none."""
    context_span: int = 0
    """Intervals the long load context summarises (envs.load_context); 0 for no context block."""
    context_buckets: int = 16

    @property
    def context_size(self) -> int:
        return context_size(self.context_span, self.context_buckets)

    @property
    def size(self) -> int:
        return self.context_start + self.context_size

    @property
    def context_start(self) -> int:
        return self.history_start + self.history_window * N_HISTORY_FEATURES

    @property
    def history_start(self) -> int:
        return self.max_services * N_SERVICE_FEATURES + N_APP_FEATURES

    def history(self, obs: np.ndarray) -> np.ndarray:
        """The history window as (history_window, N_HISTORY_FEATURES) (leading dims kept)."""
        lead = obs.shape[:-1]
        return obs[..., self.history_start : self.context_start].reshape(*lead, self.history_window, N_HISTORY_FEATURES)

    def context(self, obs: np.ndarray) -> np.ndarray:
        """The long load context block (leading dims kept; empty when off)."""
        return obs[..., self.context_start : self.size]

    def services(self, obs: np.ndarray) -> np.ndarray:
        """The per-service block as (max_services, N_SERVICE_FEATURES) (batched: leading dims kept)."""
        lead = obs.shape[:-1]
        return obs[..., : self.max_services * N_SERVICE_FEATURES].reshape(*lead, self.max_services, N_SERVICE_FEATURES)

    def app(self, obs: np.ndarray) -> np.ndarray:
        return obs[..., self.max_services * N_SERVICE_FEATURES : self.history_start]


@dataclass
class ServiceView:
    """Per-service quantities read back from an observation (what a heuristic acts on)."""

    replicas: np.ndarray
    ready_replicas: np.ndarray
    cpu_utilization: np.ndarray
    cpu_limit: np.ndarray
    mem_limit: np.ndarray
    mem_usage: np.ndarray
    request_rate: np.ndarray
    latency_over_slo: np.ndarray

    def settings(self) -> ScalingDecision:
        """The replicas and limits that run now: what a decision is made from."""
        return ScalingDecision(
            replicas=self.replicas.astype(np.int64), cpu_limit=self.cpu_limit, mem_limit=self.mem_limit
        )


def build(
    metrics: ServiceMetrics,
    app: AppSpec,
    layout: ObservationLayout,
    last_action: np.ndarray,
    prev_external_rps: float,
    interval_s: float,
) -> np.ndarray:
    """The observation for `metrics` (see the feature tuples above for meaning and scaling):
    ``build_batch`` over a batch of one."""
    last = np.asarray(last_action, dtype=np.float64).reshape(1, -1, 3)
    return build_batch(MetricsBatch.of(metrics), app, layout, last, np.array([float(prev_external_rps)]), interval_s)[0]


def build_batch(
    m: MetricsBatch,
    app: AppSpec,
    layout: ObservationLayout,
    last_action: np.ndarray,
    prev_external_rps: np.ndarray,
    interval_s: float,
) -> np.ndarray:
    """Service and app blocks of a batch of observations, (batch, history_start) float32.

    ``last_action``: (batch, max_services or more, 3); ``prev_external_rps``: (batch,).
    """
    n = app.n_services
    B = m.batch
    max_r = app.column("max_replicas")
    mu = 1000.0 * m.cpu_limit / app.column("cpu_ms_mean")
    svc = np.zeros((B, layout.max_services, N_SERVICE_FEATURES), dtype=np.float64)
    s = svc[:, :n]
    s[..., F["cpu_util"]] = m.cpu_utilization
    mem_util = np.divide(m.mem_usage, m.mem_limit, out=np.zeros((B, n)), where=m.ready_replicas > 0)
    s[..., F["mem_util"]] = np.clip(mem_util, 0.0, 2.0)
    s[..., F["replicas"]] = m.replicas / max_r
    s[..., F["ready"]] = m.ready_replicas / max_r
    s[..., F["pending"]] = m.pending_replicas / max_r
    s[..., F["cpu_limit"]] = m.cpu_limit / app.column("cpu_limit_max")
    s[..., F["mem_limit"]] = m.mem_limit / app.column("mem_limit_max")
    cap = np.maximum(m.replicas, 1.0) * mu
    s[..., F["load"]] = np.clip(m.request_rate / cap, 0.0, 4.0)
    s[..., F["log_rate"]] = np.log1p(m.request_rate) / 10.0
    s[..., F["queue"]] = np.log1p(m.queue) / 10.0
    s[..., F["latency"]] = np.clip(m.p99_ms / app.slo_ms, 0.0, 10.0)
    arrivals = m.request_rate * interval_s
    s[..., F["drops"]] = np.clip(np.where(arrivals > 0, m.dropped / np.maximum(arrivals, 1e-9), 0.0), 0.0, 1.0)
    s[..., F["throttled"]] = m.throttled
    s[..., F["last_replicas"] : F["last_mem"] + 1] = last_action[:, :n]
    s[..., F["cpu_cost"]] = np.log1p(app.column("cpu_ms_mean")) / 5.0
    s[..., F["startup"]] = app.column("startup_s") / 120.0
    s[..., F["visits"]] = np.clip(app.visits, 0.0, 4.0)
    s[..., F["mask"]] = 1.0
    ext = m.external_rps
    prev = np.asarray(prev_external_rps, dtype=np.float64)
    a = np.empty((B, N_APP_FEATURES))
    a[:, 0] = np.minimum(m.e2e_p99_ms / app.slo_ms, 10.0)
    a[:, 1] = np.where(ext > 0, np.minimum(m.dropped_total / np.maximum(ext * interval_s, 1e-9), 1.0), 0.0)
    a[:, 2] = np.log1p(ext) / 10.0
    trend = np.divide(ext, prev, out=np.ones(B), where=prev > 0) - 1.0
    a[:, 3] = np.where(prev > 0, np.clip(trend, -1.0, 1.0), 0.0)
    a[:, 4] = (m.replicas * m.cpu_limit).sum(axis=1) / app.node_cores
    a[:, 5] = (m.replicas * m.mem_limit).sum(axis=1) / app.node_mem_mib
    a[:, 6] = n / layout.max_services
    return np.concatenate([svc.reshape(B, -1), a], axis=1).astype(np.float32)


def service_view(obs: np.ndarray, app: AppSpec, layout: ObservationLayout) -> ServiceView:
    """Read the per-service quantities a heuristic needs back out of an observation."""
    n = app.n_services
    s = layout.services(np.asarray(obs, dtype=np.float64))[:n]
    max_r = app.column("max_replicas")
    cpu_limit = np.round(s[:, F["cpu_limit"]] * app.column("cpu_limit_max"), 3)
    mem_limit = np.round(s[:, F["mem_limit"]] * app.column("mem_limit_max"))
    replicas = np.rint(s[:, F["replicas"]] * max_r)
    return ServiceView(
        replicas=replicas,
        ready_replicas=np.rint(s[:, F["ready"]] * max_r),
        cpu_utilization=s[:, F["cpu_util"]],
        cpu_limit=cpu_limit,
        mem_limit=mem_limit,
        mem_usage=s[:, F["mem_util"]] * mem_limit,
        request_rate=np.expm1(s[:, F["log_rate"]] * 10.0),
        latency_over_slo=s[:, F["latency"]],
    )


def history_row(obs: np.ndarray, n_services: int, layout: ObservationLayout, action: np.ndarray, reward: float):
    """The history row of one interval from its observation (without history), action and reward:
    ``history_rows`` over a batch of one."""
    act = np.asarray(action, dtype=np.float64).reshape(1, -1, 3)
    return history_rows(np.asarray(obs)[None], n_services, layout, act, np.array([float(reward)]))[0]


def history_rows(
    obs: np.ndarray, n_services: int, layout: ObservationLayout, action: np.ndarray, reward: np.ndarray
) -> np.ndarray:
    """History rows of a batch of intervals, (batch, N_HISTORY_FEATURES) float32.

    ``obs``: (batch, history_start or more); ``action``: (batch, max_services, 3); ``reward``: (batch,).
    """
    svc = layout.services(obs[:, : layout.history_start])[:, :n_services]
    out = np.empty((obs.shape[0], N_HISTORY_FEATURES))
    out[:, :N_APP_FEATURES] = layout.app(obs[:, : layout.history_start])
    out[:, N_APP_FEATURES] = svc[..., F["cpu_util"]].mean(axis=1)
    out[:, N_APP_FEATURES + 1] = svc[..., F["load"]].mean(axis=1)
    out[:, N_APP_FEATURES + 2 : N_APP_FEATURES + 5] = action[:, :n_services].mean(axis=1)
    out[:, N_APP_FEATURES + 5] = np.clip(reward, -10.0, 10.0)
    return out.astype(np.float32)
