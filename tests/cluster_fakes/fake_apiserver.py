"""A fake Kubernetes API server: exactly the endpoints the cluster code uses, over real HTTP on 127.0.0.1.

It is driven by the official ``kubernetes`` client, so request paths, query parameters, patch content
types and (de)serialisation are the real ones. What it models:

- objects with ``metadata.resourceVersion`` (one global counter) and ``metadata.generation``;
  a patch carrying a stale resourceVersion gets 409 Conflict, as on a real server;
- merge patch (``application/merge-patch+json``) and strategic merge patch (lists of containers
  merged by ``name``); a JSON patch with a mapping body is a 400, as on a real server;
- ``?dryRun=All``: the answer shows the change, nothing is stored;
- a tiny Deployment controller: pods follow ``spec.replicas`` and the pod template (a template
  change replaces every pod at once); pods are ready at once unless ``pods_ready`` is False;
- the pod ``resize`` subresource; its outcome is switchable (done, Deferred, Infeasible);
- the node proxy to a fake kubelet (``/stats/summary`` and ``/metrics/cadvisor``) and pods'
  own ``/metrics`` at ``/fakepod/{namespace}/{name}/metrics`` (the pod IP is 127.0.0.1 and the
  pod's ``prometheus.io/port`` annotation is this server's port);
- switchable faults: RBAC denials (403) per (verb, resource), throttling (429 with Retry-After),
  injected conflicts (409), and a whole-server outage (503).

Every request is logged in ``requests`` so tests can assert the exact PATCH bodies sent.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from cluster.quantity import parse_quantity
from cluster.sampleapp.http_handler import KeepAliveHandler
from tests.cluster_fakes.fake_kubelet import FakeKubelet


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    status: int = 0


@dataclass
class Faults:
    """Switchable failures; counts are consumed one per matching request."""

    deny: set[tuple[str, str]] = field(default_factory=set)
    """(verb, resource) pairs answered 403, e.g. ("patch", "deployments/scale")."""
    throttle: int = 0
    """The next N requests get 429 Too Many Requests."""
    retry_after_s: int = 1
    """Retry-After header sent with a 429."""
    conflicts: int = 0
    """The next N PATCH requests get 409 Conflict (another writer got there first)."""
    down: bool = False
    """Every request gets 503."""
    vpa_crd_installed: bool = True
    """False: listing VerticalPodAutoscalers answers 404, as on a cluster without the VPA CRD."""
    resize_outcome: str = "done"
    """What the kubelet does with a pod resize: "done", "Deferred" or "Infeasible"."""


def _merge(target: Any, patch: Any, strategic: bool) -> Any:
    """RFC 7386 merge patch; with ``strategic``, lists of mappings with a ``name`` are merged by name."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif (
            strategic
            and isinstance(value, list)
            and isinstance(out.get(key), list)
            and all(isinstance(v, dict) and "name" in v for v in value)
        ):
            merged = [copy.deepcopy(x) for x in out[key]]
            for item in value:
                for i, existing in enumerate(merged):
                    if existing.get("name") == item["name"]:
                        merged[i] = _merge(existing, item, strategic)
                        break
                else:
                    merged.append(copy.deepcopy(item))
            out[key] = merged
        else:
            out[key] = _merge(out.get(key), value, strategic)
    return out


def _qos(pod: dict[str, Any]) -> str:
    """The pod's QoS class, as the API server computes it (which a resize may not change)."""
    guaranteed, any_set = True, False
    for c in pod["spec"]["containers"]:
        res = c.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        any_set = any_set or bool(limits or requests)
        for key in ("cpu", "memory"):
            if key not in limits or parse_quantity(requests.get(key, limits[key])) != parse_quantity(limits[key]):
                guaranteed = False
    return "Guaranteed" if guaranteed else ("Burstable" if any_set else "BestEffort")


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.headers = code, reason, message, headers or {}


class FakeApiServer:
    """State plus a ThreadingHTTPServer on a free loopback port; use as a context manager."""

    def __init__(self, kubelet: FakeKubelet | None = None):
        self.lock = threading.RLock()
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.faults = Faults()
        self.requests: list[LoggedRequest] = []
        self.kubelet = kubelet or FakeKubelet()
        self.pods_ready = True
        self.node_name = "node-1"
        self._rv = 100
        self._pod_seq = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        return self

    def write_kubeconfig(self, path: Any) -> Any:
        """A kubeconfig file whose current context is this server (how a user's client finds a
        cluster); returns `path`. JSON is YAML, so the client reads it as it reads any kubeconfig."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "users": [{"name": "fake", "user": {"token": "t"}}],
        }
        path.write_text(json.dumps(config))
        return path

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def api_client(self) -> Any:
        """An official ``kubernetes`` ApiClient pointed at this server."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.retries = 0
        return client.ApiClient(cfg)

    # ---- seeding ------------------------------------------------------------------------------

    def next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def add_deployment(
        self,
        namespace: str,
        name: str,
        replicas: int = 1,
        cpu: str = "500m",
        memory: str = "256Mi",
        labels: dict[str, str] | None = None,
        managed: bool = True,
        requests: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A Deployment with one container named ``name`` (requests = limits unless given), and its pods."""
        meta_labels = dict(labels or {})
        if managed:
            meta_labels["aware-ray.io/managed"] = "true"
        res = {"limits": {"cpu": cpu, "memory": memory}, "requests": requests or {"cpu": cpu, "memory": memory}}
        obj = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": meta_labels,
                "annotations": {},
                "uid": f"uid-{namespace}-{name}",
                "generation": 1,
                "resourceVersion": self.next_rv(),
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {
                        "labels": {"app": name},
                        "annotations": {"prometheus.io/port": str(self.port), "prometheus.io/path": "/metrics"},
                    },
                    "spec": {"containers": [{"name": name, "image": "sampleapp:latest", "resources": res}]},
                },
            },
            "status": {},
        }
        with self.lock:
            self.objects[("deployments", namespace, name)] = obj
            self.reconcile()
        return obj

    def add_hpa(self, namespace: str, name: str, target: str) -> None:
        with self.lock:
            self.objects[("horizontalpodautoscalers", namespace, name)] = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": namespace, "resourceVersion": self.next_rv()},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                    "minReplicas": 1,
                    "maxReplicas": 10,
                },
            }

    def add_vpa(self, namespace: str, name: str, target: str, mode: str = "Auto") -> None:
        with self.lock:
            self.objects[("verticalpodautoscalers", namespace, name)] = {
                "apiVersion": "autoscaling.k8s.io/v1",
                "kind": "VerticalPodAutoscaler",
                "metadata": {"name": name, "namespace": namespace, "resourceVersion": self.next_rv()},
                "spec": {
                    "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                    "updatePolicy": {"updateMode": mode},
                },
            }

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.objects[("deployments", namespace, name)])

    def pods(self, namespace: str, app: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(o)
                for (k, ns, _), o in sorted(self.objects.items())
                if k == "pods" and ns == namespace and (app is None or o["metadata"]["labels"].get("app") == app)
            ]

    def patches(self, suffix: str = "") -> list[LoggedRequest]:
        """Logged PATCH requests whose path ends with ``suffix`` and that were not dry runs."""
        return [
            r
            for r in self.requests
            if r.method == "PATCH" and r.path.endswith(suffix) and r.query.get("dryRun") != "All"
        ]

    # ---- the Deployment controller ----------------------------------------------------------

    def reconcile(self) -> None:
        """Make pods match each Deployment's replicas and template; refresh Deployment status."""
        with self.lock:
            for (kind, ns, name), dep in list(self.objects.items()):
                if kind != "deployments":
                    continue
                template = dep["spec"]["template"]
                tmpl_hash = hashlib.sha1(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
                rs_name = f"{name}-{tmpl_hash}"
                owned = [
                    (key, p)
                    for key, p in self.objects.items()
                    if key[0] == "pods" and key[1] == ns and p["metadata"]["labels"].get("app") == name
                ]
                for key, p in owned:
                    if p["metadata"]["labels"].get("pod-template-hash") != tmpl_hash:
                        del self.objects[key]
                owned = [(key, p) for key, p in owned if key in self.objects]
                want = int(dep["spec"].get("replicas", 1))
                for key, _ in owned[want:]:
                    del self.objects[key]
                for _ in range(want - len(owned)):
                    self._pod_seq += 1
                    pod_name = f"{rs_name}-p{self._pod_seq:04d}"
                    spec = copy.deepcopy(template["spec"])
                    spec["nodeName"] = self.node_name
                    statuses = [
                        {
                            "name": c["name"],
                            "ready": self.pods_ready,
                            "restartCount": 0,
                            "image": c["image"],
                            "imageID": "",
                            "resources": copy.deepcopy(c.get("resources", {})),
                        }
                        for c in spec["containers"]
                    ]
                    self.objects[("pods", ns, pod_name)] = {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": pod_name,
                            "namespace": ns,
                            "uid": f"uid-{pod_name}",
                            "labels": {**template["metadata"].get("labels", {}), "pod-template-hash": tmpl_hash},
                            # All fake pods share 127.0.0.1 and this server's port, so the path tells them apart.
                            "annotations": {
                                **template["metadata"].get("annotations", {}),
                                "prometheus.io/path": f"/fakepod/{ns}/{pod_name}/metrics",
                            },
                            "ownerReferences": [
                                {
                                    "apiVersion": "apps/v1",
                                    "kind": "ReplicaSet",
                                    "name": rs_name,
                                    "uid": f"uid-{rs_name}",
                                    "controller": True,
                                }
                            ],
                            "resourceVersion": self.next_rv(),
                            "generation": 1,
                        },
                        "spec": spec,
                        "status": {
                            "phase": "Running",
                            "podIP": "127.0.0.1",
                            "containerStatuses": statuses,
                            "conditions": [{"type": "Ready", "status": str(self.pods_ready)}],
                        },
                    }
                ready = sum(
                    1
                    for key, p in self.objects.items()
                    if key[0] == "pods"
                    and key[1] == ns
                    and p["metadata"]["labels"].get("app") == name
                    and p["status"]["conditions"][0]["status"] == "True"
                )
                dep["status"] = {
                    "observedGeneration": dep["metadata"]["generation"],
                    "replicas": want,
                    "updatedReplicas": want,
                    "readyReplicas": ready,
                    "availableReplicas": ready,
                }

    def set_pods_ready(self, namespace: str, ready: bool) -> None:
        with self.lock:
            for (kind, ns, _), p in self.objects.items():
                if kind == "pods" and ns == namespace:
                    for s in p["status"]["containerStatuses"]:
                        s["ready"] = ready
                    p["status"]["conditions"][0]["status"] = str(ready)
            self.reconcile()

    # ---- request handling --------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(KeepAliveHandler):
            def _go(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                server._dispatch(self, method, raw)

            def do_GET(self) -> None:
                self._go("GET")

            def do_PATCH(self) -> None:
                self._go("PATCH")

        return Handler

    def _dispatch(self, h: BaseHTTPRequestHandler, method: str, raw: bytes) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip()
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        entry = LoggedRequest(method, unquote(parts.path), query, ctype, body)
        with self.lock:
            self.requests.append(entry)
        try:
            status, payload, content_type = self._route(method, entry.path, query, ctype, body)
            headers: dict[str, str] = {}
        except ApiError as err:
            status, content_type, headers = err.code, "application/json", err.headers
            payload = json.dumps(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": err.message,
                    "reason": err.reason,
                    "code": err.code,
                }
            )
        entry.status = status
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    _ROUTES: ClassVar[list[tuple[str, str, str]]] = [
        # (method, regex, handler name)
        ("GET", r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments", "list_deployments"),
        ("GET", r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)", "get_deployment"),
        ("PATCH", r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)", "patch_deployment"),
        ("GET", r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)/scale", "get_scale"),
        ("PATCH", r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)/scale", "patch_scale"),
        ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods", "list_pods"),
        ("GET", r"/api/v1/pods", "list_pods"),
        ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)", "get_pod"),
        ("PATCH", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/resize", "resize_pod"),
        ("GET", r"/apis/autoscaling/v2/namespaces/(?P<ns>[^/]+)/horizontalpodautoscalers", "list_hpas"),
        ("GET", r"/apis/autoscaling.k8s.io/v1/namespaces/(?P<ns>[^/]+)/verticalpodautoscalers", "list_vpas"),
        ("GET", r"/api/v1/nodes/(?P<name>[^/]+)/proxy/(?P<sub>.+)", "node_proxy"),
        ("GET", r"/fakepod/(?P<ns>[^/]+)/(?P<name>[^/]+)/metrics", "pod_metrics"),
    ]

    _RESOURCES: ClassVar[dict[str, tuple[str, str, str]]] = {
        "list_deployments": ("list", "deployments", "apps"),
        "get_deployment": ("get", "deployments", "apps"),
        "patch_deployment": ("patch", "deployments", "apps"),
        "get_scale": ("get", "deployments/scale", "apps"),
        "patch_scale": ("patch", "deployments/scale", "apps"),
        "list_pods": ("list", "pods", ""),
        "get_pod": ("get", "pods", ""),
        "resize_pod": ("patch", "pods/resize", ""),
        "list_hpas": ("list", "horizontalpodautoscalers", "autoscaling"),
        "list_vpas": ("list", "verticalpodautoscalers", "autoscaling.k8s.io"),
        "node_proxy": ("get", "nodes/proxy", ""),
    }

    def _route(self, method: str, path: str, query: dict[str, str], ctype: str, body: Any) -> tuple[int, Any, str]:
        handler = ""
        match = None
        for m, pattern, name in self._ROUTES:
            match = re.fullmatch(pattern, path)
            if m == method and match:
                handler = name
                break
        if not handler or match is None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({method} {path})")
        args = match.groupdict()
        with self.lock:
            if self.faults.down:
                raise ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request")
            verb, resource, group = self._RESOURCES.get(handler, ("get", "pods/metrics", ""))
            if (verb, resource) in self.faults.deny:
                where = f' in the namespace "{args["ns"]}"' if "ns" in args else ""
                raise ApiError(
                    403,
                    "Forbidden",
                    (
                        f'{resource} "{args.get("name", "")}" is forbidden: User "system:serviceaccount:aware-ray:'
                        f'controller" cannot {verb} resource "{resource}" in API group "{group}"{where}'
                    ),
                )
            if self.faults.throttle > 0:
                self.faults.throttle -= 1
                raise ApiError(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                    {"Retry-After": str(self.faults.retry_after_s)},
                )
            if method == "PATCH":
                if self.faults.conflicts > 0:
                    self.faults.conflicts -= 1
                    raise ApiError(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {resource} "{args["name"]}": '
                        "the object has been modified; please apply your changes to the latest version",
                    )
                if ctype not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                    raise ApiError(400, "BadRequest", f"unsupported patch type {ctype!r} for a mapping body")
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "patch body must be a JSON object")
                if "dryRun" in query and query["dryRun"] != "All":
                    raise ApiError(400, "BadRequest", f"invalid dryRun {query['dryRun']!r}")
            fn: Callable[..., tuple[int, Any, str]] = getattr(self, "_h_" + handler)
            return fn(args, query, ctype, body)

    def _get(self, kind: str, ns: str, name: str) -> dict[str, Any]:
        obj = self.objects.get((kind, ns, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{kind} "{name}" not found')
        return obj

    def _list(self, kind: str, ns: str | None, query: dict[str, str], api_version: str, list_kind: str):
        items = [copy.deepcopy(o) for (k, n, _), o in sorted(self.objects.items()) if k == kind and ns in (None, n)]
        for clause in filter(None, query.get("labelSelector", "").split(",")):
            key, _, value = clause.partition("=")
            items = [o for o in items if o["metadata"].get("labels", {}).get(key) == value]
        for clause in filter(None, query.get("fieldSelector", "").split(",")):
            key, _, value = clause.partition("=")
            if key != "spec.nodeName":
                raise ApiError(400, "BadRequest", f"field selector {key!r} not supported")
            items = [o for o in items if o["spec"].get("nodeName") == value]
        return (
            200,
            {
                "apiVersion": api_version,
                "kind": list_kind,
                "metadata": {"resourceVersion": str(self._rv)},
                "items": items,
            },
            "application/json",
        )

    @staticmethod
    def _check_rv(obj: dict[str, Any], body: dict[str, Any]) -> None:
        sent = (body.get("metadata") or {}).get("resourceVersion")
        if sent is not None and sent != obj["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on "{obj["metadata"]["name"]}": the object '
                "has been modified; please apply your changes to the latest version and try again",
            )

    def _h_list_deployments(self, a, q, c, b):
        return self._list("deployments", a["ns"], q, "apps/v1", "DeploymentList")

    def _h_get_deployment(self, a, q, c, b):
        return 200, copy.deepcopy(self._get("deployments", a["ns"], a["name"])), "application/json"

    def _h_patch_deployment(self, a, q, c, body):
        obj = self._get("deployments", a["ns"], a["name"])
        self._check_rv(obj, body)
        new = _merge(obj, body, strategic=c == "application/strategic-merge-patch+json")
        new["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
        if new["spec"] != obj["spec"]:
            new["metadata"]["generation"] = obj["metadata"]["generation"] + 1
        if q.get("dryRun") == "All":
            return 200, new, "application/json"
        new["metadata"]["resourceVersion"] = self.next_rv()
        self.objects[("deployments", a["ns"], a["name"])] = new
        self.reconcile()
        return 200, copy.deepcopy(new), "application/json"

    def _scale_of(self, dep: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": dep["metadata"]["name"],
                "namespace": dep["metadata"]["namespace"],
                "resourceVersion": dep["metadata"]["resourceVersion"],
            },
            "spec": {"replicas": dep["spec"]["replicas"]},
            "status": {"replicas": dep["status"].get("replicas", 0), "selector": f"app={dep['metadata']['name']}"},
        }

    def _h_get_scale(self, a, q, c, b):
        return 200, self._scale_of(self._get("deployments", a["ns"], a["name"])), "application/json"

    def _h_patch_scale(self, a, q, c, body):
        dep = self._get("deployments", a["ns"], a["name"])
        self._check_rv(dep, body)
        replicas = (body.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}")
        if q.get("dryRun") == "All":
            scale = self._scale_of(dep)
            scale["spec"]["replicas"] = replicas
            return 200, scale, "application/json"
        if replicas != dep["spec"]["replicas"]:
            dep["spec"]["replicas"] = replicas
            dep["metadata"]["generation"] += 1
            dep["metadata"]["resourceVersion"] = self.next_rv()
            self.reconcile()
        return 200, self._scale_of(dep), "application/json"

    def _h_list_pods(self, a, q, c, b):
        return self._list("pods", a.get("ns"), q, "v1", "PodList")

    def _h_get_pod(self, a, q, c, b):
        return 200, copy.deepcopy(self._get("pods", a["ns"], a["name"])), "application/json"

    def _h_resize_pod(self, a, q, c, body):
        pod = self._get("pods", a["ns"], a["name"])
        self._check_rv(pod, body)
        allowed = {"spec"}
        if set(body) - allowed - {"metadata"} or set(body.get("spec", {})) - {"containers"}:
            raise ApiError(422, "Invalid", "pods/resize may only change spec.containers[*].resources")
        for ctr in body.get("spec", {}).get("containers", []):
            if set(ctr) - {"name", "resources"}:
                raise ApiError(422, "Invalid", "pods/resize may only change spec.containers[*].resources")
        new = _merge(pod, {"spec": body["spec"]}, strategic=True)
        if _qos(new) != _qos(pod):
            raise ApiError(
                422,
                "Invalid",
                f'Pod "{a["name"]}" is invalid: spec: Invalid value: "{_qos(new)}": '
                f"Pod QOS Class may not change as a result of resizing (was {_qos(pod)})",
            )
        if q.get("dryRun") == "All":
            return 200, new, "application/json"
        new["metadata"]["resourceVersion"] = self.next_rv()
        new["metadata"]["generation"] = pod["metadata"]["generation"] + 1
        conditions = [x for x in new["status"]["conditions"] if x["type"] not in ("PodResizePending",)]
        outcome = self.faults.resize_outcome
        if outcome == "done":
            by_name = {ctr["name"]: ctr for ctr in new["spec"]["containers"]}
            for s in new["status"]["containerStatuses"]:
                s["resources"] = copy.deepcopy(by_name[s["name"]].get("resources", {}))
        else:
            conditions.append(
                {
                    "type": "PodResizePending",
                    "status": "True",
                    "reason": outcome,
                    "message": f"resize is {outcome.lower()}",
                }
            )
        new["status"]["conditions"] = conditions
        self.objects[("pods", a["ns"], a["name"])] = new
        return 200, copy.deepcopy(new), "application/json"

    def _h_list_hpas(self, a, q, c, b):
        return self._list("horizontalpodautoscalers", a["ns"], q, "autoscaling/v2", "HorizontalPodAutoscalerList")

    def _h_list_vpas(self, a, q, c, b):
        if not self.faults.vpa_crd_installed:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return self._list("verticalpodautoscalers", a["ns"], q, "autoscaling.k8s.io/v1", "VerticalPodAutoscalerList")

    def _h_node_proxy(self, a, q, c, b):
        if a["name"] != self.node_name:
            raise ApiError(404, "NotFound", f'nodes "{a["name"]}" not found')
        pods = [p for (k, _, _), p in self.objects.items() if k == "pods" and p["spec"].get("nodeName") == a["name"]]
        if a["sub"] == "stats/summary":
            return 200, self.kubelet.summary(a["name"], pods), "application/json"
        if a["sub"] == "metrics/cadvisor":
            return 200, self.kubelet.cadvisor(pods), "text/plain; version=0.0.4"
        raise ApiError(404, "NotFound", f"no kubelet endpoint {a['sub']!r}")

    def _h_pod_metrics(self, a, q, c, b):
        pod = self._get("pods", a["ns"], a["name"])
        return 200, self.kubelet.pod_metrics(pod), "text/plain; version=0.0.4"
