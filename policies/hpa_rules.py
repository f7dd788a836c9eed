"""The Kubernetes Horizontal Pod Autoscaler decision rules, as pure functions.

Why this module exists: the RL autoscaler is judged against the HPA, so the baseline must take the
decision the kube-controller-manager would take from the same observations, including its quirks
(integer-percent utilization, the unready/missing pod rebalancing, the 5-minute scale-down
stabilization, the per-period rate limits). A "roughly HPA-like" rule would make the comparison
flattering or unfair in ways nobody could see. The rules follow ``ReplicaCalculator.GetResourceReplicas``
(pkg/controller/podautoscaler/replica_calculator.go) and the normalization in
pkg/controller/podautoscaler/horizontal.go, rewritten for seconds-as-floats instead of wall clocks.

Time and history are always arguments: nothing here reads a clock, and the only state lives in
``HPAController``, which exists so a simulator can drive one HPA per Deployment with a single call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# Kubernetes stores replica counts and policy results as int32; the rate-limit helpers start from these
# sentinels so that a rule set without policies behaves exactly as it does in the controller.
_INT32_MAX = 2**31 - 1
_INT32_MIN = -(2**31)

# Reasons of replica_recommendation (not Kubernetes condition reasons: the controller only returns a
# number or an error there, so these name the branch that produced the number).
REASON_NO_PODS = "NoPods"
REASON_NO_METRICS = "NoMetrics"
REASON_WITHIN_TOLERANCE = "WithinTolerance"
REASON_DIRECTION_CHANGED = "DirectionChanged"
REASON_ABOVE_TARGET = "AboveTarget"
REASON_BELOW_TARGET = "BelowTarget"

# Kubernetes HPA condition reasons (AbleToScale / ScalingLimited / ScalingActive) returned by normalize and step.
REASON_SCALE_UP_STABILIZED = "ScaleUpStabilized"
REASON_SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
REASON_SCALE_UP_LIMIT = "ScaleUpLimit"
REASON_SCALE_DOWN_LIMIT = "ScaleDownLimit"
REASON_TOO_FEW_REPLICAS = "TooFewReplicas"
REASON_TOO_MANY_REPLICAS = "TooManyReplicas"
REASON_DESIRED_WITHIN_RANGE = "DesiredWithinRange"
REASON_SCALING_DISABLED = "ScalingDisabled"
REASON_FAILED_GET_RESOURCE_METRIC = "FailedGetResourceMetric"
# Not a Kubernetes reason: HPAController.step was called before the next sync period started.
REASON_AWAITING_SYNC = "AwaitingSync"


# --------------------------------------------------------------------------------------------------
# Observations
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PodSample:
    """What the HPA sees of one pod at one sync: its status and its CPU metric.

    Fields are keyword-only because several are optional and the order that reads naturally
    (identity, status, timing, resources) would otherwise force defaults onto required fields.

    ``started_s`` is the pod's ``status.startTime``; ``ready_changed_s`` is the last transition time of
    its Ready condition. Either being ``None`` means Kubernetes has no such record yet, and the HPA then
    treats the pod as unready. ``usage`` is ``None`` when metrics-server returned nothing for the pod.
    ``metric_time_s``/``metric_window_s`` are the metric's timestamp and averaging window: during the CPU
    initialization period a sample whose window overlaps the pod's last readiness change is discarded,
    because it averages over warm-up CPU. ``metric_time_s=None`` means "a fresh sample taken now".
    """

    name: str
    ready: bool
    phase: str
    deleting: bool = False
    started_s: float | None
    ready_changed_s: float | None
    request: float
    usage: float | None
    metric_time_s: float | None = None
    metric_window_s: float = 30.0

    def __post_init__(self) -> None:
        # Kubernetes refuses to compute utilization for a pod without a CPU request; fail at the source.
        if not self.request > 0:
            raise ValueError(f"pod {self.name!r}: CPU request must be > 0, got {self.request}")
        if self.usage is not None and self.usage < 0:
            raise ValueError(f"pod {self.name!r}: CPU usage must be >= 0, got {self.usage}")
        if self.metric_window_s < 0:
            raise ValueError(f"pod {self.name!r}: metric window must be >= 0, got {self.metric_window_s}")


@dataclass(frozen=True)
class PodGroups:
    """How the HPA classified the pods (Kubernetes ``groupPods``)."""

    ready_count: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def group_pods(
    pods: Sequence[PodSample],
    now_s: float,
    cpu_initialization_period_s: float = 300.0,
    initial_readiness_delay_s: float = 30.0,
) -> PodGroups:
    """Classify pods the way ``groupPods`` does for the CPU resource.

    Ignored: being deleted or Failed (their metrics are dropped entirely). Unready: Pending, or judged
    unready for CPU: no start time / Ready record; within the initialization period, not ready or with a
    metric window that overlaps the last readiness change; after it, not ready and never ready since
    start (the Ready condition last changed within ``initial_readiness_delay_s`` of start). Missing: a
    running pod without a metric. The order of the checks matters and is the controller's: a Pending pod
    is unready even with a metric, an unready pod without a metric is missing.
    """
    ready_count = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleting or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        if pod.usage is None:
            missing.add(pod.name)
            continue
        if pod.ready_changed_s is None or pod.started_s is None:
            is_unready = True
        elif pod.started_s + cpu_initialization_period_s > now_s:
            metric_time = now_s if pod.metric_time_s is None else pod.metric_time_s
            is_unready = (not pod.ready) or metric_time < pod.ready_changed_s + pod.metric_window_s
        else:
            is_unready = (not pod.ready) and pod.started_s + initial_readiness_delay_s > pod.ready_changed_s
        if is_unready:
            unready.add(pod.name)
            continue
        ready_count += 1
    return PodGroups(ready_count, frozenset(unready), frozenset(missing), frozenset(ignored))


def _millicores(cores: float) -> int:
    """Convert cores to the integer millicores the controller works in.

    Metrics arrive in nanocores and ``Quantity.MilliValue`` rounds up; rounding to nanocores first keeps
    float noise (0.3 * 1000 = 300.00000000000006) from turning into an extra millicore.
    """
    nano = round(cores * 1e9)
    return -((-nano) // 1_000_000)


def _utilization_ratio(metrics: dict[str, int], requests: dict[str, int], target_percent: float) -> tuple[float, int]:
    """Return (usage ratio, utilization percent) as ``GetResourceUtilizationRatio`` computes them.

    The percent is truncated to an integer *before* the ratio is taken, exactly like the controller;
    this is what makes e.g. 1.0299 utilization against a 1.0 target read as 102 %, inside tolerance.
    """
    usage_total = 0
    request_total = 0
    for name, value in metrics.items():
        if name in requests:
            usage_total += value
            request_total += requests[name]
    percent = (usage_total * 100) // request_total
    return percent / target_percent, percent


def replica_recommendation(
    current_replicas: int,
    pods: Sequence[PodSample],
    target_utilization: float,
    now_s: float,
    tolerance: float = 0.1,
    cpu_initialization_period_s: float = 300.0,
    initial_readiness_delay_s: float = 30.0,
) -> tuple[int, float, str]:
    """Desired replicas from CPU utilization, as ``ReplicaCalculator.GetResourceReplicas``.

    Returns (desired replicas, utilization of the ready pods with metrics as a fraction of their requests,
    reason). The utilization is the integer percent the HPA reports, divided by 100. When no pods exist or
    no usable metric is left the HPA cannot compute anything; the current count is returned with reason
    ``NoPods``/``NoMetrics`` (the controller then raises FailedGetResourceMetric and does not scale).

    The rebalancing is the part a naive formula misses: when pods lack metrics, they are assumed to use
    100 % of their request on a scale-down and 0 % on a scale-up, and unready pods count as 0 % on a
    scale-up, so that neither a metrics gap nor a slow start causes an over-reaction. If that reassessment
    lands inside the tolerance or flips the direction, the HPA keeps the current count.
    """
    if target_utilization <= 0:
        raise ValueError(f"target_utilization must be > 0, got {target_utilization}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    names = [pod.name for pod in pods]
    if len(set(names)) != len(names):
        raise ValueError("pod names must be unique")
    if not pods:
        return current_replicas, 0.0, REASON_NO_PODS

    groups = group_pods(pods, now_s, cpu_initialization_period_s, initial_readiness_delay_s)
    dropped = groups.ignored | groups.unready
    metrics = {pod.name: _millicores(pod.usage) for pod in pods if pod.usage is not None and pod.name not in dropped}
    requests = {pod.name: _millicores(pod.request) for pod in pods}
    if not metrics:
        return current_replicas, 0.0, REASON_NO_METRICS

    # Targets are integer percents in Kubernetes; snapping removes 0.3 * 100 = 30.000000000000004.
    target_percent = round(target_utilization * 100.0, 9)
    usage_ratio, percent = _utilization_ratio(metrics, requests, target_percent)
    utilization = percent / 100.0

    scale_up_with_unready = bool(groups.unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - usage_ratio) <= tolerance:
            return current_replicas, utilization, REASON_WITHIN_TOLERANCE
        return math.ceil(usage_ratio * groups.ready_count), utilization, _direction(usage_ratio)

    if groups.missing:
        if usage_ratio < 1.0:
            for name in groups.missing:
                metrics[name] = requests[name]
        elif usage_ratio > 1.0:
            for name in groups.missing:
                metrics[name] = 0
    if scale_up_with_unready:
        for name in groups.unready:
            metrics[name] = 0

    new_ratio, _ = _utilization_ratio(metrics, requests, target_percent)
    if abs(1.0 - new_ratio) <= tolerance:
        return current_replicas, utilization, REASON_WITHIN_TOLERANCE
    if (usage_ratio < 1.0 < new_ratio) or (usage_ratio > 1.0 > new_ratio):
        return current_replicas, utilization, REASON_DIRECTION_CHANGED
    new_replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (new_ratio > 1.0 and new_replicas < current_replicas):
        # Counting the extra pods would move the replica count against the metric's direction.
        return current_replicas, utilization, REASON_DIRECTION_CHANGED
    return new_replicas, utilization, _direction(new_ratio)


def _direction(ratio: float) -> str:
    return REASON_ABOVE_TARGET if ratio > 1.0 else REASON_BELOW_TARGET


# --------------------------------------------------------------------------------------------------
# Behavior (spec.behavior) and history
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalingPolicy:
    """One ``HPAScalingPolicy``: change by at most ``value`` pods or percent per ``period_s`` seconds."""

    kind: Literal["Pods", "Percent"]
    value: int
    period_s: float

    def __post_init__(self) -> None:
        if self.kind not in ("Pods", "Percent"):
            raise ValueError(f"policy kind must be 'Pods' or 'Percent', got {self.kind!r}")
        if self.value <= 0:
            raise ValueError(f"policy value must be > 0, got {self.value}")
        if self.period_s <= 0:
            raise ValueError(f"policy period must be > 0, got {self.period_s}")


@dataclass(frozen=True)
class ScalingRules:
    """``HPAScalingRules`` for one direction: a stabilization window and rate-limit policies."""

    stabilization_window_s: float
    policies: tuple[ScalingPolicy, ...]
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"

    def __post_init__(self) -> None:
        if self.stabilization_window_s < 0:
            raise ValueError(f"stabilization window must be >= 0, got {self.stabilization_window_s}")
        if self.select_policy not in ("Max", "Min", "Disabled"):
            raise ValueError(f"select_policy must be Max, Min or Disabled, got {self.select_policy!r}")

    @property
    def longest_period_s(self) -> float:
        """Scale events older than this can no longer limit anything and may be forgotten."""
        return max((policy.period_s for policy in self.policies), default=0.0)


@dataclass(frozen=True)
class HPABehavior:
    """``spec.behavior`` with both directions filled in."""

    scale_up: ScalingRules
    scale_down: ScalingRules

    @staticmethod
    def default() -> HPABehavior:
        """The defaults Kubernetes fills in for a behavior: fast up (x2 or +4 per 15 s), 300 s stabilized down."""
        return HPABehavior(
            scale_up=ScalingRules(
                stabilization_window_s=0.0,
                policies=(ScalingPolicy("Percent", 100, 15.0), ScalingPolicy("Pods", 4, 15.0)),
                select_policy="Max",
            ),
            scale_down=ScalingRules(
                stabilization_window_s=300.0,
                policies=(ScalingPolicy("Percent", 100, 15.0),),
                select_policy="Max",
            ),
        )


@dataclass(frozen=True)
class Recommendation:
    """An unstabilized replica recommendation and when it was made (``timestampedRecommendation``)."""

    t_s: float
    replicas: int


@dataclass(frozen=True)
class ScaleEvent:
    """A past rescale: ``change`` is the number of pods added (in the scale-up list) or removed (scale-down list).

    Kubernetes keeps the magnitude positive in both lists, and so do we, so the period arithmetic
    (start = current - added + removed) reads the same as in the controller.
    """

    t_s: float
    change: int


def stabilize_recommendation(
    current_replicas: int,
    desired: int,
    behavior: HPABehavior,
    recommendations: Sequence[Recommendation],
    now_s: float,
) -> tuple[int, str, tuple[Recommendation, ...]]:
    """Apply the stabilization windows (``stabilizeRecommendationWithBehaviors``).

    The result is the current count pulled towards ``desired`` but never above the lowest recommendation
    of the scale-up window nor below the highest of the scale-down window: a brief dip cannot remove pods
    that a recommendation from less than 300 s ago still asked for. Returns (stabilized replicas, the
    reason Kubernetes would report if it differs from ``desired``, updated history). The history keeps
    only entries still inside the longer window plus the new one; Kubernetes recycles an obsolete slot
    instead, which leaves the same entries in effect.
    """
    up_cutoff = now_s - behavior.scale_up.stabilization_window_s
    down_cutoff = now_s - behavior.scale_down.stabilization_window_s
    up_recommendation = desired
    down_recommendation = desired
    for rec in recommendations:
        if rec.t_s > up_cutoff:
            up_recommendation = min(up_recommendation, rec.replicas)
        if rec.t_s > down_cutoff:
            down_recommendation = max(down_recommendation, rec.replicas)

    stabilized = min(max(current_replicas, up_recommendation), down_recommendation)

    obsolete_before = min(up_cutoff, down_cutoff)
    history = (*(rec for rec in recommendations if rec.t_s >= obsolete_before), Recommendation(now_s, desired))
    reason = REASON_SCALE_UP_STABILIZED if desired >= current_replicas else REASON_SCALE_DOWN_STABILIZED
    return stabilized, reason, history


def replicas_change_in_period(period_s: float, events: Sequence[ScaleEvent], now_s: float) -> int:
    """Sum of the changes strictly inside the last ``period_s`` seconds (``getReplicasChangePerPeriod``).

    Strictly: with a 15 s period and a 15 s sync, the previous sync's rescale no longer counts, as in
    the real controller where the next sync always starts slightly more than a period later.
    """
    cutoff = now_s - period_s
    return sum(event.change for event in events if event.t_s > cutoff)


def scale_up_limit(
    current_replicas: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    now_s: float,
) -> int:
    """Highest count the scale-up policies allow now (``calculateScaleUpLimitWithScalingRules``).

    Each policy is measured from the replica count at the start of its period, so pods already added in
    the period use up the allowance. Percent proposals round up so a small deployment can still grow.
    """
    if rules.select_policy == "Disabled":
        return current_replicas
    pick_min = rules.select_policy == "Min"
    result = _INT32_MAX if pick_min else _INT32_MIN
    for policy in rules.policies:
        added = replicas_change_in_period(policy.period_s, scale_up_events, now_s)
        removed = replicas_change_in_period(policy.period_s, scale_down_events, now_s)
        period_start = current_replicas - added + removed
        if policy.kind == "Pods":
            proposed = period_start + policy.value
        else:
            proposed = math.ceil(period_start * (1 + policy.value / 100))
        result = min(result, proposed) if pick_min else max(result, proposed)
    return result


def scale_down_limit(
    current_replicas: int,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    now_s: float,
) -> int:
    """Lowest count the scale-down policies allow now (``calculateScaleDownLimitWithBehaviors``).

    "Max" means the largest change, i.e. the lowest count; percent proposals truncate towards zero as
    the controller's int32 conversion does.
    """
    if rules.select_policy == "Disabled":
        return current_replicas
    pick_max = rules.select_policy == "Min"  # the smallest change keeps the most pods
    result = _INT32_MIN if pick_max else _INT32_MAX
    for policy in rules.policies:
        added = replicas_change_in_period(policy.period_s, scale_up_events, now_s)
        removed = replicas_change_in_period(policy.period_s, scale_down_events, now_s)
        period_start = current_replicas - added + removed
        if policy.kind == "Pods":
            proposed = period_start - policy.value
        else:
            proposed = int(period_start * (1 - policy.value / 100))
        result = max(result, proposed) if pick_max else min(result, proposed)
    return result


def limit_by_behavior_rate(
    current_replicas: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    behavior: HPABehavior,
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    now_s: float,
) -> tuple[int, str]:
    """Clamp by rate policies and by min/max, naming the binding limit (``convertDesiredReplicasWithBehaviorRate``).

    The rate limit never pushes past the current count (a stale allowance must not force a move in the
    opposite direction), and whichever of the rate limit or the min/max bound is tighter names the reason.
    """
    if desired > current_replicas:
        limit = scale_up_limit(current_replicas, scale_up_events, scale_down_events, behavior.scale_up, now_s)
        limit = max(limit, current_replicas)
        if max_replicas > limit:
            maximum_allowed, reason = limit, REASON_SCALE_UP_LIMIT
        else:
            maximum_allowed, reason = max_replicas, REASON_TOO_MANY_REPLICAS
        if desired > maximum_allowed:
            return maximum_allowed, reason
    elif desired < current_replicas:
        limit = scale_down_limit(current_replicas, scale_up_events, scale_down_events, behavior.scale_down, now_s)
        limit = min(limit, current_replicas)
        if min_replicas < limit:
            minimum_allowed, reason = limit, REASON_SCALE_DOWN_LIMIT
        else:
            minimum_allowed, reason = min_replicas, REASON_TOO_FEW_REPLICAS
        if desired < minimum_allowed:
            return minimum_allowed, reason
    return desired, REASON_DESIRED_WITHIN_RANGE


def _check_bounds(min_replicas: int, max_replicas: int) -> None:
    if min_replicas < 0 or max_replicas < 1 or min_replicas > max_replicas:
        raise ValueError(f"need 0 <= min_replicas <= max_replicas and max >= 1, got {min_replicas}..{max_replicas}")


def _out_of_bounds(current_replicas: int, min_replicas: int, max_replicas: int) -> tuple[int, str] | None:
    """The controller's guard before any metric is read: a count outside the bounds is corrected at once."""
    if current_replicas > max_replicas:
        return max_replicas, REASON_TOO_MANY_REPLICAS
    if current_replicas < min_replicas:
        return min_replicas, REASON_TOO_FEW_REPLICAS
    return None


def normalize(
    current_replicas: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    behavior: HPABehavior,
    recommendations: Sequence[Recommendation],
    scale_up_events: Sequence[ScaleEvent],
    scale_down_events: Sequence[ScaleEvent],
    now_s: float,
) -> tuple[int, str, tuple[Recommendation, ...]]:
    """Turn a raw recommendation into the replica count the HPA sets (``normalizeDesiredReplicasWithBehaviors``).

    Stabilization first, then the rate policies and min/max bounds. The reason is the Kubernetes condition
    reason of the step that decided the number: the rate/bound reason when it clamped, else the
    stabilization reason when the windows held the count, else ``DesiredWithinRange``. A current count
    outside [min, max] is corrected first, as the controller does before it looks at metrics; the history
    is then returned unchanged.
    """
    _check_bounds(min_replicas, max_replicas)
    corrected = _out_of_bounds(current_replicas, min_replicas, max_replicas)
    if corrected is not None:
        return corrected[0], corrected[1], tuple(recommendations)
    stabilized, stabilize_reason, history = stabilize_recommendation(
        current_replicas, desired, behavior, recommendations, now_s
    )
    limited, limit_reason = limit_by_behavior_rate(
        current_replicas, stabilized, min_replicas, max_replicas, behavior, scale_up_events, scale_down_events, now_s
    )
    if limited != stabilized:
        reason = limit_reason
    elif stabilized != desired:
        reason = stabilize_reason
    else:
        reason = REASON_DESIRED_WITHIN_RANGE
    return limited, reason, history


def normalize_legacy(
    current_replicas: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    recommendations: Sequence[Recommendation],
    now_s: float,
    stabilization_window_s: float = 300.0,
) -> tuple[int, str, tuple[Recommendation, ...]]:
    """Normalization for an HPA object without ``spec.behavior`` (``normalizeDesiredReplicas``).

    Kubernetes does not default a missing behavior: it runs this older path instead, which takes the
    highest recommendation of the last ``--horizontal-pod-autoscaler-downscale-stabilization`` window (in
    both directions) and caps growth at max(2 x current, 4) per sync. Kept so a baseline can match the
    most common real configuration, an HPA created with only a CPU target.
    """
    _check_bounds(min_replicas, max_replicas)
    corrected = _out_of_bounds(current_replicas, min_replicas, max_replicas)
    if corrected is not None:
        return corrected[0], corrected[1], tuple(recommendations)
    cutoff = now_s - stabilization_window_s
    stabilized = desired
    for rec in recommendations:
        if rec.t_s >= cutoff:
            stabilized = max(stabilized, rec.replicas)
    history = (*(rec for rec in recommendations if rec.t_s >= cutoff), Recommendation(now_s, desired))

    growth_limit = int(max(2.0 * current_replicas, 4.0))
    if max_replicas > growth_limit:
        maximum_allowed, limit_reason = growth_limit, REASON_SCALE_UP_LIMIT
    else:
        maximum_allowed, limit_reason = max_replicas, REASON_TOO_MANY_REPLICAS
    if stabilized < min_replicas:
        limited, limit_reason = min_replicas, REASON_TOO_FEW_REPLICAS
    elif stabilized > maximum_allowed:
        limited = maximum_allowed
    else:
        limited, limit_reason = stabilized, REASON_DESIRED_WITHIN_RANGE

    if limited != stabilized:
        reason = limit_reason
    elif stabilized != desired:
        reason = REASON_SCALE_DOWN_STABILIZED
    else:
        reason = REASON_DESIRED_WITHIN_RANGE
    return limited, reason, history


# --------------------------------------------------------------------------------------------------
# The controller loop for one Deployment
# --------------------------------------------------------------------------------------------------


class HPAController:
    """One HPA object and the controller's memory of it: recommendations and scale events.

    ``step`` is one reconcile of ``reconcileAutoscaler``: guards (scaling disabled at zero replicas, count
    outside the bounds), the CPU recommendation, normalization, and recording the rescale for the rate
    policies. Calls closer together than ``sync_period_s`` return the current count untouched, because the
    real controller only looks every 15 s and a baseline that reacted faster would not be the HPA.
    ``behavior=None`` means Kubernetes' default behavior; ``use_legacy_normalization=True`` instead selects
    the path Kubernetes takes for HPA objects that have no ``spec.behavior`` at all.
    """

    def __init__(
        self,
        target_utilization: float,
        tolerance: float = 0.1,
        behavior: HPABehavior | None = None,
        *,
        use_legacy_normalization: bool = False,
        sync_period_s: float = 15.0,
        cpu_initialization_period_s: float = 300.0,
        initial_readiness_delay_s: float = 30.0,
        downscale_stabilization_s: float = 300.0,
    ) -> None:
        if target_utilization <= 0:
            raise ValueError(f"target_utilization must be > 0, got {target_utilization}")
        if sync_period_s < 0:
            raise ValueError(f"sync_period_s must be >= 0, got {sync_period_s}")
        if use_legacy_normalization and behavior is not None:
            raise ValueError("legacy normalization ignores spec.behavior; pass behavior=None with it")
        self.target_utilization = target_utilization
        self.tolerance = tolerance
        self.behavior: HPABehavior | None = None if use_legacy_normalization else (behavior or HPABehavior.default())
        self.sync_period_s = sync_period_s
        self.cpu_initialization_period_s = cpu_initialization_period_s
        self.initial_readiness_delay_s = initial_readiness_delay_s
        self.downscale_stabilization_s = downscale_stabilization_s
        self.recommendations: tuple[Recommendation, ...] = ()
        self.scale_up_events: tuple[ScaleEvent, ...] = ()
        self.scale_down_events: tuple[ScaleEvent, ...] = ()
        self.last_sync_s: float | None = None
        self.last_utilization: float | None = None
        self.last_metric_desired: int | None = None

    def step(
        self,
        now_s: float,
        current_replicas: int,
        pods: Sequence[PodSample],
        min_replicas: int,
        max_replicas: int,
    ) -> tuple[int, str]:
        """Run one sync at ``now_s`` and return (replicas to set, reason)."""
        _check_bounds(min_replicas, max_replicas)
        if self.last_sync_s is not None:
            if now_s < self.last_sync_s:
                raise ValueError(f"time went backwards: {now_s} < {self.last_sync_s}")
            if now_s - self.last_sync_s < self.sync_period_s - 1e-9:
                return current_replicas, REASON_AWAITING_SYNC
        self.last_sync_s = now_s
        if not self.recommendations:
            # recordInitialRecommendation: a fresh HPA remembers the count it found, so its first
            # syncs cannot scale a Deployment down before a full stabilization window has passed.
            self.recommendations = (Recommendation(now_s, current_replicas),)

        if current_replicas == 0 and min_replicas != 0:
            return 0, REASON_SCALING_DISABLED
        corrected = _out_of_bounds(current_replicas, min_replicas, max_replicas)
        if corrected is not None:
            self._record_scale_event(now_s, current_replicas, corrected[0])
            return corrected

        desired, utilization, calc_reason = replica_recommendation(
            current_replicas,
            pods,
            self.target_utilization,
            now_s,
            self.tolerance,
            self.cpu_initialization_period_s,
            self.initial_readiness_delay_s,
        )
        if calc_reason in (REASON_NO_PODS, REASON_NO_METRICS):
            self.last_utilization = None
            self.last_metric_desired = None
            return current_replicas, REASON_FAILED_GET_RESOURCE_METRIC
        self.last_utilization = utilization
        self.last_metric_desired = desired
        desired = self.adjust_desired(desired, now_s)

        if self.behavior is None:
            replicas, reason, self.recommendations = normalize_legacy(
                current_replicas,
                desired,
                min_replicas,
                max_replicas,
                self.recommendations,
                now_s,
                self.downscale_stabilization_s,
            )
        else:
            replicas, reason, self.recommendations = normalize(
                current_replicas,
                desired,
                min_replicas,
                max_replicas,
                self.behavior,
                self.recommendations,
                self.scale_up_events,
                self.scale_down_events,
                now_s,
            )
        if replicas != current_replicas:
            self._record_scale_event(now_s, current_replicas, replicas)
        return replicas, reason

    def adjust_desired(self, desired: int, now_s: float) -> int:
        """The metric's replica count as normalization sees it: unchanged here. A predictive HPA
        (``policies.predictive``) raises it to a forecast, keeping every other step of the HPA."""
        return desired

    def _record_scale_event(self, now_s: float, previous: int, new: int) -> None:
        """``storeScaleEvent``: remember the rescale for the rate policies, forgetting expired ones.

        Without a behavior Kubernetes stores nothing, since the legacy path has no period policies.
        """
        if self.behavior is None or new == previous:
            return
        if new > previous:
            keep_after = now_s - self.behavior.scale_up.longest_period_s
            kept = (e for e in self.scale_up_events if e.t_s >= keep_after)
            self.scale_up_events = (*kept, ScaleEvent(now_s, new - previous))
        else:
            keep_after = now_s - self.behavior.scale_down.longest_period_s
            kept = (e for e in self.scale_down_events if e.t_s >= keep_after)
            self.scale_down_events = (*kept, ScaleEvent(now_s, previous - new))
