"""Tests for policies.hpa_rules, mirroring the Kubernetes HPA controller's own test tables.

The replica-calculator cases use Kubernetes' testing constants (2 min CPU initialization period, 10 s
initial readiness delay, 10 % tolerance, metric window 1 min, metric timestamp and Ready transition at
the zero time) so each row can be checked against the Go test of the same name. Pod requests and usage
are per pod instead of per container; every ratio is the same.
"""

from __future__ import annotations

import pytest

from policies.hpa_rules import (
    HPABehavior,
    HPAController,
    PodSample,
    Recommendation,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
    group_pods,
    normalize,
    normalize_legacy,
    replica_recommendation,
    replicas_change_in_period,
    scale_down_limit,
    scale_up_limit,
    stabilize_recommendation,
)

NOW = 10_000.0
ZERO = 0.0  # Go's zero time: long before NOW
HOT = NOW  # hotCPUCreationTime: started now
COOL = NOW - 180.0  # coolCPUCreationTime: started 3 minutes ago
TEST_INIT_PERIOD = 120.0  # defaultTestingCPUInitializationPeriod
TEST_READINESS_DELAY = 10.0  # defaultTestingDelayOfInitialReadinessStatus


def make_pods(
    levels: list[float],
    requests: list[float],
    readiness: list[bool] | None = None,
    phases: list[str] | None = None,
    deleting: list[bool] | None = None,
    started: list[float] | None = None,
) -> list[PodSample]:
    """Build pods like replicaCalcTestCase.prepareTestClientSet: pod i gets levels[i] if it exists."""
    count = len(requests)
    return [
        PodSample(
            name=f"test-pod-{i}",
            ready=True if readiness is None else readiness[i],
            phase="Running" if phases is None else phases[i],
            deleting=False if deleting is None else deleting[i],
            started_s=ZERO if started is None else started[i],
            ready_changed_s=ZERO,
            request=requests[i],
            usage=levels[i] if i < len(levels) else None,
            metric_time_s=ZERO,
            metric_window_s=60.0,
        )
        for i in range(count)
    ]


def recommend(current: int, pods: list[PodSample], target: float) -> tuple[int, float, str]:
    return replica_recommendation(
        current,
        pods,
        target,
        NOW,
        tolerance=0.1,
        cpu_initialization_period_s=TEST_INIT_PERIOD,
        initial_readiness_delay_s=TEST_READINESS_DELAY,
    )


# Each row is named after the replica_calculator_test.go test it mirrors.
# (test name, current, pods, target, expected replicas, expected utilization)
REPLICA_CALC_CASES = [
    ("TestReplicaCalcScaleUp", 3, make_pods([0.3, 0.5, 0.7], [1.0] * 3), 0.30, 5, 0.50),
    (
        "TestReplicaCalcScaleUpUnreadyLessScale",
        3,
        make_pods([0.3, 0.5, 0.7], [1.0] * 3, readiness=[False, True, True]),
        0.30,
        4,
        0.60,
    ),
    (
        "TestReplicaCalcScaleUpHotCpuLessScale",
        3,
        make_pods([0.3, 0.5, 0.7], [1.0] * 3, started=[HOT, COOL, COOL]),
        0.30,
        4,
        0.60,
    ),
    (
        "TestReplicaCalcScaleUpUnreadyNoScale",
        3,
        make_pods([0.4, 0.5, 0.7], [1.0] * 3, readiness=[True, False, False]),
        0.30,
        3,
        0.40,
    ),
    (
        "TestReplicaCalcScaleHotCpuNoScale",
        3,
        make_pods([0.4, 0.5, 0.7], [1.0] * 3, readiness=[True, False, False], started=[COOL, HOT, HOT]),
        0.30,
        3,
        0.40,
    ),
    (
        "TestReplicaCalcScaleUpIgnoresFailedPods",
        2,
        make_pods(
            [0.5, 0.7],
            [1.0] * 4,
            readiness=[True, True, False, False],
            phases=["Running", "Running", "Failed", "Failed"],
        ),
        0.30,
        4,
        0.60,
    ),
    (
        "TestReplicaCalcScaleUpIgnoresDeletionPods",
        2,
        make_pods([0.5, 0.7], [1.0] * 4, readiness=[True, True, False, False], deleting=[False, False, True, True]),
        0.30,
        4,
        0.60,
    ),
    ("TestReplicaCalcScaleDown", 5, make_pods([0.1, 0.3, 0.5, 0.25, 0.25], [1.0] * 5), 0.50, 3, 0.28),
    (
        "TestReplicaCalcScaleDownIncludeUnreadyPods",
        5,
        make_pods([0.1, 0.3, 0.5, 0.25, 0.25], [1.0] * 5, readiness=[True, True, True, False, False]),
        0.50,
        2,
        0.30,
    ),
    (
        "TestReplicaCalcScaleDownExcludeUnscheduledPods",
        5,
        make_pods(
            [0.1],
            [1.0] * 5,
            readiness=[True, False, False, False, False],
            phases=["Running", "Pending", "Pending", "Pending", "Pending"],
        ),
        0.50,
        1,
        0.10,
    ),
    (
        "TestReplicaCalcScaleDownIgnoreHotCpuPods",
        5,
        make_pods([0.1, 0.3, 0.5, 0.25, 0.25], [1.0] * 5, started=[COOL, COOL, COOL, HOT, HOT]),
        0.50,
        2,
        0.30,
    ),
    (
        "TestReplicaCalcScaleDownIgnoresFailedPods",
        5,
        make_pods(
            [0.1, 0.3, 0.5, 0.25, 0.25],
            [1.0] * 7,
            readiness=[True] * 5 + [False] * 2,
            phases=["Running"] * 5 + ["Failed"] * 2,
        ),
        0.50,
        3,
        0.28,
    ),
    (
        "TestReplicaCalcScaleDownIgnoresDeletionPods",
        5,
        make_pods(
            [0.1, 0.3, 0.5, 0.25, 0.25],
            [1.0] * 7,
            readiness=[True] * 5 + [False] * 2,
            deleting=[False] * 5 + [True] * 2,
        ),
        0.50,
        3,
        0.28,
    ),
    ("TestReplicaCalcTolerance", 3, make_pods([1.01, 1.03, 1.02], [0.9, 1.0, 1.1]), 1.00, 3, 1.02),
    ("TestReplicaCalcMissingMetrics", 4, make_pods([0.4, 0.095], [1.0] * 4), 1.00, 3, 0.24),
    ("TestReplicaCalcMissingMetricsNoChangeEq", 2, make_pods([1.0], [1.0] * 2), 1.00, 2, 1.00),
    ("TestReplicaCalcMissingMetricsNoChangeGt", 2, make_pods([1.9], [1.0] * 2), 1.00, 2, 1.90),
    ("TestReplicaCalcMissingMetricsNoChangeLt", 2, make_pods([0.6], [1.0] * 2), 1.00, 2, 0.60),
    (
        "TestReplicaCalcMissingMetricsUnreadyChange",
        3,
        make_pods([0.1, 0.45], [1.0] * 3, readiness=[False, True, True]),
        0.50,
        3,
        0.45,
    ),
    (
        "TestReplicaCalcMissingMetricsHotCpuNoChange",
        3,
        make_pods([0.1, 0.45], [1.0] * 3, started=[HOT, COOL, COOL]),
        0.50,
        3,
        0.45,
    ),
    (
        "TestReplicaCalcMissingMetricsUnreadyScaleUp",
        3,
        make_pods([0.1, 2.0], [1.0] * 3, readiness=[False, True, True]),
        0.50,
        4,
        2.00,
    ),
    (
        "TestReplicaCalcMissingMetricsHotCpuScaleUp",
        3,
        make_pods([0.1, 2.0], [1.0] * 3, readiness=[False, True, True], started=[HOT, COOL, COOL]),
        0.50,
        4,
        2.00,
    ),
    (
        "TestReplicaCalcMissingMetricsUnreadyScaleDown",
        4,
        make_pods([0.1, 0.1, 0.1], [1.0] * 4, readiness=[False, True, True, True]),
        0.50,
        3,
        0.10,
    ),
    ("TestReplicaCalcDuringRollingUpdateWithMaxSurge", 2, make_pods([0.1, 0.1], [1.0] * 3), 0.50, 2, 0.10),
    # TestReplicaCalcComputedToleranceAlgImplementation: 10 pods at 150m, requests summing to 3000m with
    # jitter; a 56 % target breaches the tolerance (-> 9 pods), a 55 % target stays inside it.
    (
        "TestReplicaCalcComputedToleranceAlgImplementation (breach)",
        10,
        make_pods([0.15] * 10, [0.4, 0.2, 0.31, 0.29, 0.302, 0.298, 0.301, 0.299, 0.3, 0.3]),
        0.56,
        9,
        0.50,
    ),
    (
        "TestReplicaCalcComputedToleranceAlgImplementation (within)",
        10,
        make_pods([0.15] * 10, [0.4, 0.2, 0.31, 0.29, 0.302, 0.298, 0.301, 0.299, 0.3, 0.3]),
        0.55,
        10,
        0.50,
    ),
]


@pytest.mark.parametrize(
    ("name", "current", "pods", "target", "expected", "utilization"),
    REPLICA_CALC_CASES,
    ids=[case[0] for case in REPLICA_CALC_CASES],
)
def test_replica_calculator_matches_kubernetes(
    name: str, current: int, pods: list[PodSample], target: float, expected: int, utilization: float
) -> None:
    replicas, got_utilization, _ = recommend(current, pods, target)
    assert replicas == expected, name
    assert got_utilization == pytest.approx(utilization), name


@pytest.mark.parametrize(
    ("pods", "reason"),
    [
        # TestReplicaCalcEmptyMetrics / "no pods returned by selector": the HPA cannot compute and keeps the count.
        ([], "NoPods"),
        (make_pods([], [1.0] * 3), "NoMetrics"),
        # every pod unready: "did not receive metrics for targeted pods (pods might be unready)"
        (make_pods([0.5, 0.5], [1.0] * 2, readiness=[False, False]), "NoMetrics"),
    ],
)
def test_no_metrics_keeps_current(pods: list[PodSample], reason: str) -> None:
    assert recommend(4, pods, 0.5) == (4, 0.0, reason)


def test_reasons_name_the_branch() -> None:
    assert recommend(3, make_pods([0.3, 0.5, 0.7], [1.0] * 3), 0.30)[2] == "AboveTarget"
    assert recommend(5, make_pods([0.1, 0.3, 0.5, 0.25, 0.25], [1.0] * 5), 0.50)[2] == "BelowTarget"
    assert recommend(3, make_pods([1.01, 1.03, 1.02], [0.9, 1.0, 1.1]), 1.0)[2] == "WithinTolerance"
    # TestReplicaCalcMissingMetricsNoChangeGt: missing pod at 0 % flips 190 % to 95 %
    assert recommend(2, make_pods([1.9], [1.0] * 2), 1.0)[2] == "WithinTolerance"
    # TestReplicaCalcMissingMetricsUnreadyChange: 90 % becomes 144 % once the missing pod counts as 100 %
    pods = make_pods([0.1, 0.45], [1.0] * 3, readiness=[False, True, True])
    assert recommend(3, pods, 0.5)[2] == "DirectionChanged"


def test_utilization_is_truncated_to_integer_percent_like_kubernetes() -> None:
    # 2.997 / 3 = 99.9 % reads as 99 %, i.e. a ratio of 0.99, which is inside the tolerance.
    replicas, utilization, reason = recommend(3, make_pods([0.999] * 3, [1.0] * 3), 1.0)
    assert (replicas, utilization, reason) == (3, 0.99, "WithinTolerance")


def _group_pod(
    name: str,
    *,
    ready: bool = True,
    phase: str = "Running",
    started: float | None = ZERO,
    changed: float | None = ZERO,
    usage: float | None = 0.001,
    metric_time: float | None = NOW,
    window: float = 60.0,
) -> PodSample:
    return PodSample(
        name=name,
        ready=ready,
        phase=phase,
        started_s=started,
        ready_changed_s=changed,
        request=1.0,
        usage=usage,
        metric_time_s=metric_time,
        metric_window_s=window,
    )


# Rows of TestGroupPods (replica_calculator_test.go), named as there; "ignored" pods of the old table are the
# "unready" set of the current controller. (name, pod, expected ready count, unready, missing)
GROUP_CASES = [
    ("ignore a pod without ready condition - CPU", _group_pod("lucretius", started=NOW, changed=None), 0, 1, 0),
    (
        "count in a ready pod with fresh metrics during initialization period - CPU",
        _group_pod("bentham", started=NOW - 60, changed=NOW - 30, window=30.0),
        1,
        0,
        0,
    ),
    (
        "ignore a ready pod without fresh metrics during initialization period - CPU",
        _group_pod("bentham", started=NOW - 60, changed=NOW - 30, window=60.0),
        0,
        1,
        0,
    ),
    (
        "ignore an unready pod during initialization period - CPU",
        _group_pod("lucretius", ready=False, started=NOW - 600, changed=NOW - 594),
        0,
        1,
        0,
    ),
    (
        "count in a ready pod without fresh metrics after initialization period - CPU",
        _group_pod("bentham", started=NOW - 180, changed=NOW - 180, metric_time=NOW - 120),
        1,
        0,
        0,
    ),
    (
        "count in an unready pod that was ready after initialization period - CPU",
        _group_pod("lucretius", ready=False, started=NOW - 600, changed=NOW - 540),
        1,
        0,
        0,
    ),
    (
        "ignore pod that has never been ready after initialization period - CPU",
        _group_pod("lucretius", ready=False, started=NOW - 600, changed=NOW - 590),
        1,
        0,
        0,
    ),
    ("a missing pod", _group_pod("epicurus", started=NOW - 180, usage=None), 0, 0, 1),
    ("pending pods are ignored", _group_pod("unscheduled", phase="Pending", started=None, usage=None), 0, 1, 0),
]


@pytest.mark.parametrize(("name", "pod", "ready", "unready", "missing"), GROUP_CASES, ids=[c[0] for c in GROUP_CASES])
def test_group_pods_matches_kubernetes(name: str, pod: PodSample, ready: int, unready: int, missing: int) -> None:
    groups = group_pods([pod], NOW, TEST_INIT_PERIOD, TEST_READINESS_DELAY)
    assert (groups.ready_count, len(groups.unready), len(groups.missing)) == (ready, unready, missing), name


def test_group_pods_never_ready_after_initialization_with_production_delay() -> None:
    # Kubernetes' own row above uses a 10 s delay; with the production 30 s, a pod whose Ready condition
    # last changed 10 s after start has never been ready, so it is unready even after the init period.
    pod = _group_pod("lucretius", ready=False, started=NOW - 600, changed=NOW - 590)
    assert group_pods([pod], NOW, 300.0, 30.0).unready == frozenset({"lucretius"})


def test_deleting_and_failed_pods_are_ignored_with_their_metrics() -> None:
    pods = [
        _group_pod("a", usage=0.5),
        PodSample(name="b", ready=True, phase="Running", deleting=True, started_s=ZERO, ready_changed_s=ZERO,
                  request=1.0, usage=5.0),
        PodSample(name="c", ready=False, phase="Failed", started_s=ZERO, ready_changed_s=ZERO, request=1.0,
                  usage=5.0),
    ]  # fmt: skip
    groups = group_pods(pods, NOW)
    assert groups.ignored == frozenset({"b", "c"})
    # their high usage must not leak into the ratio: 50 % against 50 % is on target
    assert replica_recommendation(1, pods, 0.5, NOW) == (1, 0.5, "WithinTolerance")


# --------------------------------------------------------------------------------------------------
# Rate limits and bounds: TestScalingWithRules (convertDesiredReplicasWithBehaviorRate)
# --------------------------------------------------------------------------------------------------


def rules(pods: int, pods_period: float, percent: int, percent_period: float, window: float) -> ScalingRules:
    """generateScalingRules: a zero value leaves that policy out."""
    policies: list[ScalingPolicy] = []
    if pods:
        policies.append(ScalingPolicy("Pods", pods, pods_period))
    if percent:
        policies.append(ScalingPolicy("Percent", percent, percent_period))
    return ScalingRules(window, tuple(policies), "Max")


def uniform_events(changes: list[int], period_s: float) -> tuple[ScaleEvent, ...]:
    """generateEventsUniformDistribution: events centred in equal segments of the last period."""
    segment = period_s / len(changes)
    return tuple(
        ScaleEvent(NOW - (period_s - segment * (i + 1) + segment / 2), change) for i, change in enumerate(changes)
    )


DEFAULT = HPABehavior.default()


def behavior(up: ScalingRules | None = None, down: ScalingRules | None = None) -> HPABehavior:
    return HPABehavior(up or DEFAULT.scale_up, down or DEFAULT.scale_down)


# Subtests of TestScalingWithRules (horizontal_test.go), named as there.
# (name, up events, down events, min, max, behavior, current, desired, expected, reason)
SCALING_WITH_RULES = [
    ("prenormalized desired replicas within range", (), (), 3, 8, behavior(), 5, 7, 7, "DesiredWithinRange"),
    ("prenormalized desired replicas < minReplicas", (), (), 2, 8, behavior(), 3, 1, 2, "TooFewReplicas"),
    (
        "prenormalized desired replicas within range when minReplicas is 0",
        (), (), 0, 10, behavior(), 1, 0, 0, "DesiredWithinRange",
    ),
    (
        "maxReplicas is the limit because maxReplicas < scaleUpLimit",
        (), (), 1, 10, behavior(), 20, 1000, 10, "TooManyReplicas",
    ),
    (
        "desired replica count is more than the maximum replica count",
        (), (), 100, 150, behavior(), 100, 1000, 150, "TooManyReplicas",
    ),
    (
        "scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies",
        (), (), 1, 2000, behavior(up=rules(0, 0, 1, 60, 0)), 3, 1000, 4, "ScaleUpLimit",
    ),
    (
        "scaleDownLimit is the limit because scaleDownLimit > minReplicas with user defined policies",
        (), (), 3, 2000, behavior(down=rules(20, 60, 0, 0, 0)), 1000, 3, 980, "ScaleDownLimit",
    ),
    ("scaleUp with default behavior", (), (), 1, 1000, behavior(), 10, 50, 20, "ScaleUpLimit"),
    (
        "scaleUp with pods policy larger than percent policy",
        (), (), 1, 1000, behavior(up=rules(100, 60, 100, 60, 0)), 10, 500, 110, "ScaleUpLimit",
    ),
    (
        "scaleUp with percent policy larger than pods policy",
        (), (), 1, 1000, behavior(up=rules(2, 60, 100, 60, 0)), 10, 500, 20, "ScaleUpLimit",
    ),
    (
        "scaleUp with spec MaxReplicas limitation with large pod policy",
        (), (), 1, 1000, behavior(up=rules(100, 60, 0, 0, 0)), 10, 50, 50, "DesiredWithinRange",
    ),
    (
        "scaleUp with pod policy limitation",
        (), (), 1, 1000, behavior(up=rules(30, 60, 0, 0, 0)), 10, 50, 40, "ScaleUpLimit",
    ),
    (
        "scaleUp with percent policy limitation",
        (), (), 1, 1000, behavior(up=rules(0, 0, 200, 60, 0)), 10, 50, 30, "ScaleUpLimit",
    ),
    (
        "scaleDown with percent policy larger than pod policy",
        (), (), 1, 1000, behavior(down=rules(20, 60, 1, 60, 300)), 100, 2, 80, "ScaleDownLimit",
    ),
    (
        "scaleDown with pod policy larger than percent policy",
        (), (), 1, 1000, behavior(down=rules(2, 60, 1, 60, 300)), 100, 2, 98, "ScaleDownLimit",
    ),
    (
        "scaleDown with spec MinReplicas limitation with large pod policy",
        (), (), 1, 1000, behavior(down=rules(100, 60, 0, 0, 300)), 10, 0, 1, "TooFewReplicas",
    ),
    (
        "scaleDown with spec MinReplicas limitation with large percent policy",
        (), (), 5, 1000, behavior(down=rules(0, 0, 100, 60, 300)), 10, 2, 5, "TooFewReplicas",
    ),
    (
        "scaleDown with pod policy limitation",
        (), (), 1, 1000, behavior(down=rules(5, 60, 0, 0, 300)), 10, 2, 5, "ScaleDownLimit",
    ),
    (
        "scaleDown with percent policy limitation",
        (), (), 1, 1000, behavior(down=rules(0, 0, 50, 60, 300)), 10, 5, 5, "DesiredWithinRange",
    ),
    (
        "scaleUp with spec MaxReplicas limitation with large pod policy and events",
        uniform_events([1, 5, 9], 120), (), 1, 200, behavior(up=rules(300, 60, 0, 0, 0)), 100, 500, 200,
        "TooManyReplicas",
    ),
    (
        "scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events",
        uniform_events([1, 5, 9], 120), (), 1, 1000, behavior(up=rules(5, 120, 0, 0, 0)), 100, 500, 100,
        "ScaleUpLimit",
    ),
    (
        "scaleUp with pod policy and previous scale up events",
        uniform_events([1, 5, 9], 120), (), 1, 1000, behavior(up=rules(150, 120, 0, 0, 0)), 100, 500, 235,
        "ScaleUpLimit",
    ),
    (
        "scaleUp with percent policy and previous scale up events",
        uniform_events([1, 5, 9], 120), (), 1, 1000, behavior(up=rules(0, 0, 200, 120, 0)), 100, 500, 255,
        "ScaleUpLimit",
    ),
    (
        "scaleUp with percent policy and previous scale up and down events",
        uniform_events([4], 120), uniform_events([2], 120), 1, 1000, behavior(up=rules(0, 0, 300, 300, 0)), 6, 24,
        16, "ScaleUpLimit",
    ),
    (
        "scaleDown with default policy and previous events",
        (), uniform_events([1, 5, 9], 120), 1, 1000, behavior(), 10, 5, 5, "DesiredWithinRange",
    ),
    (
        "scaleDown with pod policy limitation and previous events",
        (), uniform_events([1, 5, 9], 120), 1, 1000, behavior(down=rules(5, 120, 0, 0, 300)), 100, 2, 100,
        "ScaleDownLimit",
    ),
    (
        "scaleDown with percent policy limitation and previous events",
        (), uniform_events([2, 4, 6], 120), 1, 1000, behavior(down=rules(0, 0, 50, 120, 300)), 100, 0, 56,
        "ScaleDownLimit",
    ),
    (
        "scaleDown with percent policy and previous scale up and down events",
        uniform_events([2], 120), uniform_events([4], 120), 1, 1000, behavior(down=rules(0, 0, 50, 180, 0)), 10, 1,
        6, "ScaleDownLimit",
    ),
    (
        "scaleDown with previous events preventing further scale down",
        (), uniform_events([10, 10, 10], 120), 1, 1000, behavior(down=rules(0, 0, 10, 120, 300)), 100, 0, 100,
        "ScaleDownLimit",
    ),
    (
        "scaleDown with with previous events still allowing more scale down",
        (), uniform_events([10, 10, 10], 120), 1, 1000, behavior(down=rules(0, 0, 1000, 120, 300)), 10, 5, 5,
        "DesiredWithinRange",
    ),
    (
        "check that events were marked 'outdated' for two different policies in the behavior for up",
        uniform_events([8, 12, 9, 11], 120), (), 1, 1000, behavior(up=rules(1000, 30, 100, 60, 0)), 100, 200, 200,
        "DesiredWithinRange",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "up_events", "down_events", "min_r", "max_r", "hpa_behavior", "current", "desired", "expected", "reason"),
    SCALING_WITH_RULES,
    ids=[case[0] for case in SCALING_WITH_RULES],
)
def test_scaling_with_rules_matches_kubernetes(
    name: str,
    up_events: tuple[ScaleEvent, ...],
    down_events: tuple[ScaleEvent, ...],
    min_r: int,
    max_r: int,
    hpa_behavior: HPABehavior,
    current: int,
    desired: int,
    expected: int,
    reason: str,
) -> None:
    # With an empty history the stabilization passes the recommendation through, so normalize() reduces to
    # convertDesiredReplicasWithBehaviorRate, which is what the Go table exercises.
    replicas, got_reason, _ = normalize(current, desired, min_r, max_r, hpa_behavior, (), up_events, down_events, NOW)
    assert (replicas, got_reason) == (expected, reason), name


@pytest.mark.parametrize(
    ("select", "expected_up", "expected_down"),
    [
        # TestCalculateScaleUpLimitWithScalingRules / TestCalculateScaleDownLimitWithBehaviors (Min):
        # up from 1: min(1 + 2, ceil(1 * 1.5)) = 2; down from 5: max(5 - 2, int(5 * 0.5)) = 3
        ("Min", 2, 3),
        # the same policies with Max pick the largest change: up max(3, 2) = 3, down min(3, 2) = 2
        ("Max", 3, 2),
        # calculateScaleUpLimitWithScalingRules: "Disabled" returns the current count in both directions
        ("Disabled", 1, 5),
    ],
)
def test_select_policy(select: str, expected_up: int, expected_down: int) -> None:
    policies = (ScalingPolicy("Pods", 2, 60.0), ScalingPolicy("Percent", 50, 60.0))
    scaling = ScalingRules(300.0, policies, select)  # type: ignore[arg-type]
    assert scale_up_limit(1, (), (), scaling, NOW) == expected_up
    assert scale_down_limit(5, (), (), scaling, NOW) == expected_down


def test_disabled_scale_down_holds_the_count() -> None:
    hpa_behavior = behavior(down=ScalingRules(0.0, (ScalingPolicy("Percent", 100, 15.0),), "Disabled"))
    assert normalize(10, 2, 1, 20, hpa_behavior, (), (), (), NOW)[:2] == (10, "ScaleDownLimit")


def test_percent_policy_uses_float_rounding_like_the_controller() -> None:
    # 50 * (1 + 10 / 100) is 55.00000000000001 in float64, so the controller's ceil allows 56, and so do we.
    scaling = ScalingRules(0.0, (ScalingPolicy("Percent", 10, 60.0),))
    assert scale_up_limit(50, (), (), scaling, NOW) == 56


def test_replicas_change_in_period_excludes_the_boundary() -> None:
    # TestStoreScaleEvents "one actual entry to be not touched": 58 s old counts in 60 s, 61 s old does not.
    events = (ScaleEvent(NOW - 58, 7), ScaleEvent(NOW - 61, 6), ScaleEvent(NOW - 60, 5))
    assert replicas_change_in_period(60.0, events, NOW) == 7


# --------------------------------------------------------------------------------------------------
# Stabilization: TestNormalizeDesiredReplicasWithBehavior (stabilizeRecommendationWithBehaviors)
# --------------------------------------------------------------------------------------------------


def windows(up: float, down: float) -> HPABehavior:
    return behavior(
        up=ScalingRules(up, DEFAULT.scale_up.policies), down=ScalingRules(down, DEFAULT.scale_down.policies)
    )


def recs(*pairs: tuple[int, float]) -> tuple[Recommendation, ...]:
    """(replicas, age in seconds) pairs, as the Go tests write {4, now.Add(-2 * time.Minute)}."""
    return tuple(Recommendation(NOW - age, replicas) for replicas, age in pairs)


# Subtests of TestNormalizeDesiredReplicasWithBehavior (horizontal_test.go), named as there.
# (name, recommendations, current, desired, up window, down window, expected, expected history length)
STABILIZATION_CASES = [
    ("empty recommendations for scaling down", (), 100, 5, 0, 0, 5, 1),
    ("simple scale down stabilization", recs((4, 120), (5, 60)), 100, 3, 0, 180, 5, 3),
    ("simple scale up stabilization", recs((4, 120), (5, 60)), 1, 7, 300, 0, 4, 3),
    ("no scale down stabilization", recs((1, 120), (2, 60)), 100, 3, 300, 0, 3, 3),
    ("no scale up stabilization", recs((4, 120), (5, 60)), 1, 3, 0, 300, 3, 3),
    # Kubernetes recycles one obsolete slot and keeps the other; we drop both (they can never count again).
    ("no scale down stabilization, reuse recommendation element", recs((10, 600), (9, 540)), 100, 3, 0, 0, 3, 1),
    ("no scale up stabilization, reuse recommendation element", recs((10, 600), (9, 540)), 1, 100, 0, 0, 100, 1),
    (
        "scale down stabilization, reuse one of obsolete recommendation element",
        recs((10, 600), (4, 60), (5, 120), (9, 540)), 100, 3, 0, 180, 5, 3,
    ),
    (
        "scale up stabilization, reuse one of obsolete recommendation element",
        recs((10, 6000), (6, 60), (5, 120), (9, 180)), 1, 100, 300, 0, 5, 4,
    ),
    (
        "scale up and down stabilization, do not scale up when prenormalized rec goes down",
        recs((2, 6000), (3, 180)), 2, 1, 300, 300, 2, 2,
    ),
    (
        "scale up and down stabilization, do not scale down when prenormalized rec goes up",
        recs((2, 6000), (1, 180)), 2, 3, 300, 300, 2, 2,
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "history", "current", "desired", "up", "down", "expected", "kept"),
    STABILIZATION_CASES,
    ids=[case[0] for case in STABILIZATION_CASES],
)
def test_stabilization_matches_kubernetes(
    name: str,
    history: tuple[Recommendation, ...],
    current: int,
    desired: int,
    up: float,
    down: float,
    expected: int,
    kept: int,
) -> None:
    stabilized, _, new_history = stabilize_recommendation(current, desired, windows(up, down), history, NOW)
    assert stabilized == expected, name
    assert len(new_history) == kept
    assert new_history[-1] == Recommendation(NOW, desired)


def test_normalize_reports_stabilization_reasons() -> None:
    down_held = normalize(100, 3, 1, 200, windows(0, 180), recs((4, 120), (5, 60)), (), (), NOW)
    assert down_held[:2] == (5, "ScaleDownStabilized")
    up_held = normalize(1, 7, 1, 200, windows(300, 0), recs((4, 120), (5, 60)), (), (), NOW)
    assert up_held[:2] == (4, "ScaleUpStabilized")


def test_normalize_prunes_history_to_the_longest_window() -> None:
    history = recs((9, 400), (8, 301), (7, 300), (6, 10))
    _, _, new_history = normalize(5, 5, 1, 10, DEFAULT, history, (), (), NOW)
    assert [rec.replicas for rec in new_history] == [7, 6, 5]


@pytest.mark.parametrize(
    ("current", "expected", "reason"),
    [(12, 10, "TooManyReplicas"), (1, 2, "TooFewReplicas")],
)
def test_normalize_corrects_a_count_outside_the_bounds_first(current: int, expected: int, reason: str) -> None:
    # reconcileAutoscaler: "Current number of replicas above Spec.MaxReplicas" / "below Spec.MinReplicas"
    assert normalize(current, current, 2, 10, DEFAULT, (), (), (), NOW)[:2] == (expected, reason)


# --------------------------------------------------------------------------------------------------
# Legacy path for HPAs without spec.behavior: TestNormalizeDesiredReplicas, TestConvertDesiredReplicasWithRules
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "history", "desired", "expected", "kept"),
    # TestNormalizeDesiredReplicas (horizontal_test.go), named as there
    [
        ("empty log", (), 5, 5, 1),
        ("stabilize", recs((4, 120), (5, 60)), 3, 5, 3),
        ("no stabilize", recs((1, 120), (2, 60)), 3, 3, 3),
        ("no stabilize - old recommendations", recs((10, 600), (9, 540)), 3, 3, 1),
        ("stabilize - old recommendations", recs((10, 600), (4, 60), (5, 120), (9, 540)), 3, 5, 3),
    ],
)
def test_legacy_stabilization_matches_kubernetes(
    name: str, history: tuple[Recommendation, ...], desired: int, expected: int, kept: int
) -> None:
    replicas, _, new_history = normalize_legacy(5, desired, 1, 100, history, NOW)
    assert replicas == expected, name
    assert len(new_history) == kept


@pytest.mark.parametrize(
    ("name", "current", "desired", "min_r", "max_r", "expected", "reason"),
    # TestConvertDesiredReplicasWithRules (horizontal_test.go), named as there
    [
        ("prenormalized desired replicas within range", 5, 7, 3, 8, 7, "DesiredWithinRange"),
        ("prenormalized desired replicas < minReplicas", 3, 1, 2, 8, 2, "TooFewReplicas"),
        ("prenormalized desired zeroed replicas within range", 1, 0, 0, 10, 0, "DesiredWithinRange"),
        ("maxReplicas is the limit because maxReplicas < scaleUpLimit", 20, 1000, 1, 10, 10, "TooManyReplicas"),
        ("scaleUpLimit is the limit because scaleUpLimit < maxReplicas", 3, 1000, 1, 2000, 6, "ScaleUpLimit"),
    ],
)
def test_legacy_conversion_matches_kubernetes(
    name: str, current: int, desired: int, min_r: int, max_r: int, expected: int, reason: str
) -> None:
    assert normalize_legacy(current, desired, min_r, max_r, (), NOW)[:2] == (expected, reason), name


# --------------------------------------------------------------------------------------------------
# HPAController over time
# --------------------------------------------------------------------------------------------------


def fleet(count: int, usage: float, request: float = 1.0) -> list[PodSample]:
    """``count`` long-running ready pods each using ``usage`` cores."""
    return [
        PodSample(
            name=f"pod-{i}",
            ready=True,
            phase="Running",
            started_s=-10_000.0,
            ready_changed_s=-9_990.0,
            request=request,
            usage=usage,
        )
        for i in range(count)
    ]


def test_controller_scale_down_waits_for_the_300s_stabilization_window() -> None:
    hpa = HPAController(target_utilization=0.5)
    replicas = 10
    assert hpa.step(0.0, replicas, fleet(replicas, 0.5), 1, 20) == (10, "DesiredWithinRange")
    # Load halves at t=15: the raw recommendation is 5, but the t=0 recommendation of 10 holds for 300 s.
    for t in range(15, 300, 15):
        assert hpa.step(float(t), replicas, fleet(replicas, 0.25), 1, 20) == (10, "ScaleDownStabilized"), t
        assert hpa.last_metric_desired == 5
    assert hpa.step(300.0, replicas, fleet(replicas, 0.25), 1, 20) == (5, "DesiredWithinRange")
    assert hpa.scale_down_events == (ScaleEvent(300.0, 5),)


def test_a_fresh_controller_cannot_scale_down_at_once() -> None:
    # recordInitialRecommendation seeds the history with the count the HPA found.
    hpa = HPAController(target_utilization=0.5)
    assert hpa.step(0.0, 10, fleet(10, 0.1), 1, 20) == (10, "ScaleDownStabilized")
    assert hpa.recommendations == (Recommendation(0.0, 10), Recommendation(0.0, 2))


def test_controller_default_scale_up_rate_per_sync() -> None:
    # Default behavior: max(x2, +4) per 15 s; the previous sync's event is just outside the 15 s period.
    hpa = HPAController(target_utilization=0.5)
    replicas, seen = 1, []
    for t in range(0, 75, 15):
        replicas, reason = hpa.step(float(t), replicas, fleet(replicas, 5.0), 1, 50)
        seen.append((replicas, reason))
    assert seen == [
        (5, "ScaleUpLimit"),
        (10, "ScaleUpLimit"),
        (20, "ScaleUpLimit"),
        (40, "ScaleUpLimit"),
        (50, "TooManyReplicas"),
    ]


def test_controller_scale_events_within_a_period_limit_the_next_steps() -> None:
    up = ScalingRules(0.0, (ScalingPolicy("Pods", 2, 60.0),))
    hpa = HPAController(target_utilization=0.5, behavior=behavior(up=up))
    replicas, seen = 2, []
    for t in range(0, 135, 15):
        replicas = hpa.step(float(t), replicas, fleet(replicas, 2.0), 1, 100)[0]
        seen.append(replicas)
    # +2 at t=0 uses the whole allowance until it leaves the 60 s period at t=60, and so on.
    assert seen == [4, 4, 4, 4, 6, 6, 6, 6, 8]


def test_controller_legacy_path_without_behavior() -> None:
    hpa = HPAController(target_utilization=0.5, use_legacy_normalization=True)
    assert hpa.step(0.0, 1, fleet(1, 5.0), 1, 50) == (4, "ScaleUpLimit")  # max(2 x 1, 4)
    assert hpa.step(15.0, 4, fleet(4, 5.0), 1, 50) == (8, "ScaleUpLimit")
    assert hpa.scale_up_events == ()


def test_controller_acts_only_once_per_sync_period() -> None:
    hpa = HPAController(target_utilization=0.5)
    assert hpa.step(0.0, 2, fleet(2, 2.0), 1, 50)[0] == 6
    assert hpa.step(5.0, 6, fleet(6, 2.0), 1, 50) == (6, "AwaitingSync")
    assert hpa.step(15.0, 6, fleet(6, 2.0), 1, 50)[0] == 12


@pytest.mark.parametrize(
    ("current", "pods", "min_r", "max_r", "expected"),
    [
        (0, [], 1, 10, (0, "ScalingDisabled")),
        (12, [], 1, 10, (10, "TooManyReplicas")),
        (1, [], 2, 10, (2, "TooFewReplicas")),
        (3, [], 1, 10, (3, "FailedGetResourceMetric")),
    ],
)
def test_controller_guards(current: int, pods: list[PodSample], min_r: int, max_r: int, expected: tuple) -> None:
    hpa = HPAController(target_utilization=0.5)
    assert hpa.step(0.0, current, pods, min_r, max_r) == expected


def test_controller_bound_correction_counts_against_the_rate() -> None:
    up = ScalingRules(0.0, (ScalingPolicy("Pods", 1, 60.0),))
    hpa = HPAController(target_utilization=0.5, behavior=behavior(up=up))
    assert hpa.step(0.0, 1, fleet(1, 5.0), 3, 50) == (3, "TooFewReplicas")
    # the +2 correction used up (and exceeded) the +1/60 s allowance
    assert hpa.step(15.0, 3, fleet(3, 5.0), 3, 50) == (3, "ScaleUpLimit")


def test_pod_sample_validation() -> None:
    with pytest.raises(ValueError, match="request"):
        PodSample(name="p", ready=True, phase="Running", started_s=0.0, ready_changed_s=0.0, request=0.0, usage=0.1)
    with pytest.raises(ValueError, match="unique"):
        replica_recommendation(2, fleet(1, 0.1) * 2, 0.5, NOW)
