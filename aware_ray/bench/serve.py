"""``aware-ray bench serve``: how fast the policy answers, bare and behind Ray Serve (one JSON line).

Figures, all measured in one run on one machine (so their ratios mean something):
- ``forward_us``: the bare actor forward (one torch thread), one observation and per row of 64;
- ``in_process_ms``: what one replica does for one request without Serve around it (parse and
  validate the body, forward, rules, guard, encode the answer), JSON lists and ``observation_b64``;
- ``sequential_ms``: HTTP round trips one after another through Serve's HTTP proxy (p50/p99, ms);
- ``open_loop_100rps_ms``: requests sent on a fixed 100/s schedule whatever the answers do, latency
  counted from the scheduled send time (so a stall is not hidden by sending less), p50/p99 ms;
- ``decisions_per_s``: decisions (observations answered) per second with concurrent clients each
  sending batches, over a small grid of (clients x batch); ``max_decisions_per_s`` the best;
- ``controller``: the controller's own time per interval (observe, rules, guard, apply, simulate,
  record), the endpoint's round trip excluded, on the simulator.
HTTP calls go through ``http.client`` keep-alive connections (``requests`` would add about a
millisecond of the caller's own to each figure: ``goals.p99_100rps.bounds.client_overhead_ms``).
The keys above are Serve's default settings with the endpoint's defaults (JSON lists, no batch wait).
``baseline`` is the first configuration (2 ms batch wait) in the same run; ``paths`` compares ways to
reach the same replica: JSON vs ``observation_b64``, gRPC through Serve's gRPC proxy, and, in a
second Ray session with ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``, the proxy again and Serve's direct
ingress (the replica's own HTTP and gRPC servers, no proxy hop), HTTP with one and two replicas. ``goals`` gives each
goal's verdict on the best path, by how much it is met or missed, and what bounds the latency.
Goals on a 2-core machine: p99 <= 10 ms at 100 requests/s; >= 1,000 decisions/s.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import requests

GOAL_P99_MS = 10.0
GOAL_DECISIONS_PER_S = 1000.0
APP = "social-network"
GRPC_META = (("application", "aware-ray"),)

Call = Callable[[int], bool]
"""One request (the i-th of a run) on one client's connection; True when answered 200/OK."""
Client = Callable[[], Call]
"""Opens one client connection (a keep-alive session or a gRPC channel)."""


def _observations(n: int) -> np.ndarray:
    """Real observations of the shipped policy's layout (an env episode under the policy)."""
    from envs.autoscale_env import AutoscaleEnv
    from policies import registry
    from policies.ddpg.policy import DDPGPolicy

    policy = DDPGPolicy.load(registry.PRETRAINED_DIR)
    env = AutoscaleEnv({"app": APP, **policy.env_overrides(), "workloads": ["family:bursty"]})
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


def _body(obs: np.ndarray, b64: bool) -> bytes:
    """A /v1/act body for the rows of `obs`, as JSON lists or as ``observation_b64`` (packed as the
    controller packs them)."""
    from aware_ray.control.client import act_item

    if b64:
        items = [act_item(APP, o) for o in obs]
    else:
        items = [{"app": APP, "observation": o.tolist()} for o in obs]
    return json.dumps({"items": items}).encode()


def _in_process_ms(obs: np.ndarray) -> dict[str, Any]:
    """The replica's own work for one single-observation request, no Serve: parse, validate, answer, encode."""
    import torch

    from aware_ray.serving.runtime import PolicyRuntime
    from aware_ray.serving.schemas import ActRequest, check_act

    torch.set_num_threads(1)
    rt = PolicyRuntime(apps=(APP,))
    out: dict[str, Any] = {}
    for name, b64 in (("json", False), ("b64", True)):
        bodies = [_body(o[None, :], b64) for o in obs]
        ms = []
        for i in range(200):
            t = time.perf_counter()
            req = ActRequest.model_validate(json.loads(bodies[i % len(bodies)]))
            x = check_act(req, rt.apps, rt.observation_size)
            json.dumps({"answers": rt.answer([APP], x)})
            ms.append((time.perf_counter() - t) * 1000)
        out[name] = _pct(ms[20:])
        out[f"{name}_body_bytes"] = len(bodies[0])
    return out


def _pct(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms) if ms else np.zeros(1)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p99": round(float(np.percentile(a, 99)), 2), "n": len(ms)}


def http_client(url: str, bodies: list[bytes], path: str = "/v1/act") -> Client:
    """Clients POSTing `bodies` in turn (GET when `bodies` is empty) over one keep-alive connection
    each, with the standard library's ``http.client``: a caller's own cost per request is then a
    fraction of a millisecond (``requests`` adds about one, ``client_overhead_ms``), so the figures
    are the endpoint's. The controller and any other caller may use either."""
    parts = urllib.parse.urlsplit(url)
    headers = {"content-type": "application/json"}

    def open_() -> Call:
        conn = [http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)]

        def call(i: int) -> bool:
            try:
                if bodies:
                    conn[0].request("POST", path, body=bodies[i % len(bodies)], headers=headers)
                else:
                    conn[0].request("GET", path)
                answer = conn[0].getresponse()
                answer.read()
                return answer.status == 200
            except (OSError, http.client.HTTPException):
                conn[0].close()  # the next request opens a new connection
                conn[0] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
                return False

        return call

    return open_


def requests_client(url: str, path: str = "/healthz") -> Client:
    """GETs of `path` over a ``requests`` keep-alive session: what the library itself costs a caller
    per request, beside ``http_client`` on the same route (``client_overhead_ms``)."""

    def open_() -> Call:
        s = requests.Session()

        def call(i: int) -> bool:
            try:
                return s.get(url + path).status_code == 200
            except requests.RequestException:
                return False

        return call

    return open_


def grpc_client(target: str, obs: np.ndarray, batch: int = 1) -> Client:
    """Clients calling ``PolicyService.Act`` through Serve's gRPC proxy (one channel each)."""
    import grpc

    from aware_ray.serving.proto import policy_pb2, policy_pb2_grpc

    reqs = [
        policy_pb2.ActRequest(
            items=[policy_pb2.Observation(app=APP, observation=obs[(i + j) % len(obs)].tolist()) for j in range(batch)]
        )
        for i in range(len(obs))
    ]

    def open_() -> Call:
        stub = policy_pb2_grpc.PolicyServiceStub(grpc.insecure_channel(target))

        def call(i: int) -> bool:
            try:
                stub.Act(reqs[i % len(reqs)], metadata=GRPC_META, timeout=30)
                return True
            except grpc.RpcError:
                return False

        return call

    return open_


def _sequential(client: Client, n: int, warmup: int = 20) -> dict[str, Any]:
    call = client()
    for i in range(warmup):
        call(i)
    ms, errors = [], 0
    for i in range(n):
        t = time.perf_counter()
        errors += not call(i)
        ms.append((time.perf_counter() - t) * 1000)
    return {**_pct(ms), "errors": errors}


def _open_loop(client: Client, rate: float, seconds: float, workers: int = 8) -> dict[str, Any]:
    n = int(rate * seconds)
    calls = [client() for _ in range(workers)]
    for k, call in enumerate(calls):
        call(k)  # connect before the clock starts
    start = time.perf_counter() + 0.2
    ms: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(k, n, workers):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            ok = calls[k](i)
            with lock:
                ms.append((time.perf_counter() - due) * 1000)
                errors[0] += not ok

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {**_pct(ms), "rate": rate, "errors": errors[0]}


def _throughput(clients: list[Client], batch: int, seconds: float) -> float:
    """Decisions answered per second by len(clients) closed-loop clients, each request carrying `batch`."""
    done = [0] * len(clients)
    calls = [c() for c in clients]
    for k, call in enumerate(calls):
        call(k)
    stop = time.perf_counter() + seconds

    def run(k: int) -> None:
        i = 0
        while time.perf_counter() < stop:
            done[k] += batch * calls[k](i)
            i += 1

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return round(sum(done) / (time.perf_counter() - t0), 1)


def _grid(urls: list[str], obs: np.ndarray, b64: bool, grid: tuple[tuple[int, int], ...], seconds: float):
    out = {}
    for clients, batch in grid:
        body = [_body(np.stack([obs[(i + j) % len(obs)] for j in range(batch)]), b64) for i in range(4)]
        out[f"{clients}x{batch}"] = _throughput(
            [http_client(urls[k % len(urls)], body) for k in range(clients)], batch, seconds
        )
    return out


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
            "apps": [{"app": APP, "family": "bursty", "max_hours": 0.5}],
            "out": str(out),
        },
    )
    s = Controller(cfg).run()
    return {
        "overhead_ms": round(s["overhead_ms_per_interval"], 2),
        "endpoint_p50_ms": round(s["endpoint_ms"]["p50"], 2),
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serve_session(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A local Ray with Serve's HTTP and gRPC proxies on free loopback ports, started under `env`
    (Serve reads its RAY_SERVE_* settings when its processes start); yields (http url, grpc target)."""
    import ray
    from ray import serve
    from ray.serve.config import gRPCOptions

    from aware_ray.serving.launch import GRPC_SERVICER

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    port, grpc_port = _free_port(), _free_port()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(
            http_options={"host": "127.0.0.1", "port": port},
            grpc_options=gRPCOptions(port=grpc_port, grpc_servicer_functions=[GRPC_SERVICER]),
        )
        yield f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}"
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _deploy(replicas: int = 1, batch_wait_s: float | None = None) -> None:
    from ray import serve

    from aware_ray.serving.app import PolicyEndpoint
    from aware_ray.serving.runtime import DEFAULT_SPEC

    user_config: dict[str, Any] = {"policy": DEFAULT_SPEC, "apps": [APP]}  # the recommended deployment
    if batch_wait_s is not None:
        user_config["batch_wait_timeout_s"] = batch_wait_s
    app = PolicyEndpoint.options(num_replicas=replicas, user_config=user_config).bind(None)
    serve.run(app, name="aware-ray", route_prefix="/")


def _latency(client: Client, seconds: float, n: int = 300) -> dict[str, Any]:
    return {"sequential_ms": _sequential(client, n), "open_loop_100rps_ms": _open_loop(client, 100.0, seconds)}


def _met(figure: dict[str, Any]) -> bool:
    return figure["p99"] <= GOAL_P99_MS and figure["errors"] == 0


def bench_serve(seconds: float = 10.0) -> dict[str, Any]:
    """Run every figure of the module docstring; returns the JSON line's content."""
    import tempfile

    from aware_ray.serving.launch import direct_ingress_urls

    obs = _observations(64)
    forward = _forward_us(obs)
    in_process = _in_process_ms(obs)
    root = str(Path(__file__).resolve().parents[2])
    pythonpath = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    json_bodies = [_body(o[None, :], False) for o in obs]
    b64_bodies = [_body(o[None, :], True) for o in obs]
    grid_cfg = ((4, 1), (8, 8), (8, 32))
    half = seconds / 2
    paths: dict[str, Any] = {}
    load: dict[str, float] = {"start": round(os.getloadavg()[0], 2)}

    # Session 1: Serve's default settings (the HTTP proxy calls the replica as a Ray actor).
    with _serve_session({"PYTHONPATH": pythonpath, "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0"}) as (url, grpc_target):
        _deploy(batch_wait_s=0.002)
        baseline = _latency(http_client(url, json_bodies), seconds)
        _deploy()
        proxy_healthz = _sequential(http_client(url, [], "/healthz"), 300)
        seq = _sequential(http_client(url, json_bodies), 300)
        open_loop = _open_loop(http_client(url, json_bodies), 100.0, seconds)
        paths["proxy_b64"] = _latency(http_client(url, b64_bodies), seconds)
        paths["grpc_proxy"] = _latency(grpc_client(grpc_target, obs), seconds)
        grid = _grid([url], obs, False, grid_cfg, half)
        paths["proxy_b64"]["decisions_per_s"] = _grid([url], obs, True, grid_cfg, half)
        paths["grpc_proxy"]["decisions_per_s"] = {
            f"{c}x{b}": _throughput([grpc_client(grpc_target, obs, b)] * c, b, half) for c, b in ((8, 32), (4, 64))
        }
        with tempfile.TemporaryDirectory() as tmp:
            ctl = _controller_overhead(url, Path(tmp))
        load["session1_end"] = round(os.getloadavg()[0], 2)

    # Session 2: RAY_SERVE_THROUGHPUT_OPTIMIZED=1 (gRPC between proxy and replica, user code on the
    # replica's main loop, direct ingress: the replica serves HTTP itself on its own port).
    with _serve_session({"PYTHONPATH": pythonpath, "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}) as (url, _):
        _deploy()
        paths["optimized_proxy_b64"] = _latency(http_client(url, b64_bodies), seconds)
        direct = direct_ingress_urls("aware-ray")
        if direct:
            d = direct[0]
            direct_healthz = _sequential(http_client(d, [], "/healthz"), 300)
            requests_healthz = _sequential(requests_client(d), 300)
            paths["direct_json"] = _latency(http_client(d, json_bodies), seconds)
            paths["direct_b64"] = _latency(http_client(d, b64_bodies), seconds)
            paths["direct_b64"]["decisions_per_s"] = _grid(direct, obs, True, (*grid_cfg, (4, 64)), half)
            grpc_direct = direct_ingress_urls("aware-ray", protocol="GRPC")
            if grpc_direct:
                paths["direct_grpc"] = _latency(grpc_client(grpc_direct[0], obs), seconds)
                paths["direct_grpc"]["decisions_per_s"] = {
                    f"{c}x{b}": _throughput([grpc_client(grpc_direct[0], obs, b)] * c, b, half)
                    for c, b in ((8, 32), (4, 64))
                }
            _deploy(replicas=2)
            direct2 = direct_ingress_urls("aware-ray", want=2)
            paths["direct_b64_2_replicas"] = {
                "urls": len(direct2),
                "decisions_per_s": _grid(direct2, obs, True, ((8, 32), (4, 64)), half),
            }
        load["session2_end"] = round(os.getloadavg()[0], 2)

    best = max(grid.values())
    all_rates = {"proxy_json": best}
    for name, p in paths.items():
        if "decisions_per_s" in p:
            all_rates[name] = max(p["decisions_per_s"].values())
    rate_path = max(all_rates, key=all_rates.__getitem__)
    p99s = {"proxy_json": open_loop} | {
        k: p["open_loop_100rps_ms"] for k, p in paths.items() if "open_loop_100rps_ms" in p
    }
    p99_path = min(p99s, key=lambda k: (p99s[k]["errors"] > 0, p99s[k]["p99"]))
    bounds: dict[str, Any] = {
        "replica_in_process_p50_ms": in_process["b64"]["p50"],
        "proxy_healthz_p50_ms": proxy_healthz["p50"],
    }
    if direct:
        bounds["direct_healthz_p50_ms"] = direct_healthz["p50"]
        bounds["proxy_hop_p50_ms"] = round(proxy_healthz["p50"] - direct_healthz["p50"], 2)
        bounds["client_overhead_ms"] = {
            "http_client_healthz_p50": direct_healthz["p50"],
            "requests_healthz_p50": requests_healthz["p50"],
        }
    return {
        "bench": "serve",
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "load_avg_1m_during": load,
        "forward_us": forward,
        "in_process_ms": in_process,
        "sequential_ms": seq,
        "open_loop_100rps_ms": open_loop,
        "decisions_per_s": grid,
        "max_decisions_per_s": best,
        "controller": ctl,
        "baseline": {"config": "Serve defaults, JSON lists, batch wait 2 ms", **baseline},
        "paths": paths,
        "ratios_vs_baseline": {
            k: {
                "p50_sequential": round(baseline["sequential_ms"]["p50"] / max(v["sequential_ms"]["p50"], 1e-9), 2),
                "p99_open_loop": round(
                    baseline["open_loop_100rps_ms"]["p99"] / max(v["open_loop_100rps_ms"]["p99"], 1e-9), 2
                ),
            }
            for k, v in ({"proxy_json": {"sequential_ms": seq, "open_loop_100rps_ms": open_loop}} | paths).items()
            if "sequential_ms" in v
        },
        "goal_p99_ms": GOAL_P99_MS,
        "goal_p99_met": _met(open_loop),
        "goal_decisions_per_s": GOAL_DECISIONS_PER_S,
        "goal_decisions_met": best >= GOAL_DECISIONS_PER_S,
        "goals": {
            "p99_100rps": {
                "best_path": p99_path,
                "p99_ms": p99s[p99_path]["p99"],
                "met": _met(p99s[p99_path]),
                "goal_over_p99": round(GOAL_P99_MS / max(p99s[p99_path]["p99"], 1e-9), 2),
                "bounds": bounds,
            },
            "decisions_per_s": {
                "best_path": rate_path,
                "decisions_per_s": all_rates[rate_path],
                "met": all_rates[rate_path] >= GOAL_DECISIONS_PER_S,
                "over_goal": round(all_rates[rate_path] / GOAL_DECISIONS_PER_S, 2),
            },
        },
    }
