"""The collector end to end: fake API server + fake kubelet + pods' /metrics over HTTP, real redis-server."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from prometheus_client import generate_latest

from cluster.collector import Collector, CollectorConfig, exporter, parse_args
from cluster.metric_store import MetricStore, StoreConfig
from tests.cluster_fakes.fake_apiserver import FakeApiServer
from tests.cluster_fakes.redis_server import RedisServer


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def cluster():
    with FakeApiServer() as api:
        api.add_deployment("shop", "web", replicas=2)
        api.add_deployment("shop", "api", replicas=1)
        api.add_deployment("other", "noise", replicas=1)
        yield api


def feed_all(api: FakeApiServer, seconds: float = 15.0) -> None:
    for ns in ("shop", "other"):
        for pod in api.pods(ns):
            app = pod["metadata"]["labels"]["app"]
            cpu = {"web": 0.25, "api": 0.5, "noise": 1.0}[app]
            api.kubelet.feed(
                ns,
                pod["metadata"]["name"],
                seconds,
                cpu_cores=cpu,
                mem_mib=100 if app == "web" else 200,
                throttled_share=0.2 if app == "api" else 0.0,
                rps=20.0,
                latencies_s=[0.004, 0.02, 0.02, 0.07],
                own_latencies_s=[0.004, 0.004, 0.008, 0.008] if app == "web" else None,
            )


def make(api: FakeApiServer, redis_url: str, clock: Clock, buffer_size: int = 10_000) -> Collector:
    cfg = CollectorConfig(node="node-1", redis_url=redis_url, namespaces=("shop",), buffer_size=buffer_size)
    store = MetricStore(
        StoreConfig(url=redis_url, buffer_size=buffer_size, backoff_initial_s=1, backoff_max_s=4), clock=clock
    )
    return Collector(cfg, api_client=api.api_client(), store=store, clock=clock, sleep=lambda s: None)


def test_collects_per_deployment_into_redis(cluster: FakeApiServer, redis_server: RedisServer) -> None:
    redis_server.start()
    redis_server.flushall()
    clock = Clock()
    col = make(cluster, redis_server.url, clock)
    feed_all(cluster)
    first = col.collect_once()
    assert set(first) == {("shop", "web"), ("shop", "api")}  # "other" is not collected
    assert "rps" not in first[("shop", "web")]  # a counter needs a second look
    assert first[("shop", "web")]["cpu_cores"] == pytest.approx(0.5)  # the kubelet's usageNanoCores meanwhile
    clock.t += 15
    feed_all(cluster)
    col.collect_once()
    web = col.store.read_metrics("shop", "web")[0]
    assert web.source == "node-1"
    v = web.values
    assert v["pods"] == 2 and v["cpu_cores"] == pytest.approx(0.5) and v["mem_mib"] == pytest.approx(200)
    assert v["rps"] == pytest.approx(40) and v["errors_rps"] == 0 and v["window_s"] == 15
    # latencies 4, 20, 20, 70 ms -> buckets (0.0025,0.005], (0.01,0.025] x2, (0.05,0.1]
    # rank 0.5 sits halfway through (10 ms, 25 ms] -> 17.5 ms
    assert v["p50_ms"] == pytest.approx(17.5) and v["mean_ms"] == pytest.approx(28.5)
    assert 50 < v["p99_ms"] <= 100
    # own time (queue + work): half in (2.5, 5] ms, half in (5, 10] ms -> the median is the 5 ms edge
    assert v["own_p50_ms"] == pytest.approx(5.0) and v["own_mean_ms"] == pytest.approx(6.0)
    api_sample = col.store.read_metrics("shop", "api")[0].values
    assert "own_p50_ms" not in api_sample  # api does not export the own-time histogram
    assert api_sample["throttled"] == pytest.approx(0.2) and api_sample["cpu_cores"] == pytest.approx(0.5)
    assert col.scrape_errors == 0


def test_redis_restart_midway_loses_only_beyond_the_buffer(
    cluster: FakeApiServer, redis_server: RedisServer, caplog
) -> None:
    redis_server.start()
    redis_server.flushall()
    clock = Clock()
    col = make(cluster, redis_server.url, clock, buffer_size=4)
    for _ in range(2):
        feed_all(cluster)
        col.collect_once()
        clock.t += 15
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="cluster.collector"):
        for _ in range(3):  # 3 intervals x 2 Deployments = 6 samples into a buffer of 4
            feed_all(cluster)
            col.collect_once()
            clock.t += 15
    assert col.store.stats.buffered == 4 and col.store.stats.dropped == 2
    assert any("metric samples dropped: 2" in r.message for r in caplog.records)
    redis_server.start()  # empty: the first 4 samples died with the old server
    feed_all(cluster)
    col.collect_once()
    stats = col.store.stats
    assert stats.buffered == 0 and stats.reconnects == 1 and stats.sent == 4 + 4 + 2
    web = col.store.read_metrics("shop", "web", last=100)
    assert len(web) == 3  # the last 2 outage intervals (buffered) + the one after the restart
    exported = generate_latest(exporter(col)).decode()
    assert "aware_collector_samples_dropped_total 2.0" in exported


def test_api_server_down_skips_the_interval(cluster: FakeApiServer, redis_server: RedisServer) -> None:
    redis_server.start()
    clock = Clock()
    col = make(cluster, redis_server.url, clock)
    cluster.faults.down = True
    assert col.collect_once() == {}
    assert col.intervals_skipped == 1 and col.scrape_errors == 1
    cluster.faults.down = False
    feed_all(cluster)
    assert col.collect_once()


def test_pod_metrics_unreachable_counts_errors_and_leaves_rates_out(cluster, redis_server) -> None:
    redis_server.start()
    clock = Clock()
    col = make(cluster, redis_server.url, clock)

    def refuse(url: str, timeout: float) -> str:
        raise OSError(f"GET {url}: connection refused")

    col.fetch = refuse
    feed_all(cluster)
    col.collect_once()
    clock.t += 15
    feed_all(cluster)
    out = col.collect_once()
    assert "rps" not in out[("shop", "web")] and "cpu_cores" in out[("shop", "web")]
    assert col.scrape_errors == 6  # 3 pods x 2 intervals


class FakePrometheus:
    """Answers /api/v1/query with canned vectors chosen by a substring of the query."""

    def __init__(self, answers: dict[str, list[dict]]):
        self.answers, self.queries = answers, []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                q = parse_qs(urlsplit(self.path).query)["query"][0]
                outer.queries.append(q)
                result = next((v for k, v in outer.answers.items() if k in q), [])
                data = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


def test_prometheus_source(cluster: FakeApiServer, redis_server: RedisServer) -> None:
    redis_server.start()
    redis_server.flushall()
    pod = cluster.pods("shop", "api")[0]["metadata"]["name"]

    def vec(value: float, **labels: str) -> dict:
        return {"metric": {"namespace": "shop", "pod": pod, **labels}, "value": [0, str(value)]}

    prom = FakePrometheus(
        {
            "container_cpu_usage_seconds_total": [vec(0.4)],
            "container_memory_working_set_bytes": [vec(300 * 2**20)],
            "cfs_throttled": [vec(30)],
            "cfs_periods": [vec(150)],
            '=~"5.."': [vec(15)],
            "http_requests_total": [vec(300)],
            "_bucket": [vec(150, le="0.05"), vec(300, le="0.1"), vec(300, le="+Inf")],
            "_sum": [vec(15)],
            "_count": [vec(300)],
            "app_queue_depth": [vec(4)],
        }
    )
    try:
        cfg = CollectorConfig(
            source="prometheus", prometheus_url=prom.url, redis_url=redis_server.url, namespaces=("shop",)
        )
        col = Collector(cfg, api_client=cluster.api_client(), store=MetricStore(StoreConfig(url=redis_server.url)))
        out = col.collect_once()
        api = out[("shop", "api")]
        assert api["cpu_cores"] == 0.4 and api["mem_mib"] == 300 and api["throttled"] == 0.2
        assert api["rps"] == 20 and api["errors_rps"] == 1 and api["queue"] == 4
        assert api["p50_ms"] == pytest.approx(50) and api["p99_ms"] == pytest.approx(99) and api["mean_ms"] == 50
        assert "rps" not in out[("shop", "web")]  # Prometheus had no series for its pods
        assert any("[15s]" in q for q in prom.queries)
        assert col.store.read_metrics("shop", "api")[0].source == "prometheus"
    finally:
        prom.httpd.shutdown()
        prom.httpd.server_close()


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["--source", "kubelet", "--node", ""], "node"),
        (["--source", "prometheus"], "prometheus_url"),
        (["--node", "n", "--interval", "0"], "interval_s"),
        (["--node", "n", "--metrics-port", "70000"], "metrics_port"),
    ],
)
def test_cli_errors_name_the_field(argv, field, capsys, monkeypatch) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert f"error: {field}:" in capsys.readouterr().err


def test_main_runs_with_a_kubeconfig(cluster: FakeApiServer, redis_server: RedisServer, tmp_path, monkeypatch) -> None:
    """The command line as the DaemonSet runs it, with the client configured from a kubeconfig file."""
    from cluster.collector import main

    redis_server.start()
    redis_server.flushall()
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    password = tmp_path / "password"
    password.write_text("")
    feed_all(cluster)
    assert (
        main(
            [
                "--node",
                "node-1",
                "--redis-url",
                redis_server.url,
                "--namespaces",
                "shop",
                "--iterations",
                "1",
                "--exporter-port",
                "0",
                "--redis-password-file",
                str(password),
            ]
        )
        == 0
    )
    store = MetricStore(StoreConfig(url=redis_server.url))
    assert store.read_metrics("shop", "web")[0].values["pods"] == 2
    assert store.read_metrics("other", "noise") == []
