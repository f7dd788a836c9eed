"""End to end against a real cluster: runs only when AWARE_E2E_KUBECONFIG names a kubeconfig.

Use a disposable cluster (kind or minikube, Kubernetes >= 1.33 for in-place resize). The test creates
a namespace ``aware-e2e-<random>`` with one small Deployment, drives the KubernetesBackend against it
(dry run, scale, in-place resize, HPA refusal) and deletes the namespace at the end. Metrics come
from the session's local redis-server, written by the test, so no collector needs to run in the cluster.
"""

from __future__ import annotations

import os
import time
import uuid

import numpy as np
import pytest

from cluster.backend_config import MANAGED_LABEL, KubernetesBackendConfig
from cluster.errors import NotManaged
from cluster.kubernetes_backend import KubernetesBackend
from cluster.metric_store import MetricStore, StoreConfig
from envs.app import app_from_dict
from envs.metrics import ScalingDecision

KUBECONFIG = os.environ.get("AWARE_E2E_KUBECONFIG", "")
IMAGE = os.environ.get("AWARE_E2E_IMAGE", "registry.k8s.io/pause:3.10")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not KUBECONFIG,
        reason="set AWARE_E2E_KUBECONFIG to the kubeconfig of a disposable cluster "
        "(Kubernetes >= 1.33) to run the end-to-end test",
    ),
]

APP = app_from_dict(
    {
        "name": "e2e",
        "slo_ms": 200,
        "default_peak_rps": 10,
        "node": {"cores": 4, "mem_gib": 4},
        "services": [
            {
                "name": "web",
                "cpu_ms": {"mean": 5},
                "memory_mib": {"base": 16, "per_inflight": 0},
                "startup_s": 1,
                "replicas": {"min": 1, "max": 3, "initial": 1},
                "cpu_limit": {"min": 0.05, "max": 0.5, "initial": 0.1},
                "mem_limit": {"min": 32, "max": 128, "initial": 64},
            }
        ],
    }
)


@pytest.fixture(scope="module")
def cluster():
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=KUBECONFIG)
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    ns = f"aware-e2e-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace.from_dict({"metadata": {"name": ns}}))
    res = {"cpu": "100m", "memory": "64Mi"}
    apps.create_namespaced_deployment(
        ns,
        client.V1Deployment.from_dict(
            {
                "metadata": {"name": "web", "labels": {MANAGED_LABEL: "true"}},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "web",
                                    "image": IMAGE,
                                    "resources": {"limits": res, "requests": res},
                                    "resizePolicy": [{"resourceName": "cpu", "restartPolicy": "NotRequired"}],
                                }
                            ]
                        },
                    },
                },
            }
        ),
    )
    try:
        yield api_client, ns
    finally:
        core.delete_namespace(ns)


def backend(cluster, redis_server, **kw) -> KubernetesBackend:
    api_client, ns = cluster
    cfg = KubernetesBackendConfig(namespace=ns, allowed_namespaces=(ns,), ready_timeout_s=120, interval_s=2, **kw)
    return KubernetesBackend(APP, cfg, api_client=api_client, store=MetricStore(StoreConfig(url=redis_server.url)))


def test_dry_run_then_scale_and_resize_in_place(cluster, redis_server) -> None:
    from kubernetes import client

    api_client, ns = cluster
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    b = backend(cluster, redis_server)
    b.wait_ready(ScalingDecision(np.array([1]), np.array([0.1]), np.array([64.0])))
    dry = backend(cluster, redis_server, dry_run=True)
    dry.apply(ScalingDecision(np.array([3]), np.array([0.2]), np.array([64.0])))
    assert dry.changes and apps.read_namespaced_deployment_scale("web", ns).spec.replicas == 1
    b.apply(ScalingDecision(np.array([2]), np.array([0.2]), np.array([64.0])))
    assert apps.read_namespaced_deployment_scale("web", ns).spec.replicas == 2
    b.apply(ScalingDecision(np.array([2]), np.array([0.2]), np.array([64.0])))  # resizes the pod started meanwhile
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(ns, label_selector="app=web").items
        if len(pods) == 2 and all(p.spec.containers[0].resources.limits["cpu"] in ("200m", "0.2") for p in pods):
            break
        time.sleep(2)
    else:
        pytest.fail("pods were not resized to 200m within 60 s")


def test_refuses_when_an_hpa_targets_the_deployment(cluster, redis_server) -> None:
    from kubernetes import client

    api_client, ns = cluster
    client.AutoscalingV2Api(api_client).create_namespaced_horizontal_pod_autoscaler(
        ns,
        client.V2HorizontalPodAutoscaler.from_dict(
            {
                "metadata": {"name": "web"},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 1,
                    "maxReplicas": 3,
                },
            }
        ),
    )
    with pytest.raises(NotManaged, match="HorizontalPodAutoscaler 'web'"):
        backend(cluster, redis_server).apply(ScalingDecision(np.array([1]), np.array([0.1]), np.array([64.0])))
