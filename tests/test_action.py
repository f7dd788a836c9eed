"""Tests for envs.action: decoding actions in [-1, 1] into decisions and encoding decisions back.

Expected decodings are worked out by hand from the rules in the module docstring: replicas move
by round(a x range) with the guard's per-interval ranges, limits multiply by factor ** a and are
rounded to millicores and whole MiB.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from envs.action import ACTION_DIMS, decode, encode
from envs.app import load_app
from envs.guard import GuardConfig, guard
from envs.metrics import ScalingDecision

NAN = math.nan
INF = math.inf
STEP_REASONS = {"ScaleUpLimit", "ScaleDownLimit", "CpuStepLimit", "MemStepLimit"}


def decision(replicas: list[float], cpu: list[float], mem: list[float]) -> ScalingDecision:
    return ScalingDecision(
        replicas=np.array(replicas, dtype=np.int64),
        cpu_limit=np.array(cpu, dtype=np.float64),
        mem_limit=np.array(mem, dtype=np.float64),
    )


def assert_same(got: ScalingDecision, exp: ScalingDecision) -> None:
    assert got.replicas.dtype == np.int64
    np.testing.assert_array_equal(got.replicas, exp.replicas)
    np.testing.assert_array_equal(got.cpu_limit, exp.cpu_limit)
    np.testing.assert_array_equal(got.mem_limit, exp.mem_limit)


CONFIGS = {
    "default": {},
    "tight": {"max_up_pods": 2, "max_up_percent": 50.0, "max_down_percent": 30.0, "max_limit_factor": 1.5},
    "factor-3": {"max_up_pods": 1, "max_up_percent": 200.0, "max_down_percent": 75.0, "max_limit_factor": 3.0},
}


# --- round trip ----------------------------------------------------------------------------------

CURRENT = decision([4, 1, 10], [1.0, 0.25, 2.5], [512, 300, 1000])

HAND_TARGETS = [
    ("unchanged", decision([4, 1, 10], [1.0, 0.25, 2.5], [512, 300, 1000])),
    ("up-extreme", decision([8, 5, 20], [2.0, 0.5, 5.0], [1024, 600, 2000])),
    ("down-extreme", decision([0, 0, 0], [0.5, 0.125, 1.25], [256, 150, 500])),
    ("mixed", decision([7, 3, 6], [1.414, 0.3, 1.999], [724, 599, 501])),
    ("one-pod", decision([5, 2, 11], [1.001, 0.249, 2.501], [513, 299, 1001])),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("name", "target"), HAND_TARGETS, ids=[n for n, _ in HAND_TARGETS])
def test_round_trip_hand_picked(name: str, target: ScalingDecision, dtype: type) -> None:
    cfg = GuardConfig()
    action = encode(target, CURRENT, cfg)
    assert action.shape == (3, ACTION_DIMS)
    assert np.all(np.abs(action) <= 1.0)
    # float32 is what a policy hands the env.
    assert_same(decode(action.astype(dtype), CURRENT, cfg), target)


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_round_trip_random(config_name: str, dtype: type) -> None:
    cfg = GuardConfig(**CONFIGS[config_name])
    f = cfg.max_limit_factor
    rng = np.random.default_rng(20240601)
    n = 400
    cur = decision(
        list(rng.integers(0, 41, n)),
        list(rng.integers(100, 4001, n) / 1000.0),
        list(rng.integers(64, 4097, n).astype(float)),
    )
    cur_r = cur.replicas.astype(float)
    lo = cur_r - cfg.down_range(cur_r)
    hi = cur_r + cfg.up_range(cur_r)
    replicas = np.floor(rng.uniform(lo, hi + 1)).clip(lo, hi)
    cpu = np.round(rng.uniform(cur.cpu_limit / f, cur.cpu_limit * f), 3)
    mem = np.round(rng.uniform(cur.mem_limit / f, cur.mem_limit * f))
    target = decision(list(replicas), list(cpu), list(mem))
    got = decode(encode(target, cur, cfg).astype(dtype), cur, cfg)
    assert_same(got, target)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        # Beyond the per-interval range: the action saturates at +/-1.
        (decision([100, 1, 10], [1.0, 0.25, 2.5], [512, 300, 1000]), [[1, 0, 0], [0, 0, 0], [0, 0, 0]]),
        (decision([4, 1, 10], [10.0, 0.01, 2.5], [512, 300, 1000]), [[0, 1, 0], [0, -1, 0], [0, 0, 0]]),
        (decision([4, 1, 10], [1.0, 0.25, 2.5], [99999, 300, 1]), [[0, 0, 1], [0, 0, 0], [0, 0, -1]]),
        # Halfway: 2 of 4 pods up, 5 of 10 down; sqrt(2) x the CPU, half a factor down on memory.
        (
            decision([6, 1, 5], [math.sqrt(2), 0.25, 2.5], [512, 300 / math.sqrt(2), 1000]),
            [[0.5, 0.5, 0], [0, 0, -0.5], [-0.5, 0, 0]],
        ),
    ],
)
def test_encode_by_hand(target: ScalingDecision, expected: list[list[float]]) -> None:
    np.testing.assert_allclose(encode(target, CURRENT, GuardConfig()), expected, rtol=0, atol=1e-12)


def test_encode_with_no_room_is_zero() -> None:
    cfg = GuardConfig(max_down_percent=0.0, max_up_pods=0, max_up_percent=0.0)
    target = decision([2, 9], [1.0, 1.0], [512, 512])
    current = decision([4, 5], [1.0, 1.0], [512, 512])
    action = encode(target, current, cfg)
    np.testing.assert_array_equal(action, np.zeros((2, 3)))
    assert_same(decode(action, current, cfg), current)


# --- extremes ------------------------------------------------------------------------------------

REPLICAS = [0, 1, 3, 4, 5, 10, 40]


@pytest.mark.parametrize(
    ("config", "plus_one", "minus_one"),
    [
        # Default: +1 adds max(4, current) pods; -1 removes all of them (down_range = 100 %).
        ({}, [4, 5, 7, 8, 10, 20, 80], [0, 0, 0, 0, 0, 0, 0]),
        # 50 % down: floor(current / 2) removed.
        ({"max_down_percent": 50.0}, [4, 5, 7, 8, 10, 20, 80], [0, 1, 2, 2, 3, 5, 20]),
        # 2 pods or 50 % (rounded up) up.
        ({"max_up_pods": 2, "max_up_percent": 50.0}, [2, 3, 5, 6, 8, 15, 60], [0, 0, 0, 0, 0, 0, 0]),
    ],
)
def test_extreme_replica_actions(config: dict[str, Any], plus_one: list[int], minus_one: list[int]) -> None:
    cfg = GuardConfig(**config)
    n = len(REPLICAS)
    cur = decision(REPLICAS, [1.0] * n, [512] * n)
    up = np.zeros((n, 3))
    up[:, 0] = 1.0
    np.testing.assert_array_equal(decode(up, cur, cfg).replicas, plus_one)
    np.testing.assert_array_equal(decode(-up, cur, cfg).replicas, minus_one)


@pytest.mark.parametrize(
    ("a_cpu", "a_mem", "factor", "cpu", "mem"),
    [
        (1.0, 1.0, 2.0, 2.0, 1024.0),
        (-1.0, -1.0, 2.0, 0.5, 256.0),
        (0.5, 0.5, 2.0, 1.414, 724.0),  # 1 x 2^0.5 = 1.41421, 512 x 2^0.5 = 724.08
        (-0.5, -0.5, 2.0, 0.707, 362.0),  # 1 / 2^0.5 = 0.70711, 512 / 2^0.5 = 362.04
        (1.0, -1.0, 1.5, 1.5, 341.0),  # 512 / 1.5 = 341.33
        (1.0, 1.0, 3.0, 3.0, 1536.0),
        (0.0, 0.0, 2.0, 1.0, 512.0),
        (5.0, -7.0, 2.0, 2.0, 256.0),  # clipped to [-1, 1]
        (INF, -INF, 2.0, 2.0, 256.0),  # infinities saturate
    ],
)
def test_limits_multiply_by_factor(a_cpu: float, a_mem: float, factor: float, cpu: float, mem: float) -> None:
    cfg = GuardConfig(max_limit_factor=factor)
    cur = decision([4], [1.0], [512])
    got = decode(np.array([[0.0, a_cpu, a_mem]]), cur, cfg)
    assert got.replicas[0] == 4
    assert got.cpu_limit[0] == cpu
    assert got.mem_limit[0] == mem


@pytest.mark.parametrize(
    ("cpu", "mem", "a", "exp_cpu", "exp_mem"),
    [
        (0.3, 300.0, 0.3, 0.369, 369.0),  # x 2^0.3 = 1.231144: 0.369343, 369.343
        (0.3, 300.0, -0.3, 0.244, 244.0),  # / 1.231144: 0.243677, 243.677
        (0.1234, 100.6, 0.0, 0.123, 101.0),  # unchanged values are rounded too
        (3.333, 1000.0, 0.1, 3.572, 1072.0),  # x 2^0.1 = 1.071773: 3.572220, 1071.77
    ],
)
def test_rounding_to_millicores_and_mib(cpu: float, mem: float, a: float, exp_cpu: float, exp_mem: float) -> None:
    got = decode(np.array([[0.0, a, a]]), decision([2], [cpu], [mem]), GuardConfig())
    assert got.cpu_limit[0] == exp_cpu
    assert got.mem_limit[0] == exp_mem


@pytest.mark.parametrize(
    ("a", "replicas"),
    [
        (0.5, 6),  # 0.5 x 4 = 2
        (0.3, 5),  # 1.2 -> 1
        (0.4, 6),  # 1.6 -> 2
        (-0.25, 3),  # 0.25 x 4 = 1 removed
        (-0.6, 2),  # 2.4 -> 2 removed
        (-0.65, 1),  # 2.6 -> 3 removed
    ],
)
def test_replica_steps_round(a: float, replicas: int) -> None:
    got = decode(np.array([[a, 0.0, 0.0]]), decision([4], [1.0], [512]), GuardConfig())
    assert got.replicas[0] == replicas


@pytest.mark.parametrize(
    "action",
    [
        [[NAN, NAN, NAN], [NAN, NAN, NAN]],
        [[NAN, 0.0, NAN], [0.0, NAN, 0.0]],
    ],
)
def test_nan_actions_decode_to_no_change(action: list[list[float]]) -> None:
    cur = decision([4, 7], [1.0, 0.25], [512, 300])
    assert_same(decode(np.array(action), cur, GuardConfig()), cur)


def test_nan_mixed_with_real_actions() -> None:
    cur = decision([4, 7], [1.0, 0.25], [512, 300])
    got = decode(np.array([[NAN, 1.0, NAN], [1.0, NAN, -1.0]]), cur, GuardConfig())
    assert_same(got, decision([4, 14], [2.0, 0.25], [512, 150]))


def test_decode_does_not_touch_its_inputs() -> None:
    cur = decision([4], [1.0], [512])
    action = np.array([[1.0, -1.0, NAN]])
    decode(action, cur, GuardConfig())
    assert np.isnan(action[0, 2])
    assert_same(cur, decision([4], [1.0], [512]))


# --- agreement with the guard --------------------------------------------------------------------


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize(
    ("replicas", "cpu", "mem"),
    [(4, 1.0, 512.0), (10, 2.0, 1024.0), (3, 0.5, 384.0), (7, 1.25, 700.0)],
)
def test_extreme_actions_pass_the_guard_step_limits(replicas: int, cpu: float, mem: float, sign: float) -> None:
    app = load_app("single")
    cfg = GuardConfig()
    cur = decision([replicas], [cpu], [mem])
    want = decode(np.full((1, 3), sign), cur, cfg)
    result = guard(want, cur, np.array([100.0]), app, cfg)
    assert not STEP_REASONS & set(result.reasons[0])


def test_minus_one_on_an_odd_memory_limit_is_not_clamped() -> None:
    app = load_app("single")
    cfg = GuardConfig()
    cur = decision([4], [1.0], [513.0])
    want = decode(np.array([[0.0, 0.0, -1.0]]), cur, cfg)
    result = guard(want, cur, np.array([100.0]), app, cfg)
    assert result.reasons[0] == []
