"""The controller against a real Ray Serve endpoint on the simulator: closed loop equals evaluate,
the endpoint stopped mid-run hands over to the heuristic and back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aware_ray.control.config import load_control_config
from aware_ray.control.loop import Controller
from aware_ray.evaluation.evaluate import EvalPlan, run_job, validate
from policies import registry
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
    summary = Controller(_config(endpoint, tmp_path)).run()
    plan = EvalPlan(policies=[SPEC], traces=[TRACE], seeds=1, max_hours=0.5, timeseries="all")
    validate(plan)
    ev = run_job(plan, f"trace:{TRACE}", 1, lambda env, rates: registry.make_policy(SPEC, env, rates))
    got = summary["apps"]["social-network"]
    assert got["sources"] == {"policy": 120}
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
