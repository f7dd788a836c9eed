"""KubernetesBackend driven through the official client against the fake API server, with a real redis-server."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cluster.backend_config import MANAGED_LABEL, RESOURCES_ANNOTATION, KubernetesBackendConfig
from cluster.errors import ApiUnavailable, NotManaged, RbacDenied, StaleMetrics
from cluster.kubernetes_backend import KubernetesBackend
from cluster.loadgen_control import LoadInstruction, loadgen_key
from cluster.metric_store import MetricStore, StoreConfig
from envs.backend import Backend
from envs.errors import ConfigError
from envs.metrics import ScalingDecision
from tests.cluster_fakes.fake_apiserver import FakeApiServer
from tests.cluster_fakes.redis_server import RedisServer
from tests.cluster_fakes.two_services import APP, NS


class Clock:
    def __init__(self) -> None:
        self.t = 500.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


@pytest.fixture
def api():
    with FakeApiServer() as server:
        server.add_deployment(NS, "front", replicas=2, cpu="500m", memory="256Mi")
        server.add_deployment(NS, "back", replicas=1, cpu="1", memory="512Mi")
        yield server


@pytest.fixture
def store(redis_server: RedisServer):
    redis_server.start()
    redis_server.flushall()
    s = MetricStore(StoreConfig(url=redis_server.url))
    yield s
    s.close()


def make_backend(api: FakeApiServer, store: MetricStore, clock: Clock | None = None, **overrides) -> KubernetesBackend:
    clock = clock or Clock()
    cfg = KubernetesBackendConfig(
        **{"namespace": NS, "allowed_namespaces": (NS,), "staleness_s": 30.0, "backoff_s": 0.25, **overrides}
    )
    return KubernetesBackend(APP, cfg, api_client=api.api_client(), store=store, clock=clock, sleep=clock.sleep)


def write_samples(store: MetricStore, ts_offset: float = 0.0) -> None:
    import time

    now = time.time() + ts_offset
    # front on two nodes (one pod each); back on one node.
    store.append_metrics(
        NS,
        "front",
        {
            "window_s": 15,
            "pods": 1,
            "cpu_cores": 0.2,
            "mem_mib": 100,
            "rps": 30,
            "errors_rps": 1,
            "p50_ms": 10,
            "p95_ms": 40,
            "p99_ms": 80,
            "mean_ms": 15,
            "throttled": 0.1,
        },
        ts=now,
        source="node-1",
    )
    store.append_metrics(
        NS,
        "front",
        {
            "window_s": 15,
            "pods": 1,
            "cpu_cores": 0.4,
            "mem_mib": 140,
            "rps": 10,
            "errors_rps": 0,
            "p50_ms": 30,
            "p95_ms": 60,
            "p99_ms": 120,
            "mean_ms": 35,
            "throttled": 0.3,
        },
        ts=now,
        source="node-2",
    )
    store.append_metrics(
        NS,
        "back",
        {
            "window_s": 15,
            "pods": 1,
            "cpu_cores": 0.5,
            "mem_mib": 300,
            "rps": 40,
            "p50_ms": 5,
            "p95_ms": 9,
            "p99_ms": 12,
            "own_p50_ms": 2,
            "own_p95_ms": 4,
            "own_p99_ms": 6,
            "queue": 3,
            "oom_kills": 1,
        },
        ts=now,
        source="node-1",
    )


def test_is_a_backend(api, store) -> None:
    assert isinstance(make_backend(api, store), Backend)


def test_observe_merges_nodes_and_reads_deployments(api, store) -> None:
    write_samples(store)
    api.set_pods_ready(NS, True)
    m = make_backend(api, store).observe()
    assert m.replicas.tolist() == [2, 1] and m.ready_replicas.tolist() == [2, 1]
    assert m.pending_replicas.tolist() == [0, 0]
    assert m.cpu_limit.tolist() == [0.5, 1.0] and m.mem_limit.tolist() == [256, 512]
    assert m.cpu_usage == pytest.approx([0.6, 0.5])
    assert m.mem_usage == pytest.approx([120, 300])  # mean per pod
    assert m.request_rate == pytest.approx([40, 40])
    assert m.p99_ms[0] == pytest.approx((80 * 30 + 120 * 10) / 40)  # rps-weighted over nodes
    assert m.throttled == pytest.approx([0.2, 0.0])
    assert m.queue[1] == 3 and m.queue[0] == pytest.approx(40 * ((15 * 30 + 35 * 10) / 40) / 1000)  # Little's law
    assert m.dropped == pytest.approx([15, 0]) and m.oom_kills.tolist() == [0, 1]
    assert m.external_rps == 40 and m.e2e_p99_ms == m.p99_ms[0] and m.dropped_total == 15
    # back exports its own time (without downstream calls): that is its per-service latency, as in the simulator
    assert (m.p50_ms[1], m.p95_ms[1], m.p99_ms[1]) == (2, 4, 6)


def test_observe_reports_stale_or_missing_metrics(api, store, redis_server) -> None:
    backend = make_backend(api, store)
    with pytest.raises(StaleMetrics, match="front, back") as info:
        backend.observe()
    assert info.value.services == ("front", "back")
    write_samples(store, ts_offset=-60)  # older than staleness_s=30
    with pytest.raises(StaleMetrics, match="no metrics newer than 30s"):
        backend.observe()
    write_samples(store)
    backend.observe()
    redis_server.stop()
    try:
        with pytest.raises(StaleMetrics, match="metric store unavailable"):
            backend.observe()
    finally:
        redis_server.start()


def test_apply_replicas_through_scale_subresource(api, store) -> None:
    backend = make_backend(api, store)
    backend.apply(ScalingDecision(np.array([4, 1]), np.array([0.5, 1.0]), np.array([256.0, 512.0])))
    patches = api.patches()
    assert [(p.path, p.content_type) for p in patches] == [
        (f"/apis/apps/v1/namespaces/{NS}/deployments/front/scale", "application/merge-patch+json")
    ]
    body = patches[0].body
    assert body["spec"] == {"replicas": 4} and body["metadata"]["resourceVersion"]
    assert patches[0].query["fieldManager"] == "aware-ray"
    assert api.deployment(NS, "front")["spec"]["replicas"] == 4 and len(api.pods(NS, "front")) == 4


def test_apply_resizes_pods_in_place_and_keeps_the_deployment_in_step(api, store) -> None:
    backend = make_backend(api, store)
    template_before = api.deployment(NS, "back")["spec"]["template"]
    pods_before = {p["metadata"]["name"] for p in api.pods(NS, "back")}
    backend.apply(ScalingDecision(np.array([2, 1]), np.array([0.5, 1.5]), np.array([256.0, 768.0])))
    ann = [p for p in api.patches("/deployments/back")]
    assert len(ann) == 1 and ann[0].content_type == "application/merge-patch+json"
    assert json.loads(ann[0].body["metadata"]["annotations"][RESOURCES_ANNOTATION]) == {
        "container": "back",
        "cpu": "1500m",
        "memory": "768Mi",
    }
    resizes = api.patches("/resize")
    assert len(resizes) == 1 and resizes[0].content_type == "application/strategic-merge-patch+json"
    assert resizes[0].body["spec"] == {
        "containers": [
            {
                "name": "back",
                "resources": {
                    "limits": {"cpu": "1500m", "memory": "768Mi"},
                    "requests": {"cpu": "1500m", "memory": "768Mi"},
                },
            }
        ]
    }
    dep = api.deployment(NS, "back")
    assert dep["spec"]["template"] == template_before  # no rolling restart
    pods = api.pods(NS, "back")
    assert {p["metadata"]["name"] for p in pods} == pods_before
    assert pods[0]["status"]["containerStatuses"][0]["resources"]["limits"] == {"cpu": "1500m", "memory": "768Mi"}
    # A pod started later from the old template is brought in line on the next apply.
    backend.apply(ScalingDecision(np.array([2, 2]), np.array([0.5, 1.5]), np.array([256.0, 768.0])))
    new_resizes = api.patches("/resize")[1:]
    assert len(new_resizes) == 1 and new_resizes[0].path.split("/")[-2] not in pods_before
    assert all(p["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "1500m" for p in api.pods(NS, "back"))
    assert backend.observe is not None and backend._limits(backend._read_deployment("back")) == (1.5, 768.0)


def test_apply_template_mode_patches_the_pod_template(api, store) -> None:
    backend = make_backend(api, store, vertical="template")
    backend.apply(ScalingDecision(np.array([2, 1]), np.array([0.25, 1.0]), np.array([256.0, 512.0])))
    patches = api.patches()
    assert len(patches) == 1 and patches[0].content_type == "application/strategic-merge-patch+json"
    assert patches[0].body["spec"]["template"]["spec"]["containers"] == [
        {
            "name": "front",
            "resources": {"limits": {"cpu": "250m", "memory": "256Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
        }
    ]
    assert not api.patches("/resize")
    assert all(p["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "250m" for p in api.pods(NS, "front"))


def test_unchanged_decision_sends_nothing(api, store) -> None:
    backend = make_backend(api, store)
    backend.apply(ScalingDecision(np.array([2, 1]), np.array([0.5, 1.0]), np.array([256.0, 512.0])))
    assert api.patches() == []
    backend.apply(ScalingDecision(np.array([2, 1]), np.array([0.5, 1.25]), np.array([256.0, 512.0])))
    assert len(api.patches()) == 2  # annotation + one resize
    api.requests.clear()
    backend.apply(ScalingDecision(np.array([2, 1]), np.array([0.5, 1.25]), np.array([256.0, 512.0])))
    assert api.patches() == []


@pytest.mark.parametrize("kind", ["hpa", "vpa", "label"])
def test_refuses_workloads_another_autoscaler_owns(api, store, kind: str) -> None:
    if kind == "hpa":
        api.add_hpa(NS, "front-hpa", "front")
        expect = "HorizontalPodAutoscaler 'front-hpa' also scales it"
    elif kind == "vpa":
        api.add_vpa(NS, "back-vpa", "back", mode="Auto")
        expect = "VerticalPodAutoscaler 'back-vpa'"
    else:
        with api.lock:
            del api.objects[("deployments", NS, "back")]["metadata"]["labels"][MANAGED_LABEL]
        expect = f"lacks the label {MANAGED_LABEL}=true"
    backend = make_backend(api, store)
    with pytest.raises(NotManaged, match=expect) as info:
        backend.apply(ScalingDecision(np.array([3, 2]), np.array([0.5, 1.0]), np.array([256.0, 512.0])))
    assert "\n" not in str(info.value)
    assert api.patches() == [] and [p for p in api.requests if p.method == "PATCH"] == []


def test_recommendation_only_vpa_is_allowed(api, store) -> None:
    api.add_vpa(NS, "advice", "back", mode="Off")
    api.add_hpa(NS, "other", "unrelated")
    make_backend(api, store).apply(ScalingDecision(np.array([3, 1]), np.array([0.5, 1.0]), np.array([256.0, 512.0])))
    assert api.deployment(NS, "front")["spec"]["replicas"] == 3


def test_dry_run_changes_nothing(api, store) -> None:
    backend = make_backend(api, store, dry_run=True)
    before = {k: json.dumps(v, sort_keys=True) for k, v in api.objects.items()}
    backend.apply(ScalingDecision(np.array([5, 3]), np.array([1.0, 2.0]), np.array([512.0, 1024.0])))
    sent = [r for r in api.requests if r.method == "PATCH"]
    assert len(sent) == 2 + 2 + 3  # scale x2, annotation x2, one resize per existing pod
    assert all(r.query.get("dryRun") == "All" and r.status == 200 for r in sent)
    assert {k: json.dumps(v, sort_keys=True) for k, v in api.objects.items()} == before
    assert all(c.dry_run for c in backend.changes) and len(backend.changes) == 7


def test_conflicts_are_retried_after_a_re_read(api, store) -> None:
    clock = Clock()
    backend = make_backend(api, store, clock)
    api.faults.conflicts = 2
    backend.apply(ScalingDecision(np.array([3, 1]), np.array([0.5, 1.0]), np.array([256.0, 512.0])))
    scale_patches = [r for r in api.requests if r.method == "PATCH" and r.path.endswith("/scale")]
    assert [r.status for r in scale_patches] == [409, 409, 200]
    assert api.deployment(NS, "front")["spec"]["replicas"] == 3 and clock.sleeps == []


def test_stale_resource_version_is_a_conflict_then_retried(api, store) -> None:
    backend = make_backend(api, store)
    real = backend.apps_api.read_namespaced_deployment_scale
    calls = {"n": 0}

    def racing_read(*args, **kwargs):  # another writer changes the Deployment between our read and our patch
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            with api.lock:
                api.objects[("deployments", NS, "front")]["metadata"]["resourceVersion"] = api.next_rv()
        return out

    backend.apps_api.read_namespaced_deployment_scale = racing_read
    backend.apply(ScalingDecision(np.array([3, 1]), np.array([0.5, 1.0]), np.array([256.0, 512.0])))
    statuses = [r.status for r in api.requests if r.method == "PATCH" and r.path.endswith("/scale")]
    assert statuses == [409, 200] and api.deployment(NS, "front")["spec"]["replicas"] == 3


def test_throttling_honours_retry_after(api, store) -> None:
    clock = Clock()
    backend = make_backend(api, store, clock)
    api.faults.throttle, api.faults.retry_after_s = 2, 3
    backend.apply(ScalingDecision(np.array([3, 1]), np.array([0.5, 1.0]), np.array([256.0, 512.0])))
    assert clock.sleeps == [3.0, 3.0]
    assert api.deployment(NS, "front")["spec"]["replicas"] == 3


def test_throttling_without_end_gives_up(api, store) -> None:
    clock = Clock()
    backend = make_backend(api, store, clock, max_attempts=3)
    api.faults.throttle, api.faults.retry_after_s = 100, 60
    with pytest.raises(ApiUnavailable, match="gave up after 3 tries"):
        backend.observe()
    assert clock.sleeps == [10.0, 10.0]  # Retry-After capped by max_backoff_s


def test_forbidden_is_one_line_naming_verb_and_resource(api, store) -> None:
    backend = make_backend(api, store)
    api.faults.deny.add(("patch", "pods/resize"))
    with pytest.raises(RbacDenied) as info:
        backend.apply(ScalingDecision(np.array([2, 1]), np.array([0.5, 2.0]), np.array([256.0, 512.0])))
    msg = str(info.value)
    assert msg.startswith(f"RBAC: not allowed to patch pods/resize in namespace '{NS}'") and "\n" not in msg
    assert len([r for r in api.requests if r.status == 403]) == 1  # no retry


def test_deferred_resize_is_reported(api, store) -> None:
    backend = make_backend(api, store)
    api.faults.resize_outcome = "Infeasible"
    backend.apply(ScalingDecision(np.array([2, 1]), np.array([0.5, 3.5]), np.array([256.0, 512.0])))
    assert [c.outcome for c in backend.changes if c.resource == "pods/resize"] == ["Infeasible"]


def test_namespace_outside_allow_list_is_refused_by_config() -> None:
    with pytest.raises(ConfigError, match=r"^allowed_namespaces: does not include namespace 'shop'"):
        KubernetesBackendConfig(namespace=NS, allowed_namespaces=("other",))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"namespace": "Bad_NS", "allowed_namespaces": ["x"]}, "backend.namespace"),
        ({"namespace": "a", "allowed_namespaces": ["a"], "vertical": "vpa"}, "backend.vertical"),
        ({"namespace": "a", "allowed_namespaces": ["a"], "staleness_s": 0}, "backend.staleness_s"),
        ({"namespace": "a", "allowed_namespaces": ["a"], "max_attempts": 0}, "backend.max_attempts"),
        ({"namespace": "a", "allowed_namespaces": ["a"], "typo": 1}, "backend.typo"),
        ({"allowed_namespaces": ["a"]}, "backend.namespace"),
        ({"namespace": "a", "allowed_namespaces": ["a"], "redis_url": "http://x"}, "backend.redis_url"),
    ],
)
def test_config_errors_name_the_field(data, field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}[.:]") as info:
        KubernetesBackendConfig.from_dict(data)
    assert "\n" not in str(info.value)


def test_bad_decision_is_refused_before_any_request(api, store) -> None:
    backend = make_backend(api, store)
    with pytest.raises(ValueError, match=r"^decision.cpu_limit: not finite"):
        backend.apply(ScalingDecision(np.array([2, 1]), np.array([np.nan, 1.0]), np.array([256.0, 512.0])))
    with pytest.raises(ValueError, match=r"^decision.replicas: expected shape \(2,\)"):
        backend.apply(ScalingDecision(np.array([2]), np.array([0.5, 1.0]), np.array([256.0, 512.0])))
    assert api.requests == []


def test_advance_waits_for_the_next_interval(api, store) -> None:
    clock = Clock()
    backend = make_backend(api, store, clock)
    clock.t += 4.0  # the loop body took 4 s
    backend.advance(15.0)
    assert clock.sleeps == [11.0]
    clock.t += 20.0  # late: no sleep, and no catching up
    backend.advance(15.0)
    assert clock.sleeps == [11.0]
    backend.advance(15.0)
    assert clock.sleeps == [11.0, 15.0]


def test_reset_restores_initial_state_and_instructs_the_load_generator(api, store) -> None:
    clock = Clock()
    backend = make_backend(api, store, clock)
    backend.apply(ScalingDecision(np.array([5, 4]), np.array([1.0, 2.0]), np.array([512.0, 1024.0])))
    load = LoadInstruction(
        trace="nasa_http_1995-07_1min.csv", start_s=3600, duration_s=900, rate_scale=2.0, episode="r0-v1-e7"
    )
    backend.reset(load)
    assert api.deployment(NS, "front")["spec"]["replicas"] == 2 and api.deployment(NS, "back")["spec"]["replicas"] == 1
    assert all(
        p["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "1000m", "memory": "512Mi"}
        for p in api.pods(NS, "back")
    )
    assert store.get_value(loadgen_key(NS)) == load.to_dict()


def test_reset_times_out_when_pods_never_get_ready(api, store) -> None:
    clock = Clock()
    backend = make_backend(api, store, clock, ready_timeout_s=10.0)
    api.pods_ready = False
    api.set_pods_ready(NS, False)
    with pytest.raises(Exception, match="not ready after 10s: front, back"):
        backend.reset()
    assert sum(clock.sleeps) <= 12.0


def test_resize_keeps_a_burstable_pod_burstable(api, store) -> None:
    api.add_deployment(NS, "front", replicas=1, cpu="500m", memory="256Mi", requests={"cpu": "250m", "memory": "128Mi"})
    backend = make_backend(api, store)
    backend.apply(ScalingDecision(np.array([1, 1]), np.array([1.0, 1.0]), np.array([256.0, 512.0])))
    (resize,) = [r for r in api.patches("/resize") if "/pods/front-" in r.path]
    assert resize.body["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "1000m", "memory": "256Mi"},
        "requests": {"cpu": "500m", "memory": "128Mi"},
    }
    assert resize.status == 200


def test_fake_server_refuses_a_resize_that_changes_the_qos_class(api) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    pod = api.pods(NS, "back")[0]["metadata"]["name"]
    body = {"spec": {"containers": [{"name": "back", "resources": {"requests": {"cpu": "100m"}}}]}}
    with pytest.raises(ApiException) as info:
        client.CoreV1Api(api.api_client()).patch_namespaced_pod_resize(
            pod, NS, body, _content_type="application/strategic-merge-patch+json"
        )
    assert info.value.status == 422 and "QOS Class may not change" in info.value.body


def test_missing_vpa_crd_means_no_vpa_and_ownership_is_checked_once(api, store) -> None:
    api.faults.vpa_crd_installed = False
    backend = make_backend(api, store)
    decision = ScalingDecision(np.array([3, 1]), np.array([0.5, 1.0]), np.array([256.0, 512.0]))
    backend.apply(decision)
    backend.apply(decision)
    hpa_lists = [r for r in api.requests if r.path.endswith("/horizontalpodautoscalers")]
    vpa_lists = [r for r in api.requests if r.path.endswith("/verticalpodautoscalers")]
    assert len(hpa_lists) == 1 and [r.status for r in vpa_lists] == [404]
    assert api.deployment(NS, "front")["spec"]["replicas"] == 3
