"""The metric collector: one per node (a DaemonSet), writing one sample per Deployment and interval to Redis.

Per pod on its node it reads
- CPU and memory from the kubelet Summary API, through the API server's node proxy;
- CFS throttling from cAdvisor's ``container_cpu_cfs_{throttled_,}periods_total`` (node proxy);
- request rate, errors, latency histogram and queue gauge from the pod's own ``/metrics`` (pod IP;
  port and path from the ``prometheus.io/port`` and ``prometheus.io/path`` annotations).
With ``--source prometheus`` it asks a Prometheus server the same questions in PromQL instead (run it
then as a single Deployment, not per node).

Pods are grouped into Deployments by their ReplicaSet owner, and each Deployment's sample is written
with ``MetricStore.append_metrics`` (source = node), which buffers when Redis is down. Dropped samples
are counted in the store's stats, logged, and exported on the collector's own ``/metrics``.

Run: ``python -m cluster.collector --node $NODE_NAME --redis-url redis://redis:6379/0``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cluster import prom_text
from cluster.api_calls import api_client_from_environment, call_api
from cluster.collector_math import PodWindow, aggregate, bucket_increase, counter_increase, deployment_of
from cluster.errors import ClusterError
from cluster.metric_store import MetricStore, StoreConfig

log = logging.getLogger("cluster.collector")

Fetch = Callable[[str, float], str]
"""(url, timeout_s) -> body text; raises OSError on failure (injectable for tests)."""


def http_get(url: str, timeout_s: float) -> str:
    """GET ``url`` (a pod IP or the Prometheus API) and return the body; OSError on any failure."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return resp.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise OSError(f"GET {url}: {exc}") from None


@dataclass(frozen=True)
class CollectorConfig:
    """What to collect, from where, and where to write it."""

    node: str = ""
    """Node whose pods this collector reads (the DaemonSet passes spec.nodeName); unused with source=prometheus."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Metric store, ``redis://host:port/db``."""
    redis_password: str | None = None
    """Redis password (from a mounted Secret)."""
    interval_s: float = 15.0
    """Collection period; equal to the controller's interval so one sample covers one control interval."""
    source: str = "kubelet"
    """``kubelet`` (Summary API, cAdvisor and pods' /metrics) or ``prometheus`` (PromQL)."""
    prometheus_url: str = ""
    """Prometheus HTTP API base URL, for source=prometheus."""
    namespaces: tuple[str, ...] = ()
    """Namespaces to collect; empty collects every namespace."""
    request_metric: str = "http_requests_total"
    """Counter of served requests in the pods' /metrics."""
    latency_metric: str = "http_request_duration_seconds"
    """Histogram of request latency, seconds (its _bucket, _sum and _count series), downstream calls included."""
    own_latency_metric: str = "app_service_duration_seconds"
    """Optional histogram of the time at the service itself (queue + own work, without downstream calls);
    the simulator's per-service latency. Without it the backend uses ``latency_metric`` per service too."""
    queue_metric: str = "app_queue_depth"
    """Gauge of requests waiting for a worker; optional (the backend estimates the queue without it)."""
    status_label: str = "code"
    """Label of the request counter holding the HTTP status; values 5xx count as errors."""
    metrics_port: int = 8080
    """Port of a pod's /metrics when it has no prometheus.io/port annotation."""
    scrape_timeout_s: float = 3.0
    """Timeout of one scrape or query."""
    buffer_size: int = 10_000
    """Samples buffered while Redis is unreachable; beyond it the oldest are dropped and counted."""

    def __post_init__(self) -> None:
        if self.source not in ("kubelet", "prometheus"):
            raise ValueError(f"source: expected 'kubelet' or 'prometheus', got {self.source!r}")
        if self.source == "kubelet" and not self.node:
            raise ValueError("node: required with source=kubelet (set --node or NODE_NAME)")
        if self.source == "prometheus" and not self.prometheus_url.startswith(("http://", "https://")):
            raise ValueError(f"prometheus_url: required with source=prometheus, got {self.prometheus_url!r}")
        for name in ("interval_s", "scrape_timeout_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number of seconds, got {value!r}")
        if not (isinstance(self.metrics_port, int) and 0 < self.metrics_port < 65536):
            raise ValueError(f"metrics_port: must be a TCP port, got {self.metrics_port!r}")
        for name in ("request_metric", "latency_metric", "own_latency_metric", "queue_metric", "status_label"):
            if not getattr(self, name):
                raise ValueError(f"{name}: must not be empty")


@dataclass
class _PodState:
    t: float
    cpu_ns: float | None = None
    periods: float | None = None
    throttled: float | None = None
    requests: float | None = None
    errors: float | None = None
    buckets: dict[float, float] | None = None
    lat_sum: float | None = None
    lat_count: float | None = None
    own_buckets: dict[float, float] | None = None
    own_sum: float | None = None
    own_count: float | None = None
    restarts: dict[str, int] = field(default_factory=dict)


@dataclass
class _PodInfo:
    namespace: str
    name: str
    uid: str
    deployment: str
    ip: str
    port: int
    path: str
    started: float | None
    restarts: dict[str, int]
    oom_containers: set[str]


class Collector:
    """One collection per call of ``collect_once``; keeps the previous counters per pod to difference them."""

    def __init__(
        self,
        config: CollectorConfig,
        *,
        api_client: Any = None,
        store: MetricStore | None = None,
        fetch: Fetch = http_get,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        from kubernetes import client

        self.config = config
        if api_client is None:
            api_client = api_client_from_environment()
        self.core_api = client.CoreV1Api(api_client)
        self.store = store or MetricStore(
            StoreConfig(url=config.redis_url, password=config.redis_password, buffer_size=config.buffer_size)
        )
        self.fetch, self.clock, self.wall_clock, self.sleep = fetch, clock, wall_clock, sleep
        self.state: dict[str, _PodState] = {}
        self.scrape_errors = 0
        """Failed reads (API server, kubelet, pod /metrics, Prometheus) since start."""
        self.intervals_skipped = 0
        """Intervals with no sample at all because the pod list could not be read."""
        self._last_dropped = 0

    # ---- pods ---------------------------------------------------------------------------------

    def _pods(self) -> list[_PodInfo]:
        cfg = self.config
        kwargs: dict[str, Any] = {"_request_timeout": cfg.scrape_timeout_s}
        if cfg.source == "kubelet":
            kwargs["field_selector"] = f"spec.nodeName={cfg.node}"
        pods = call_api(
            lambda: self.core_api.list_pod_for_all_namespaces(**kwargs),
            verb="list",
            resource="pods",
            namespace=None,
            max_attempts=3,
            backoff_s=0.5,
            max_backoff_s=5.0,
            sleep=self.sleep,
        )
        out = []
        for p in pods.items:
            meta, status = p.metadata, p.status
            if cfg.namespaces and meta.namespace not in cfg.namespaces:
                continue
            if status is None or status.phase != "Running" or not status.pod_ip:
                continue
            owner = next((o for o in (meta.owner_references or []) if o.controller), None)
            dep = deployment_of(
                meta.name, owner.kind if owner else None, owner.name if owner else None, meta.labels or {}
            )
            if dep is None:
                continue
            ann = meta.annotations or {}
            try:
                port = int(ann.get("prometheus.io/port", cfg.metrics_port))
            except ValueError:
                port = cfg.metrics_port
            restarts, ooms = {}, set()
            for cs in status.container_statuses or []:
                restarts[cs.name] = cs.restart_count or 0
                term = cs.last_state.terminated if cs.last_state else None
                if term is not None and term.reason == "OOMKilled":
                    ooms.add(cs.name)
            started = status.start_time.timestamp() if isinstance(status.start_time, datetime) else None
            out.append(
                _PodInfo(
                    meta.namespace,
                    meta.name,
                    meta.uid or meta.name,
                    dep,
                    status.pod_ip,
                    port,
                    ann.get("prometheus.io/path", "/metrics"),
                    started,
                    restarts,
                    ooms,
                )
            )
        return out

    # ---- kubelet source -------------------------------------------------------------------------

    def _node_proxy(self, path: str) -> str:
        node = self.config.node

        def attempt() -> str:
            resp = self.core_api.connect_get_node_proxy_with_path(
                node, path, _preload_content=False, _request_timeout=self.config.scrape_timeout_s
            )
            return resp.data.decode("utf-8", errors="replace")

        return call_api(
            attempt,
            verb="get",
            resource="nodes/proxy",
            namespace=None,
            max_attempts=2,
            backoff_s=0.5,
            max_backoff_s=2.0,
            sleep=self.sleep,
        )

    def _kubelet_windows(self, pods: list[_PodInfo], now: float) -> list[PodWindow]:
        cfg = self.config
        summary: dict[tuple[str, str], dict[str, Any]] = {}
        try:
            for p in json.loads(self._node_proxy("stats/summary")).get("pods", []):
                ref = p.get("podRef", {})
                summary[(ref.get("namespace"), ref.get("name"))] = p
        except (ClusterError, ValueError) as exc:
            self._error(f"kubelet summary on {cfg.node}: {exc}")
        cfs: dict[tuple[str, str], list[float]] = {}
        try:
            for s in prom_text.parse(self._node_proxy("metrics/cadvisor")):
                if s.name not in ("container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_periods_total"):
                    continue
                if s.labels.get("container") in (None, "", "POD"):
                    continue  # pod-level and pause-container series would count twice
                slot = cfs.setdefault((s.labels.get("namespace", ""), s.labels.get("pod", "")), [0.0, 0.0])
                slot[0 if s.name == "container_cpu_cfs_periods_total" else 1] += s.value
        except (ClusterError, ValueError) as exc:
            self._error(f"cadvisor on {cfg.node}: {exc}")

        windows = []
        wall = self.wall_clock()
        for pod in pods:
            prev = self.state.get(pod.uid)
            fresh = prev is None and pod.started is not None and wall - pod.started <= 2 * cfg.interval_s
            if prev is None:
                # A pod started within the last two intervals counts from zero; an older one needs a second look.
                prev = _PodState(t=now - (wall - pod.started) if fresh and pod.started else now)
                if fresh:
                    prev.cpu_ns = prev.periods = prev.throttled = prev.requests = prev.errors = 0.0
                    prev.lat_sum = prev.lat_count = prev.own_sum = prev.own_count = 0.0
                    prev.buckets, prev.own_buckets = {}, {}
                    prev.restarts = {c: 0 for c in pod.restarts}
            w = PodWindow(pod.namespace, pod.deployment, window_s=now - prev.t if now > prev.t else cfg.interval_s)
            cur = _PodState(t=now, restarts=dict(pod.restarts))
            entry = summary.get((pod.namespace, pod.name))
            if entry is not None:
                cpu = entry.get("cpu") or {}
                mem = entry.get("memory") or {}
                if "usageCoreNanoSeconds" in cpu:
                    cur.cpu_ns = float(cpu["usageCoreNanoSeconds"])
                    inc = counter_increase(prev.cpu_ns, cur.cpu_ns)
                    if inc is not None and now > prev.t:
                        w.cpu_cores = inc / 1e9 / (now - prev.t)
                if w.cpu_cores is None and "usageNanoCores" in cpu:
                    w.cpu_cores = float(cpu["usageNanoCores"]) / 1e9  # the kubelet's own recent average
                if "workingSetBytes" in mem:
                    w.mem_bytes = float(mem["workingSetBytes"])
            if (pod.namespace, pod.name) in cfs:
                cur.periods, cur.throttled = cfs[(pod.namespace, pod.name)]
                w.cfs_periods = counter_increase(prev.periods, cur.periods)
                w.cfs_throttled = counter_increase(prev.throttled, cur.throttled)
            self._scrape_app(pod, prev, cur, w)
            w.oom_kills = float(
                sum(max(0, n - prev.restarts.get(c, n)) for c, n in pod.restarts.items() if c in pod.oom_containers)
            )
            self.state[pod.uid] = cur
            windows.append(w)
        return windows

    def _scrape_app(self, pod: _PodInfo, prev: _PodState, cur: _PodState, w: PodWindow) -> None:
        cfg = self.config
        url = f"http://{pod.ip}:{pod.port}{pod.path}"
        try:
            samples = prom_text.parse(self.fetch(url, cfg.scrape_timeout_s))
        except (OSError, ValueError) as exc:
            self._error(f"pod {pod.namespace}/{pod.name} /metrics: {exc}")
            return
        cur.requests = prom_text.total(samples, cfg.request_metric)
        cur.errors = prom_text.total(
            samples, cfg.request_metric, lambda labels: str(labels.get(cfg.status_label, "")).startswith("5")
        )
        cur.buckets = prom_text.buckets(samples, cfg.latency_metric)
        cur.lat_sum = prom_text.total(samples, cfg.latency_metric + "_sum")
        cur.lat_count = prom_text.total(samples, cfg.latency_metric + "_count")
        cur.own_buckets = prom_text.buckets(samples, cfg.own_latency_metric)
        cur.own_sum = prom_text.total(samples, cfg.own_latency_metric + "_sum")
        cur.own_count = prom_text.total(samples, cfg.own_latency_metric + "_count")
        w.queue = prom_text.total(samples, cfg.queue_metric)
        if cur.requests is not None:
            w.requests = counter_increase(prev.requests, cur.requests)
            w.errors = counter_increase(prev.errors, cur.errors or 0.0) if prev.errors is not None else None
            if w.requests is not None and w.errors is None:
                w.errors = 0.0
        if cur.buckets is not None:
            w.latency_buckets = bucket_increase(prev.buckets, cur.buckets)
            w.latency_sum_s = counter_increase(prev.lat_sum, cur.lat_sum or 0.0)
            w.latency_count = counter_increase(prev.lat_count, cur.lat_count or 0.0)
        if cur.own_buckets is not None:
            w.own_buckets = bucket_increase(prev.own_buckets, cur.own_buckets)
            w.own_sum_s = counter_increase(prev.own_sum, cur.own_sum or 0.0)
            w.own_count = counter_increase(prev.own_count, cur.own_count or 0.0)

    # ---- prometheus source -------------------------------------------------------------------

    def _promql(self, query: str) -> dict[tuple[str, ...], float]:
        url = f"{self.config.prometheus_url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
        body = json.loads(self.fetch(url, self.config.scrape_timeout_s))
        if body.get("status") != "success":
            raise ValueError(f"prometheus: {body.get('error', 'query failed')}")
        out = {}
        for r in body["data"]["result"]:
            m = r["metric"]
            key = (m.get("namespace", ""), m.get("pod", ""), m.get("le", ""))
            out[key] = float(r["value"][1])
        return out

    def _prometheus_windows(self, pods: list[_PodInfo]) -> list[PodWindow]:
        cfg = self.config
        r = f"[{max(1, round(cfg.interval_s))}s]"
        sel = '{container!="",container!="POD"}'
        by = "sum by (namespace, pod)"
        queries = {
            "cpu": f"{by} (rate(container_cpu_usage_seconds_total{sel}{r}))",
            "mem": f"{by} (container_memory_working_set_bytes{sel})",
            "periods": f"{by} (increase(container_cpu_cfs_periods_total{sel}{r}))",
            "throttled": f"{by} (increase(container_cpu_cfs_throttled_periods_total{sel}{r}))",
            "requests": f"{by} (increase({cfg.request_metric}{r}))",
            "errors": f'{by} (increase({cfg.request_metric}{{{cfg.status_label}=~"5.."}}{r}))',
            "buckets": f"sum by (namespace, pod, le) (increase({cfg.latency_metric}_bucket{r}))",
            "lat_sum": f"{by} (increase({cfg.latency_metric}_sum{r}))",
            "lat_count": f"{by} (increase({cfg.latency_metric}_count{r}))",
            "own_buckets": f"sum by (namespace, pod, le) (increase({cfg.own_latency_metric}_bucket{r}))",
            "own_sum": f"{by} (increase({cfg.own_latency_metric}_sum{r}))",
            "own_count": f"{by} (increase({cfg.own_latency_metric}_count{r}))",
            "queue": f"{by} ({cfg.queue_metric})",
        }
        results: dict[str, dict[tuple[str, ...], float]] = {}
        for name, q in queries.items():
            try:
                results[name] = self._promql(q)
            except (OSError, ValueError, KeyError) as exc:
                self._error(f"promql {name}: {exc}")
                results[name] = {}
        windows = []
        for pod in pods:
            key = (pod.namespace, pod.name, "")
            w = PodWindow(pod.namespace, pod.deployment, window_s=cfg.interval_s)
            w.cpu_cores = results["cpu"].get(key)
            w.mem_bytes = results["mem"].get(key)
            w.cfs_periods, w.cfs_throttled = results["periods"].get(key), results["throttled"].get(key)
            w.requests = results["requests"].get(key)
            if w.requests is not None:
                w.errors = results["errors"].get(key, 0.0)
            bks = _pod_buckets(results["buckets"], key)
            if bks:
                w.latency_buckets = bks
                w.latency_sum_s = results["lat_sum"].get(key)
                w.latency_count = results["lat_count"].get(key)
            own = _pod_buckets(results["own_buckets"], key)
            if own:
                w.own_buckets = own
                w.own_sum_s = results["own_sum"].get(key)
                w.own_count = results["own_count"].get(key)
            w.queue = results["queue"].get(key)
            prev = self.state.get(pod.uid)
            if prev is not None:
                w.oom_kills = float(
                    sum(max(0, n - prev.restarts.get(c, n)) for c, n in pod.restarts.items() if c in pod.oom_containers)
                )
            self.state[pod.uid] = _PodState(t=0.0, restarts=dict(pod.restarts))
            windows.append(w)
        return windows

    # ---- one interval ---------------------------------------------------------------------------

    def _error(self, message: str) -> None:
        self.scrape_errors += 1
        log.warning("%s", message)

    def collect_once(self) -> dict[tuple[str, str], dict[str, float]]:
        """Read every pod once, write one sample per Deployment; returns what was written (or buffered)."""
        now = self.clock()
        try:
            pods = self._pods()
        except ClusterError as exc:
            self._error(f"pod list: {exc}")
            self.intervals_skipped += 1
            self.store.flush()
            return {}
        if self.config.source == "kubelet":
            windows = self._kubelet_windows(pods, now)
        else:
            windows = self._prometheus_windows(pods)
        live = {p.uid for p in pods}
        for uid in [u for u in self.state if u not in live]:
            del self.state[uid]
        samples = aggregate(windows)
        ts = self.wall_clock()
        source = self.config.node or "prometheus"
        for (ns, dep), sample in sorted(samples.items()):
            self.store.append_metrics(ns, dep, sample, ts=ts, source=source)
        self.store.flush()
        stats = self.store.stats
        if stats.dropped > self._last_dropped:
            log.warning(
                "metric samples dropped: %d in this interval, %d in total (redis unreachable, buffer full)",
                stats.dropped - self._last_dropped,
                stats.dropped,
            )
            self._last_dropped = stats.dropped
        return samples

    def run(self, iterations: int = 0, max_seconds: float = 0.0) -> None:
        """Collect every ``interval_s``; ``iterations``/``max_seconds`` > 0 bound the loop (0: until stopped)."""
        start = self.clock()
        next_t = start
        count = 0
        while True:
            self.collect_once()
            count += 1
            if iterations and count >= iterations:
                return
            next_t += self.config.interval_s
            if max_seconds and next_t - start > max_seconds:
                return
            self.sleep(max(0.0, next_t - self.clock()))


def _pod_buckets(vector: dict[tuple[str, ...], float], key: tuple[str, ...]) -> dict[float, float]:
    """One pod's ``le`` -> count from a PromQL vector keyed by (namespace, pod, le)."""
    return {(math.inf if k[2] in ("+Inf", "Inf") else float(k[2])): v for k, v in vector.items() if k[:2] == key[:2]}


def exporter(collector: Collector) -> Any:
    """A prometheus_client registry exporting the collector's own counters (written, dropped, errors)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    class _Stats:
        def collect(self) -> Any:
            s = collector.store.stats
            yield CounterMetricFamily("aware_collector_samples_sent", "Samples Redis acknowledged", value=s.sent)
            yield CounterMetricFamily(
                "aware_collector_samples_dropped",
                "Samples dropped because the buffer was full while Redis was unreachable",
                value=s.dropped,
            )
            yield GaugeMetricFamily("aware_collector_samples_buffered", "Samples waiting for Redis", value=s.buffered)
            yield CounterMetricFamily("aware_collector_redis_reconnects", "Reconnections to Redis", value=s.reconnects)
            yield CounterMetricFamily("aware_collector_scrape_errors", "Failed reads", value=collector.scrape_errors)

    registry = CollectorRegistry()
    registry.register(_Stats())
    return registry


def parse_args(argv: Sequence[str] | None) -> tuple[CollectorConfig, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m cluster.collector", description=__doc__.splitlines()[0])
    p.add_argument("--node", default=os.environ.get("NODE_NAME", ""), help="node name (default: $NODE_NAME)")
    p.add_argument("--source", choices=("kubelet", "prometheus"), default="kubelet")
    p.add_argument("--prometheus-url", default="")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--redis-password-file", default="", help="file holding the Redis password (a mounted Secret)")
    p.add_argument("--interval", type=float, default=15.0, help="seconds between collections")
    p.add_argument("--namespaces", default="", help="comma-separated namespaces (default: all)")
    p.add_argument("--request-metric", default="http_requests_total")
    p.add_argument("--latency-metric", default="http_request_duration_seconds")
    p.add_argument("--own-latency-metric", default="app_service_duration_seconds")
    p.add_argument("--queue-metric", default="app_queue_depth")
    p.add_argument("--status-label", default="code")
    p.add_argument("--metrics-port", type=int, default=8080, help="pods' /metrics port without an annotation")
    p.add_argument("--buffer-size", type=int, default=10_000)
    p.add_argument("--exporter-port", type=int, default=9102, help="port of the collector's own /metrics (0: off)")
    p.add_argument("--iterations", type=int, default=0, help="stop after this many collections (0: run until killed)")
    a = p.parse_args(argv)
    password = os.environ.get("REDIS_PASSWORD") or None
    if a.redis_password_file:
        try:
            with open(a.redis_password_file) as fh:
                password = fh.read().strip() or None
        except OSError as exc:
            p.error(f"--redis-password-file: {exc}")
    try:
        cfg = CollectorConfig(
            node=a.node,
            redis_url=a.redis_url,
            redis_password=password,
            interval_s=a.interval,
            source=a.source,
            prometheus_url=a.prometheus_url,
            namespaces=tuple(n for n in a.namespaces.split(",") if n),
            request_metric=a.request_metric,
            latency_metric=a.latency_metric,
            own_latency_metric=a.own_latency_metric,
            queue_metric=a.queue_metric,
            status_label=a.status_label,
            metrics_port=a.metrics_port,
            buffer_size=a.buffer_size,
        )
    except ValueError as exc:
        p.error(str(exc))
    return cfg, a


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg, args = parse_args(argv)
    try:
        collector = Collector(cfg)
    except ClusterError as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 2
    if args.exporter_port:
        from prometheus_client import start_http_server

        start_http_server(args.exporter_port, registry=exporter(collector))
    try:
        collector.run(iterations=args.iterations)
    except KeyboardInterrupt:
        pass
    finally:
        collector.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
