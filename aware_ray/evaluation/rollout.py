"""Run one policy through one episode and total the scoreboard.

The same code scores ``aware-ray evaluate`` and the validation pass inside training, so a
checkpoint is chosen by exactly the numbers the report shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.autoscale_env import AutoscaleEnv
from policies.base import Policy


def one_inference_thread() -> None:
    """Run a learned policy's forwards on one torch thread in this process (and in the processes it
    forks). A scoring episode forwards one observation at a time, which no second thread speeds up,
    while two threads on a busy 2-core machine contend: measured at load 7-8 with the shipped
    policy, one forward took 2.5-2.8 ms on one thread and 9-31 ms on two, and a `rank` of two
    policies took over an hour. Not for a process that also trains: training sets its own threads
    (``run.torch_threads``). Does nothing where torch is not installed."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency; heuristics alone would not need it
        return
    torch.set_num_threads(1)


SUMMARY_FIELDS = (
    "policy",
    "trace",
    "family",
    "app",
    "seed",
    "steps",
    "time_compression",
    "slo_violation_rate",
    "dropped_requests",
    "cpu_core_hours",
    "mem_gib_hours",
    "mean_cpu_utilization",
    "scaling_actions",
    "guard_clamps",
    "reward",
)
TIMESERIES_FIELDS = (
    "policy",
    "trace",
    "seed",
    "t_seconds",
    "service",
    "requests_per_second",
    "replicas",
    "ready_replicas",
    "cpu_limit",
    "mem_limit",
    "cpu_utilization",
    "p99_ms",
    "slo_ms",
    "dropped",
)


@dataclass
class EpisodeResult:
    """Scoreboard totals of one episode, and optionally its per-step, per-service rows."""

    summary: dict[str, Any]
    timeseries: list[tuple[Any, ...]] = field(default_factory=list)
    e2e_p99_ms: np.ndarray | None = None
    """End-to-end p99 latency per step, ms."""
    external_rps: np.ndarray | None = None
    """External request rate per step."""
    replicas: np.ndarray | None = None
    """Replicas asked for, summed over services, per step."""
    cores: np.ndarray | None = None
    """CPU cores reserved (replicas x CPU limit), summed over services, per step."""


def run_episode(
    policy: Policy,
    env: AutoscaleEnv,
    rates: np.ndarray,
    seed: int,
    workload: str,
    family: str,
    record_timeseries: bool = False,
) -> EpisodeResult:
    """Replay `rates` (one per control interval) under `policy` in `env`, seeded by `seed`."""
    obs, _ = env.reset(seed=seed, options={"rates": rates, "workload": workload, "family": family})
    state = policy.initial_state()
    n = len(rates)
    violated = dropped = core_h = mem_h = reward = 0.0
    used = cap = 0.0
    actions = clamps = 0
    rows: list[tuple[Any, ...]] = []
    p99 = np.zeros(n)
    ext = np.zeros(n)
    reps = np.zeros(n)
    cores = np.zeros(n)
    names = [s.name for s in env.app.services]
    for i in range(n):
        action, state = policy.act(obs, state)
        obs, r, _, truncated, info = env.step(action)
        sb = info["scoreboard"]
        violated += sb.violated
        dropped += sb.dropped
        core_h += sb.cpu_core_hours
        mem_h += sb.mem_gib_hours
        reward += r
        actions += sb.scaling_actions
        clamps += sb.guard_clamps
        p99[i] = sb.e2e_p99_ms
        ext[i] = sb.external_rps
        truth = getattr(env.backend, "truth", None)
        d = env.decision
        reps[i] = float(d.replicas.sum())
        cores[i] = float((d.replicas * d.cpu_limit).sum())
        if truth is not None:
            u = float(truth.cpu_usage[0].sum())
            c = float((truth.ready_avg[0] * d.cpu_limit).sum())
        else:
            m = env.metrics
            u, c = float(m.cpu_usage.sum()), float((m.ready_replicas * m.cpu_limit).sum())
        used += u
        cap += c
        if record_timeseries:
            rows.extend(_service_rows(env, policy.name, workload, seed, names))
        if truncated:
            n = i + 1
            break
    summary = {
        "policy": policy.name,
        "trace": workload,
        "family": family,
        "app": env.app.name,
        "seed": seed,
        "steps": n,
        "time_compression": env.config.time_compression,
        "slo_violation_rate": violated / n,
        "dropped_requests": dropped,
        "cpu_core_hours": core_h,
        "mem_gib_hours": mem_h,
        "mean_cpu_utilization": used / cap if cap > 0 else 0.0,
        "scaling_actions": actions,
        "guard_clamps": clamps,
        "reward": reward,
    }
    return EpisodeResult(summary, rows, p99[:n], ext[:n], reps[:n], cores[:n])


def _service_rows(env: AutoscaleEnv, policy: str, workload: str, seed: int, names: list[str]) -> list[tuple]:
    m = env.metrics
    truth = getattr(env.backend, "truth", None)
    if truth is not None:
        rate, ready, p99, dropped = truth.arrival_rps[0], truth.ready_avg[0], truth.p99_ms[0], truth.dropped[0]
        cap = truth.ready_avg[0] * env.decision.cpu_limit
        util = np.divide(truth.cpu_usage[0], cap, out=np.zeros_like(cap), where=cap > 0)
    else:
        rate, ready, p99, dropped, util = m.request_rate, m.ready_replicas, m.p99_ms, m.dropped, m.cpu_utilization
    d = env.decision
    return [
        (
            policy,
            workload,
            seed,
            m.t_seconds,
            names[s],
            round(float(rate[s]), 4),
            int(d.replicas[s]),
            round(float(ready[s]), 3),
            float(d.cpu_limit[s]),
            float(d.mem_limit[s]),
            round(float(util[s]), 4),
            round(float(p99[s]), 3),
            env.app.slo_ms,
            round(float(dropped[s]), 3),
        )
        for s in range(len(names))
    ]
