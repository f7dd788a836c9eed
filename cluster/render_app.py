"""Render an app spec (``envs/apps/*.yaml``) as Kubernetes manifests for the sample app.

The simulated app and the deployed app come from the same spec: one Deployment and Service per
service, the CPU per request, memory, call graph and fan-out passed to the sample app as environment
variables, and limits (= requests, Guaranteed QoS, as the simulator models) at the spec's initial
state. Each Deployment carries ``aware-ray.io/managed=true``. A load-generator Deployment targets the
entry service and follows the backend's instructions through Redis.

``python -m cluster.render_app social-network --namespace shop > app.yaml`` (also ``aware-ray render-app``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cluster.backend_config import MANAGED_LABEL
from cluster.quantity import format_cpu, format_mem
from envs.app import AppSpec, load_app
from envs.atomic_write import write_text
from envs.errors import ConfigError

PORT = 8080
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DEFAULT_IMAGE = "aware-ray/sampleapp:0.1.0"


def _labels(app: AppSpec, name: str, component: str) -> dict[str, str]:
    return {
        "app": name,
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": app.name,
        "app.kubernetes.io/component": component,
    }


def _resources(cpu: float, mem: float) -> dict[str, Any]:
    r = {"cpu": format_cpu(cpu), "memory": format_mem(mem)}
    return {"limits": dict(r), "requests": dict(r)}


def _security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def render(
    app: AppSpec,
    namespace: str,
    image: str = DEFAULT_IMAGE,
    redis_url: str = "redis://redis.aware-ray:6379/0",
    redis_secret: str = "aware-redis",
    with_loadgen: bool = True,
) -> list[dict[str, Any]]:
    """Manifests (as mappings) for ``app`` in ``namespace``."""
    docs: list[dict[str, Any]] = []
    for i, s in enumerate(app.services):
        downstream = ",".join(
            f"http://{app.services[j].name}:{PORT}={app.calls[i, j]:g}"
            for j in range(app.n_services)
            if app.calls[i, j] > 0
        )
        env = {
            "SERVICE_NAME": s.name,
            "PORT": str(PORT),
            "CPU_MS_MEAN": f"{s.cpu_ms_mean:g}",
            "CPU_MS_CV": f"{s.cpu_ms_cv:g}",
            "MEM_BASE_MIB": f"{s.mem_base_mib:g}",
            "MEM_PER_INFLIGHT_MIB": f"{s.mem_per_inflight_mib:g}",
            "DOWNSTREAM": downstream,
            "FANOUT": "parallel" if s.parallel_calls else "sequential",
            "TIMEOUT_S": f"{app.timeout_s:g}",
        }
        labels = _labels(app, s.name, "service")
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": s.name,
                    "namespace": namespace,
                    "labels": {**labels, MANAGED_LABEL: "true"},
                    "annotations": {"aware-ray.io/app": app.name, "aware-ray.io/startup-s": f"{s.startup_s:g}"},
                },
                "spec": {
                    "replicas": s.initial_replicas,
                    "selector": {"matchLabels": {"app": s.name}},
                    "template": {
                        "metadata": {
                            "labels": labels,
                            "annotations": {
                                "prometheus.io/scrape": "true",
                                "prometheus.io/port": str(PORT),
                                "prometheus.io/path": "/metrics",
                            },
                        },
                        "spec": {
                            "automountServiceAccountToken": False,
                            "containers": [
                                {
                                    "name": s.name,
                                    "image": image,
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": ["python", "-m", "cluster.sampleapp.service"],
                                    "env": [{"name": k, "value": v} for k, v in env.items()],
                                    "ports": [{"name": "http", "containerPort": PORT}],
                                    "resources": _resources(s.cpu_limit_initial, s.mem_limit_initial),
                                    "resizePolicy": [
                                        {"resourceName": "cpu", "restartPolicy": "NotRequired"},
                                        {"resourceName": "memory", "restartPolicy": "RestartContainer"},
                                    ],
                                    "readinessProbe": {
                                        "httpGet": {"path": "/healthz", "port": PORT},
                                        "initialDelaySeconds": max(1, round(s.startup_s)),
                                        "periodSeconds": 2,
                                    },
                                    "securityContext": _security(),
                                }
                            ],
                        },
                    },
                },
            }
        )
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": s.name, "namespace": namespace, "labels": labels},
                "spec": {"selector": {"app": s.name}, "ports": [{"name": "http", "port": PORT, "targetPort": PORT}]},
            }
        )
    if with_loadgen:
        entry = app.services[app.entry].name
        name = "loadgen"
        labels = _labels(app, name, "loadgen")
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {**labels, "aware-ray.io/redis-client": "true"}},
                        "spec": {
                            "automountServiceAccountToken": False,
                            "containers": [
                                {
                                    "name": name,
                                    "image": image,
                                    "imagePullPolicy": "IfNotPresent",
                                    "command": [
                                        "python",
                                        "-m",
                                        "cluster.sampleapp.loadgen",
                                        "--target",
                                        f"http://{entry}:{PORT}/",
                                        "--redis-url",
                                        redis_url,
                                    ],
                                    "env": [
                                        {
                                            "name": "POD_NAMESPACE",
                                            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                                        },
                                        {
                                            "name": "REDIS_PASSWORD",
                                            "valueFrom": {"secretKeyRef": {"name": redis_secret, "key": "password"}},
                                        },
                                    ],
                                    "resources": _resources(1.0, 512),
                                    "securityContext": _security(),
                                }
                            ],
                        },
                    },
                },
            }
        )
    return docs


def to_yaml(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="aware-ray render-app", description="Render an app spec as Kubernetes manifests.")
    p.add_argument("app", help="shipped app name (social-network) or an app YAML path")
    p.add_argument("--namespace", default="aware-apps", help="namespace of the Deployments")
    p.add_argument("--image", default=DEFAULT_IMAGE, help="sample app image")
    p.add_argument("--redis-url", default="redis://redis.aware-ray:6379/0", help="Redis the load generator watches")
    p.add_argument("--no-loadgen", action="store_true", help="leave the load generator out")
    p.add_argument("-o", "--output", default="", help="file to write (default: stdout)")
    a = p.parse_args(argv)
    if not _DNS_LABEL.match(a.namespace) or len(a.namespace) > 63:
        print(f"render-app: namespace: not a valid namespace name: {a.namespace!r}", file=sys.stderr)
        return 2
    try:
        app = load_app(a.app)
    except ConfigError as exc:
        print(f"render-app: {exc}", file=sys.stderr)
        return 2
    text = to_yaml(render(app, a.namespace, a.image, a.redis_url, with_loadgen=not a.no_loadgen))
    if a.output:
        write_text(Path(a.output), text)  # nothing half-written is left behind
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
