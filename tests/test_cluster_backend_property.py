"""Property: whatever a policy outputs, after the guard no request leaves the allow-list or the guard's bounds."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.backend_config import RESOURCES_ANNOTATION, KubernetesBackendConfig
from cluster.kubernetes_backend import KubernetesBackend
from cluster.metric_store import MetricStore, StoreConfig
from cluster.quantity import cpu_cores, mem_mib
from envs.guard import GuardConfig, guard
from envs.metrics import ScalingDecision
from tests.cluster_fakes.fake_apiserver import FakeApiServer
from tests.cluster_fakes.redis_server import free_port
from tests.cluster_fakes.two_services import APP, NS

wild = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e6, 1e6))
decisions = st.tuples(*(st.lists(wild, min_size=2, max_size=2) for _ in range(3)))


@pytest.fixture(scope="module")
def shared():
    with FakeApiServer() as api:
        yield api, api.api_client()


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(decisions, min_size=1, max_size=3))
def test_requests_stay_inside_allow_list_and_guard_bounds(shared, steps) -> None:
    api, client = shared
    with api.lock:  # a fresh cluster for each example, on the one server
        api.objects.clear()
        api.requests.clear()
        api.add_deployment(NS, "front", replicas=2, cpu="500m", memory="256Mi")
        api.add_deployment(NS, "back", replicas=1, cpu="1", memory="512Mi")
        api.add_deployment("other", "front", replicas=1)  # same name, not allowed: must never be touched
    store = MetricStore(StoreConfig(url=f"redis://127.0.0.1:{free_port()}/0"))  # observe is not needed here
    backend = KubernetesBackend(
        APP,
        KubernetesBackendConfig(namespace=NS, allowed_namespaces=(NS,)),
        api_client=client,
        store=store,
        sleep=lambda s: None,
    )
    current = ScalingDecision(np.array([2, 1]), np.array([0.5, 1.0]), np.array([256.0, 512.0]))
    for raw in steps:
        want = ScalingDecision(*(np.array(x, dtype=np.float64) for x in raw))
        safe = guard(want, current, np.array([100.0, 200.0]), APP, GuardConfig()).decision
        api.requests.clear()
        backend.apply(safe)
        for req in api.requests:
            assert re.match(rf"^/apis?/[a-z0-9./]*?/namespaces/{NS}/", req.path), req.path
            if req.method != "PATCH":
                continue
            name = re.search(r"/(?:deployments|pods)/([^/]+)", req.path).group(1)
            i = 0 if name.startswith("front") else 1
            if req.path.endswith("/scale"):
                r = req.body["spec"]["replicas"]
                assert r == safe.replicas[i] and APP.services[i].min_replicas <= r <= APP.services[i].max_replicas
            elif req.path.endswith("/resize"):
                lim = req.body["spec"]["containers"][0]["resources"]["limits"]
                assert abs(cpu_cores(lim["cpu"]) - safe.cpu_limit[i]) < 1e-3
                assert abs(mem_mib(lim["memory"]) - safe.mem_limit[i]) < 1
                assert APP.services[i].cpu_limit_min <= cpu_cores(lim["cpu"]) <= APP.services[i].cpu_limit_max
                assert APP.services[i].mem_limit_min <= mem_mib(lim["memory"]) <= APP.services[i].mem_limit_max
            else:
                note = json.loads(req.body["metadata"]["annotations"][RESOURCES_ANNOTATION])
                assert abs(cpu_cores(note["cpu"]) - safe.cpu_limit[i]) < 1e-3
        current = safe
    other = api.deployment("other", "front")
    assert other["spec"]["replicas"] == 1 and other["metadata"]["generation"] == 1
