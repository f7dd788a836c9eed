"""KubernetesBackend: ``envs.backend.Backend`` against a real cluster.

- ``observe`` reads Deployment state from the API server and usage from the metric store (written
  by the collector). A service without a sample newer than ``staleness_s`` makes it raise
  ``StaleMetrics``: the controller then falls back to its heuristic instead of acting on zeros.
- ``apply`` changes replicas through the Deployment ``scale`` subresource and CPU/memory either in
  place (``pods/resize``, with the limits kept on a Deployment annotation so pods started later are
  resized too) or through the pod template (a rolling restart). Every patch carries the
  resourceVersion it was computed from, so a concurrent writer causes a 409 and a re-read rather
  than a lost update.
- It acts only on Deployments labelled ``aware-ray.io/managed=true`` in allow-listed namespaces, and
  before its first action refuses any Deployment an HPA or an active VPA also targets.
- ``advance`` waits on the wall clock until the next interval.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from cluster import sample_schema as F
from cluster.api_calls import api_client_from_environment, call_api
from cluster.backend_config import MANAGED_LABEL, RESOURCES_ANNOTATION, KubernetesBackendConfig
from cluster.errors import ClusterError, NotManaged, StaleMetrics
from cluster.loadgen_control import LoadInstruction, loadgen_key
from cluster.metric_store import MetricStore, StoreConfig, StoreUnavailable
from cluster.quantity import cpu_cores, format_cpu, format_mem, mem_mib
from envs.app import AppSpec
from envs.metrics import ScalingDecision, ServiceMetrics

log = logging.getLogger(__name__)

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
REQUIRED_FIELDS = (F.PODS, F.CPU_CORES, F.MEM_MIB, F.RPS, F.P50_MS, F.P95_MS, F.P99_MS)


@dataclass(frozen=True)
class Change:
    """One write sent to the API server (kept for logs, dry runs and tests)."""

    verb: str
    resource: str
    namespace: str
    name: str
    body: dict[str, Any]
    dry_run: bool
    outcome: str = ""
    """For a pod resize: "" when applied, else the PodResizePending reason (Deferred, Infeasible)."""


class KubernetesBackend:
    """One app in one namespace of a real cluster."""

    def __init__(
        self,
        app: AppSpec,
        config: KubernetesBackendConfig,
        *,
        api_client: Any = None,
        store: MetricStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ):
        from kubernetes import client

        self.app = app
        self.config = config
        self.api_client = api_client if api_client is not None else api_client_from_environment()
        self.apps_api = client.AppsV1Api(self.api_client)
        self.core_api = client.CoreV1Api(self.api_client)
        self.autoscaling_api = client.AutoscalingV2Api(self.api_client)
        self.custom_api = client.CustomObjectsApi(self.api_client)
        self.store = store or MetricStore(StoreConfig(url=config.redis_url, password=config.redis_password))
        self.clock, self.sleep, self.wall_clock = clock, sleep, wall_clock
        self.changes: list[Change] = []
        """Every write sent (dry run or not), in order."""
        self.ownership_checked = False
        self._t0 = wall_clock()
        self._last_tick = clock()

    # ---- helpers --------------------------------------------------------------------------------

    @property
    def namespace(self) -> str:
        return self.config.namespace

    @property
    def deployments(self) -> list[str]:
        return [self.config.deployment_of(s.name) for s in self.app.services]

    def _call(self, attempt: Callable[[], Any], verb: str, resource: str) -> Any:
        cfg = self.config
        return call_api(
            attempt,
            verb=verb,
            resource=resource,
            namespace=self.namespace,
            max_attempts=cfg.max_attempts,
            backoff_s=cfg.backoff_s,
            max_backoff_s=cfg.max_backoff_s,
            sleep=self.sleep,
        )

    def _assert_allowed(self, namespace: str) -> None:
        if namespace not in self.config.allowed_namespaces:
            raise NotManaged(f"namespace {namespace!r} is not in allowed_namespaces")

    def _read_deployment(self, name: str) -> Any:
        return self._call(
            lambda: self.apps_api.read_namespaced_deployment(
                name, self.namespace, _request_timeout=self.config.request_timeout_s
            ),
            "get",
            "deployments",
        )

    def _container(self, dep: Any) -> Any:
        containers = dep.spec.template.spec.containers
        wanted = self.config.container or dep.metadata.name
        for c in containers:
            if c.name == wanted:
                return c
        if self.config.container:
            raise NotManaged(f"deployment {self.namespace}/{dep.metadata.name} has no container {wanted!r}")
        return containers[0]

    def _limits(self, dep: Any) -> tuple[float, float]:
        """CPU cores and MiB per replica aware-ray last set (annotation), else the template's limits."""
        name = dep.metadata.name
        note = (dep.metadata.annotations or {}).get(RESOURCES_ANNOTATION)
        if note and self.config.vertical == "resize":
            try:
                doc = json.loads(note)
                return cpu_cores(doc["cpu"]), mem_mib(doc["memory"])
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring unreadable %s annotation on %s", RESOURCES_ANNOTATION, name)
        limits = (self._container(dep).resources.limits or {}) if self._container(dep).resources else {}
        if "cpu" not in limits or "memory" not in limits:
            raise NotManaged(f"deployment {self.namespace}/{name}: container needs CPU and memory limits")
        return cpu_cores(limits["cpu"], f"{name}.limits.cpu"), mem_mib(limits["memory"], f"{name}.limits.memory")

    # ---- ownership ------------------------------------------------------------------------------

    def check_ownership(self) -> None:
        """Refuse (``NotManaged``) unless every Deployment is labelled, allow-listed and no HPA/VPA targets it."""
        self._assert_allowed(self.namespace)
        names = set(self.deployments)
        for name in sorted(names):
            dep = self._read_deployment(name)
            if (dep.metadata.labels or {}).get(MANAGED_LABEL) != "true":
                raise NotManaged(
                    f"deployment {self.namespace}/{name} lacks the label {MANAGED_LABEL}=true; "
                    "add it to let aware-ray manage it"
                )
        hpas = self._call(
            lambda: self.autoscaling_api.list_namespaced_horizontal_pod_autoscaler(
                self.namespace, _request_timeout=self.config.request_timeout_s
            ),
            "list",
            "horizontalpodautoscalers",
        )
        for hpa in hpas.items:
            ref = hpa.spec.scale_target_ref
            if ref.kind == "Deployment" and ref.name in names:
                raise NotManaged(
                    f"refusing to manage deployment {self.namespace}/{ref.name}: HorizontalPodAutoscaler "
                    f"{hpa.metadata.name!r} also scales it (two autoscalers would fight); delete the HPA "
                    f"or remove the {MANAGED_LABEL} label"
                )
        for vpa in self._list_vpas():
            ref = (vpa.get("spec") or {}).get("targetRef") or {}
            mode = ((vpa.get("spec") or {}).get("updatePolicy") or {}).get("updateMode", "Auto")
            if ref.get("kind") == "Deployment" and ref.get("name") in names and mode != "Off":
                raise NotManaged(
                    f"refusing to manage deployment {self.namespace}/{ref['name']}: "
                    f"VerticalPodAutoscaler {vpa['metadata']['name']!r} (updateMode {mode}) also sets its "
                    "resources; set its updateMode to Off or delete it"
                )
        self.ownership_checked = True

    def _list_vpas(self) -> list[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException

        def attempt() -> list[dict[str, Any]]:
            try:
                out = self.custom_api.list_namespaced_custom_object(
                    "autoscaling.k8s.io",
                    "v1",
                    self.namespace,
                    "verticalpodautoscalers",
                    _request_timeout=self.config.request_timeout_s,
                )
            except ApiException as exc:
                if exc.status == 404:  # the VPA CRD is not installed: no VPA can target anything
                    return []
                raise
            return list(out.get("items", []))

        return self._call(attempt, "list", "verticalpodautoscalers.autoscaling.k8s.io")

    # ---- observe --------------------------------------------------------------------------------

    def observe(self) -> ServiceMetrics:
        """Metrics of the interval that just ended.

        Raises:
            StaleMetrics: a service has no sample newer than ``staleness_s``, or Redis is unreachable.
            ClusterError: the API server failed (``ApiUnavailable``, ``RbacDenied`` are subclasses). A
                controller catches ``ClusterError`` (StaleMetrics included) and falls back.
        """
        n = self.app.n_services
        replicas, ready, cpu_lim, mem_lim = (np.zeros(n) for _ in range(4))
        samples: list[dict[str, float]] = []
        stale: list[str] = []
        for i, name in enumerate(self.deployments):
            dep = self._read_deployment(name)
            replicas[i] = dep.spec.replicas or 0
            ready[i] = (dep.status.ready_replicas if dep.status else 0) or 0
            cpu_lim[i], mem_lim[i] = self._limits(dep)
            try:
                rows = self.store.read_metrics(self.namespace, name, since_s=self.config.staleness_s)
            except StoreUnavailable as exc:
                raise StaleMetrics(f"metric store unavailable ({exc})", tuple(self.deployments)) from None
            newest: dict[str, dict[str, float]] = {}
            for row in rows:  # oldest first, so the newest per source wins
                newest[row.source] = row.values
            merged = F.merge_sources(list(newest.items()))
            missing = [k for k in REQUIRED_FIELDS if k not in merged]
            if not newest or missing or merged[F.PODS] <= 0:
                stale.append(name)
            samples.append(merged)
        if stale:
            raise StaleMetrics(
                f"no metrics newer than {self.config.staleness_s:g}s for {', '.join(stale)} "
                f"in namespace {self.namespace}",
                tuple(stale),
            )

        def col(key: str, default: float = 0.0) -> np.ndarray:
            return np.array([s.get(key, default) for s in samples], dtype=np.float64)

        def own(key: str, fallback: str) -> np.ndarray:
            # Time at the service itself when the app exports it (what the simulator reports), else the
            # whole handler's time (downstream calls included).
            return np.array([s.get(key, s[fallback]) for s in samples], dtype=np.float64)

        window = np.where(col(F.WINDOW_S) > 0, col(F.WINDOW_S), self.config.interval_s)
        rps = col(F.RPS)
        mean_ms = np.array([s.get(F.OWN_MEAN_MS, s.get(F.MEAN_MS, s[F.P50_MS])) for s in samples])
        # Without a queue gauge, Little's law gives the requests inside the service (an upper bound of the backlog).
        queue = np.array([s[F.QUEUE] if F.QUEUE in s else r * m / 1000.0 for s, r, m in zip(samples, rps, mean_ms)])
        errors = col(F.ERRORS_RPS) * window
        e = self.app.entry
        return ServiceMetrics(
            t_seconds=float(self.wall_clock() - self._t0),
            replicas=replicas,
            ready_replicas=ready,
            pending_replicas=np.maximum(replicas - ready, 0.0),
            cpu_limit=cpu_lim,
            mem_limit=mem_lim,
            cpu_usage=col(F.CPU_CORES),
            mem_usage=col(F.MEM_MIB) / np.maximum(col(F.PODS), 1.0),
            request_rate=rps,
            queue=queue,
            p50_ms=own(F.OWN_P50_MS, F.P50_MS),
            p95_ms=own(F.OWN_P95_MS, F.P95_MS),
            p99_ms=own(F.OWN_P99_MS, F.P99_MS),
            dropped=errors,
            oom_kills=col(F.OOM_KILLS),
            throttled=np.clip(col(F.THROTTLED), 0.0, 1.0),
            external_rps=float(rps[e]),
            e2e_p50_ms=float(samples[e][F.P50_MS]),
            e2e_p95_ms=float(samples[e][F.P95_MS]),
            e2e_p99_ms=float(samples[e][F.P99_MS]),
            dropped_total=float(errors[e]),
        )

    # ---- apply ----------------------------------------------------------------------------------

    def _bounded(self, decision: ScalingDecision) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The decision as whole replicas, millicores and MiB, inside the app's bounds (a last line of defence)."""
        n = self.app.n_services
        arrays = []
        for name, lo_attr, hi_attr in (
            ("replicas", "min_replicas", "max_replicas"),
            ("cpu_limit", "cpu_limit_min", "cpu_limit_max"),
            ("mem_limit", "mem_limit_min", "mem_limit_max"),
        ):
            value = np.asarray(getattr(decision, name), dtype=np.float64)
            if value.shape != (n,):
                raise ValueError(f"decision.{name}: expected shape ({n},), got {value.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"decision.{name}: not finite ({value.tolist()}); the guard must run first")
            lo, hi = self.app.column(lo_attr), self.app.column(hi_attr)
            clipped = np.clip(value, lo, hi)
            if (np.abs(clipped - value) > 1e-9).any():
                log.warning(
                    "decision.%s outside the app's bounds, clamped: %s -> %s", name, value.tolist(), clipped.tolist()
                )
            arrays.append(clipped)
        r, c, m = arrays
        return np.rint(r).astype(np.int64), c, m

    def apply(self, decision: ScalingDecision) -> None:
        """Ask for ``decision``'s replicas and limits (already checked by the guard).

        Idempotent: only what differs is patched. In resize mode each call also resizes pods started
        since the last call from the old template, so call it every interval.

        Raises:
            ValueError: the decision has the wrong shape or non-finite values (nothing was sent).
            NotManaged: a Deployment lacks the label or another autoscaler targets it (checked once).
            ClusterError: the API server refused or failed (``RbacDenied``, ``ApiUnavailable``).
        """
        replicas, cpu, mem = self._bounded(decision)
        self._assert_allowed(self.namespace)
        if not self.ownership_checked:
            self.check_ownership()
        for i, name in enumerate(self.deployments):
            self._set_replicas(name, int(replicas[i]))
            self._set_limits(name, format_cpu(cpu[i]), format_mem(mem[i]))

    def _dry(self) -> str | None:
        return "All" if self.config.dry_run else None

    def _record(self, change: Change) -> None:
        self.changes.append(change)
        log.info(
            "%sPATCH %s %s/%s %s%s",
            "dry-run " if change.dry_run else "",
            change.resource,
            change.namespace,
            change.name,
            json.dumps(change.body, sort_keys=True),
            f" -> {change.outcome}" if change.outcome else "",
        )

    def _set_replicas(self, name: str, want: int) -> None:
        def attempt() -> None:
            scale = self.apps_api.read_namespaced_deployment_scale(
                name, self.namespace, _request_timeout=self.config.request_timeout_s
            )
            if scale.spec.replicas == want:
                return
            body = {"metadata": {"resourceVersion": scale.metadata.resource_version}, "spec": {"replicas": want}}
            self._patch(self.apps_api.patch_namespaced_deployment_scale, "deployments/scale", name, body, MERGE)

        self._call(attempt, "patch", "deployments/scale")

    def _set_limits(self, name: str, cpu: str, mem: str) -> None:
        if self.config.vertical == "template":
            self._call(lambda: self._patch_template(name, cpu, mem), "patch", "deployments")
            return
        selector, ctr_name = self._call(lambda: self._annotate(name, cpu, mem), "patch", "deployments")
        pods = self._call(
            lambda: self.core_api.list_namespaced_pod(
                self.namespace, label_selector=selector, _request_timeout=self.config.request_timeout_s
            ),
            "list",
            "pods",
        )
        for pod in pods.items:
            if pod.metadata.deletion_timestamp is None:
                self._call(lambda p=pod.metadata.name: self._resize_pod(p, ctr_name, cpu, mem), "patch", "pods/resize")

    @staticmethod
    def _resources(current: Any, cpu: str, mem: str) -> dict[str, Any]:
        """New limits, with requests that keep the pod's QoS class (a resize may not change it).

        Guaranteed containers (requests = limits, what the simulator models) get requests = limits;
        Burstable ones keep their request-to-limit ratio per resource.
        """
        limits = {"cpu": cpu, "memory": mem}
        old_limits = (current.limits if current else None) or {}
        old_requests = (current.requests if current else None) or {}
        requests: dict[str, str] = {}
        for key, new, parse, fmt, unit in (
            ("cpu", cpu, cpu_cores, format_cpu, 1000.0),
            ("memory", mem, mem_mib, format_mem, 1.0),
        ):
            if key not in old_requests or key not in old_limits:
                requests[key] = new  # unset requests default to the limits
                continue
            lim, req = parse(old_limits[key]), parse(old_requests[key])
            if lim <= 0 or round(req * unit) >= round(lim * unit):
                requests[key] = new
            else:
                requests[key] = fmt(min(parse(new) * req / lim, parse(new) - 1.0 / unit))
        return {"limits": limits, "requests": requests}

    @staticmethod
    def _same(resources: Any, cpu: str, mem: str) -> bool:
        limits = (resources.limits if resources else None) or {}
        try:
            return round(cpu_cores(limits.get("cpu", "0")) * 1000) == round(cpu_cores(cpu) * 1000) and round(
                mem_mib(limits.get("memory", "0"))
            ) == round(mem_mib(mem))
        except ValueError:
            return False

    def _patch_template(self, name: str, cpu: str, mem: str) -> None:
        dep = self.apps_api.read_namespaced_deployment(
            name, self.namespace, _request_timeout=self.config.request_timeout_s
        )
        ctr = self._container(dep)
        if self._same(ctr.resources, cpu, mem):
            return
        body = {
            "metadata": {"resourceVersion": dep.metadata.resource_version},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": ctr.name, "resources": self._resources(ctr.resources, cpu, mem)}]}
                }
            },
        }
        self._patch(self.apps_api.patch_namespaced_deployment, "deployments", name, body, STRATEGIC)

    def _annotate(self, name: str, cpu: str, mem: str) -> tuple[str, str]:
        """Keep the limits on the Deployment so later pods can be brought in line; returns (pod selector, container)."""
        dep = self.apps_api.read_namespaced_deployment(
            name, self.namespace, _request_timeout=self.config.request_timeout_s
        )
        labels = dep.spec.selector.match_labels or {}
        if not labels:
            raise ClusterError(f"deployment {self.namespace}/{name}: selector has no matchLabels")
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        ctr_name = self._container(dep).name
        note = json.dumps({"container": ctr_name, "cpu": cpu, "memory": mem}, sort_keys=True)
        current = (dep.metadata.annotations or {}).get(RESOURCES_ANNOTATION)
        stale = current != note if current is not None else not self._same(self._container(dep).resources, cpu, mem)
        if stale:
            body = {
                "metadata": {
                    "resourceVersion": dep.metadata.resource_version,
                    "annotations": {RESOURCES_ANNOTATION: note},
                }
            }
            self._patch(self.apps_api.patch_namespaced_deployment, "deployments", name, body, MERGE)
        return selector, ctr_name

    def _send(self, call: Any, name: str, body: dict[str, Any], content_type: str) -> Any:
        """One PATCH of this namespace's object `name`, as every write here is sent: dry run when
        configured, our field manager, an explicit content type (the client needs one for a dict)."""
        return call(
            name,
            self.namespace,
            body,
            dry_run=self._dry(),
            field_manager=self.config.field_manager,
            _content_type=content_type,
            _request_timeout=self.config.request_timeout_s,
        )

    def _patch(self, call: Any, resource: str, name: str, body: dict[str, Any], content_type: str) -> None:
        self._send(call, name, body, content_type)
        self._record(Change("patch", resource, self.namespace, name, body, self.config.dry_run))

    def _resize_pod(self, pod_name: str, ctr_name: str, cpu: str, mem: str) -> None:
        pod = self.core_api.read_namespaced_pod(
            pod_name, self.namespace, _request_timeout=self.config.request_timeout_s
        )
        ctr = next((c for c in pod.spec.containers if c.name == ctr_name), None)
        if ctr is None:
            raise NotManaged(f"pod {self.namespace}/{pod_name} has no container {ctr_name!r}")
        if self._same(ctr.resources, cpu, mem):
            return
        body = {
            "metadata": {"resourceVersion": pod.metadata.resource_version},
            "spec": {"containers": [{"name": ctr_name, "resources": self._resources(ctr.resources, cpu, mem)}]},
        }
        out = self._send(self.core_api.patch_namespaced_pod_resize, pod_name, body, STRATEGIC)
        outcome = ""
        for cond in (out.status.conditions or []) if out.status else []:
            if cond.type == "PodResizePending" and cond.status == "True":
                outcome = cond.reason or "Pending"
                log.warning("resize of pod %s/%s is %s: %s", self.namespace, pod_name, outcome, cond.message or "")
        self._record(Change("patch", "pods/resize", self.namespace, pod_name, body, self.config.dry_run, outcome))

    # ---- time and episodes ----------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Wait until ``seconds`` after the previous tick on the wall clock (no catching up when late)."""
        if not seconds > 0:
            raise ValueError(f"seconds: must be > 0, got {seconds}")
        target = self._last_tick + seconds
        now = self.clock()
        if target > now:
            self.sleep(min(target - now, seconds))
            self._last_tick = target
        else:
            log.warning("control loop is %.1fs late for its interval", now - target)
            self._last_tick = now

    def reset(self, load: LoadInstruction | None = None) -> None:
        """Scale the app back to its initial state, wait until it is ready, then point the load generator at ``load``.

        Raises:
            ClusterError: the app was not ready within ``ready_timeout_s``.
        """
        initial = ScalingDecision(
            replicas=self.app.column("initial_replicas").astype(np.int64),
            cpu_limit=self.app.column("cpu_limit_initial").copy(),
            mem_limit=self.app.column("mem_limit_initial").copy(),
        )
        self.apply(initial)
        if not self.config.dry_run:
            self.wait_ready(initial)
        if load is not None:
            try:
                self.store.set_value(loadgen_key(self.namespace, self.config.loadgen_key_prefix), load.to_dict())
            except StoreUnavailable as exc:
                raise ClusterError(f"could not instruct the load generator of {self.namespace}: {exc}") from None
        self._t0 = self.wall_clock()
        self._last_tick = self.clock()

    def wait_ready(self, decision: ScalingDecision) -> None:
        """Poll until every Deployment has rolled out and has ``decision``'s replicas ready (bounded by time)."""
        deadline = self.clock() + self.config.ready_timeout_s
        poll = min(2.0, self.config.interval_s)
        max_polls = int(self.config.ready_timeout_s / poll) + 2
        waiting: list[str] = []
        for _ in range(max_polls):
            waiting = []
            for i, name in enumerate(self.deployments):
                dep = self._read_deployment(name)
                st = dep.status
                want = int(decision.replicas[i])
                if (
                    st is None
                    or (st.observed_generation or 0) < (dep.metadata.generation or 0)
                    or (st.ready_replicas or 0) != want
                    or (st.updated_replicas or 0) != want
                    or (st.replicas or 0) != want
                ):
                    waiting.append(name)
            if not waiting or self.clock() >= deadline:
                break
            self.sleep(poll)
        if waiting:
            raise ClusterError(
                f"namespace {self.namespace}: not ready after {self.config.ready_timeout_s:g}s: {', '.join(waiting)}"
            )
