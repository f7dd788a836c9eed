"""Experience records in a real redis-server: one bounded stream per app, full records, and a Redis
killed and restarted mid-run costs counted drops, never the interval."""

from __future__ import annotations

import json
import time

import redis

from aware_ray.control.config import load_control_config
from aware_ray.control.experience import stream_key
from aware_ray.control.loop import Controller
from cluster.metric_store import MetricStore

NO_ENDPOINT = "http://127.0.0.1:9"


def _controller(tmp_path, url, **exp):
    cfg = {
        "endpoint": NO_ENDPOINT,
        "timeout_ms": 50,
        "speed": "max",
        "apps": [
            {"name": "a", "app": "chain3", "family": "spikes", "seed": 0, "max_hours": 0.5},
            {"name": "b", "app": "single", "family": "step", "seed": 1, "max_hours": 0.5},
        ],
        "experience": {"redis": url, **exp},
        "out": str(tmp_path / "c"),
    }
    return Controller(load_control_config(None, cfg))


def test_records_per_app_stream_bounded_and_complete(tmp_path, redis_server):
    redis_server.flushall()
    ctl = _controller(tmp_path, redis_server.url, maxlen=20, file=str(tmp_path / "exp.jsonl"))
    summary = ctl.run()
    assert summary["experience"]["records"] == 240 and summary["experience"]["redis_dropped"] == 0
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    for app in ("a", "b"):
        n = r.xlen(stream_key(app))
        assert 20 <= n < 120, n  # MAXLEN ~20: Redis trims whole nodes (100 entries) at a time
    rec = MetricStore.from_url(redis_server.url).last_records(stream_key("a"))[0].record
    for key in (
        "metrics",
        "observation",
        "raw_action",
        "applied_action",
        "decision",
        "source",
        "reasons",
        "reward",
        "scoreboard",
        "policy_version",
        "schema_version",
        "record_version",
    ):
        assert key in rec, key
    assert rec["interval"] == 119 and rec["source"] == "heuristic" and rec["reasons"] == ["endpoint_down"]
    assert len(rec["observation"]) == 768 and len(rec["metrics"]["replicas"]) == 3
    lines = (tmp_path / "exp.jsonl").read_text().splitlines()
    assert len(lines) == 240 and json.loads(lines[-1])["app"] == "b"


def test_redis_killed_and_restarted_mid_run(tmp_path, redis_server):
    redis_server.flushall()
    ctl = _controller(tmp_path, redis_server.url, buffer=10)
    try:
        for _ in range(5):
            ctl.step()
        redis_server.stop()
        t0 = time.monotonic()
        for _ in range(30):  # 60 records into a buffer of 10
            ctl.step()
        assert time.monotonic() - t0 < 30  # Redis down never blocks the intervals for long
        assert ctl.sink.stats()["redis_dropped"] >= 40
    finally:
        redis_server.start()
    deadline = time.monotonic() + 20
    while ctl.sink.stats()["redis_reconnects"] == 0 and time.monotonic() < deadline:
        ctl.step()
        time.sleep(0.1)
    assert ctl.sink.stats()["redis_reconnects"] >= 1
    ctl.step()
    ctl.sink.close()
    last = MetricStore.from_url(redis_server.url).last_records(stream_key("a"))[0].record
    assert last["interval"] == ctl.apps[0].steps - 1  # records resumed up to the newest interval
