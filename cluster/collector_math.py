"""The collector's arithmetic, as pure functions: counter increases, histogram quantiles, per-Deployment sums.

No I/O and no clock: the caller passes the previous and current readings and the elapsed time, so
each function is tested against a table of exact cases.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cluster import sample_schema as F


def counter_increase(prev: float | None, cur: float) -> float | None:
    """Increase of a monotonic counter since ``prev``; a drop means a restart, so the new value is the increase.

    None when there is no previous reading (nothing to compare with yet).
    """
    if prev is None or not math.isfinite(cur) or not math.isfinite(prev):
        return None
    return cur - prev if cur >= prev else cur


def bucket_increase(prev: Mapping[float, float] | None, cur: Mapping[float, float]) -> dict[float, float] | None:
    """Per-bucket increase of a cumulative histogram (``le`` -> count); a reset in any bucket resets all."""
    if prev is None:
        return None
    if any(cur.get(le, 0.0) < prev.get(le, 0.0) for le in prev):
        return dict(cur)
    return {le: cur[le] - prev.get(le, 0.0) for le in cur}


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Quantile ``q`` of a cumulative histogram, interpolated linearly inside a bucket (as PromQL does).

    ``buckets`` maps upper bounds (``math.inf`` for ``+Inf``) to cumulative counts. Returns None without
    observations. A quantile in the ``+Inf`` bucket returns the largest finite bound; one in the first
    bucket interpolates from 0 (a latency cannot be negative).
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q: must be in [0, 1], got {q}")
    bounds = sorted(buckets)
    if not bounds or bounds[-1] != math.inf:
        raise ValueError("buckets: need a +Inf bucket")
    # Cumulative counts must not decrease; scrape races can break this, so repair as PromQL does.
    counts, running = [], 0.0
    for le in bounds:
        running = max(running, buckets[le])
        counts.append(running)
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    for i, (le, c) in enumerate(zip(bounds, counts)):
        if c >= rank:
            if le == math.inf:
                return bounds[-2] if len(bounds) > 1 else None
            lo = bounds[i - 1] if i > 0 else 0.0
            below = counts[i - 1] if i > 0 else 0.0
            inside = c - below
            if inside <= 0:
                return le
            return lo + (le - lo) * (rank - below) / inside
    return bounds[-2] if len(bounds) > 1 else None


@dataclass
class PodWindow:
    """What one pod did over one collection window (already differenced)."""

    namespace: str
    deployment: str
    window_s: float
    cpu_cores: float | None = None
    """Mean CPU over the window, cores."""
    mem_bytes: float | None = None
    """Working set at the end of the window, bytes."""
    cfs_periods: float | None = None
    cfs_throttled: float | None = None
    requests: float | None = None
    """Requests served in the window (all codes)."""
    errors: float | None = None
    """Requests answered 5xx in the window."""
    latency_buckets: dict[float, float] | None = None
    """Per-bucket increase of the latency histogram in the window (cumulative in ``le``), seconds."""
    latency_sum_s: float | None = None
    latency_count: float | None = None
    own_buckets: dict[float, float] | None = None
    """The same for the optional own-time histogram (queue + own work, downstream calls excluded)."""
    own_sum_s: float | None = None
    own_count: float | None = None
    queue: float | None = None
    oom_kills: float = 0.0


@dataclass
class _Acc:
    pods: int = 0
    window_s: float = 0.0
    cpu: list[float] = field(default_factory=list)
    mem: list[float] = field(default_factory=list)
    periods: float = 0.0
    throttled: float = 0.0
    has_cfs: bool = False
    requests: float = 0.0
    errors: float = 0.0
    request_pods: int = 0
    buckets: dict[float, float] = field(default_factory=dict)
    lat_sum: float = 0.0
    lat_count: float = 0.0
    own_buckets: dict[float, float] = field(default_factory=dict)
    own_sum: float = 0.0
    own_count: float = 0.0
    queue: float = 0.0
    has_queue: bool = False
    oom: float = 0.0


def aggregate(windows: Iterable[PodWindow]) -> dict[tuple[str, str], dict[str, float]]:
    """One sample per (namespace, Deployment) from its pods' windows; a field is left out when no pod had it.

    Sums need every pod's reading (a partial sum would under-report), so one pod without a CPU rate or
    a request count leaves ``cpu_cores`` or ``rps`` out; the reader then treats the Deployment as stale
    rather than idle.
    """
    acc: dict[tuple[str, str], _Acc] = {}
    for w in windows:
        a = acc.setdefault((w.namespace, w.deployment), _Acc())
        a.pods += 1
        a.window_s = max(a.window_s, w.window_s)
        a.cpu.append(w.cpu_cores if w.cpu_cores is not None else math.nan)
        a.mem.append(w.mem_bytes if w.mem_bytes is not None else math.nan)
        if w.cfs_periods is not None and w.cfs_throttled is not None:
            a.periods += w.cfs_periods
            a.throttled += w.cfs_throttled
            a.has_cfs = True
        if w.requests is not None:
            a.requests += w.requests
            a.errors += w.errors or 0.0
            a.request_pods += 1
        if w.latency_buckets is not None:
            for le, n in w.latency_buckets.items():
                a.buckets[le] = a.buckets.get(le, 0.0) + n
            a.lat_sum += w.latency_sum_s or 0.0
            a.lat_count += w.latency_count or 0.0
        if w.own_buckets is not None:
            for le, n in w.own_buckets.items():
                a.own_buckets[le] = a.own_buckets.get(le, 0.0) + n
            a.own_sum += w.own_sum_s or 0.0
            a.own_count += w.own_count or 0.0
        if w.queue is not None:
            a.queue += w.queue
            a.has_queue = True
        a.oom += w.oom_kills
    out: dict[tuple[str, str], dict[str, float]] = {}
    for key, a in acc.items():
        s: dict[str, float] = {F.PODS: float(a.pods), F.WINDOW_S: a.window_s, F.OOM_KILLS: a.oom}
        if all(math.isfinite(x) for x in a.cpu):
            s[F.CPU_CORES] = sum(a.cpu)
        if all(math.isfinite(x) for x in a.mem):
            s[F.MEM_MIB] = sum(a.mem) / 2.0**20
        if a.has_cfs:
            s[F.THROTTLED] = a.throttled / a.periods if a.periods > 0 else 0.0
        if a.request_pods == a.pods and a.window_s > 0:
            s[F.RPS] = a.requests / a.window_s
            s[F.ERRORS_RPS] = a.errors / a.window_s
            s.update(_latency(a.requests, a.buckets, a.lat_sum, a.lat_count, (F.P50_MS, F.P95_MS, F.P99_MS, F.MEAN_MS)))
            if a.own_buckets:
                s.update(
                    _latency(
                        a.requests,
                        a.own_buckets,
                        a.own_sum,
                        a.own_count,
                        (F.OWN_P50_MS, F.OWN_P95_MS, F.OWN_P99_MS, F.OWN_MEAN_MS),
                    )
                )
        if a.has_queue:
            s[F.QUEUE] = a.queue
        out[key] = s
    return out


def _latency(
    requests: float, buckets: dict[float, float], total_s: float, count: float, names: tuple[str, str, str, str]
) -> dict[str, float]:
    """p50, p95, p99 and mean (ms, under ``names``) of one histogram's increase over a window."""
    if requests == 0:
        # No request in the window: nothing waited. Zero is the measurement here, not a gap.
        return dict.fromkeys(names, 0.0)
    if not buckets:
        return {}
    qs = [histogram_quantile(q, buckets) for q in (0.5, 0.95, 0.99)]
    if any(v is None for v in qs):
        return {}
    out = {name: 1000.0 * v for name, v in zip(names[:3], qs)}  # type: ignore[operator]
    if count > 0:
        out[names[3]] = 1000.0 * total_s / count
    return out


def deployment_of(
    pod_name: str,
    owner_kind: str | None,
    owner_name: str | None,
    labels: Mapping[str, str],
    label_keys: Sequence[str] = ("app.kubernetes.io/name", "app"),
) -> str | None:
    """Deployment a pod belongs to: its ReplicaSet owner minus the ``pod-template-hash``, else a name label."""
    template_hash = labels.get("pod-template-hash")
    if owner_kind == "ReplicaSet" and owner_name:
        if template_hash and owner_name.endswith("-" + template_hash):
            return owner_name[: -len(template_hash) - 1]
        head, sep, _ = owner_name.rpartition("-")
        return head if sep else owner_name
    for key in label_keys:
        if labels.get(key):
            return labels[key]
    return None
