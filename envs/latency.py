"""Latency of services and of the call graph, from load and allocation (pure functions).

Shared by the simulator (which adds the fluid backlog delay) and the oracle (which searches
for the cheapest allocation under the SLO), so both use one model.

A replica with CPU limit ``L`` cores runs ``max(L, 1)`` requests at once, each at a speed of
``min(L, 1)`` cores: below one core the CFS quota throttles a request, above one core the
extra cores serve more requests in parallel but do not make one request faster (request
handlers are single-threaded). So ``r`` replicas are an M/G/c queue with
``c = r * max(L, 1)`` servers of rate ``mu = 1000 * min(L, 1) / cpu_ms`` each, whose capacity
``c * mu = 1000 * r * L / cpu_ms`` grows with cores whichever way they are added.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.queueing import erlang_c, gamma_quantile, waiting_rate


def servers(replicas: np.ndarray, cpu_limit: np.ndarray) -> np.ndarray:
    """Concurrent request slots of `replicas` replicas at `cpu_limit` cores each."""
    return replicas * np.maximum(cpu_limit, 1.0)


def server_rate(cpu_limit: np.ndarray, cpu_ms: np.ndarray) -> np.ndarray:
    """Requests per second one slot completes (throttled below one core)."""
    return 1000.0 * np.minimum(cpu_limit, 1.0) / cpu_ms


@dataclass
class SojournMoments:
    """Per-service waiting and sojourn statistics, seconds (arrays of one shape)."""

    prob_wait: np.ndarray
    theta: np.ndarray
    wait_mean: np.ndarray
    wait_var: np.ndarray
    mean: np.ndarray
    var: np.ndarray


def sojourn(
    lam: np.ndarray,
    ready: np.ndarray,
    cpu_limit: np.ndarray,
    cpu_ms: np.ndarray,
    cv: np.ndarray,
    fluid_delay: np.ndarray | float = 0.0,
    timeout_s: float = np.inf,
) -> SojournMoments:
    """Waiting and sojourn moments of each service.

    ``fluid_delay`` is the extra deterministic wait of a carried backlog. A service with no
    ready replica makes requests wait the whole timeout.
    """
    c = servers(ready, cpu_limit)
    mu = server_rate(cpu_limit, cpu_ms)
    cap = c * mu
    none = ready <= 0
    c_safe = np.maximum(c, 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(cap > 0, lam / cap, 1.0)
        prob_wait = erlang_c(c_safe, rho)
        theta = waiting_rate(c_safe, mu, lam, cv)
        # A request gives up at the timeout, so no wait is longer.
        wait_mean = np.where(none, timeout_s, np.minimum(fluid_delay + prob_wait / theta, timeout_s))
        wait_var = np.where(none, 0.0, prob_wait * (2.0 - prob_wait) / theta**2)
    svc_mean = 1.0 / mu
    svc_var = (cv / mu) ** 2
    return SojournMoments(prob_wait, theta, wait_mean, wait_var, wait_mean + svc_mean, wait_var + svc_var)


@dataclass(frozen=True)
class CallGraph:
    """The call structure end-to-end latency is aggregated over (precomputed from an AppSpec)."""

    calls: np.ndarray
    entry: int
    children: tuple[np.ndarray, ...]
    parallel: tuple[bool, ...]

    @staticmethod
    def of(app) -> CallGraph:
        return CallGraph(
            calls=app.calls,
            entry=app.entry,
            children=tuple(np.flatnonzero(app.calls[i]) for i in range(app.n_services)),
            parallel=tuple(s.parallel_calls for s in app.services),
        )

    def end_to_end(self, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of end-to-end latency from per-service moments of shape (..., S).

        Sequential calls add their callee's subtree (calls x mean, calls x variance, callees
        independent); parallel fan-out waits for the slowest callee, taken as the one with the
        highest mean + 2.33 sd (its p99 under a normal approximation).
        """
        sub_mean = np.array(mean, dtype=np.float64, copy=True)
        sub_var = np.array(var, dtype=np.float64, copy=True)
        for i in range(len(self.children) - 1, -1, -1):
            kids = self.children[i]
            if kids.size == 0:
                continue
            w = self.calls[i, kids]
            if self.parallel[i]:
                km, kv = sub_mean[..., kids], sub_var[..., kids]
                proxy = km + 2.33 * np.sqrt(kv)
                # The callee with the highest proxy (ties share equally), weighted by its calls.
                pick = proxy >= proxy.max(axis=-1, keepdims=True)
                n = pick.sum(axis=-1)
                sub_mean[..., i] += (pick * (w * km)).sum(axis=-1) / n
                sub_var[..., i] += (pick * (w * kv)).sum(axis=-1) / n
            else:
                sub_mean[..., i] += sub_mean[..., kids] @ w
                sub_var[..., i] += sub_var[..., kids] @ w
        return sub_mean[..., self.entry], sub_var[..., self.entry]

    def p99(self, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        """End-to-end p99, seconds."""
        m, v = self.end_to_end(mean, var)
        return gamma_quantile(0.99, m, v)
