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
    return run_episodes([EpisodeRun(policy, env, rates, seed, workload, family, record_timeseries)])[0]


@dataclass
class EpisodeRun:
    """One episode to replay: what acts, in which env, on which rates."""

    policy: Policy
    env: AutoscaleEnv
    rates: np.ndarray
    seed: int
    workload: str
    family: str
    record_timeseries: bool = False
    given: Any = None
    """The ``GivenAction`` inside ``policy`` that a batched forward sets (``run_episodes``)."""
    window: Any = None
    """``smooth@S``'s ``InputWindow`` beside ``policy`` (``policies.smoothed_input.input_window``):
    the batched forward is asked with the averaged observation the chain hands ``given``."""


def run_episodes(runs: list[EpisodeRun], forward: Any = None) -> list[EpisodeResult]:
    """``run_episode`` of each run, stepped side by side.

    With ``forward`` (a learned policy's ``act_batch``), one forward per interval answers every
    episode still running, and each run's ``given`` hands its row to the rules that act around
    it, as they act around the policy itself. A batched forward's rows are what the policy gives
    each observation alone, bit for bit (``policies.ddpg.policy.ROW_BLOCK``), so the results are
    those of the episodes run one by one; a training validation ran its episodes' forwards one
    observation at a time, and they were most of its time.
    """
    obs = [
        r.env.reset(seed=r.seed, options={"rates": r.rates, "workload": r.workload, "family": r.family})[0]
        for r in runs
    ]
    states = [r.policy.initial_state() for r in runs]
    tallies = [_Tally(r) for r in runs]
    running = [k for k, r in enumerate(runs) if len(r.rates)]
    i = 0
    while running:
        if forward is not None:
            asked = [obs[k] if runs[k].window is None else runs[k].window.peek(obs[k]) for k in running]
            for k, seen, action in zip(running, asked, forward(np.stack(asked)), strict=True):
                runs[k].given.action, runs[k].given.observation = action, np.asarray(seen, np.float32)
        still = []
        for k in running:
            run = runs[k]
            action, states[k] = run.policy.act(obs[k], states[k])
            if run.window is not None:
                run.window.push(obs[k])
            obs[k], r, _, truncated, info = run.env.step(action)
            tallies[k].add(i, r, info)
            if not truncated and i + 1 < len(run.rates):
                still.append(k)
        running = still
        i += 1
    return [t.result() for t in tallies]


class _Tally:
    """The scoreboard totals of one episode as it runs (``run_episodes``)."""

    def __init__(self, run: EpisodeRun):
        self.run = run
        n = len(run.rates)
        self.steps = 0
        self.violated = self.dropped = self.core_h = self.mem_h = self.reward = 0.0
        self.used = self.cap = 0.0
        self.actions = self.clamps = 0
        self.rows: list[tuple[Any, ...]] = []
        self.p99, self.ext, self.reps, self.cores = (np.zeros(n) for _ in range(4))
        self.names = [s.name for s in run.env.app.services]

    def add(self, i: int, reward: float, info: dict[str, Any]) -> None:
        env = self.run.env
        sb = info["scoreboard"]
        self.steps = i + 1
        self.violated += sb.violated
        self.dropped += sb.dropped
        self.core_h += sb.cpu_core_hours
        self.mem_h += sb.mem_gib_hours
        self.reward += reward
        self.actions += sb.scaling_actions
        self.clamps += sb.guard_clamps
        self.p99[i] = sb.e2e_p99_ms
        self.ext[i] = sb.external_rps
        truth = getattr(env.backend, "truth", None)
        d = env.decision
        self.reps[i] = float(d.replicas.sum())
        self.cores[i] = float((d.replicas * d.cpu_limit).sum())
        if truth is not None:
            u = float(truth.cpu_usage[0].sum())
            c = float((truth.ready_avg[0] * d.cpu_limit).sum())
        else:
            m = env.metrics
            u, c = float(m.cpu_usage.sum()), float((m.ready_replicas * m.cpu_limit).sum())
        self.used += u
        self.cap += c
        if self.run.record_timeseries:
            self.rows.extend(_service_rows(env, self.run.policy.name, self.run.workload, self.run.seed, self.names))

    def result(self) -> EpisodeResult:
        run, n = self.run, self.steps
        summary = {
            "policy": run.policy.name,
            "trace": run.workload,
            "family": run.family,
            "app": run.env.app.name,
            "seed": run.seed,
            "steps": n,
            "time_compression": run.env.config.time_compression,
            "slo_violation_rate": self.violated / n if n else 0.0,
            "dropped_requests": self.dropped,
            "cpu_core_hours": self.core_h,
            "mem_gib_hours": self.mem_h,
            "mean_cpu_utilization": self.used / self.cap if self.cap > 0 else 0.0,
            "scaling_actions": self.actions,
            "guard_clamps": self.clamps,
            "reward": self.reward,
        }
        return EpisodeResult(summary, self.rows, self.p99[:n], self.ext[:n], self.reps[:n], self.cores[:n])


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
