"""``env.backend: kubernetes`` in a training config: each env runner's sub-env drives its own namespace.

The creator is called as RLlib calls it (an ``EnvContext`` with the runner's worker_index), and its
backends reach the fake API server through a kubeconfig, as they would a cluster; Redis is a real
redis-server. Training end to end against a real cluster is the AWARE_E2E_KUBECONFIG-gated test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from ray.rllib.env.env_context import EnvContext

from aware_ray.training import kubernetes_env
from aware_ray.training.config import load_train_config
from aware_ray.training.train import build_algo_config
from cluster.collector import Collector, CollectorConfig
from cluster.loadgen_control import LoadInstruction, loadgen_key
from cluster.metric_store import MetricStore, StoreConfig
from envs.errors import ConfigError
from tests.cluster_fakes.fake_apiserver import FakeApiServer
from tests.cluster_fakes.two_services import SPEC

TRACE = "nasa_http_1995-08_1min.csv"


def _train_yaml(tmp_path: Path, redis_url: str, **kube) -> Path:
    app = tmp_path / "two.yaml"
    app.write_text(yaml.safe_dump(SPEC))
    raw = {
        "env": {
            "app": str(app),
            "workloads": [f"trace:{TRACE}"],
            "max_services": 4,
            "history_window": 4,
            "context_span": 0,
            "episode_steps": 4,
            "interval_s": 1.0,
            "backend": "kubernetes",
            "kubernetes": {
                "namespace_prefix": "train",
                "backend": {"redis_url": redis_url, "ready_timeout_s": 10.0},
                **kube,
            },
        },
        "run": {"num_env_runners": 2, "num_envs_per_env_runner": 2, "iterations": 1},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    """A FakeApiServer reachable through $KUBECONFIG (the path a cluster's kubeconfig takes)."""
    with FakeApiServer() as api:
        path = api.write_kubeconfig(tmp_path / "kubeconfig")
        monkeypatch.setenv("KUBECONFIG", str(path))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield api


def _seed(api: FakeApiServer, namespace: str) -> None:
    api.add_deployment(namespace, "front", replicas=2, cpu="500m", memory="256Mi")
    api.add_deployment(namespace, "back", replicas=1, cpu="1", memory="512Mi")


def _envs(cfg, worker_index: int):
    env_config = build_algo_config(cfg).env_config
    ctx = EnvContext(env_config, worker_index=worker_index, num_workers=2)
    kubernetes_env._created.clear()
    return [kubernetes_env.make_training_env(ctx) for _ in range(cfg.run.num_envs_per_env_runner)]


def test_kubernetes_config_gives_sync_envs_with_one_namespace_each(tmp_path, redis_server, kubeconfig) -> None:
    cfg = load_train_config(_train_yaml(tmp_path, redis_server.url))
    algo = build_algo_config(cfg)
    assert algo.gym_env_vectorize_mode == "SYNC"  # one env per sub-env, not the simulator's batch
    assert algo.env_config["kubernetes"]["envs_per_runner"] == 2
    envs = _envs(cfg, worker_index=2)
    assert [e.backend.namespace for e in envs] == ["train-2-0", "train-2-1"]
    assert all(e.backend.config.allowed_namespaces == (e.backend.namespace,) for e in envs)
    assert all(e.backend.config.interval_s == 1.0 for e in envs)  # the env's interval unless set
    # A runner that rebuilds its envs gets the same namespaces again.
    again = [kubernetes_env.make_training_env(EnvContext(algo.env_config, worker_index=2)) for _ in range(2)]
    assert [e.backend.namespace for e in again] == ["train-2-0", "train-2-1"]


def test_a_namespace_map_replaces_the_prefix_and_must_cover_each_env(tmp_path, redis_server, kubeconfig) -> None:
    cfg = load_train_config(_train_yaml(tmp_path, redis_server.url, namespaces={"1-0": "shop-a", "1-1": "shop-b"}))
    assert [e.backend.namespace for e in _envs(cfg, worker_index=1)] == ["shop-a", "shop-b"]
    with pytest.raises(ValueError, match=r"namespaces\.2-0: no namespace configured"):
        _envs(cfg, worker_index=2)


@pytest.mark.parametrize(
    ("kube", "needle"),
    [
        ({"namespace_prefix": "Bad_"}, "env.kubernetes.namespace_prefix"),
        ({"backend": {"namespace": "x"}}, "env.kubernetes.backend.namespace: set by the env runner"),
        ({"backend": {"vertical": "sideways"}}, "env.kubernetes.backend.vertical: expected 'resize' or 'template'"),
        ({"rate_scale": -1}, "env.kubernetes.rate_scale: must be a number > 0"),
        ({"namespace_prfix": "x"}, "env.kubernetes.namespace_prfix: unknown field"),
    ],
)
def test_bad_kubernetes_env_settings_fail_in_one_line(tmp_path, kube, needle) -> None:
    with pytest.raises(ConfigError) as err:
        load_train_config(_train_yaml(tmp_path, "redis://127.0.0.1:1/0", **kube))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_kubernetes_training_refuses_time_compression_choices(tmp_path) -> None:
    """The load generator replays at one compression: the config says so before any work starts."""
    with pytest.raises(ConfigError) as err:
        load_train_config(_train_yaml(tmp_path, "redis://127.0.0.1:1/0"), ["env.time_compression_choices=[1, 4]"])
    assert "env.time_compression_choices: the kubernetes backend replays each trace at" in str(err.value)


def test_reset_scales_back_points_the_load_generator_and_steps(tmp_path, redis_server, kubeconfig) -> None:
    redis_server.start()
    redis_server.flushall()
    api = kubeconfig
    ns = "train-1-0"
    _seed(api, ns)
    api.add_deployment("train-1-1", "front")  # the neighbour's copy: never touched
    # Somebody (a previous episode) left front at 5 pods.
    api.objects[("deployments", ns, "front")]["spec"]["replicas"] = 5
    api.reconcile()
    store = MetricStore(StoreConfig(url=redis_server.url))
    t = [100.0]
    collector = Collector(
        CollectorConfig(node="node-1", redis_url=redis_server.url, namespaces=(ns,)),
        api_client=api.api_client(),
        store=store,
        clock=lambda: t[0],
        sleep=lambda s: None,
    )

    def collect() -> None:
        for _ in range(2):
            t[0] += 0.5
            for pod in api.pods(ns):
                api.kubelet.feed(ns, pod["metadata"]["name"], 0.5, 0.2, mem_mib=120, rps=20.0, latencies_s=[0.01])
            collector.collect_once()

    cfg = load_train_config(_train_yaml(tmp_path, redis_server.url))
    env = _envs(cfg, worker_index=1)[0]
    assert env.backend.namespace == ns
    # reset: scale back (front to its initial 2), wait ready, instruct the load generator, observe.
    original_observe = env.backend.observe

    def observe_after_collecting():  # the collector runs beside the env: a fresh pass before each read
        collect()
        return original_observe()

    env.backend.observe = observe_after_collecting
    obs, info = env.reset(seed=3)
    assert np.isfinite(obs).all() and info["workload"]
    assert api.deployment(ns, "front")["spec"]["replicas"] == 2
    assert [p.body["spec"] for p in api.patches("/scale")] == [{"replicas": 2}]
    load = LoadInstruction.from_dict(store.get_value(loadgen_key(ns)))
    assert load == env.load and load.trace == TRACE and load.duration_s == 4 * 1.0 * env.config.time_compression
    assert load.start_s % (1.0 * env.config.time_compression) == 0 and load.rate_scale > 0
    action = np.zeros(env.action_space.shape, np.float32)
    action[0] = 1.0  # more front pods
    obs, reward, _, _, info = env.step(action)
    assert np.isfinite(obs).all() and np.isfinite(reward)
    assert 2 < api.deployment(ns, "front")["spec"]["replicas"] <= 6
    assert all(f"/namespaces/{ns}/" in r.path for r in api.requests if r.method == "PATCH")
    assert api.deployment("train-1-1", "front")["spec"]["replicas"] == 1
    # A second episode: scaled back again, and a new instruction (the load generator restarts on a new id).
    env.reset()
    assert api.deployment(ns, "front")["spec"]["replicas"] == 2
    assert LoadInstruction.from_dict(store.get_value(loadgen_key(ns))).episode != load.episode


def test_the_rayjob_config_trains_in_the_namespace_the_manifests_provision() -> None:
    """experiments/configs/kubernetes.yaml (the RayJob's entrypoint) loads and aims at what the manifests create."""
    root = Path(__file__).resolve().parents[1]
    job = yaml.safe_load((root / "cluster" / "manifests" / "rayjob.yaml").read_text())
    entry = job["spec"]["entrypoint"].split()
    cfg = load_train_config(root / entry[entry.index("--config") + 1])
    assert cfg.cluster is not None and cfg.run.num_env_runners == 0 and cfg.run.num_envs_per_env_runner == 1
    namespaces = [
        d["metadata"]["name"]
        for f in sorted((root / "cluster" / "manifests").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d and d.get("kind") == "Namespace"
    ]
    assert cfg.cluster.namespace(0, 0) in namespaces
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    mount = next(m["mountPath"] for m in head["volumeMounts"] if m["name"] == "redis-password")
    assert cfg.cluster.redis_password_file == f"{mount}/password"
    assert cfg.cluster.backend["redis_url"] == next(e["value"] for e in head["env"] if e["name"] == "AWARE_REDIS_URL")


def test_kubernetes_training_refuses_what_builds_simulator_envs_from_its_config(tmp_path) -> None:
    path = _train_yaml(tmp_path, "redis://127.0.0.1:1/0")
    with pytest.raises(ConfigError, match="does not combine with bootstrap"):
        load_train_config(path, ["bootstrap.window=4"])
