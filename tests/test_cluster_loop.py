"""A control loop on the Kubernetes side: collector -> Redis -> backend.observe -> policy -> guard -> backend.apply.

The policy is a plain HPA rule written here (the real controller lives elsewhere); what is tested
is that the collector's samples, the backend's metrics and its patches fit together.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from cluster.backend_config import KubernetesBackendConfig
from cluster.collector import Collector, CollectorConfig
from cluster.errors import StaleMetrics
from cluster.kubernetes_backend import KubernetesBackend
from cluster.metric_store import MetricStore, StoreConfig
from envs.guard import GuardConfig, guard
from envs.metrics import ScalingDecision, ServiceMetrics
from tests.cluster_fakes.fake_apiserver import FakeApiServer
from tests.cluster_fakes.two_services import APP, NS


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def hpa(m: ServiceMetrics, target: float = 0.5) -> ScalingDecision:
    want = ScalingDecision.of(m)
    want.replicas = np.ceil(m.replicas * m.cpu_utilization / target).astype(np.int64)
    return want


def test_loop_scales_out_a_busy_service_and_falls_back_when_metrics_stop(redis_server) -> None:
    redis_server.start()
    redis_server.flushall()
    clock = Clock()
    with FakeApiServer() as api:
        api.add_deployment(NS, "front", replicas=2, cpu="500m", memory="256Mi")
        api.add_deployment(NS, "back", replicas=1, cpu="1", memory="512Mi")
        store = MetricStore(StoreConfig(url=redis_server.url))
        collector = Collector(
            CollectorConfig(node="node-1", redis_url=redis_server.url, namespaces=(NS,)),
            api_client=api.api_client(),
            store=store,
            clock=clock,
            sleep=clock.sleep,
        )
        backend = KubernetesBackend(
            APP,
            KubernetesBackendConfig(namespace=NS, allowed_namespaces=(NS,)),
            api_client=api.api_client(),
            store=store,
            clock=clock,
            sleep=clock.sleep,
        )

        def run_interval(front_cpu: float) -> None:
            for pod in api.pods(NS):
                busy = front_cpu if pod["metadata"]["labels"]["app"] == "front" else 0.2
                api.kubelet.feed(
                    NS, pod["metadata"]["name"], 15.0, cpu_cores=busy, mem_mib=150, rps=50.0, latencies_s=[0.01, 0.03]
                )
            collector.collect_once()
            backend.advance(15.0)

        run_interval(0.45)
        with pytest.raises(StaleMetrics) as first:  # the first interval has no rates yet
            backend.observe()
        assert "front" in first.value.services
        run_interval(0.45)  # front at 90 % of its 0.5-core limit on each of 2 pods
        m = backend.observe()
        assert m.cpu_utilization[0] == pytest.approx(0.9)
        safe = guard(hpa(m), ScalingDecision.of(m), m.mem_usage, APP, GuardConfig()).decision
        backend.apply(safe)
        scale = api.patches("/scale")
        assert [r.body["spec"] for r in scale] == [{"replicas": 4}]  # ceil(2 * 0.9 / 0.5)
        assert len(api.pods(NS, "front")) == 4
        # The collector is gone: after the staleness limit the backend reports stale metrics, not zeros.
        store.wall_clock = lambda: time.time() + 60
        with pytest.raises(StaleMetrics) as late:
            backend.observe()
        assert set(late.value.services) == {"front", "back"}
