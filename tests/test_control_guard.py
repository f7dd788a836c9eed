"""Whatever the endpoint answers, the controller applies a decision inside the guard's bounds; stale
metrics hold instead of acting on zeros; modes decide who acts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aware_ray.control.client import parse_answers
from aware_ray.control.config import load_control_config
from aware_ray.control.loop import Controller
from cluster.errors import StaleMetrics
from envs.sim_backend import SimBackend

NO_ENDPOINT = "http://127.0.0.1:9"  # discard port: nothing answers; these tests hand answers in


def _controller(tmp_path, **kw):
    cfg = {
        "endpoint": NO_ENDPOINT,
        "speed": "max",
        "apps": [{"app": "chain3", "family": "spikes", "seed": 0, "max_hours": 0.25}],
        "out": str(tmp_path / "c"),
    }
    cfg.update(kw)
    return Controller(load_control_config(None, cfg))


floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e30, 1e30),
    st.sampled_from([0.0, 1.0, -1.0, 1e300, -1e300, math.nan, math.inf]),
)
answers = st.one_of(
    st.lists(floats, min_size=48, max_size=48),
    st.lists(floats, min_size=0, max_size=60),
    st.just("garbage"),
    st.just(None),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=st.lists(answers, min_size=1, max_size=6))
def test_any_answer_gives_a_decision_inside_the_guard(tmp_path, seq):
    ctl = _controller(tmp_path)
    app = ctl.apps[0]
    spec = app.env.app
    g = app.env.config.guard
    for raw in seq:
        before = app.env.decision.copy()
        try:
            (answer,) = parse_answers({"answers": [{"raw_action": raw, "policy_version": "x"}]}, 1, 48)
            r = app.interval(answer, None)
        except (ValueError, KeyError, TypeError):
            r = app.interval(None, "endpoint_garbage")
            assert r.source == "heuristic" and r.reasons == ["endpoint_garbage"]
        d = r.decision
        assert np.all(d.replicas >= spec.column("min_replicas")) and np.all(d.replicas <= spec.column("max_replicas"))
        assert np.all(d.replicas <= before.replicas + g.up_range(before.replicas))
        assert np.all(d.replicas >= before.replicas - g.down_range(before.replicas))
        for key, lo, hi in (
            ("cpu_limit", "cpu_limit_min", "cpu_limit_max"),
            ("mem_limit", "mem_limit_min", "mem_limit_max"),
        ):
            v, b = getattr(d, key), getattr(before, key)
            assert (
                np.all(np.isfinite(v)) and np.all(v >= spec.column(lo) - 1e-9) and np.all(v <= spec.column(hi) + 1e-9)
            )
            assert np.all(v <= b * g.max_limit_factor + 1e-9) and np.all(v >= b / g.max_limit_factor - 1e-9)
        assert (d.replicas * d.cpu_limit).sum() <= max(
            spec.node_cores, (before.replicas * before.cpu_limit).sum()
        ) + 1e-6


class FlakyBackend(SimBackend):
    """The simulator, except that ``observe`` raises StaleMetrics on chosen calls (a collector outage)."""

    def __init__(self, *a, stale_calls=(), **kw):
        super().__init__(*a, **kw)
        self.calls = 0
        self.stale_calls = set(stale_calls)

    def observe(self):
        self.calls += 1
        if self.calls in self.stale_calls:
            raise StaleMetrics("no metrics newer than 60s for frontend", ("frontend",))
        return super().observe()


def test_stale_metrics_hold_then_resume(tmp_path):
    ctl = _controller(tmp_path)
    app = ctl.apps[0]
    backend = FlakyBackend(app.env.app, app.env.sim_config, stale_calls={4, 5})
    app.env.backend = backend
    app.start(seed=0, rates=np.full(40, 30.0))
    results = [app.interval(None, "endpoint_down") for _ in range(6)]
    # calls: 1 reset, 2-3 two intervals, 4 stale after interval 3, 5 still stale (hold), 6 fresh again
    assert [r.reasons for r in results][2:4] == [["endpoint_down", "stale_metrics"], ["stale_metrics"]]
    assert results[3].decision is None  # nothing applied while stale
    assert results[4].decision is not None and np.isfinite(app.obs).all()
    assert app.handovers["stale_metrics"] == 2


@pytest.mark.parametrize(
    ("mode", "canary", "acts"), [("shadow", [], False), ("canary", ["b"], False), ("active", [], True)]
)
def test_modes_decide_who_acts(tmp_path, mode, canary, acts):
    apps = [{"name": n, "app": "chain3", "family": "spikes", "max_hours": 0.25} for n in ("a", "b")]
    ctl = _controller(tmp_path, mode=mode, canary=canary, apps=apps)
    (answer,) = parse_answers({"answers": [{"raw_action": [0.5] * 48, "policy_version": "v"}]}, 1, 48)
    a, b = ctl.apps
    ra, rb = a.interval(answer, None), b.interval(answer, None)
    assert (ra.source == "policy") == acts
    assert (rb.source == "policy") == (mode != "shadow")
    assert ra.policy_action is not None  # the policy's decision is recorded beside the heuristic's
