"""A fake kubelet and fake app pods: counters a test advances, rendered as the kubelet and the app render them.

- ``summary`` is the kubelet Summary API (``/stats/summary``) JSON;
- ``cadvisor`` is cAdvisor's Prometheus text with the CFS period counters;
- ``pod_metrics`` is the app's own Prometheus text: a request counter and a latency histogram.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PERIODS_PER_S = 10  # the CFS period is 100 ms


@dataclass
class PodCounters:
    cpu_core_ns: float = 0.0
    usage_nano_cores: float = 0.0
    working_set_bytes: float = 0.0
    cfs_periods: float = 0.0
    cfs_throttled: float = 0.0
    requests: float = 0.0
    latency_sum_s: float = 0.0
    buckets: list[float] = field(default_factory=lambda: [0.0] * (len(BUCKETS) + 1))
    own_sum_s: float = 0.0
    own_buckets: list[float] | None = None


class FakeKubelet:
    """Per-pod counters keyed by (namespace, pod name)."""

    def __init__(
        self, request_metric: str = "http_requests_total", latency_metric: str = "http_request_duration_seconds"
    ):
        self.pods: dict[tuple[str, str], PodCounters] = {}
        self.request_metric = request_metric
        self.latency_metric = latency_metric

    def feed(
        self,
        namespace: str,
        pod: str,
        seconds: float,
        cpu_cores: float,
        mem_mib: float,
        throttled_share: float = 0.0,
        rps: float = 0.0,
        latencies_s: list[float] | None = None,
        own_latencies_s: list[float] | None = None,
    ) -> None:
        """Advance one pod's counters by ``seconds`` of the given use; ``latencies_s`` is spread over the requests."""
        c = self.pods.setdefault((namespace, pod), PodCounters())
        c.cpu_core_ns += cpu_cores * seconds * 1e9
        c.usage_nano_cores = cpu_cores * 1e9
        c.working_set_bytes = mem_mib * 1024 * 1024
        periods = seconds * PERIODS_PER_S
        c.cfs_periods += periods
        c.cfs_throttled += throttled_share * periods
        n = rps * seconds
        c.requests += n
        lat = latencies_s or []
        for x in lat:
            weight = n / len(lat)
            c.buckets[bisect.bisect_left(BUCKETS, x)] += weight
            c.latency_sum_s += weight * x
        if own_latencies_s:
            if c.own_buckets is None:
                c.own_buckets = [0.0] * (len(BUCKETS) + 1)
            for x in own_latencies_s:
                weight = n / len(own_latencies_s)
                c.own_buckets[bisect.bisect_left(BUCKETS, x)] += weight
                c.own_sum_s += weight * x

    def summary(self, node: str, pods: list[dict[str, Any]]) -> dict[str, Any]:
        out = []
        for p in pods:
            meta = p["metadata"]
            c = self.pods.get((meta["namespace"], meta["name"]))
            if c is None:
                continue
            ctr = p["spec"]["containers"][0]["name"]
            cpu = {
                "time": "2026-01-01T00:00:00Z",
                "usageNanoCores": int(c.usage_nano_cores),
                "usageCoreNanoSeconds": int(c.cpu_core_ns),
            }
            mem = {
                "time": "2026-01-01T00:00:00Z",
                "workingSetBytes": int(c.working_set_bytes),
                "usageBytes": int(c.working_set_bytes * 1.1),
            }
            out.append(
                {
                    "podRef": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
                    "startTime": "2026-01-01T00:00:00Z",
                    "cpu": cpu,
                    "memory": mem,
                    "containers": [{"name": ctr, "cpu": cpu, "memory": mem}],
                }
            )
        return {"node": {"nodeName": node, "cpu": {}, "memory": {}}, "pods": out}

    def cadvisor(self, pods: list[dict[str, Any]]) -> str:
        lines = [
            "# HELP container_cpu_cfs_periods_total Number of elapsed enforcement period intervals.",
            "# TYPE container_cpu_cfs_periods_total counter",
            "# HELP container_cpu_cfs_throttled_periods_total Number of throttled period intervals.",
            "# TYPE container_cpu_cfs_throttled_periods_total counter",
        ]
        for p in pods:
            meta = p["metadata"]
            c = self.pods.get((meta["namespace"], meta["name"]))
            if c is None:
                continue
            ctr = p["spec"]["containers"][0]["name"]
            labels = (
                f'container="{ctr}",image="sampleapp",name="k8s_{ctr}",namespace="{meta["namespace"]}",'
                f'pod="{meta["name"]}"'
            )
            lines.append(f"container_cpu_cfs_periods_total{{{labels}}} {c.cfs_periods:.0f} 1767225600000")
            lines.append(f"container_cpu_cfs_throttled_periods_total{{{labels}}} {c.cfs_throttled:.0f} 1767225600000")
            # A pod-level (pause) line without a container label, as cAdvisor also emits: must be ignored.
            lines.append(f'container_cpu_cfs_periods_total{{namespace="{meta["namespace"]}",pod="{meta["name"]}"}} 1')
        return "\n".join(lines) + "\n"

    def pod_metrics(self, pod: dict[str, Any]) -> str:
        meta = pod["metadata"]
        c = self.pods.get((meta["namespace"], meta["name"]), PodCounters())
        m, h = self.request_metric, self.latency_metric
        lines = [
            f"# TYPE {m} counter",
            f'{m}{{code="200",method="GET"}} {c.requests}',
            f'{m}{{code="500",method="GET"}} 0',
            f"# TYPE {h} histogram",
        ]
        cum = 0.0
        for le, n in zip((*BUCKETS, float("inf")), c.buckets):
            cum += n
            le_text = "+Inf" if le == float("inf") else repr(le)
            lines.append(f'{h}_bucket{{le="{le_text}"}} {cum}')
        lines += [f"{h}_sum {c.latency_sum_s}", f"{h}_count {cum}"]
        if c.own_buckets is not None:
            o = "app_service_duration_seconds"
            lines.append(f"# TYPE {o} histogram")
            cum = 0.0
            for le, n in zip((*BUCKETS, float("inf")), c.own_buckets):
                cum += n
                le_text = "+Inf" if le == float("inf") else repr(le)
                lines.append(f'{o}_bucket{{le="{le_text}"}} {cum}')
            lines += [f"{o}_sum {c.own_sum_s}", f"{o}_count {cum}"]
        return "\n".join(lines) + "\n"
