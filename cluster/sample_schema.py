"""Field names of one per-Deployment metric sample, shared by the collector (writer) and the backend (reader).

A change of meaning here is a change of ``metric_store.SCHEMA_VERSION``. Each collector (one per node)
writes its own samples under the Deployment's key with its node as ``source``; the reader merges the
newest sample of each source (``merge_sources``).
"""

from __future__ import annotations

WINDOW_S = "window_s"
"""Length of the interval the sample covers, seconds."""
PODS = "pods"
"""Pods of the Deployment the collector saw (on its node; the backend sums over nodes)."""
CPU_CORES = "cpu_cores"
"""CPU used by those pods together, cores, mean over the window."""
MEM_MIB = "mem_mib"
"""Working-set memory summed over those pods, MiB (the backend divides by pods)."""
THROTTLED = "throttled"
"""Share of CFS periods throttled over the window, 0..1."""
RPS = "rps"
"""Requests per second served (all status codes)."""
ERRORS_RPS = "errors_rps"
"""Requests per second answered with a 5xx status."""
P50_MS, P95_MS, P99_MS = "p50_ms", "p95_ms", "p99_ms"
"""Latency percentiles of the service's requests over the window, ms: the whole handler, downstream
calls included (at the entry service this is the end-to-end latency)."""
MEAN_MS = "mean_ms"
"""Mean latency over the window (histogram sum / count), ms."""
QUEUE = "queue"
"""Requests waiting for a worker (sum of the pods' queue gauge), when the app exports one."""
OOM_KILLS = "oom_kills"
"""Containers restarted after an OOM kill during the window."""

OWN_P50_MS, OWN_P95_MS, OWN_P99_MS = "own_p50_ms", "own_p95_ms", "own_p99_ms"
"""Percentiles of the time a request spends at the service itself (queue + own work, downstream calls
excluded), from the optional own-time histogram; the simulator's per-service latency means this."""
OWN_MEAN_MS = "own_mean_ms"
"""Mean of that time, ms."""

LATENCY_FIELDS = (P50_MS, P95_MS, P99_MS, MEAN_MS, OWN_P50_MS, OWN_P95_MS, OWN_P99_MS, OWN_MEAN_MS)

SUMMED = (PODS, CPU_CORES, MEM_MIB, RPS, ERRORS_RPS, QUEUE, OOM_KILLS)
"""Fields that add up over nodes."""


def merge_sources(samples: list[tuple[str, dict[str, float]]]) -> dict[str, float]:
    """One Deployment-wide sample from the newest sample of each source (node).

    Sums add up; the throttled share is weighted by pods and latencies by request rate. Merging
    percentiles by weight is an approximation (exact with a single node); the collectors would
    have to ship histogram buckets to do better.
    """
    out: dict[str, float] = {}
    if not samples:
        return out
    for key in SUMMED:
        values = [s[key] for _, s in samples if key in s]
        if values:
            out[key] = float(sum(values))
    pods = [s.get(PODS, 0.0) for _, s in samples]
    if any(THROTTLED in s for _, s in samples):
        total = sum(pods)
        out[THROTTLED] = (
            sum(s.get(THROTTLED, 0.0) * p for (_, s), p in zip(samples, pods)) / total
            if total > 0
            else max(s.get(THROTTLED, 0.0) for _, s in samples)
        )
    for key in LATENCY_FIELDS:
        pairs = [(s[key], s.get(RPS, 0.0)) for _, s in samples if key in s]
        if pairs:
            weight = sum(w for _, w in pairs)
            out[key] = sum(v * w for v, w in pairs) / weight if weight > 0 else max(v for v, _ in pairs)
    out[WINDOW_S] = max((s.get(WINDOW_S, 0.0) for _, s in samples), default=0.0)
    return out
