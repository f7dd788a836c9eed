"""The policy endpoint on a real local Ray Serve: answers equal evaluate's, bad bodies get 4xx naming
the field, /v1/decide equals /v1/act on the builder's observation, a version swap under load fails nothing."""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time

import numpy as np
import pytest
import requests
import torch

from envs.autoscale_env import AutoscaleEnv
from policies import registry
from policies.ddpg.policy import DDPGPolicy
from tests.serve_fixtures import serve_endpoint

SPEC = "lean@0.1:ddpg:pretrained"


@pytest.fixture(scope="module")
def endpoint():
    yield from serve_endpoint({"policy": SPEC, "apps": ["social-network", "chain3"]})


@pytest.fixture(scope="module")
def episode():
    """An env episode under the served spec: observations, metrics, applied actions, rewards."""
    policy = DDPGPolicy.load(registry.PRETRAINED_DIR)
    env = AutoscaleEnv({"app": "social-network", **policy.env_overrides(), "workloads": ["family:bursty"]})
    spec_policy = registry.make_policy(SPEC, env, np.zeros(1))
    obs, _ = env.reset(seed=3, options={"workload": "family:bursty", "episode_steps": 12})
    state = spec_policy.initial_state()
    steps = [(obs, env.metrics, None, None)]
    for _ in range(12):
        action, state = spec_policy.act(obs, state)
        obs, reward, *_ = env.step(action)
        steps.append((obs, env.metrics, env.last_action.copy(), reward))
    return env, steps


def _act(url, items):
    return requests.post(f"{url}/v1/act", json={"items": items}, timeout=30)


def test_health_and_policy(endpoint):
    h = requests.get(f"{endpoint.url}/healthz", timeout=10).json()
    info = requests.get(f"{endpoint.url}/v1/policy", timeout=10).json()
    assert h["status"] == "ok" and h["version"] == info["version"] == DDPGPolicy.load(registry.PRETRAINED_DIR).version
    assert info["spec"] == SPEC and info["schema"]["blocks"]["service"][0]["name"] == "cpu_util"
    assert set(info["apps"]) == {"social-network", "chain3"} and info["model_card"]


def test_round_trip_equals_evaluate(endpoint, episode):
    env, steps = episode
    learned = DDPGPolicy.load(registry.PRETRAINED_DIR)
    obs = [s[0] for s in steps[:6]]
    answers = _act(endpoint.url, [{"app": "social-network", "observation": o.tolist()} for o in obs]).json()["answers"]
    for o, a in zip(obs, answers, strict=True):
        assert np.asarray(a["raw_action"], np.float32).tobytes() == learned.act(o, None)[0].tobytes()
        fresh = registry.make_policy(SPEC, env, np.zeros(1))  # stateless: rules from a fresh state
        want, _ = fresh.act(o, fresh.initial_state())
        assert np.asarray(a["action"], np.float32).tobytes() == np.asarray(want, np.float32).tobytes()
        assert len(a["decision"]) == env.app.n_services and a["policy_version"] == learned.version
        assert len(a["embedding"]) == learned.embedding(o).shape[1]
        for d, s in zip(a["decision"], env.app.services, strict=True):
            assert s.min_replicas <= d["replicas"] <= s.max_replicas


def test_b64_observations_answer_as_the_json_lists_do(endpoint, episode):
    _, steps = episode
    obs = [s[0] for s in steps[:4]]
    as_json = _act(endpoint.url, [{"app": "social-network", "observation": o.tolist()} for o in obs])
    mixed = [{"app": "social-network", "observation_b64": _b64(o)} for o in obs[:3]]
    mixed.append({"app": "social-network", "observation": obs[3].tolist()})
    as_b64 = _act(endpoint.url, mixed)
    assert as_json.status_code == as_b64.status_code == 200, as_b64.text
    assert as_b64.json() == as_json.json()


def test_decide_equals_act_on_the_builders_observation(endpoint, episode):
    env, steps = episode
    from dataclasses import asdict

    def js(m):
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(m).items()}

    n = env.app.n_services
    item = {
        "app": "social-network",
        "metrics": [js(s[1]) for s in steps],
        "actions": [s[2][:n].ravel().tolist() for s in steps[1:]],
        "rewards": [s[3] for s in steps[1:]],
    }
    got = requests.post(f"{endpoint.url}/v1/decide", json={"items": [item]}, timeout=30)
    assert got.status_code == 200, got.text
    want = _act(endpoint.url, [{"app": "social-network", "observation": steps[-1][0].tolist()}]).json()
    assert got.json()["answers"][0]["raw_action"] == want["answers"][0]["raw_action"]
    # Without actions and rewards the endpoint rebuilds them; still a valid answer.
    bare = requests.post(
        f"{endpoint.url}/v1/decide", json={"items": [{"app": "chain3", "metrics": [_chain3_metrics()]}]}, timeout=30
    )
    assert bare.status_code == 200, bare.text


def test_rebuilt_rewards_use_the_history_weights():
    # Without rewards, /v1/decide scores each interval with the weights the policy's history
    # records (env.history_reward), not the reward it was fine-tuned on.
    from aware_ray.serving.runtime import AppRuntime, observation_from_history
    from policies.base import EnvContext

    base = {"app": "chain3", "workloads": ["family:bursty"], "history_window": 8, "episode_steps": 12}
    env = AutoscaleEnv({**base, "reward": {"violation": 4.0}})
    env.reset(seed=2)
    metrics, actions = [env.metrics], []
    rng = np.random.default_rng(2)
    for _ in range(10):
        env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        metrics.append(env.metrics)
        actions.append(env.last_action[: env.app.n_services].ravel())

    def rebuilt(**weights):
        served = AutoscaleEnv({**base, **weights})
        return observation_from_history(AppRuntime(served, EnvContext.of(served)), metrics, actions).tobytes()

    trained = rebuilt(reward={"violation": 4.0})
    assert rebuilt(reward={"cost": 16.0}, history_reward={"violation": 4.0}) == trained
    assert rebuilt(reward={"cost": 16.0}) != trained


def _chain3_metrics(**over):
    n = 3
    m = {
        "t_seconds": 15.0,
        **{k: [1.0] * n for k in ("replicas", "ready_replicas", "cpu_limit")},
        **{k: [0.0] * n for k in ("pending_replicas", "queue", "dropped", "oom_kills", "throttled")},
        "mem_limit": [512.0] * n,
        "cpu_usage": [0.3] * n,
        "mem_usage": [200.0] * n,
        "request_rate": [20.0] * n,
        **{k: [5.0] * n for k in ("p50_ms", "p95_ms", "p99_ms")},
        "external_rps": 20.0,
        "e2e_p50_ms": 10.0,
        "e2e_p95_ms": 20.0,
        "e2e_p99_ms": 30.0,
        "dropped_total": 0.0,
    }
    m.update(over)
    return m


OBS = [0.0] * 768


def _b64(values) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()


def _b64_item(b64: str, **extra) -> str:
    return json.dumps({"items": [{"app": "social-network", "observation_b64": b64, **extra}]})


BAD_BODIES = [
    ("act", "{not json", 400, "body"),
    ("act", json.dumps({}), 422, "items"),
    ("act", json.dumps({"items": []}), 422, "items"),
    ("act", json.dumps({"items": [{"observation": OBS}]}), 422, "items.0.app"),
    ("act", json.dumps({"items": [{"app": "social-network"}]}), 422, "items.0.observation"),
    ("act", json.dumps({"items": [{"app": "nope", "observation": OBS}]}), 422, "items.0.app"),
    ("act", json.dumps({"items": [{"app": "social-network", "observation": OBS[:10]}]}), 422, "items.0.observation"),
    (
        "act",
        json.dumps({"items": [{"app": "social-network", "observation": [float("nan")] * 768}]}),
        422,
        "items.0.observation.0",
    ),
    (
        "act",
        json.dumps({"items": [{"app": "social-network", "observation": [0.0] * 767 + [float("inf")]}]}),
        422,
        "items.0.observation.767",
    ),
    (
        "act",
        json.dumps({"items": [{"app": "social-network", "observation": [0.0] * 5 + [99.0] + [0.0] * 762}]}),
        422,
        "items.0.observation.5",
    ),
    (
        "act",
        json.dumps({"items": [{"app": "social-network", "observation": ["x"] * 768}]}),
        422,
        "items.0.observation.0",
    ),
    ("act", json.dumps({"items": [{"app": "social-network", "observation": OBS, "extra": 1}]}), 422, "items.0.extra"),
    ("act", json.dumps({"items": [{"app": "chain3", "observation": OBS}] * 300}), 422, "items"),
    ("act", json.dumps({"items": [{"app": "chain3", "observation": [0.0] * 1_200_000}]}), 413, "body"),
    ("act", _b64_item("not base64!"), 422, "items.0.observation_b64"),
    ("act", _b64_item(_b64(OBS)[:-4]), 422, "items.0.observation_b64"),  # 767 values
    ("act", _b64_item(base64.b64encode(b"\0" * 3070).decode()), 422, "items.0.observation_b64"),  # not 4-byte
    ("act", _b64_item(_b64([0.0] * 3 + [float("nan")] + [0.0] * 764)), 422, "items.0.observation_b64.3"),
    ("act", _b64_item(_b64([0.0] * 767 + [float("-inf")])), 422, "items.0.observation_b64.767"),
    ("act", _b64_item(_b64([0.0] * 9 + [11.0] + [0.0] * 758)), 422, "items.0.observation_b64.9"),
    ("act", _b64_item(_b64(OBS), observation=OBS), 422, "items.0.observation_b64"),
    ("act", _b64_item(12), 422, "items.0.observation_b64"),
    ("decide", json.dumps({"items": [{"app": "chain3", "metrics": []}]}), 422, "items.0.metrics"),
    (
        "decide",
        json.dumps({"items": [{"app": "chain3", "metrics": [_chain3_metrics(replicas=[-1.0, 1.0, 1.0])]}]}),
        422,
        "items.0.metrics.0.replicas.0",
    ),
    (
        "decide",
        json.dumps({"items": [{"app": "chain3", "metrics": [_chain3_metrics(queue=[1.0])]}]}),
        422,
        "items.0.metrics.0.queue",
    ),
    (
        "decide",
        json.dumps({"items": [{"app": "chain3", "metrics": [_chain3_metrics(external_rps=float("nan"))]}]}),
        422,
        "items.0.metrics.0.external_rps",
    ),
    (
        "decide",
        json.dumps({"items": [{"app": "chain3", "metrics": [{"t_seconds": 1.0}]}]}),
        422,
        "items.0.metrics.0.replicas",
    ),
    (
        "decide",
        json.dumps({"items": [{"app": "chain3", "metrics": [_chain3_metrics()] * 2, "rewards": [1, 2]}]}),
        422,
        "items.0.rewards",
    ),
    (
        "decide",
        json.dumps({"items": [{"app": "chain3", "metrics": [_chain3_metrics()] * 2, "actions": [[0.0] * 4]}]}),
        422,
        "items.0.actions.0",
    ),
    (
        "decide",
        json.dumps({"items": [{"app": "chain3", "metrics": [_chain3_metrics(cpu_limit=[0.0, 1.0, 1.0])]}]}),
        422,
        "items.0.metrics.0.cpu_limit.0",
    ),
]


@pytest.mark.parametrize(("route", "body", "status", "field"), BAD_BODIES)
def test_bad_bodies_get_4xx_naming_the_field(endpoint, route, body, status, field):
    r = requests.post(f"{endpoint.url}/v1/{route}", data=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field and r.json()["error"].startswith(field + ":"), r.text


@pytest.mark.slow
def test_version_swap_under_load_fails_nothing(endpoint, tmp_path):
    other = tmp_path / "policy-v2"
    shutil.copytree(registry.PRETRAINED_DIR, other)
    state = torch.load(other / "policy.pt", weights_only=True)
    state = {k: v * 1.01 if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, other / "policy.pt")
    new_version = DDPGPolicy.load(other).version
    old_version = DDPGPolicy.load(registry.PRETRAINED_DIR).version
    body = {"items": [{"app": "chain3", "observation": OBS}]}
    results: list[tuple[int, str]] = []
    stop = threading.Event()

    def load() -> None:
        s = requests.Session()
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                r = s.post(f"{endpoint.url}/v1/act", json=body, timeout=30)
                results.append((r.status_code, r.json()["answers"][0]["policy_version"] if r.ok else r.text))
            except requests.RequestException as exc:
                results.append((0, str(exc)))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        endpoint.start({"policy": f"lean@0.1:ddpg:{other}", "apps": ["social-network", "chain3"]})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (results and results[-1][1] == new_version):
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        endpoint.start({"policy": SPEC, "apps": ["social-network", "chain3"]})
    assert results and all(code == 200 for code, _ in results), [r for r in results if r[0] != 200][:3]
    versions = [v for _, v in results]
    assert versions[0] == old_version and versions[-1] == new_version
    first_new = versions.index(new_version)
    assert set(versions[first_new:]) == {new_version}  # no old answer after the first new one


def test_grpc_answers_equal_http_and_name_bad_fields(endpoint, episode):
    import grpc

    from aware_ray.serving.proto import policy_pb2, policy_pb2_grpc

    _, steps = episode
    obs = steps[3][0]
    with grpc.insecure_channel(endpoint.grpc_target) as channel:
        stub = policy_pb2_grpc.PolicyServiceStub(channel)
        meta = (("application", "aware-ray"),)
        health = stub.Health(policy_pb2.HealthRequest(), metadata=meta, timeout=30)
        assert health.status == "ok" and health.version == DDPGPolicy.load(registry.PRETRAINED_DIR).version
        req = policy_pb2.ActRequest(items=[policy_pb2.Observation(app="social-network", observation=obs.tolist())])
        got = stub.Act(req, metadata=meta, timeout=30).answers[0]
        want = _act(endpoint.url, [{"app": "social-network", "observation": obs.tolist()}]).json()["answers"][0]
        assert np.asarray(got.raw_action, np.float32).tobytes() == np.asarray(want["raw_action"], np.float32).tobytes()
        assert [d.replicas for d in got.decision] == [d["replicas"] for d in want["decision"]]
        bad = policy_pb2.ActRequest(items=[policy_pb2.Observation(app="nope", observation=obs.tolist())])
        with pytest.raises(grpc.RpcError) as err:
            stub.Act(bad, metadata=meta, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "items.0.app" in err.value.details()
