"""Tests for envs.guard, in the style of the Kubernetes HPA controller's normalisation tables.

Each row gives the current decision, the wanted one and the memory in use per replica, for an
app of two services ``a`` and ``b`` (replicas 1..40, CPU limit 0.1..4 cores, memory limit
128..4096 MiB), and the decision and per-service reasons the guard must return. Service ``b``
stays at (2 replicas, 0.5 cores, 256 MiB) unless the row says otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from envs.app import AppSpec, app_from_dict
from envs.errors import ConfigError
from envs.guard import REASONS, GuardConfig, guard
from envs.metrics import ScalingDecision

NAN = math.nan
INF = math.inf


def two_service_app(node_cores: float = 48.0, node_mem_gib: float = 192.0) -> AppSpec:
    def svc(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "cpu_ms": {"mean": 10},
            "memory_mib": {"base": 100, "per_inflight": 1},
            "startup_s": 15,
            "replicas": {"min": 1, "max": 40, "initial": 2},
            "cpu_limit": {"min": 0.1, "max": 4.0, "initial": 0.5},
            "mem_limit": {"min": 128, "max": 4096, "initial": 256},
        }

    a = svc("a")
    a["calls"] = [{"to": "b"}]
    return app_from_dict(
        {
            "name": "guarded",
            "slo_ms": 100,
            "default_peak_rps": 10,
            "node": {"cores": node_cores, "mem_gib": node_mem_gib},
            "services": [a, svc("b")],
        }
    )


Row = tuple[float, float, float]
B: Row = (2, 0.5, 256)


def decision(*rows: Row) -> ScalingDecision:
    arr = np.array(rows, dtype=np.float64)
    return ScalingDecision(replicas=arr[:, 0], cpu_limit=arr[:, 1], mem_limit=arr[:, 2])


@dataclass
class Case:
    name: str
    current: tuple[Row, Row]
    want: tuple[Row, Row]
    expected: tuple[Row, Row]
    reasons: tuple[list[str], list[str]]
    usage: tuple[float, float] = (200.0, 100.0)
    config: dict[str, Any] = field(default_factory=dict)
    node: tuple[float, float] = (48.0, 192.0)


CASES = [
    # Nothing to do.
    Case("untouched", ((4, 1.0, 512), B), ((4, 1.0, 512), B), ((4, 1.0, 512), B), ([], [])),
    Case("within-every-limit", ((4, 1.0, 512), B), ((8, 2.0, 1024), B), ((8, 2.0, 1024), B), ([], [])),
    Case("scale-down-within-limit", ((4, 1.0, 512), B), ((2, 0.5, 256), B), ((2, 0.5, 256), B), ([], [])),
    Case("rounding", ((4, 1.0, 512), B), ((5.4, 1.23456, 700.4), B), ((5, 1.235, 700), B), ([], [])),
    # 2. Scale-up: max(4 pods, 100 % of current) per interval.
    Case("scale-up-4-pods", ((2, 1.0, 512), B), ((10, 1.0, 512), B), ((6, 1.0, 512), B), (["ScaleUpLimit"], [])),
    Case("scale-up-from-1", ((1, 1.0, 512), B), ((6, 1.0, 512), B), ((5, 1.0, 512), B), (["ScaleUpLimit"], [])),
    Case("scale-up-exactly-4", ((3, 1.0, 512), B), ((7, 1.0, 512), B), ((7, 1.0, 512), B), ([], [])),
    Case("scale-up-100pct", ((10, 1.0, 512), B), ((30, 1.0, 512), B), ((20, 1.0, 512), B), (["ScaleUpLimit"], [])),
    Case(
        "scale-up-50pct-no-pods",
        ((3, 1.0, 512), B),
        ((6, 1.0, 512), B),
        ((5, 1.0, 512), B),  # ceil(3 x 50 %) = 2
        (["ScaleUpLimit"], []),
        config={"max_up_pods": 0, "max_up_percent": 50.0},
    ),
    # 2. Scale-down: 100 % by default, or the configured percentage (floored).
    Case("scale-down-100pct", ((10, 1.0, 512), B), ((1, 1.0, 512), B), ((1, 1.0, 512), B), ([], [])),
    Case(
        "scale-down-50pct",
        ((10, 1.0, 512), B),
        ((1, 1.0, 512), B),
        ((5, 1.0, 512), B),
        (["ScaleDownLimit"], []),
        config={"max_down_percent": 50.0},
    ),
    Case(
        "scale-down-50pct-odd",
        ((3, 1.0, 512), B),
        ((1, 1.0, 512), B),
        ((2, 1.0, 512), B),  # floor(3 x 50 %) = 1
        (["ScaleDownLimit"], []),
        config={"max_down_percent": 50.0},
    ),
    Case(
        "scale-down-disabled",
        ((5, 1.0, 512), B),
        ((3, 1.0, 512), B),
        ((5, 1.0, 512), B),
        (["ScaleDownLimit"], []),
        config={"max_down_percent": 0.0},
    ),
    # 3. Replica bounds.
    Case("too-few", ((2, 1.0, 512), B), ((0, 1.0, 512), B), ((1, 1.0, 512), B), (["TooFewReplicas"], [])),
    Case(
        "too-few-after-down-limit",
        ((2, 1.0, 512), B),
        ((-3, 1.0, 512), B),
        ((1, 1.0, 512), B),
        (["ScaleDownLimit", "TooFewReplicas"], []),
    ),
    Case("too-many", ((30, 1.0, 512), B), ((60, 1.0, 512), B), ((40, 1.0, 512), B), (["TooManyReplicas"], [])),
    Case(
        "too-many-after-up-limit",
        ((30, 1.0, 512), B),
        ((100, 1.0, 512), B),
        ((40, 1.0, 512), B),
        (["ScaleUpLimit", "TooManyReplicas"], []),
    ),
    # 4. Limit steps (factor 2 by default), then bounds.
    Case("cpu-step-up", ((4, 1.0, 512), B), ((4, 3.0, 512), B), ((4, 2.0, 512), B), (["CpuStepLimit"], [])),
    Case("cpu-step-down", ((4, 1.0, 512), B), ((4, 0.2, 512), B), ((4, 0.5, 512), B), (["CpuStepLimit"], [])),
    Case("cpu-bounds-max", ((4, 3.0, 512), B), ((4, 5.0, 512), B), ((4, 4.0, 512), B), (["CpuLimitBounds"], [])),
    Case(
        "cpu-step-then-bounds",
        ((4, 0.15, 512), B),
        ((4, 0.05, 512), B),
        ((4, 0.1, 512), B),  # 0.15 / 2 = 0.075, then up to the 0.1 minimum
        (["CpuStepLimit", "CpuLimitBounds"], []),
    ),
    Case(
        "cpu-factor-1.5",
        ((4, 1.0, 512), B),
        ((4, 2.0, 512), B),
        ((4, 1.5, 512), B),
        (["CpuStepLimit"], []),
        config={"max_limit_factor": 1.5},
    ),
    Case("mem-step-up", ((4, 1.0, 512), B), ((4, 1.0, 2048), B), ((4, 1.0, 1024), B), (["MemStepLimit"], [])),
    Case("mem-step-down", ((4, 1.0, 512), B), ((4, 1.0, 100), B), ((4, 1.0, 256), B), (["MemStepLimit"], [])),
    Case("mem-bounds-max", ((4, 1.0, 3000), B), ((4, 1.0, 5000), B), ((4, 1.0, 4096), B), (["MemLimitBounds"], [])),
    Case(
        "mem-bounds-min",
        ((4, 1.0, 200), B),
        ((4, 1.0, 110), B),
        ((4, 1.0, 128), B),
        (["MemLimitBounds"], []),
        usage=(80.0, 100.0),
    ),
    # 5. Memory floor: observed use x 1.25 (capped at the largest limit).
    Case(
        "mem-below-usage",
        ((4, 1.0, 512), B),
        ((4, 1.0, 300), B),
        ((4, 1.0, 500), B),
        (["MemBelowUsage"], []),
        usage=(400.0, 100.0),
    ),
    Case(
        "mem-below-usage-headroom-1.5",
        ((4, 1.0, 512), B),
        ((4, 1.0, 300), B),
        ((4, 1.0, 600), B),
        (["MemBelowUsage"], []),
        usage=(400.0, 100.0),
        config={"mem_headroom": 1.5},
    ),
    Case(
        "mem-below-usage-capped",
        ((4, 1.0, 3000), B),
        ((4, 1.0, 2000), B),
        ((4, 1.0, 4096), B),  # 4000 x 1.25 = 5000, capped at 4096
        (["MemBelowUsage"], []),
        usage=(4000.0, 100.0),
    ),
    Case(
        "mem-step-then-usage",
        ((4, 1.0, 512), B),
        ((4, 1.0, 100), B),
        ((4, 1.0, 500), B),
        (["MemStepLimit", "MemBelowUsage"], []),
        usage=(400.0, 100.0),
    ),
    Case(
        "mem-usage-on-untouched-b",
        ((4, 1.0, 512), B),
        ((4, 1.0, 512), B),
        ((4, 1.0, 512), (2, 0.5, 300)),  # b uses 240 MiB: 240 x 1.25 = 300 > 256
        ([], ["MemBelowUsage"]),
        usage=(200.0, 240.0),
    ),
    # 5. With no usage reported (no ready pod, a missing metric) memory may not shrink at all.
    Case(
        "mem-usage-zero-no-shrink",
        ((4, 1.0, 512), B),
        ((4, 1.0, 300), B),
        ((4, 1.0, 512), B),
        (["MemBelowUsage"], []),
        usage=(0.0, 100.0),
    ),
    Case(
        "mem-usage-nan-no-shrink",
        ((4, 1.0, 512), B),
        ((4, 1.0, 300), B),
        ((4, 1.0, 512), B),
        (["MemBelowUsage"], []),
        usage=(NAN, 100.0),
    ),
    Case(
        "mem-usage-zero-may-grow",
        ((4, 1.0, 512), B),
        ((4, 1.0, 900), B),
        ((4, 1.0, 900), B),
        ([], []),
        usage=(0.0, 100.0),
    ),
    # 1. Non-finite values keep the current setting.
    Case("nan-replicas", ((4, 1.0, 512), B), ((NAN, 1.0, 512), B), ((4, 1.0, 512), B), (["InvalidValue"], [])),
    Case("inf-cpu", ((4, 1.0, 512), B), ((4, INF, 512), B), ((4, 1.0, 512), B), (["InvalidValue"], [])),
    Case("neg-inf-mem", ((4, 1.0, 512), B), ((4, 1.0, -INF), B), ((4, 1.0, 512), B), (["InvalidValue"], [])),
    Case("all-invalid-once", ((4, 1.0, 512), B), ((NAN, -INF, INF), B), ((4, 1.0, 512), B), (["InvalidValue"], [])),
    Case(
        "invalid-and-clamped",
        ((4, 1.0, 512), B),
        ((NAN, 3.0, 512), (2, 0.5, NAN)),
        ((4, 2.0, 512), B),
        (["InvalidValue", "CpuStepLimit"], ["InvalidValue"]),
    ),
    # Reasons are per service.
    Case(
        "two-services",
        ((2, 1.0, 512), B),
        ((10, 1.0, 512), (2, 0.5, 1024)),
        ((6, 1.0, 512), (2, 0.5, 512)),
        (["ScaleUpLimit"], ["MemStepLimit"]),
    ),
    # 6. Node capacity. b holds 2 x 0.5 = 1 core and 2 x 256 = 512 MiB.
    Case(
        "node-cpu",
        ((2, 1.0, 512), B),
        ((8, 1.0, 512), B),
        ((5, 1.0, 512), B),  # up-limit 6 x 1 core + 1 > 6 cores; 5 + 1 fits
        (["ScaleUpLimit", "NodeCapacity"], []),
        node=(6.0, 24.0),
    ),
    Case(
        "node-cpu-off",
        ((2, 1.0, 512), B),
        ((8, 1.0, 512), B),
        ((6, 1.0, 512), B),
        (["ScaleUpLimit"], []),
        node=(6.0, 24.0),
        config={"node_capacity": False},
    ),
    Case("node-cpu-fits", ((2, 1.0, 512), B), ((4, 1.0, 512), B), ((4, 1.0, 512), B), ([], []), node=(6.0, 24.0)),
    Case(
        "node-mem",
        ((2, 1.0, 512), B),
        ((4, 1.0, 512), B),
        ((3, 1.0, 512), B),  # 2048 MiB pool: 3 x 512 + 512 = 2048 fits, 4 x 512 + 512 does not
        (["NodeCapacity"], []),
        node=(8.0, 2.0),
    ),
    Case(
        "node-limit-undone",
        ((2, 1.0, 512), B),
        ((2, 2.0, 512), B),
        ((2, 1.0, 512), B),  # 2 x 2 + 1 = 5 > 4 cores: the CPU increase is cut back
        (["NodeCapacity"], []),
        node=(4.0, 24.0),
    ),
    Case(
        "node-both-grow",
        ((1, 1.0, 512), (1, 1.0, 256)),
        ((3, 1.0, 512), (3, 1.0, 256)),
        ((2, 1.0, 512), (2, 1.0, 256)),  # 2 free cores shared in proportion to the growth
        (["NodeCapacity"], ["NodeCapacity"]),
        node=(4.0, 24.0),
    ),
    Case(
        "node-replicas-before-limits",
        ((2, 1.0, 512), B),
        ((4, 1.5, 512), B),
        ((2, 1.0, 512), B),  # even 2 x 1.5 + 1 > 3.5, so replicas and then the limit are cut
        (["NodeCapacity"], []),
        node=(3.5, 24.0),
    ),
    Case(
        "node-cuts-the-memory-floor",
        ((2, 1.0, 512), B),
        ((2, 1.0, 512), B),
        ((2, 1.0, 512), B),  # floor 625 MiB would need 1762 MiB of a 1536 MiB pool: step 6 wins
        (["MemBelowUsage", "NodeCapacity"], []),
        usage=(500.0, 100.0),
        node=(8.0, 1.5),
    ),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_guard_table(case: Case) -> None:
    app = two_service_app(*case.node)
    config = GuardConfig(**case.config)
    want = decision(*case.want)
    want_before = want.copy()
    result = guard(want, decision(*case.current), np.array(case.usage), app, config)
    exp = decision(*case.expected)
    got = result.decision
    assert got.replicas.dtype == np.int64
    np.testing.assert_array_equal(got.replicas, exp.replicas.astype(np.int64))
    np.testing.assert_allclose(got.cpu_limit, exp.cpu_limit, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got.mem_limit, exp.mem_limit, rtol=0, atol=1e-9)
    assert result.reasons == [list(r) for r in case.reasons]
    assert result.clamped == sum(1 for r in case.reasons if r)
    # The guard never writes into the decision it was given.
    np.testing.assert_array_equal(want.replicas, want_before.replicas)
    np.testing.assert_array_equal(want.cpu_limit, want_before.cpu_limit)
    np.testing.assert_array_equal(want.mem_limit, want_before.mem_limit)


def test_counts_per_reason() -> None:
    app = two_service_app()
    result = guard(
        decision((100, 1.0, 512), (2, 0.5, 2048)),
        decision((30, 1.0, 512), B),
        np.array([200.0, 100.0]),
        app,
        GuardConfig(),
    )
    counts = result.counts()
    assert set(counts) == set(REASONS)
    expected = {"ScaleUpLimit": 1, "TooManyReplicas": 1, "MemStepLimit": 1}
    assert counts == {r: expected.get(r, 0) for r in REASONS}
    assert result.clamped == 2


def test_memory_floor_survives_rounding() -> None:
    app = two_service_app()
    result = guard(decision((4, 1.0, 300), B), decision((4, 1.0, 512), B), np.array([401.0, 100.0]), app, GuardConfig())
    assert result.reasons[0] == ["MemBelowUsage"]
    assert result.decision.mem_limit[0] >= 401.0 * 1.25


# --- ranges and config ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "up", "down"),
    [
        ({}, [4, 4, 4, 4, 5, 10, 40], [0, 1, 3, 4, 5, 10, 40]),
        ({"max_up_pods": 0, "max_up_percent": 50.0}, [0, 1, 2, 2, 3, 5, 20], [0, 1, 3, 4, 5, 10, 40]),
        ({"max_up_pods": 2, "max_up_percent": 0.0}, [2, 2, 2, 2, 2, 2, 2], [0, 1, 3, 4, 5, 10, 40]),
        ({"max_down_percent": 50.0}, [4, 4, 4, 4, 5, 10, 40], [0, 0, 1, 2, 2, 5, 20]),
        ({"max_down_percent": 10.0}, [4, 4, 4, 4, 5, 10, 40], [0, 0, 0, 0, 0, 1, 4]),
        ({"max_down_percent": 0.0}, [4, 4, 4, 4, 5, 10, 40], [0, 0, 0, 0, 0, 0, 0]),
    ],
)
def test_up_and_down_range(config: dict[str, Any], up: list[int], down: list[int]) -> None:
    cur = np.array([0, 1, 3, 4, 5, 10, 40], dtype=float)
    cfg = GuardConfig(**config)
    np.testing.assert_array_equal(cfg.up_range(cur), up)
    np.testing.assert_array_equal(cfg.down_range(cur), down)


@pytest.mark.parametrize(
    ("kwargs", "field_name"),
    [
        ({"max_up_pods": -1}, "guard.max_up_pods"),
        ({"max_up_pods": 2.5}, "guard.max_up_pods"),
        ({"max_up_percent": -5.0}, "guard.max_up_percent"),
        ({"max_up_percent": NAN}, "guard.max_up_percent"),
        ({"max_down_percent": -1.0}, "guard.max_down_percent"),
        ({"max_down_percent": 101.0}, "guard.max_down_percent"),
        ({"max_down_percent": NAN}, "guard.max_down_percent"),
        ({"max_limit_factor": 0.5}, "guard.max_limit_factor"),
        ({"max_limit_factor": 0.0}, "guard.max_limit_factor"),
        ({"max_limit_factor": NAN}, "guard.max_limit_factor"),
        ({"mem_headroom": 0.9}, "guard.mem_headroom"),
        ({"mem_headroom": -1.0}, "guard.mem_headroom"),
    ],
)
def test_guard_config_errors_name_the_field(kwargs: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ConfigError) as err:
        GuardConfig(**kwargs)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{field_name}:")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_up_pods": 0},
        {"max_up_percent": 0.0},
        {"max_down_percent": 0.0},
        {"max_down_percent": 100.0},
        {"max_limit_factor": 1.0},
        {"mem_headroom": 1.0},
        {"node_capacity": False},
    ],
)
def test_guard_config_edges_are_valid(kwargs: dict[str, Any]) -> None:
    cfg = GuardConfig(**kwargs)
    for key, value in kwargs.items():
        assert getattr(cfg, key) == value


def test_guard_config_defaults_match_hpa() -> None:
    cfg = GuardConfig()
    assert (cfg.max_up_pods, cfg.max_up_percent, cfg.max_down_percent) == (4, 100.0, 100.0)
    assert (cfg.max_limit_factor, cfg.mem_headroom, cfg.node_capacity) == (2.0, 1.25, True)
