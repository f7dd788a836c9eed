"""Manifests: schema-valid (kubernetes-validate, strict), least-privilege RBAC, secrets and network isolation.

RayService and RayJob are CRDs that kubernetes-validate cannot check offline; they are checked against
the KubeRay v1 schema in tests/cluster_fakes/kuberay_schema.py, and their pod templates as core
PodTemplates.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import numpy as np
import pytest
import yaml

from cluster.backend_config import KubernetesBackendConfig
from cluster.collector import Collector, CollectorConfig
from cluster.kubernetes_backend import KubernetesBackend
from cluster.metric_store import MetricStore, StoreConfig
from cluster.render_app import render, to_yaml
from envs.app import load_app
from envs.metrics import ScalingDecision
from tests.cluster_fakes.fake_apiserver import FakeApiServer
from tests.cluster_fakes.kuberay_schema import SCHEMAS, pod_templates
from tests.cluster_fakes.two_services import APP, NS

# kubernetes-validate reads its schema files again on every call; the definitions file alone is
# megabytes. Caching the parsed files makes validating ~60 documents fast (jsonschema does not modify them).
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents)

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "cluster" / "manifests"
K8S_VERSION = "1.33.0"  # the first release with in-place resize on by default


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())


def all_docs() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name in kustomization()["resources"]:
        for doc in yaml.safe_load_all((MANIFESTS / name).read_text()):
            if doc:
                out.append((name, doc))
    return out


def validate(doc: dict[str, Any]) -> None:
    if doc["apiVersion"] == "ray.io/v1":
        jsonschema.validate(doc, SCHEMAS[doc["kind"]])
        for template in pod_templates(doc):
            kubernetes_validate.validate(
                {
                    "apiVersion": "v1",
                    "kind": "PodTemplate",
                    "metadata": {"name": "t", "namespace": doc["metadata"]["namespace"]},
                    "template": template,
                },
                K8S_VERSION,
                strict=True,
            )
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_every_manifest_is_valid() -> None:
    docs = all_docs()
    assert len(docs) > 30
    for name, doc in docs:
        try:
            validate(doc)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{name}: {doc['kind']}/{doc['metadata'].get('name')}: {str(exc).splitlines()[0]}")


def test_validation_catches_a_bad_manifest() -> None:
    dep = next(d for _, d in all_docs() if d["kind"] == "Deployment")
    bad = {**dep, "spec": {**dep["spec"], "replica": 2}}  # a typo strict validation must reject
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(bad)
    job = next(d for _, d in all_docs() if d["kind"] == "RayJob")
    with pytest.raises(jsonschema.ValidationError):
        validate({**job, "spec": {**job["spec"], "entrypointt": "x"}})


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (with its built-in kustomize) is not installed")
def test_kustomize_build_is_valid(tmp_path: Path) -> None:
    work = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, work)
    (work / "redis-password.txt").write_text("not-a-real-password")
    out = subprocess.run(["kubectl", "kustomize", str(work)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    built = [d for d in yaml.safe_load_all(out.stdout) if d]
    secrets = [d for d in built if d["kind"] == "Secret"]
    assert {s["metadata"]["namespace"] for s in secrets} == {"aware-ray", "aware-apps"}
    for doc in built:
        validate(doc)


def _rules(kind: str, name: str) -> list[dict[str, Any]]:
    return next(d for _, d in all_docs() if d["kind"] == kind and d["metadata"]["name"] == name)["rules"]


def test_no_role_has_wildcards_or_secrets() -> None:
    roles = [d for _, d in all_docs() if d["kind"] in ("Role", "ClusterRole")]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert "*" not in rule.get(key, []), (role["metadata"]["name"], key)
            assert not any(r.split("/")[0] == "secrets" for r in rule.get("resources", [])), role["metadata"]["name"]
            assert not set(rule["verbs"]) & {"escalate", "bind", "impersonate", "create", "delete", "deletecollection"}


def _granted(rules: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(verb, res) for r in rules for res in r["resources"] for verb in r["verbs"]}


def test_collector_and_controller_roles_are_exactly_what_the_code_uses(redis_server) -> None:
    """Run the real code against the fake API server and compare its requests with the Roles."""
    assert _granted(_rules("ClusterRole", "aware-collector")) == {("get", "nodes/proxy"), ("list", "pods")}
    controller = _granted(_rules("ClusterRole", "aware-autoscaler"))
    with FakeApiServer() as api:
        api.add_deployment(NS, "front", replicas=2)
        api.add_deployment(NS, "back", replicas=1, cpu="1", memory="512Mi")
        store = MetricStore(StoreConfig(url=redis_server.url))
        for vertical in ("resize", "template"):
            b = KubernetesBackend(
                APP,
                KubernetesBackendConfig(namespace=NS, allowed_namespaces=(NS,), vertical=vertical),
                api_client=api.api_client(),
                store=store,
                sleep=lambda s: None,
            )
            b.apply(ScalingDecision(np.array([3, 2]), np.array([0.25, 1.5]), np.array([300.0, 600.0])))
            b.reset()
        used = {FakeApiServer._RESOURCES[h][:2] for h in _handlers(api)}
        assert used <= controller, used - controller
        assert {("patch", "deployments/scale"), ("patch", "pods/resize"), ("list", "horizontalpodautoscalers")} <= used
        api.requests.clear()
        col = Collector(
            CollectorConfig(node="node-1", redis_url=redis_server.url),
            api_client=api.api_client(),
            store=store,
            fetch=lambda url, t: "",
        )
        col.collect_once()
        used = {FakeApiServer._RESOURCES[h][:2] for h in _handlers(api)}
        assert used == {("get", "nodes/proxy"), ("list", "pods")}


def _handlers(api: FakeApiServer) -> set[str]:
    import re

    out = set()
    for req in api.requests:
        for method, pattern, handler in FakeApiServer._ROUTES:
            if method == req.method and re.fullmatch(pattern, req.path) and handler in FakeApiServer._RESOURCES:
                out.add(handler)
    return out


def test_controller_acts_only_where_bound() -> None:
    docs = [d for _, d in all_docs()]
    assert not [d for d in docs if d["kind"] == "ClusterRoleBinding" and d["roleRef"]["name"] == "aware-autoscaler"]
    bound = {
        d["metadata"]["namespace"]
        for d in docs
        if d["kind"] == "RoleBinding" and d["roleRef"]["name"] == "aware-autoscaler"
    }
    allowed = {
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "Namespace" and d["metadata"].get("labels", {}).get("aware-ray.io/allowed") == "true"
    }
    assert bound == allowed == {"aware-apps", "aware-train-0-0"}
    ctrl = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "aware-controller")
    args = ctrl["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--allowed-namespaces=aware-apps" in args


def _pods(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, pod template metadata, pod spec) of every workload, Ray pod templates included."""
    out = []
    for d in docs:
        if d["kind"] in ("Deployment", "DaemonSet"):
            t = d["spec"]["template"]
            out.append((d["metadata"]["name"], t["metadata"], t["spec"]))
        elif d["apiVersion"] == "ray.io/v1":
            out += [(d["metadata"]["name"], t["metadata"], t["spec"]) for t in pod_templates(d)]
    return out


def test_redis_password_only_where_needed_and_network_isolation() -> None:
    docs = [d for _, d in all_docs()]
    users = set()
    for name, meta, spec in _pods(docs):
        text = yaml.safe_dump(spec)
        if "aware-redis" in text:
            users.add(name)
            if name != "redis":
                assert meta["labels"].get("aware-ray.io/redis-client") == "true", name
        elif meta["labels"].get("aware-ray.io/redis-client") == "true":
            pytest.fail(f"{name} may reach Redis but has no password: drop the label")
    assert users == {"redis", "aware-collector", "aware-controller", "aware-train", "loadgen"}
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    redis_rule = policies["redis-clients-only"]["spec"]["ingress"]
    assert redis_rule == [
        {
            "from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"aware-ray.io/redis-client": "true"}}}],
            "ports": [{"protocol": "TCP", "port": 6379}],
        }
    ]
    policy_clients = {
        name for name, meta, _ in _pods(docs) if meta["labels"].get("aware-ray.io/policy-client") == "true"
    }
    assert policy_clients == {"aware-controller", "aware-train"}
    served = policies["policy-endpoint-clients-only"]["spec"]
    assert served["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"aware-ray.io/policy-client": "true"}}}]
    serve_pods = [meta for name, meta, _ in _pods(docs) if name == "aware-policy"]
    assert serve_pods and all(m["labels"]["ray.io/cluster-role"] == "policy" for m in serve_pods)


def test_entry_points_match_the_other_components() -> None:
    docs = [d for _, d in all_docs()]
    rs = next(d for d in docs if d["kind"] == "RayService")
    serve = yaml.safe_load(rs["spec"]["serveConfigV2"])
    assert serve["applications"][0]["import_path"] == "aware_ray.serving.app:build_app"
    job = next(d for d in docs if d["kind"] == "RayJob")
    assert job["spec"]["entrypoint"] == "aware-ray train --config experiments/configs/kubernetes.yaml"
    ctrl = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "aware-controller")
    assert ctrl["spec"]["template"]["spec"]["containers"][0]["command"][:4] == [
        "aware-ray",
        "control",
        "--backend",
        "kubernetes",
    ]


def test_sample_app_manifest_is_the_rendered_spec() -> None:
    committed = (MANIFESTS / "sampleapp.yaml").read_text()
    fresh = to_yaml(render(load_app("social-network"), "aware-apps"))
    assert committed.split("\n", 1)[1] == fresh, (
        "re-run: python -m cluster.render_app social-network --namespace aware-apps -o cluster/manifests/sampleapp.yaml"
    )
    app = load_app("social-network")
    deps = {d["metadata"]["name"]: d for d in yaml.safe_load_all(fresh) if d["kind"] == "Deployment"}
    for s in app.services:
        d = deps[s.name]
        assert d["metadata"]["labels"]["aware-ray.io/managed"] == "true"
        assert d["spec"]["replicas"] == s.initial_replicas
        c = d["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in c["env"]}
        assert float(env["CPU_MS_MEAN"]) == s.cpu_ms_mean and env["FANOUT"] == (
            "parallel" if s.parallel_calls else "sequential"
        )
        assert c["resources"]["limits"] == c["resources"]["requests"]


def test_images_are_built_by_the_dockerfiles() -> None:
    docs = [d for _, d in all_docs()]
    images = {c["image"].split(":")[0] for _, _, spec in _pods(docs) for c in spec["containers"]}
    assert images == {"aware-ray/aware-ray", "aware-ray/sampleapp", "redis"}
    assert (ROOT / "cluster" / "Dockerfile").exists() and (ROOT / "cluster" / "sampleapp" / "Dockerfile").exists()


def test_render_app_cli(tmp_path: Path, capsys) -> None:
    from cluster.render_app import main

    out = tmp_path / "app.yaml"
    assert main(["chain3", "--namespace", "t-0-0", "-o", str(out)]) == 0
    docs = [d for d in yaml.safe_load_all(out.read_text()) if d]
    assert {d["metadata"]["namespace"] for d in docs} == {"t-0-0"}
    for d in docs:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)
    assert main(["no-such-app"]) == 2
    assert "unknown app 'no-such-app'" in capsys.readouterr().err
    assert main(["chain3", "--namespace", "Bad_NS"]) == 2
    assert "namespace: not a valid namespace name" in capsys.readouterr().err
