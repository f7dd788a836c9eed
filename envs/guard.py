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


STEP_ORDER = (
    "InvalidValue",
    "ScaleDownLimit",
    "ScaleUpLimit",
    "TooFewReplicas",
    "TooManyReplicas",
    "CpuStepLimit",
    "CpuLimitBounds",
    "MemStepLimit",
    "MemLimitBounds",
    "MemBelowUsage",
    "NodeCapacity",
)
"""The reasons in the order the guard's steps apply them (a service's reasons list follows it)."""
R = {name: i for i, name in enumerate(REASONS)}
_STEP_INDEX = [R[name] for name in STEP_ORDER]


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


@dataclass
class GuardBatch:
    """The guard's answer for a batch of apps: decisions as (batch, services) arrays and, per
    reason (``REASONS`` order), which services it clamped."""

    replicas: np.ndarray
    cpu_limit: np.ndarray
    mem_limit: np.ndarray
    flags: np.ndarray
    """(len(REASONS), batch, services) booleans."""

    def counts(self) -> np.ndarray:
        """(len(REASONS), batch): how many services each reason clamped, per app."""
        return self.flags.sum(axis=2)

    def clamped(self) -> np.ndarray:
        """(batch,): services clamped for any reason, per app."""
        return self.flags.any(axis=0).sum(axis=1)

    def result(self, b: int) -> GuardResult:
        """App `b`'s answer as a ``GuardResult``."""
        reasons: list[list[str]] = [[] for _ in range(self.flags.shape[2])]
        for j, s in zip(*np.nonzero(self.flags[_STEP_INDEX, b]), strict=True):  # step order, then service
            reasons[s].append(STEP_ORDER[j])
        decision = ScalingDecision(
            replicas=self.replicas[b].copy(), cpu_limit=self.cpu_limit[b].copy(), mem_limit=self.mem_limit[b].copy()
        )
        return GuardResult(decision, reasons)


def _clamp(value: np.ndarray, lo: np.ndarray, hi: np.ndarray, flags: np.ndarray, r_lo: str, r_hi: str) -> np.ndarray:
    below, above = value < lo, value > hi
    if not (below.any() or above.any()):
        return value
    flags[R[r_lo]] |= below
    flags[R[r_hi]] |= above
    return np.minimum(np.maximum(value, lo), hi)


def guard(
    want: ScalingDecision,
    current: ScalingDecision,
    mem_usage: np.ndarray,
    app: AppSpec,
    config: GuardConfig,
) -> GuardResult:
    """Clamp `want` so it is safe to apply from `current`; see the module docstring for the steps."""
    out = guard_batch(
        np.asarray(want.replicas, dtype=np.float64)[None],
        np.asarray(want.cpu_limit, dtype=np.float64)[None],
        np.asarray(want.mem_limit, dtype=np.float64)[None],
        np.asarray(current.replicas)[None],
        np.asarray(current.cpu_limit)[None],
        np.asarray(current.mem_limit)[None],
        np.asarray(mem_usage, dtype=np.float64)[None],
        app,
        config,
    )
    return out.result(0)


def guard_batch(
    want_replicas: np.ndarray,
    want_cpu: np.ndarray,
    want_mem: np.ndarray,
    cur_replicas: np.ndarray,
    cur_cpu: np.ndarray,
    cur_mem: np.ndarray,
    mem_usage: np.ndarray,
    app: AppSpec,
    config: GuardConfig,
) -> GuardBatch:
    """``guard`` for a batch of apps at once: every argument is (batch, services)."""
    flags = np.zeros((len(REASONS), *np.shape(cur_replicas)), dtype=bool)
    cur_r = np.asarray(cur_replicas, dtype=np.float64)
    cur_c = np.asarray(cur_cpu, dtype=np.float64)
    cur_m = np.asarray(cur_mem, dtype=np.float64)

    # 1. Non-finite values keep the current setting.
    r = np.asarray(want_replicas, dtype=np.float64)
    c = np.asarray(want_cpu, dtype=np.float64)
    m = np.asarray(want_mem, dtype=np.float64)
    bad_r, bad_c, bad_m = ~np.isfinite(r), ~np.isfinite(c), ~np.isfinite(m)
    if bad_r.any() or bad_c.any() or bad_m.any():
        r, c, m = np.where(bad_r, cur_r, r), np.where(bad_c, cur_c, c), np.where(bad_m, cur_m, m)
        flags[R["InvalidValue"]] = bad_r | bad_c | bad_m
    r = np.rint(r)

    # 2-3. Replica rate limits, then bounds.
    r = _clamp(
        r, cur_r - config.down_range(cur_r), cur_r + config.up_range(cur_r), flags, "ScaleDownLimit", "ScaleUpLimit"
    )
    r = _clamp(r, app.column("min_replicas"), app.column("max_replicas"), flags, "TooFewReplicas", "TooManyReplicas")

    # 4. Limit step per interval, then bounds.
    # Step bounds are rounded outwards to the quantities Kubernetes takes (millicores, MiB), so
    # an action at +/-1, decoded and rounded, is never counted as a clamp.
    f = config.max_limit_factor
    c = _clamp(
        c,
        np.floor(cur_c / f * 1000 + 1e-9) / 1000,
        np.ceil(cur_c * f * 1000 - 1e-9) / 1000,
        flags,
        "CpuStepLimit",
        "CpuStepLimit",
    )
    c = _clamp(c, app.column("cpu_limit_min"), app.column("cpu_limit_max"), flags, "CpuLimitBounds", "CpuLimitBounds")
    m = _clamp(m, np.floor(cur_m / f + 1e-9), np.ceil(cur_m * f - 1e-9), flags, "MemStepLimit", "MemStepLimit")
    m = _clamp(m, app.column("mem_limit_min"), app.column("mem_limit_max"), flags, "MemLimitBounds", "MemLimitBounds")

    # 5. Never shrink memory under what the pods use now; with no usage reported (no ready
    # pod, a missing metric) nothing is known, so memory may not shrink at all.
    usage = np.asarray(mem_usage, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        unknown = ~np.isfinite(usage) | (usage <= 0)
        floor = np.where(unknown, cur_m, usage * config.mem_headroom)
    floor = np.minimum(floor, app.column("mem_limit_max"))
    low = m < floor
    flags[R["MemBelowUsage"]] = low
    m = np.where(low, np.ceil(floor - 1e-9), m)

    # 6. Node capacity.
    if config.node_capacity:
        r, c, m = _fit_node(r, c, m, cur_r, cur_c, cur_m, app, flags)

    return GuardBatch(r.astype(np.int64), np.round(c, 3), np.round(m), flags)


def _over(r: np.ndarray, c: np.ndarray, m: np.ndarray, app: AppSpec) -> np.ndarray:
    """Per app, whether replicas x limits exceed the node pool's CPU or memory."""
    return (np.add.reduce(r * c, axis=-1) > app.node_cores + 1e-9) | (
        np.add.reduce(r * m, axis=-1) > app.node_mem_mib + 1e-9
    )


SHARE_BITS = 30
"""Resolution of the share of a replica increase the node-capacity step keeps (2^-30)."""


def fitting_share(grow: np.ndarray, base: np.ndarray, cpu: np.ndarray, mem: np.ndarray, app: AppSpec) -> np.ndarray:
    """Per app (rows), the largest share t in [0, 1) on the grid of 2^-SHARE_BITS (0 if none) for
    which ``base + floor(grow x t)`` replicas fit the node pool.

    Reserved CPU and memory only grow with t (floating-point rounding is monotone too), so the
    answer is what a bisection of SHARE_BITS halvings finds. This search decides ``bits`` of the
    share per round by trying its 2^bits - 1 candidates at once, for all apps in one numpy
    computation: 5 bits (31 candidates, 6 rounds) where few apps search, where numpy's per-call
    cost dominates; 2 bits (3 candidates, 15 rounds) for many, where the arrays' size does.
    """
    share = np.zeros(grow.shape[0])
    # Where even no increase fits, no share does.
    rows = np.flatnonzero(~_over(base, cpu, mem, app))
    if not rows.size:
        return share
    grow, base, cpu, mem = grow[rows, None, :], base[rows, None, :], cpu[rows, None, :], mem[rows, None, :]
    bits = 5 if rows.size <= 4 else 2
    lo = np.zeros(rows.size)
    k = np.arange(1, 2**bits, dtype=np.float64)
    step = 1.0
    for _ in range(SHARE_BITS // bits):
        step /= 2**bits
        t = lo[:, None] + step * k  # exact: multiples of 2^-SHARE_BITS below 1
        fits = ~_over(base + np.floor(grow * t[:, :, None]), cpu, mem, app)
        lo = lo + step * fits.sum(axis=1)
    share[rows] = lo
    return share


def _fit_node(r, c, m, cur_r, cur_c, cur_m, app: AppSpec, flags: np.ndarray):
    over = np.flatnonzero(_over(r, c, m, app))
    if not over.size:
        return r, c, m
    r, c, m = r.copy(), c.copy(), m.copy()
    touched = np.zeros(r.shape, dtype=bool)
    # Cut replica increases proportionally until the pool fits (limits as requested): keep the
    # largest share of each app's increase, on a grid of 2^-SHARE_BITS, with which it fits.
    grow = np.maximum(r - cur_r, 0.0)
    base = np.minimum(r, cur_r)
    rows = over[grow[over].any(axis=1)]
    if rows.size:
        share = fitting_share(grow[rows], base[rows], c[rows], m[rows], app)
        new_r = base[rows] + np.floor(grow[rows] * share[:, None])
        touched[rows] |= new_r < r[rows]
        r[rows] = new_r
    still = over[_over(r[over], c[over], m[over], app)]
    if still.size:
        # Still too big: undo limit increases as well.
        c_new = np.minimum(c[still], cur_c[still])
        m_new = np.minimum(m[still], cur_m[still])
        touched[still] |= (c_new < c[still]) | (m_new < m[still])
        c[still], m[still] = c_new, m_new
    flags[R["NodeCapacity"]] |= touched
    return r, c, m
