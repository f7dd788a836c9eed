"""``aware-ray bench serve``: how fast the policy answers, bare and behind Ray Serve (one JSON line).

Figures, all measured in one run on one machine (so their ratios mean something):
- ``forward_us``: the bare actor forward (one torch thread), one observation and per row of 64;
- ``sequential``: HTTP round trips one after another (p50/p99, ms);
- ``open_loop_100rps``: requests sent on a fixed 100/s schedule whatever the answers do, latency
  counted from the scheduled send time (so a stall is not hidden by sending less), p50/p99 ms;
- ``throughput``: the most decisions (observations answered) per second with concurrent clients
  each sending batches, over a small grid of (clients, batch);
- ``controller_overhead_ms``: the controller's own time per interval (observe, rules, guard, apply,
  simulate, record), the endpoint's round trip excluded, on the simulator.
Goals on a 2-core machine: p99 <= 10 ms at 100 requests/s; >= 1,000 decisions/s.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests

GOAL_P99_MS = 10.0
GOAL_DECISIONS_PER_S = 1000.0


def _observations(n: int) -> np.ndarray:
    """Real observations of the shipped policy's layout (an env episode under the policy)."""
    from envs.autoscale_env import AutoscaleEnv
    from policies import registry
    from policies.ddpg.policy import DDPGPolicy

    policy = DDPGPolicy.load(registry.PRETRAINED_DIR)
    env = AutoscaleEnv({"app": "social-network", **policy.env_overrides(), "workloads": ["family:bursty"]})
    obs, _ = env.reset(seed=0, options={"workload": "family:bursty", "episode_steps": n})
    out = []
    for _ in range(n):
        out.append(obs)
        obs, *_ = env.step(policy.act(obs, None)[0])
    return np.stack(out)


def _forward_us(obs: np.ndarray) -> dict[str, float]:
    import torch

    from policies import registry
    from policies.ddpg.policy import DDPGPolicy

    torch.set_num_threads(1)
    policy = DDPGPolicy.load(registry.PRETRAINED_DIR)
    policy.act_batch(obs[:8])
    t = time.perf_counter()
    for i in range(200):
        policy.act_batch(obs[i % len(obs)][None, :])
    one = (time.perf_counter() - t) / 200
    t = time.perf_counter()
    for _ in range(20):
        policy.act_batch(obs[:64])
    row = (time.perf_counter() - t) / 20 / 64
    return {"batch1": round(one * 1e6, 1), "per_row_batch64": round(row * 1e6, 1)}


def _pct(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms) if ms else np.zeros(1)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p99": round(float(np.percentile(a, 99)), 2), "n": len(ms)}


def _sequential(url: str, bodies: list[bytes], n: int) -> dict[str, float]:
    s = requests.Session()
    ms = []
    for i in range(n):
        t = time.perf_counter()
        r = s.post(f"{url}/v1/act", data=bodies[i % len(bodies)], headers={"content-type": "application/json"})
        ms.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    return _pct(ms)


def _open_loop(url: str, bodies: list[bytes], rate: float, seconds: float) -> dict[str, Any]:
    n = int(rate * seconds)
    start = time.perf_counter() + 0.2
    ms: list[float] = []
    errors = [0]
    lock = threading.Lock()
    workers = 8
    sessions = [requests.Session() for _ in range(workers)]

    def worker(k: int) -> None:
        for i in range(k, n, workers):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                r = sessions[k].post(
                    f"{url}/v1/act", data=bodies[i % len(bodies)], headers={"content-type": "application/json"}
                )
                ok = r.status_code == 200
            except requests.RequestException:
                ok = False
            with lock:
                ms.append((time.perf_counter() - due) * 1000)
                errors[0] += not ok

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {**_pct(ms), "rate": rate, "errors": errors[0]}


def _throughput(url: str, obs: np.ndarray, clients: int, batch: int, seconds: float) -> float:
    import json

    body = json.dumps(
        {"items": [{"app": "social-network", "observation": obs[i % len(obs)].tolist()} for i in range(batch)]}
    ).encode()
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def client(k: int) -> None:
        s = requests.Session()
        while time.perf_counter() < stop:
            r = s.post(f"{url}/v1/act", data=body, headers={"content-type": "application/json"})
            if r.status_code == 200:
                done[k] += batch

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - t0)


def _controller_overhead(url: str, out: Path) -> dict[str, float]:
    from aware_ray.control.config import load_control_config
    from aware_ray.control.loop import Controller

    cfg = load_control_config(
        None,
        {
            "endpoint": url,
            "speed": "max",
            "timeout_ms": 2000,
            "intervals": 120,
            "apps": [{"app": "social-network", "family": "bursty", "max_hours": 0.5}],
            "out": str(out),
        },
    )
    s = Controller(cfg).run()
    return {
        "overhead_ms": round(s["overhead_ms_per_interval"], 2),
        "endpoint_p50_ms": round(s["endpoint_ms"]["p50"], 2),
    }


def bench_serve(seconds: float = 10.0) -> dict[str, Any]:
    """Run every figure of the module docstring; returns the JSON line's content."""
    import json
    import socket
    import tempfile

    import ray
    from ray import serve

    from aware_ray.serving.app import build_app

    obs = _observations(64)
    forward = _forward_us(obs)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    root = str(Path(__file__).resolve().parents[2])
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app({"apps": ["social-network"]}), name="aware-ray", route_prefix="/")
        bodies = [json.dumps({"items": [{"app": "social-network", "observation": o.tolist()}]}).encode() for o in obs]
        _sequential(url, bodies, 30)  # warm up
        seq = _sequential(url, bodies, 300)
        open_loop = _open_loop(url, bodies, 100.0, seconds)
        grid = {}
        for clients, batch in ((4, 1), (8, 8), (8, 32)):
            grid[f"{clients}x{batch}"] = round(_throughput(url, obs, clients, batch, seconds / 2), 1)
        with tempfile.TemporaryDirectory() as tmp:
            ctl = _controller_overhead(url, Path(tmp))
    finally:
        serve.shutdown()
        ray.shutdown()
    best = max(grid.values())
    return {
        "bench": "serve",
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "forward_us": forward,
        "sequential_ms": seq,
        "open_loop_100rps_ms": open_loop,
        "decisions_per_s": grid,
        "max_decisions_per_s": best,
        "controller": ctl,
        "goal_p99_ms": GOAL_P99_MS,
        "goal_p99_met": open_loop["p99"] <= GOAL_P99_MS and open_loop["errors"] == 0,
        "goal_decisions_per_s": GOAL_DECISIONS_PER_S,
        "goal_decisions_met": best >= GOAL_DECISIONS_PER_S,
    }
