"""The controller against a real Ray Serve endpoint on the simulator: closed loop equals evaluate,
the endpoint stopped mid-run hands over to the heuristic and back."""

from __future__ import annotations

import http.server
import json
import threading
import time

import numpy as np
import pytest

from aware_ray.cli import main
from aware_ray.control.config import load_control_config
from aware_ray.control.loop import Controller
from aware_ray.evaluation.evaluate import EvalPlan, run_job, validate
from policies import registry
from policies.base import EnvContext
from policies.bootstrap.config import BootstrapConfig
from policies.bootstrap.guarded import GuardedPolicy
from tests.serve_fixtures import serve_endpoint

SPEC = "lean@0.1:ddpg:pretrained"
TRACE = "nasa_http_1995-08_1min.csv"


@pytest.fixture(scope="module")
def endpoint():
    yield from serve_endpoint({"policy": SPEC, "apps": ["social-network", "chain3"]})


def _config(endpoint, tmp_path, **kw):
    base = {
        "endpoint": endpoint.url,
        "policy": SPEC,
        "speed": "max",
        "timeout_ms": 5000,  # this test checks equality, not latency (the machine is shared)
        "apps": [{"app": "social-network", "trace": TRACE, "seed": 1, "max_hours": 0.5}],
        "out": str(tmp_path / "control"),
    }
    base.update(kw)
    return load_control_config(None, base)


def test_closed_loop_equals_evaluate(endpoint, tmp_path):
    """`aware-ray control --backend sim --speed max` against `evaluate`, interval by interval."""
    argv = ["control", "--backend", "sim", "--app", "social-network", "--trace", TRACE, "--seed", "1"]
    argv += ["--max-hours", "0.5", "--speed", "max", "--endpoint", endpoint.url, "--policy", SPEC]
    argv += ["--timeout-ms", "5000", "--out", str(tmp_path / "control")]  # equality, not latency, is checked here
    assert main(argv) == 0
    summary = json.loads((tmp_path / "control" / "summary.json").read_text())
    plan = EvalPlan(policies=[SPEC], traces=[TRACE], seeds=1, max_hours=0.5, timeseries="all")
    validate(plan)
    make = lambda env, rates: registry.make_policy(SPEC, env, rates)  # noqa: E731
    ev = run_job(plan, f"trace:{TRACE}", 1, make, registry.history_needs(SPEC))  # as evaluate runs it
    got = summary["apps"]["social-network"]
    assert got["sources"] == {"policy": 120} and summary["endpoint_failures"] == {}
    for key in ("steps", "slo_violation_rate", "cpu_core_hours", "mem_gib_hours", "scaling_actions", "reward"):
        assert got[key] == ev.summary[key], key
    rows = [json.loads(line) for line in (tmp_path / "control" / "intervals.jsonl").read_text().splitlines()]
    services = len(rows[0]["running"]["replicas"])
    ts = ev.timeseries  # per step, per service: (..., replicas, ready, cpu_limit, mem_limit, ...)
    for i, row in enumerate(rows):
        want = ts[i * services : (i + 1) * services]
        assert row["running"]["replicas"] == [w[6] for w in want], f"interval {i}"
        assert row["running"]["cpu_limit"] == [w[8] for w in want], f"interval {i}"
        assert row["running"]["mem_limit"] == [w[9] for w in want], f"interval {i}"
    assert [r["scoreboard"]["e2e_p99_ms"] for r in rows] == list(ev.e2e_p99_ms)


def test_closed_loop_with_an_input_window_equals_evaluate(endpoint, tmp_path):
    """``smooth@60`` in the controller's spec: the endpoint is stateless, so the controller keeps the
    window and asks it with the averaged observation; the run equals evaluate's of the same spec,
    and differs from the spec without the window (so the window is not lost on the way)."""
    spec = "lean@0.1:smooth@60:ddpg:pretrained"  # the endpoint serves SPEC: the same innermost policy
    summary = Controller(_config(endpoint, tmp_path, policy=spec)).run()
    got = summary["apps"]["social-network"]
    assert got["sources"] == {"policy": 120} and summary["endpoint_failures"] == {}
    plan = EvalPlan(policies=[spec, SPEC], traces=[TRACE], seeds=1, max_hours=0.5)
    validate(plan)
    runs = {
        name: run_job(
            plan,
            f"trace:{TRACE}",
            1,
            lambda env, rates, n=name: registry.make_policy(n, env, rates),
            registry.history_needs(name),
        )
        for name in (spec, SPEC)
    }
    for key in ("steps", "slo_violation_rate", "cpu_core_hours", "mem_gib_hours", "scaling_actions", "reward"):
        assert got[key] == runs[spec].summary[key], key
    assert got["cpu_core_hours"] != runs[SPEC].summary["cpu_core_hours"]


def test_closed_loop_behind_the_fallback_equals_evaluate_safe(endpoint, tmp_path):
    """With a ``bootstrap:`` section the controller runs what ``safe:SPEC`` scores in evaluate,
    interval by interval: the policy from the first interval, the monitor (strict margins here, so
    that it trips) handing control to the heuristic for its cooldowns."""
    boot = {"window": 8, "violation_margin": 0.0, "cost_margin": 0.0, "cooldown": 4}
    summary = Controller(_config(endpoint, tmp_path, bootstrap=boot)).run()
    got = summary["apps"]["social-network"]
    assert got["bootstrap_fallbacks"] >= 2 and got["sources"]["heuristic"] >= 8, got
    rows = [json.loads(line) for line in (tmp_path / "control" / "intervals.jsonl").read_text().splitlines()]
    assert rows[0]["source"] == "policy"
    cfg = BootstrapConfig.from_dict(boot)
    plan = EvalPlan(policies=[SPEC], traces=[TRACE], seeds=1, max_hours=0.5)
    validate(plan)

    def make(env, rates):
        return GuardedPolicy(registry.make_policy(SPEC, env, rates), EnvContext.of(env), cfg)

    ev = run_job(plan, f"trace:{TRACE}", 1, make, registry.history_needs(SPEC))
    for key in ("steps", "slo_violation_rate", "cpu_core_hours", "mem_gib_hours", "scaling_actions", "reward"):
        assert got[key] == ev.summary[key], key


@pytest.mark.slow
def test_endpoint_stopped_mid_run_hands_over_and_back(endpoint, tmp_path):
    ctl = Controller(_config(endpoint, tmp_path, timeout_ms=300, intervals=12))
    sources = []
    for i in range(12):
        if i == 4:
            endpoint.stop()
        if i == 8:
            endpoint.start()
        (r,) = ctl.step()
        sources.append((r.source, tuple(r.reasons)))
    assert all(s == "policy" for s, _ in sources[:4])
    assert all(s == ("heuristic", ("endpoint_down",)) or s[1] == ("endpoint_slow",) for s in sources[4:8]), sources
    assert all(s == "policy" for s, _ in sources[8:]), sources
    app = ctl.apps[0]
    assert sum(app.handovers.values()) == 1  # one hand-over (to the heuristic), counted once
    assert np.isfinite(app.obs).all()


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    """An endpoint that answers correctly, but only after a second."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        time.sleep(1.0)
        out = json.dumps({"answers": [{"raw_action": [0.0] * 48, "policy_version": "slow"} for _ in body["items"]]})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(out.encode())

    def log_message(self, *args):
        pass


def test_slow_endpoint_costs_at_most_the_timeout(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        cfg = {
            "endpoint": f"http://127.0.0.1:{server.server_address[1]}",
            "policy": SPEC,
            "speed": "max",
            "timeout_ms": 100,
            "apps": [{"app": "chain3", "family": "step", "seed": 0, "max_hours": 0.25}],
            "out": str(tmp_path / "c"),
        }
        ctl = Controller(load_control_config(None, cfg))
        t0 = time.monotonic()
        results = [ctl.step()[0] for _ in range(3)]
        assert time.monotonic() - t0 < 3 * 0.9  # each interval waited ~0.1 s, not the endpoint's 1 s
        assert all(r.source == "heuristic" and r.reasons == ["endpoint_slow"] for r in results)
        assert ctl.failures == {"endpoint_slow": 3} and ctl.apps[0].handovers == {"endpoint_slow": 1}
    finally:
        server.shutdown()
        server.server_close()
