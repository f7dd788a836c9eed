"""Application specs: services, their resource profiles and the call graph between them.

An app is loaded from YAML (a shipped name such as ``social-network`` or a file path) and
validated field by field, so a typo fails with one line naming the file and the field rather
than as a shape error deep inside the simulator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from envs.errors import ConfigError

APPS_DIR = Path(__file__).parent / "apps"


@dataclass(frozen=True)
class ServiceSpec:
    """One microservice (a Kubernetes Deployment) and how it consumes resources."""

    name: str
    """Deployment name; unique within the app."""
    cpu_ms_mean: float
    """Mean CPU time one request needs, in milliseconds of one core."""
    cpu_ms_cv: float
    """Coefficient of variation of that CPU time (1.0 = exponential service times)."""
    mem_base_mib: float
    """Resident memory of an idle replica, MiB."""
    mem_per_inflight_mib: float
    """Extra memory per request in flight (queued or in service) on a replica, MiB."""
    startup_s: float
    """Seconds from pod creation (or restart) until the replica is ready to serve."""
    min_replicas: int
    """Lower replica bound, as in an HPA's minReplicas."""
    max_replicas: int
    """Upper replica bound, as in an HPA's maxReplicas."""
    initial_replicas: int
    """Replicas (all ready) at the start of an episode."""
    cpu_limit_min: float
    """Smallest CPU limit per replica a decision may set, cores."""
    cpu_limit_max: float
    """Largest CPU limit per replica a decision may set, cores."""
    cpu_limit_initial: float
    """CPU limit per replica at the start of an episode (also the HPA's request), cores."""
    mem_limit_min: float
    """Smallest memory limit per replica, MiB."""
    mem_limit_max: float
    """Largest memory limit per replica, MiB."""
    mem_limit_initial: float
    """Memory limit per replica at the start of an episode, MiB."""
    parallel_calls: bool = False
    """True when the service calls its children concurrently (fan-out waits for the slowest);
    False when it calls them one after another (their latencies add up)."""


@dataclass(frozen=True)
class AppSpec:
    """An application: services, call graph, SLO and the node it runs on."""

    name: str
    """App name, used in reports."""
    services: tuple[ServiceSpec, ...]
    """Services in a topological order of the call graph (callers before callees)."""
    calls: np.ndarray
    """calls[i, j] = requests service i sends to service j per request it serves."""
    entry: int
    """Index of the service that receives external traffic."""
    slo_ms: float
    """End-to-end p99 latency objective in milliseconds."""
    timeout_s: float
    """A request waiting longer than this in a queue is dropped (counts as a violation)."""
    default_peak_rps: float
    """Peak external request rate workloads are scaled to unless the env config says otherwise."""
    node_cores: float
    """Total allocatable CPU of the node pool, cores; pods that do not fit stay pending."""
    node_mem_mib: float
    """Total allocatable memory of the node pool, MiB."""
    source: str = ""
    """File the spec was loaded from."""
    visits: np.ndarray = field(init=False, repr=False)
    """Requests each service handles per external request (sum over call paths)."""
    _columns: dict[str, np.ndarray] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "visits", _visits(self.calls, self.entry))

    @property
    def n_services(self) -> int:
        return len(self.services)

    def column(self, attr: str) -> np.ndarray:
        """One ServiceSpec attribute as a float array over services (cached; do not modify it)."""
        col = self._columns.get(attr)
        if col is None:
            col = np.array([getattr(s, attr) for s in self.services], dtype=np.float64)
            col.flags.writeable = False
            self._columns[attr] = col
        return col


def _visits(calls: np.ndarray, entry: int) -> np.ndarray:
    n = calls.shape[0]
    e = np.zeros(n)
    e[entry] = 1.0
    # visits = e + calls^T visits, solved exactly since the graph is acyclic.
    return np.linalg.solve(np.eye(n) - calls.T, e)


def _get(d: dict[str, Any], key: str, where: str, kind: type, default: Any = None) -> Any:
    if key not in d:
        if default is not None:
            return default
        raise ConfigError(f"{where}: missing field '{key}'")
    value = d[key]
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{where}.{key}: expected a finite number, got {value!r}")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}.{key}: expected an integer, got {value!r}")
        return value
    if not isinstance(value, kind):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _check_keys(d: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")


def _bounds(d: dict[str, Any], key: str, where: str, kind: type) -> tuple[Any, Any, Any]:
    sub = _get(d, key, where, dict)
    w = f"{where}.{key}"
    _check_keys(sub, {"min", "max", "initial"}, w)
    lo, hi, init = (_get(sub, k, w, kind) for k in ("min", "max", "initial"))
    if not 0 < lo <= init <= hi:
        raise ConfigError(f"{w}: need 0 < min <= initial <= max, got min={lo} initial={init} max={hi}")
    return lo, hi, init


_SERVICE_KEYS = {"name", "cpu_ms", "memory_mib", "startup_s", "replicas", "cpu_limit", "mem_limit", "calls", "fanout"}


def _service(d: Any, where: str) -> tuple[ServiceSpec, list[dict[str, Any]]]:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {d!r}")
    _check_keys(d, _SERVICE_KEYS, where)
    name = _get(d, "name", where, str)
    cpu = _get(d, "cpu_ms", where, dict)
    _check_keys(cpu, {"mean", "cv"}, f"{where}.cpu_ms")
    mem = _get(d, "memory_mib", where, dict)
    _check_keys(mem, {"base", "per_inflight"}, f"{where}.memory_mib")
    r_lo, r_hi, r_init = _bounds(d, "replicas", where, int)
    c_lo, c_hi, c_init = _bounds(d, "cpu_limit", where, float)
    m_lo, m_hi, m_init = _bounds(d, "mem_limit", where, float)
    fanout = d.get("fanout", "sequential")
    if fanout not in ("sequential", "parallel"):
        raise ConfigError(f"{where}.fanout: expected 'sequential' or 'parallel', got {fanout!r}")
    spec = ServiceSpec(
        name=name,
        cpu_ms_mean=_get(cpu, "mean", f"{where}.cpu_ms", float),
        cpu_ms_cv=_get(cpu, "cv", f"{where}.cpu_ms", float, 1.0),
        mem_base_mib=_get(mem, "base", f"{where}.memory_mib", float),
        mem_per_inflight_mib=_get(mem, "per_inflight", f"{where}.memory_mib", float),
        startup_s=_get(d, "startup_s", where, float),
        min_replicas=r_lo,
        max_replicas=r_hi,
        initial_replicas=r_init,
        cpu_limit_min=c_lo,
        cpu_limit_max=c_hi,
        cpu_limit_initial=c_init,
        mem_limit_min=m_lo,
        mem_limit_max=m_hi,
        mem_limit_initial=m_init,
        parallel_calls=fanout == "parallel",
    )
    if spec.cpu_ms_mean <= 0 or spec.cpu_ms_cv < 0:
        raise ConfigError(f"{where}.cpu_ms: need mean > 0 and cv >= 0")
    if spec.mem_base_mib <= 0 or spec.mem_per_inflight_mib < 0:
        raise ConfigError(f"{where}.memory_mib: need base > 0 and per_inflight >= 0")
    if spec.startup_s < 0:
        raise ConfigError(f"{where}.startup_s: must be >= 0, got {spec.startup_s}")
    calls = d.get("calls", [])
    if not isinstance(calls, list):
        raise ConfigError(f"{where}.calls: expected a list of {{to, per_request}}")
    return spec, calls


def app_from_dict(d: Any, source: str = "<dict>") -> AppSpec:
    """Validate a parsed YAML mapping into an AppSpec; errors name `source` and the field."""
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    _check_keys(d, {"name", "slo_ms", "timeout_s", "default_peak_rps", "entry", "node", "services"}, source)
    raw_services = _get(d, "services", source, list)
    if not raw_services:
        raise ConfigError(f"{source}.services: at least one service is needed")
    parsed = [_service(s, f"{source}.services[{i}]") for i, s in enumerate(raw_services)]
    names = [s.name for s, _ in parsed]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}.services: duplicate service name")
    index = {n: i for i, n in enumerate(names)}
    n = len(names)
    calls = np.zeros((n, n))
    for i, (_, edges) in enumerate(parsed):
        for k, e in enumerate(edges):
            w = f"{source}.services[{i}].calls[{k}]"
            if not isinstance(e, dict):
                raise ConfigError(f"{w}: expected a mapping {{to, per_request}}")
            _check_keys(e, {"to", "per_request"}, w)
            to = _get(e, "to", w, str)
            if to not in index:
                raise ConfigError(f"{w}.to: unknown service {to!r}")
            per = _get(e, "per_request", w, float, 1.0)
            if per <= 0:
                raise ConfigError(f"{w}.per_request: must be > 0")
            if index[to] <= i:
                raise ConfigError(f"{w}.to: services must be listed callers first (acyclic call graph)")
            if calls[i, index[to]] > 0:
                raise ConfigError(f"{w}.to: a second call edge to {to!r}; give one edge with the total per_request")
            calls[i, index[to]] = per
    entry_name = d.get("entry", names[0])
    if entry_name not in index:
        raise ConfigError(f"{source}.entry: unknown service {entry_name!r}")
    node = _get(d, "node", source, dict)
    _check_keys(node, {"cores", "mem_gib"}, f"{source}.node")
    app = AppSpec(
        name=_get(d, "name", source, str),
        services=tuple(s for s, _ in parsed),
        calls=calls,
        entry=index[entry_name],
        slo_ms=_get(d, "slo_ms", source, float),
        timeout_s=_get(d, "timeout_s", source, float, 10.0),
        default_peak_rps=_get(d, "default_peak_rps", source, float),
        node_cores=_get(node, "cores", f"{source}.node", float),
        node_mem_mib=_get(node, "mem_gib", f"{source}.node", float) * 1024.0,
        source=source,
    )
    for key, field_name in (
        ("slo_ms", "slo_ms"),
        ("timeout_s", "timeout_s"),
        ("default_peak_rps", "default_peak_rps"),
        ("node_cores", "node.cores"),
        ("node_mem_mib", "node.mem_gib"),
    ):
        if getattr(app, key) <= 0:
            raise ConfigError(f"{source}.{field_name}: must be > 0")
    return app


def shipped_apps() -> list[str]:
    """Names of the apps that ship with the package."""
    return sorted(p.stem for p in APPS_DIR.glob("*.yaml"))


def load_app(name_or_path: str | Path) -> AppSpec:
    """Load a shipped app by name (``chain3``) or an app YAML by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = APPS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ConfigError(f"unknown app {str(name_or_path)!r} (shipped: {', '.join(shipped_apps())})")
    if not path.exists():
        raise ConfigError(f"{path}: app file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return app_from_dict(data, str(path.name if path.parent == APPS_DIR else path))
