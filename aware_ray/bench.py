"""Benchmarks. Each prints one JSON line; none is a timed test.

``sim``: steps per second of one AutoscaleEnv through the gymnasium API (social-network app,
random actions) and service-steps per second of the vectorised simulator over a batch.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import numpy as np


def bench_sim(seconds: float = 3.0, batch: int = 256, app_name: str = "social-network") -> dict[str, Any]:
    from envs.app import load_app
    from envs.autoscale_env import AutoscaleEnv
    from envs.simulator import ClusterSim

    env = AutoscaleEnv({"app": app_name, "episode_steps": 2000})
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    actions = rng.uniform(-0.3, 0.3, size=(64, *env.action_space.shape)).astype(np.float32)
    for i in range(50):  # warm-up: tables, caches
        env.step(actions[i % 64])
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(100):
            if env.step(actions[steps % 64])[3]:
                env.reset()
            steps += 1
    env_rate = steps / (time.perf_counter() - t0)

    app = load_app(app_name)
    sim = ClusterSim(app, batch=batch, seed=0)
    base = app.column("initial_replicas")
    rates = rng.uniform(0.3, 1.0, size=(64, batch)) * app.default_peak_rps
    reps = np.clip(base[None, None, :] + rng.integers(-1, 3, size=(64, batch, app.n_services)), 1, None)
    for i in range(5):
        sim.advance(rates[i])
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            sim.apply(reps[n % 64], app.column("cpu_limit_initial"), app.column("mem_limit_initial"))
            sim.advance(rates[n % 64])
            n += 1
    batched = n * batch * app.n_services / (time.perf_counter() - t0)
    return {
        "bench": "sim",
        "app": app_name,
        "services": app.n_services,
        "env_steps_per_s": round(env_rate, 1),
        "service_steps_per_s_batched": round(batched, 1),
        "batch": batch,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    if name == "sim":
        return bench_sim(args.seconds, args.batch)
    raise ValueError(f"unknown benchmark {name!r}")
