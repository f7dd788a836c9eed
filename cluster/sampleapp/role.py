"""A sample-app replica's role, read from environment variables (set by the rendered manifests).

Each field names its variable; a bad value fails at start with one line naming the variable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Downstream:
    """One call edge: a base URL and the expected calls per request (fractions call with that probability)."""

    url: str
    per_request: float


@dataclass(frozen=True)
class Role:
    """What one request costs and whom it calls."""

    name: str
    """SERVICE_NAME: the service (Deployment) name, shown in logs."""
    port: int = 8080
    """PORT: where the app and its /metrics listen."""
    cpu_ms_mean: float = 5.0
    """CPU_MS_MEAN: mean CPU time one request burns, ms of one core."""
    cpu_ms_cv: float = 1.0
    """CPU_MS_CV: coefficient of variation of that time (gamma distributed; 0 = constant)."""
    mem_base_mib: float = 16.0
    """MEM_BASE_MIB: memory held from start, MiB."""
    mem_per_inflight_mib: float = 0.0
    """MEM_PER_INFLIGHT_MIB: extra memory held per request in flight, MiB."""
    workers: int = 1
    """WORKERS: requests processed at once; more wait in the queue (app_queue_depth)."""
    downstream: tuple[Downstream, ...] = ()
    """DOWNSTREAM: ``url=per_request,url=per_request`` (e.g. ``http://text:8080=1,http://media:8080=0.2``)."""
    parallel: bool = False
    """FANOUT: ``parallel`` calls the downstream services at once, ``sequential`` one after another."""
    timeout_s: float = 10.0
    """TIMEOUT_S: a request waiting longer than this for a worker, or a downstream call, fails with 503."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Role:
        def num(var: str, default: float, lo: float = 0.0) -> float:
            text = env.get(var)
            if text is None or text == "":
                return default
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"{var}: expected a number, got {text!r}") from None
            if not math.isfinite(value) or value < lo:
                raise ValueError(f"{var}: must be a finite number >= {lo:g}, got {text!r}")
            return value

        name = env.get("SERVICE_NAME", "")
        if not name:
            raise ValueError("SERVICE_NAME: must be set")
        edges = []
        for i, part in enumerate(p for p in env.get("DOWNSTREAM", "").split(",") if p.strip()):
            url, sep, per = part.strip().rpartition("=")
            if not sep or not url.startswith("http://"):
                raise ValueError(f"DOWNSTREAM: entry {i} must be http://host:port=per_request, got {part!r}")
            try:
                per_f = float(per)
            except ValueError:
                raise ValueError(f"DOWNSTREAM: entry {i} has a bad per_request {per!r}") from None
            if not per_f > 0:
                raise ValueError(f"DOWNSTREAM: entry {i} per_request must be > 0")
            edges.append(Downstream(url.rstrip("/"), per_f))
        fanout = env.get("FANOUT", "sequential")
        if fanout not in ("sequential", "parallel"):
            raise ValueError(f"FANOUT: expected 'sequential' or 'parallel', got {fanout!r}")
        port = num("PORT", 8080)
        workers = num("WORKERS", 1, lo=1)
        if port != int(port) or not 0 <= port < 65536:
            raise ValueError(f"PORT: must be a TCP port, got {env.get('PORT')!r}")
        if workers != int(workers):
            raise ValueError(f"WORKERS: must be an integer, got {env.get('WORKERS')!r}")
        timeout = num("TIMEOUT_S", 10.0)
        if timeout <= 0:
            raise ValueError("TIMEOUT_S: must be > 0")
        return cls(
            name=name,
            port=int(port),
            cpu_ms_mean=num("CPU_MS_MEAN", 5.0),
            cpu_ms_cv=num("CPU_MS_CV", 1.0),
            mem_base_mib=num("MEM_BASE_MIB", 16.0),
            mem_per_inflight_mib=num("MEM_PER_INFLIGHT_MIB", 0.0),
            workers=int(workers),
            downstream=tuple(edges),
            parallel=fanout == "parallel",
            timeout_s=timeout,
        )
