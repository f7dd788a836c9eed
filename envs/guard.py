"""The safety guard every scaling decision passes, in training and in the live controller.

Written like the HPA's normalisation (horizontal.go): numbered steps, each clamp recorded with
a reason, so a clamped decision can be explained and counted (``guard/clamped_<reason>``).
Pure functions: the current state is passed in, nothing is read from a clock or a cluster.

Steps, per service:
1. Non-finite requests are replaced by the current value (``InvalidValue``).
2. Replica change per interval: up by at most max(max_up_pods, max_up_percent of current),
   down by at most max_down_percent of current (``ScaleUpLimit`` / ``ScaleDownLimit``), as the
   HPA's default scaling policies.
3. Replica bounds (``TooFewReplicas`` / ``TooManyReplicas``).
4. CPU and memory limit change per interval at most ``max_limit_factor`` either way
   (``CpuStepLimit`` / ``MemStepLimit``), then their bounds (``CpuLimitBounds`` / ``MemLimitBounds``).
5. Memory limit never below observed use times ``mem_headroom``, which would OOM-kill the pods,
   and never lowered while no use is reported (``MemBelowUsage``).
6. Node capacity: the app's reserved CPU and memory (replicas x limits) must fit the node pool;
   increases are cut back, replicas first, then limits (``NodeCapacity``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.app import AppSpec
from envs.errors import ConfigError
from envs.metrics import ScalingDecision

REASONS = (
    "InvalidValue",
    "ScaleUpLimit",
    "ScaleDownLimit",
    "TooFewReplicas",
    "TooManyReplicas",
    "CpuStepLimit",
    "MemStepLimit",
    "CpuLimitBounds",
    "MemLimitBounds",
    "MemBelowUsage",
    "NodeCapacity",
)


@dataclass(frozen=True)
class GuardConfig:
    """Limits on what one decision may change; defaults match the HPA's default behaviour."""

    max_up_pods: int = 4
    """Scale-up may always add this many pods per interval (HPA default: 4 pods per 15 s)."""
    max_up_percent: float = 100.0
    """Or this percentage of the current replicas, whichever is larger (HPA default: 100 %)."""
    max_down_percent: float = 100.0
    """Scale-down may remove at most this percentage per interval (HPA default: 100 %)."""
    max_limit_factor: float = 2.0
    """A CPU or memory limit may grow or shrink by at most this factor per interval."""
    mem_headroom: float = 1.25
    """A memory limit must stay at least this multiple of the observed memory use per replica."""
    node_capacity: bool = True
    """Cut decisions that would not fit the node pool's CPU and memory."""

    def __post_init__(self) -> None:
        if not (isinstance(self.max_up_pods, int) and self.max_up_pods >= 0):
            raise ConfigError(f"guard.max_up_pods: must be an integer >= 0, got {self.max_up_pods!r}")
        if not self.max_up_percent >= 0:
            raise ConfigError(f"guard.max_up_percent: must be >= 0, got {self.max_up_percent}")
        if not 0 <= self.max_down_percent <= 100:
            raise ConfigError(f"guard.max_down_percent: must be in [0, 100], got {self.max_down_percent}")
        if not self.max_limit_factor >= 1:
            raise ConfigError(f"guard.max_limit_factor: must be >= 1, got {self.max_limit_factor}")
        if not self.mem_headroom >= 1:
            raise ConfigError(f"guard.mem_headroom: must be >= 1, got {self.mem_headroom}")

    def up_range(self, current: np.ndarray) -> np.ndarray:
        """Most pods one interval may add, per service."""
        return np.maximum(self.max_up_pods, np.ceil(current * self.max_up_percent / 100.0 - 1e-9))

    def down_range(self, current: np.ndarray) -> np.ndarray:
        """Most pods one interval may remove, per service."""
        return np.floor(current * self.max_down_percent / 100.0 + 1e-9)


@dataclass
class GuardResult:
    """The decision that may be applied, and why each service was clamped."""

    decision: ScalingDecision
    reasons: list[list[str]]
    """Per service, the reasons of the clamps applied (empty when untouched)."""

    def counts(self) -> dict[str, int]:
        """How many services each reason clamped."""
        out = dict.fromkeys(REASONS, 0)
        for rs in self.reasons:
            for r in rs:
                out[r] += 1
        return out

    @property
    def clamped(self) -> int:
        return sum(1 for rs in self.reasons if rs)


def _clamp(value: np.ndarray, lo: np.ndarray, hi: np.ndarray, reasons: list[list[str]], r_lo: str, r_hi: str):
    below, above = value < lo, value > hi
    if not (below.any() or above.any()):
        return value
    for i in np.flatnonzero(below):
        reasons[i].append(r_lo)
    for i in np.flatnonzero(above):
        reasons[i].append(r_hi)
    return np.minimum(np.maximum(value, lo), hi)


def guard(
    want: ScalingDecision,
    current: ScalingDecision,
    mem_usage: np.ndarray,
    app: AppSpec,
    config: GuardConfig,
) -> GuardResult:
    """Clamp `want` so it is safe to apply from `current`; see the module docstring for the steps."""
    n = app.n_services
    reasons: list[list[str]] = [[] for _ in range(n)]
    cur_r = current.replicas.astype(np.float64)
    cur_c = current.cpu_limit.astype(np.float64)
    cur_m = current.mem_limit.astype(np.float64)

    # 1. Non-finite values keep the current setting.
    r = np.asarray(want.replicas, dtype=np.float64).copy()
    c = np.asarray(want.cpu_limit, dtype=np.float64).copy()
    m = np.asarray(want.mem_limit, dtype=np.float64).copy()
    for arr, cur in ((r, cur_r), (c, cur_c), (m, cur_m)):
        bad = ~np.isfinite(arr)
        if not bad.any():
            continue
        arr[bad] = cur[bad]
        for i in np.flatnonzero(bad):
            if "InvalidValue" not in reasons[i]:
                reasons[i].append("InvalidValue")
    r = np.rint(r)

    # 2-3. Replica rate limits, then bounds.
    r = _clamp(
        r, cur_r - config.down_range(cur_r), cur_r + config.up_range(cur_r), reasons, "ScaleDownLimit", "ScaleUpLimit"
    )
    r = _clamp(r, app.column("min_replicas"), app.column("max_replicas"), reasons, "TooFewReplicas", "TooManyReplicas")

    # 4. Limit step per interval, then bounds.
    # Step bounds are rounded outwards to the quantities Kubernetes takes (millicores, MiB), so
    # an action at +/-1, decoded and rounded, is never counted as a clamp.
    f = config.max_limit_factor
    c = _clamp(
        c,
        np.floor(cur_c / f * 1000 + 1e-9) / 1000,
        np.ceil(cur_c * f * 1000 - 1e-9) / 1000,
        reasons,
        "CpuStepLimit",
        "CpuStepLimit",
    )
    c = _clamp(c, app.column("cpu_limit_min"), app.column("cpu_limit_max"), reasons, "CpuLimitBounds", "CpuLimitBounds")
    m = _clamp(m, np.floor(cur_m / f + 1e-9), np.ceil(cur_m * f - 1e-9), reasons, "MemStepLimit", "MemStepLimit")
    m = _clamp(m, app.column("mem_limit_min"), app.column("mem_limit_max"), reasons, "MemLimitBounds", "MemLimitBounds")

    # 5. Never shrink memory under what the pods use now; with no usage reported (no ready
    # pod, a missing metric) nothing is known, so memory may not shrink at all.
    usage = np.asarray(mem_usage, dtype=np.float64)
    unknown = ~np.isfinite(usage) | (usage <= 0)
    floor = np.where(unknown, cur_m, usage * config.mem_headroom)
    floor = np.minimum(floor, app.column("mem_limit_max"))
    low = m < floor
    if low.any():
        for i in np.flatnonzero(low):
            reasons[i].append("MemBelowUsage")
        m = np.where(low, np.ceil(floor - 1e-9), m)

    # 6. Node capacity.
    if config.node_capacity:
        r, c, m = _fit_node(r, c, m, cur_r, cur_c, cur_m, app, reasons)

    c = np.round(c, 3)
    m = np.round(m)
    return GuardResult(ScalingDecision(replicas=r.astype(np.int64), cpu_limit=c, mem_limit=m), reasons)


def _fit_node(r, c, m, cur_r, cur_c, cur_m, app: AppSpec, reasons: list[list[str]]):
    def over(rr: np.ndarray, cc: np.ndarray, mm: np.ndarray) -> bool:
        return (rr * cc).sum() > app.node_cores + 1e-9 or (rr * mm).sum() > app.node_mem_mib + 1e-9

    if not over(r, c, m):
        return r, c, m
    touched = np.zeros(len(r), dtype=bool)
    # Cut replica increases proportionally until the pool fits (limits as requested).
    grow = np.maximum(r - cur_r, 0.0)
    base = np.minimum(r, cur_r)
    if grow.any():
        lo, hi = 0.0, 1.0
        for _ in range(30):
            mid = (lo + hi) / 2
            if over(base + np.floor(grow * mid), c, m):
                hi = mid
            else:
                lo = mid
        new_r = base + np.floor(grow * lo)
        touched |= new_r < r
        r = new_r
    if over(r, c, m):
        # Still too big: undo limit increases as well.
        c_new = np.minimum(c, cur_c)
        m_new = np.minimum(m, cur_m)
        touched |= (c_new < c) | (m_new < m)
        c, m = c_new, m_new
    for i in np.flatnonzero(touched):
        reasons[i].append("NodeCapacity")
    return r, c, m
