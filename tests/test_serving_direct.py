"""Serve's throughput-optimized mode with direct ingress: the replica's own HTTP and gRPC ports answer
as the proxy does (same bits), and ``direct_ingress_urls`` finds them."""

from __future__ import annotations

import os

import numpy as np
import pytest
import requests

from aware_ray.control.client import act_item
from aware_ray.serving.launch import direct_ingress_on, direct_ingress_urls
from tests.serve_fixtures import serve_endpoint


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}, True),
        ({"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0"}, False),
        ({"RAY_SERVE_ENABLE_DIRECT_INGRESS": "1"}, True),
        ({"RAY_SERVE_THROUGHPUT_OPTIMIZED": "0"}, False),
        ({"RAY_SERVE_ENABLE_HA_PROXY": "1"}, True),
    ],
)
def test_direct_ingress_on_reads_serves_flags(env, on):
    assert direct_ingress_on(env) is on


@pytest.fixture(scope="module")
def optimized():
    """The endpoint on a Ray whose processes start with RAY_SERVE_THROUGHPUT_OPTIMIZED=1."""
    saved = os.environ.get("RAY_SERVE_THROUGHPUT_OPTIMIZED")
    os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"
    try:
        yield from serve_endpoint({"apps": ["social-network", "chain3"]})
    finally:
        if saved is None:
            os.environ.pop("RAY_SERVE_THROUGHPUT_OPTIMIZED", None)
        else:
            os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = saved


@pytest.mark.slow
def test_direct_ingress_answers_as_the_proxy_does(optimized):
    urls = direct_ingress_urls("aware-ray", timeout_s=60)
    assert len(urls) == 1 and urls[0].startswith("http://127.0.0.1:") and urls[0] != optimized.url
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, size=(3, 768)).astype(np.float32)
    body = {"items": [act_item("social-network", o) for o in obs] + [{"app": "chain3", "observation": obs[0].tolist()}]}
    via_proxy = requests.post(f"{optimized.url}/v1/act", json=body, timeout=30)
    direct = requests.post(f"{urls[0]}/v1/act", json=body, timeout=30)
    assert via_proxy.status_code == direct.status_code == 200, direct.text
    assert direct.json() == via_proxy.json()
    bad = requests.post(f"{urls[0]}/v1/act", json={"items": [{"app": "nope", "observation_b64": ""}]}, timeout=30)
    assert bad.status_code == 422 and bad.json()["field"] == "items.0.app"
    assert requests.get(f"{urls[0]}/healthz", timeout=10).json()["status"] == "ok"

    import grpc

    from aware_ray.serving.proto import policy_pb2, policy_pb2_grpc

    targets = direct_ingress_urls("aware-ray", protocol="GRPC")
    assert len(targets) == 1 and targets[0].startswith("127.0.0.1:") and targets[0] != optimized.grpc_target
    with grpc.insecure_channel(targets[0]) as channel:
        req = policy_pb2.ActRequest(items=[policy_pb2.Observation(app="social-network", observation=obs[1].tolist())])
        got = policy_pb2_grpc.PolicyServiceStub(channel).Act(req, metadata=(("application", "aware-ray"),), timeout=30)
    want = direct.json()["answers"][1]
    assert np.asarray(got.answers[0].raw_action, np.float32).tolist() == want["raw_action"]
    assert [d.replicas for d in got.answers[0].decision] == [d["replicas"] for d in want["decision"]]
