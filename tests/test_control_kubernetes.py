"""The real controller (``aware_ray.control.loop.Controller``) driving a KubernetesBackend against the fake
API server, with metrics from the real collector in a real redis-server.

The policy endpoint here is a small local HTTP server answering ``POST /v1/act`` with whatever raw
action a test sets, so that a test decides what the "policy" asks for and checks what reaches the
cluster. The real Ray Serve endpoint and the controller's client against it are covered in
tests/test_serving.py and tests/test_control_loop.py.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aware_ray.cli import build_parser
from aware_ray.control.config import load_control_config
from aware_ray.control.kubernetes import kubernetes_backends
from aware_ray.control.loop import Controller
from aware_ray.control.main import main_control
from cluster.collector import Collector, CollectorConfig
from cluster.errors import NotManaged
from cluster.metric_store import MetricStore, StoreConfig
from cluster.quantity import cpu_cores, mem_mib
from envs.errors import ConfigError
from policies.bootstrap.config import BootstrapConfig
from tests.cluster_fakes.fake_apiserver import FakeApiServer
from tests.cluster_fakes.two_services import APP, NS, SPEC

MAX_SERVICES = 4
ACTION_SIZE = MAX_SERVICES * 3
MANIFEST = Path(__file__).resolve().parents[1] / "cluster" / "manifests" / "controller.yaml"


class PolicyServer:
    """``POST /v1/act`` answering ``action`` (a list of ACTION_SIZE numbers) for every item."""

    def __init__(self) -> None:
        self.action: list[float] = [0.0] * ACTION_SIZE
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                owner.requests += 1
                answers = [{"raw_action": owner.action, "policy_version": "test"} for _ in body["items"]]
                data = json.dumps({"answers": answers}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> PolicyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class World:
    """Fake cluster + real collector + real Redis, on a fake clock whose sleep runs one collector pass."""

    def __init__(self, api: FakeApiServer, redis_url: str, feeding: bool = True):
        self.api, self.t, self.feeding = api, 100.0, feeding
        api.add_deployment(NS, "front", replicas=2, cpu="500m", memory="256Mi")
        api.add_deployment(NS, "back", replicas=1, cpu="1", memory="512Mi")
        self.store = MetricStore(StoreConfig(url=redis_url))
        self.collector = Collector(
            CollectorConfig(node="node-1", redis_url=redis_url, namespaces=(NS,)),
            api_client=api.api_client(),
            store=self.store,
            clock=self.clock,
            sleep=lambda s: None,
        )

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        """An interval passes: the pods serve load, the collector samples them twice (as it runs more often than
        the controller, so pods started during the interval have rates by its end)."""
        for _ in range(2):
            self.t += seconds / 2
            if not self.feeding:
                continue
            for pod in self.api.pods(NS):
                busy = 0.4 if pod["metadata"]["labels"]["app"] == "front" else 0.2
                self.api.kubelet.feed(
                    NS, pod["metadata"]["name"], seconds / 2, busy, mem_mib=150, rps=50.0, latencies_s=[0.01, 0.03]
                )
            self.collector.collect_once()

    def warm_up(self) -> None:
        """One interval: two collector passes, the first gives counters, the second rates (fresh metrics)."""
        self.sleep(15.0)

    def backends(self, cfg):
        return kubernetes_backends(
            cfg, api_client=self.api.api_client(), store=self.store, clock=self.clock, sleep=self.sleep
        )


@pytest.fixture
def app_yaml(tmp_path: Path) -> str:
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return str(path)


@pytest.fixture
def redis(redis_server):
    redis_server.start()
    redis_server.flushall()
    return redis_server


def _cfg(app_yaml: str, redis_url: str, endpoint: str, out: Path, **kw):
    base = {
        "endpoint": endpoint,
        "policy": "hpa",
        "mode": "active",
        "speed": "max",
        "timeout_ms": 3000,
        "env": {"max_services": MAX_SERVICES, "history_window": 4, "context_span": 0},
        "apps": [
            {
                "app": app_yaml,
                "backend": "kubernetes",
                "kubernetes": {"namespace": NS, "redis_url": redis_url, **kw.pop("kubernetes", {})},
            }
        ],
        "out": str(out),
    }
    base.update(kw)
    return load_control_config(None, base)


def _action(front=(0.0, 0.0, 0.0)) -> list[float]:
    a = np.zeros((MAX_SERVICES, 3))
    a[0] = front
    return a.ravel().tolist()


def test_policy_decisions_arrive_as_scale_and_resize_patches(redis, app_yaml, tmp_path) -> None:
    with FakeApiServer() as api, PolicyServer() as policy:
        world = World(api, redis.url)
        world.warm_up()
        cfg = _cfg(app_yaml, redis.url, policy.url, tmp_path / "out", intervals=2)
        ctl = Controller(cfg, backends=world.backends(cfg))
        policy.action = _action(front=(1.0, 1.0, 0.0))  # more front pods, more CPU per front pod
        (r,) = ctl.step()
        assert r.source == "policy" and r.reasons == []
        scale = api.patches("/scale")
        assert [p.path.rsplit("/", 2)[-2] for p in scale] == ["front"]
        replicas = scale[0].body["spec"]["replicas"]
        assert 2 < replicas <= 6 and replicas == int(r.decision.replicas[0])
        resizes = api.patches("/resize")
        assert resizes and all(p.path.split("/")[-2].startswith("front-") for p in resizes)
        for p in resizes:
            (ctr,) = p.body["spec"]["containers"]
            assert ctr["name"] == "front"
            assert 0.5 < cpu_cores(ctr["resources"]["limits"]["cpu"]) <= 2.0
            assert mem_mib(ctr["resources"]["limits"]["memory"]) == 256
            assert ctr["resources"]["requests"] == ctr["resources"]["limits"]  # Guaranteed QoS kept
        assert api.deployment(NS, "back")["spec"]["replicas"] == 1  # back was asked for nothing
        assert r.running.replicas[0] == replicas  # what runs after the interval, read back from the cluster
        summary = ctl.summary(0.0)
        assert summary["apps"]["two"]["sources"] == {"policy": 1}


def test_an_hpa_on_a_deployment_makes_the_controller_refuse(redis, app_yaml, tmp_path, capsys) -> None:
    with FakeApiServer() as api, PolicyServer() as policy:
        world = World(api, redis.url)
        api.add_hpa(NS, "front-hpa", "front")
        world.warm_up()
        cfg = _cfg(app_yaml, redis.url, policy.url, tmp_path / "out", intervals=2)
        ctl = Controller(cfg, backends=world.backends(cfg))
        policy.action = _action(front=(1.0, 0.0, 0.0))
        with pytest.raises(NotManaged) as err:
            ctl.step()
        msg = str(err.value)
        assert "\n" not in msg and "HorizontalPodAutoscaler 'front-hpa'" in msg and f"{NS}/front" in msg
        assert api.patches() == []


@pytest.mark.parametrize("how", [{"dry_run": True}, {"mode": "shadow"}])
def test_dry_run_and_shadow_send_dry_runs_only_and_change_nothing(redis, app_yaml, tmp_path, how) -> None:
    with FakeApiServer() as api, PolicyServer() as policy:
        world = World(api, redis.url)
        world.warm_up()
        cfg = _cfg(app_yaml, redis.url, policy.url, tmp_path / "out", intervals=2, **how)
        backends = world.backends(cfg)
        assert backends["two"].config.dry_run
        ctl = Controller(cfg, backends=backends)
        policy.action = _action(front=(1.0, 1.0, 1.0))
        ctl.step()
        ctl.step()
        assert api.patches() == []  # no write without dryRun=All
        dry = [r for r in api.requests if r.method == "PATCH"]
        assert dry and all(r.query.get("dryRun") == "All" for r in dry)
        assert api.deployment(NS, "front")["spec"]["replicas"] == 2
        assert all(
            c["resources"]["limits"]["cpu"] == "500m" for p in api.pods(NS, "front") for c in p["spec"]["containers"]
        )


def test_stale_metrics_fall_back_and_write_nothing(redis, app_yaml, tmp_path) -> None:
    with FakeApiServer() as api, PolicyServer() as policy:
        world = World(api, redis.url, feeding=False)  # the collector never reports
        cfg = _cfg(app_yaml, redis.url, policy.url, tmp_path / "out", intervals=3)
        ctl = Controller(cfg, backends=world.backends(cfg))
        policy.action = _action(front=(1.0, 1.0, 1.0))
        results = [ctl.step()[0] for _ in range(3)]
        assert [(r.source, r.reasons) for r in results] == [("heuristic", ["stale_metrics"])] * 3
        assert policy.requests == 0  # a stale app is not even asked about
        assert [r for r in api.requests if r.method == "PATCH"] == []
        assert ctl.apps[0].handovers["stale_metrics"] == 3
        assert world.t == pytest.approx(100.0 + 3 * 15.0)  # each held interval still waits its turn
        # The collector comes back: the controller starts from the fresh metrics (that interval was not
        # asked about, so the heuristic decides it) and the policy acts again from the next one.
        world.feeding = True
        world.warm_up()
        (first,) = ctl.step()
        (second,) = ctl.step()
        assert first.source == "heuristic" and "stale_metrics" not in first.reasons
        assert second.source == "policy" and api.patches("/scale")


@settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.one_of(st.floats(-1e6, 1e6, allow_nan=False), st.sampled_from([-1.0, 1.0, 0.0])),
        min_size=ACTION_SIZE,
        max_size=ACTION_SIZE,
    )
)
def test_whatever_the_endpoint_answers_requests_stay_in_the_allow_list_and_bounds(
    redis_server, tmp_path_factory, action
) -> None:
    redis_server.start()
    redis_server.flushall()
    tmp = tmp_path_factory.mktemp("prop")
    path = tmp / "two.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    with FakeApiServer() as api, PolicyServer() as policy:
        world = World(api, redis_server.url)
        api.add_deployment("other", "front", replicas=1)  # same name, namespace not allowed
        world.warm_up()
        cfg = _cfg(str(path), redis_server.url, policy.url, tmp / "out", intervals=3)
        ctl = Controller(cfg, backends=world.backends(cfg))
        policy.action = action
        for _ in range(3):
            ctl.step()
        names = [s.name for s in APP.services]
        for r in (r for r in api.requests if r.method != "GET"):
            assert r.method == "PATCH"
            assert f"/namespaces/{NS}/" in r.path, r.path
            if r.path.endswith("/scale"):
                i = names.index(r.path.split("/")[-2])
                assert APP.column("min_replicas")[i] <= r.body["spec"]["replicas"] <= APP.column("max_replicas")[i]
            if r.path.endswith("/resize"):
                (ctr,) = r.body["spec"]["containers"]
                i = names.index(ctr["name"])
                lim = ctr["resources"]["limits"]
                assert APP.column("cpu_limit_min")[i] <= cpu_cores(lim["cpu"]) <= APP.column("cpu_limit_max")[i]
                assert APP.column("mem_limit_min")[i] <= mem_mib(lim["memory"]) <= APP.column("mem_limit_max")[i]
        assert api.deployment("other", "front")["spec"]["replicas"] == 1


def test_the_manifest_args_make_a_valid_kubernetes_config(tmp_path, monkeypatch) -> None:
    """The controller Deployment's command and args, as written, parse into a kubernetes controller config."""
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    ctr = docs[0]["spec"]["template"]["spec"]["containers"][0]
    assert ctr["command"][:2] == ["aware-ray", "control"]
    argv = [*ctr["command"][1:], *(a.replace("$(AWARE_MODE)", "shadow") for a in ctr["args"])]
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    argv = [a.replace("/etc/aware-redis/password", str(secret)) for a in argv]
    args = build_parser().parse_args(argv)
    captured = {}

    def fake_run(cfg, backends=None):
        captured["cfg"] = cfg
        raise NotManaged("stop here")

    monkeypatch.setattr("aware_ray.control.main.Controller", fake_run)
    monkeypatch.setattr("aware_ray.control.main._backends", lambda cfg: None)
    assert main_control(args) == 1
    cfg = captured["cfg"]
    (a,) = cfg.apps
    assert (a.backend, a.app, cfg.mode) == ("kubernetes", "social-network", "shadow")
    assert a.kubernetes == {
        "namespace": "aware-apps",
        "redis_url": "redis://redis.aware-ray:6379/0",
        "allowed_namespaces": ["aware-apps"],
    }
    assert a.redis_password_file == str(secret)
    # The bootstrap monitor as the shipped control.yaml runs it (`safe@0.7:` in evaluate).
    shipped = load_control_config(Path(__file__).resolve().parents[1] / "experiments" / "configs" / "control.yaml")
    assert BootstrapConfig.from_dict(cfg.bootstrap) == BootstrapConfig.from_dict(shipped.bootstrap)
    assert cfg.policy == shipped.policy
    from aware_ray.control.kubernetes import backend_config

    bc = backend_config(a, cfg.dry_run)
    assert bc.redis_password == "s3cret" and bc.allowed_namespaces == ("aware-apps",) and not bc.dry_run


@pytest.mark.parametrize(
    ("kube", "extra", "needle"),
    [
        ({"namespace": "Bad_NS"}, {}, "apps.two.kubernetes.namespace: must be a DNS label"),
        ({"namespace": "shop", "allowed_namespaces": ["other"]}, {}, "does not include namespace 'shop'"),
        ({"namespace": "shop", "redis_password": "x"}, {}, "kubernetes.redis_password: give redis_password_file"),
        ({"namespace": "shop", "verticl": "resize"}, {}, "apps.two.kubernetes.verticl: unknown field"),
        ({}, {}, "apps.two.kubernetes.namespace: missing field"),
        ({"namespace": "shop"}, {"redis_password_file": "/nonexistent/pw"}, "redis_password_file: cannot read"),
    ],
)
def test_bad_kubernetes_settings_fail_in_one_line_naming_the_field(app_yaml, kube, extra, needle) -> None:
    app = {"app": app_yaml, "backend": "kubernetes", "kubernetes": kube, **extra}
    with pytest.raises(ConfigError) as err:
        load_control_config(None, {"apps": [app]})
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_the_command_line_reaches_the_cluster_through_the_kubeconfig(redis, app_yaml, tmp_path, monkeypatch, capsys):
    """``aware-ray control --backend kubernetes`` as the Deployment runs it, against the fake API server."""
    from aware_ray.cli import main

    with FakeApiServer() as api, PolicyServer() as policy:
        world = World(api, redis.url)  # the Deployments; no collector pass yet: the controller holds
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        control = tmp_path / "control.yaml"
        control.write_text(yaml.safe_dump({"policy": "hpa", "env": {"interval_s": 0.5, "max_services": MAX_SERVICES}}))
        argv = [
            "control",
            "--config",
            str(control),
            "--backend",
            "kubernetes",
            f"--app={app_yaml}",
            f"--namespace={NS}",
            f"--allowed-namespaces={NS}",
            "--mode=active",
            f"--endpoint={policy.url}",
            f"--redis-url={redis.url}",
            "--intervals=2",
            f"--out={tmp_path / 'report'}",
        ]
        assert main(argv) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["apps"]["two"]["handovers"] == {"stale_metrics": 2}
        assert [r for r in api.requests if r.method == "PATCH"] == []
        # Fresh metrics now, and an HPA on front: the first action is refused, in one line, exit status 1.
        world.warm_up()
        api.add_hpa(NS, "front-hpa", "front")
        assert main([*argv, "--intervals=1"]) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("aware-ray control: error: refusing to manage deployment shop/front")
        assert "HorizontalPodAutoscaler 'front-hpa'" in err
        assert [r for r in api.requests if r.method == "PATCH"] == []
