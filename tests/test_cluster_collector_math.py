"""Table tests of the collector's pure arithmetic."""

from __future__ import annotations

import math

import pytest

from cluster.collector_math import (
    PodWindow,
    aggregate,
    bucket_increase,
    counter_increase,
    deployment_of,
    histogram_quantile,
)
from cluster.prom_text import buckets, parse, total

INF = math.inf


@pytest.mark.parametrize(
    ("prev", "cur", "want"),
    [(None, 5.0, None), (10.0, 25.0, 15.0), (10.0, 10.0, 0.0), (100.0, 7.0, 7.0), (1.0, math.nan, None)],
)
def test_counter_increase(prev, cur, want) -> None:
    assert counter_increase(prev, cur) == want


def test_bucket_increase_and_reset() -> None:
    assert bucket_increase(None, {1.0: 3, INF: 4}) is None
    assert bucket_increase({1.0: 3, INF: 4}, {1.0: 5, INF: 9}) == {1.0: 2, INF: 5}
    assert bucket_increase({1.0: 3, INF: 4}, {1.0: 1, INF: 2}) == {1.0: 1, INF: 2}  # restarted pod


H = {0.1: 50.0, 0.2: 90.0, 0.4: 100.0, INF: 100.0}


@pytest.mark.parametrize(
    ("q", "buckets_", "want"),
    [
        (0.5, H, 0.1),  # exactly at a bucket edge
        (0.25, H, 0.05),  # interpolated from 0 in the first bucket
        (0.7, H, 0.15),  # halfway through (0.1, 0.2]
        (0.95, H, 0.3),
        (0.99, {0.1: 1.0, INF: 10.0}, 0.1),  # in +Inf: the largest finite bound
        (0.5, {0.1: 0.0, INF: 0.0}, None),  # no observations
        (0.5, {0.1: 60.0, 0.2: 50.0, INF: 100.0}, pytest.approx(0.1 * 50 / 60)),  # non-monotonic repaired
    ],
)
def test_histogram_quantile(q, buckets_, want) -> None:
    got = histogram_quantile(q, buckets_)
    assert got == (pytest.approx(want) if isinstance(want, float) else want)


@pytest.mark.parametrize(("q", "b", "msg"), [(1.5, H, "^q:"), (0.5, {0.1: 1.0}, r"^buckets: need a \+Inf")])
def test_histogram_quantile_rejects(q, b, msg) -> None:
    with pytest.raises(ValueError, match=msg):
        histogram_quantile(q, b)


@pytest.mark.parametrize(
    ("kind", "owner", "labels", "want"),
    [
        ("ReplicaSet", "web-7d9f8c6b5", {"pod-template-hash": "7d9f8c6b5"}, "web"),
        ("ReplicaSet", "my-api-abc12", {}, "my-api"),
        (None, None, {"app": "solo"}, "solo"),
        ("StatefulSet", "db", {"app.kubernetes.io/name": "db"}, "db"),
        (None, None, {}, None),
    ],
)
def test_deployment_of(kind, owner, labels, want) -> None:
    assert deployment_of("pod-x", kind, owner, labels) == want


def test_aggregate_sums_pods_and_merges_histograms() -> None:
    b1 = {0.1: 80.0, 0.2: 100.0, INF: 100.0}
    b2 = {0.1: 0.0, 0.2: 100.0, INF: 100.0}
    ws = [
        PodWindow(
            "ns",
            "web",
            15.0,
            cpu_cores=0.3,
            mem_bytes=100 * 2**20,
            cfs_periods=150,
            cfs_throttled=15,
            requests=100,
            errors=2,
            latency_buckets=b1,
            latency_sum_s=8.0,
            latency_count=100,
            queue=1,
        ),
        PodWindow(
            "ns",
            "web",
            15.0,
            cpu_cores=0.5,
            mem_bytes=300 * 2**20,
            cfs_periods=150,
            cfs_throttled=45,
            requests=100,
            errors=0,
            latency_buckets=b2,
            latency_sum_s=15.0,
            latency_count=100,
            queue=2,
            oom_kills=1,
        ),
        PodWindow("ns", "db", 15.0, cpu_cores=None, mem_bytes=50 * 2**20, requests=None),
    ]
    out = aggregate(ws)
    web = out[("ns", "web")]
    assert web["pods"] == 2 and web["cpu_cores"] == pytest.approx(0.8) and web["mem_mib"] == pytest.approx(400)
    assert web["throttled"] == pytest.approx(60 / 300)
    assert web["rps"] == pytest.approx(200 / 15) and web["errors_rps"] == pytest.approx(2 / 15)
    assert web["p50_ms"] == pytest.approx(100 + 100 * (100 - 80) / 120)  # rank 100 of 200 in (0.1, 0.2]
    assert web["mean_ms"] == pytest.approx(1000 * 23 / 200)
    assert web["queue"] == 3 and web["oom_kills"] == 1
    db = out[("ns", "db")]
    assert "cpu_cores" not in db and "rps" not in db and "p99_ms" not in db and db["mem_mib"] == pytest.approx(50)


def test_aggregate_idle_service_has_zero_latency_not_missing() -> None:
    out = aggregate(
        [
            PodWindow(
                "ns",
                "idle",
                15.0,
                cpu_cores=0.01,
                mem_bytes=2**20,
                requests=0,
                errors=0,
                latency_buckets={0.1: 0.0, INF: 0.0},
                latency_sum_s=0,
                latency_count=0,
            )
        ]
    )
    assert out[("ns", "idle")]["rps"] == 0 and out[("ns", "idle")]["p99_ms"] == 0


def test_aggregate_partial_request_data_leaves_rate_out() -> None:
    ws = [
        PodWindow("ns", "web", 15.0, cpu_cores=0.1, mem_bytes=1, requests=10, errors=0),
        PodWindow("ns", "web", 15.0, cpu_cores=0.1, mem_bytes=1, requests=None),
    ]
    assert "rps" not in aggregate(ws)[("ns", "web")]


def test_prom_text_helpers() -> None:
    text = (
        '# TYPE http_requests_total counter\nhttp_requests_total{code="200"} 90\nhttp_requests_total{code="503"} 10\n'
        '# TYPE lat histogram\nlat_bucket{le="0.1",path="/a"} 5\nlat_bucket{le="+Inf",path="/a"} 7\n'
        'lat_bucket{le="0.1",path="/b"} 1\nlat_bucket{le="+Inf",path="/b"} 1\nlat_sum 0.5\nlat_count 8\n'
    )
    s = parse(text)
    assert total(s, "http_requests_total") == 100
    assert total(s, "http_requests_total", lambda lab: lab.get("code", "").startswith("5")) == 10
    assert total(s, "missing") is None
    assert buckets(s, "lat") == {0.1: 6.0, INF: 8.0}
    with pytest.raises(ValueError, match=r"^not Prometheus text format"):
        parse("this is { not metrics")
