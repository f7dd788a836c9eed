"""Controller rules in front of any policy: the scale-down stabilization window
(``stable@S:POLICY``) and growth bounded as the HPA bounds it (``lean@U:POLICY``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from envs.metrics import ScalingDecision
from envs.observation import F
from envs.rules import Rule, growth_room, hold_growth, latency_limit, stabilize, window_intervals
from policies.base import EnvContext, PolicyRule
from policies.registry import expand, inner_name, make_policy


def _d(r: list[int], c: list[float], m: list[float]) -> ScalingDecision:
    return ScalingDecision(replicas=np.array(r, dtype=np.int64), cpu_limit=np.array(c), mem_limit=np.array(m))


CUR = _d([4], [1.0], [512])


@pytest.mark.parametrize(
    ("want", "earlier", "expected"),
    [
        # Increases pass whatever was asked before.
        (_d([6], [2.0], [1024]), [_d([2], [0.5], [128])], _d([6], [2.0], [1024])),
        # A decrease after a higher ask is held at the current setting (the ask was above it).
        (_d([2], [0.5], [256]), [_d([8], [2.0], [1024])], CUR),
        # ... or at the highest recent ask when that is below the current setting.
        (_d([2], [0.5], [256]), [_d([3], [0.8], [300])], _d([3], [0.8], [300])),
        # A decrease every recent ask agrees with goes through.
        (_d([2], [0.5], [256]), [_d([2], [0.5], [256])], _d([2], [0.5], [256])),
        # Each output on its own: replicas up, CPU held, memory cut as far as asked before.
        (_d([5], [0.5], [256]), [_d([4], [1.0], [400])], _d([5], [1.0], [400])),
    ],
)
def test_stabilize_table(want, earlier, expected) -> None:
    got = stabilize(want, CUR, [*earlier, want])
    np.testing.assert_array_equal(got.replicas, expected.replicas)
    np.testing.assert_allclose(got.cpu_limit, expected.cpu_limit)
    np.testing.assert_allclose(got.mem_limit, expected.mem_limit)


@pytest.mark.parametrize(
    ("want", "earlier", "expected"),
    [
        # One high ask two intervals ago, alone: not held (steady@S), so the decrease passes.
        (
            _d([2], [0.5], [256]),
            [_d([3], [0.5], [256]), _d([8], [2.0], [1024]), _d([3], [0.5], [256])],
            _d([3], [0.5], [256]),
        ),
        # The same ask made twice running is held, capped at the current setting.
        (_d([2], [0.5], [256]), [_d([8], [2.0], [1024]), _d([8], [2.0], [1024]), _d([3], [0.5], [256])], CUR),
        # What two running asks held is the lower of the two.
        (
            _d([2], [0.5], [256]),
            [_d([3], [0.9], [500]), _d([4], [0.7], [300]), _d([2], [0.5], [256])],
            _d([3], [0.7], [300]),
        ),
        # With the current ask, the last one counts: held at the lower of the two.
        (_d([2], [0.5], [256]), [_d([3], [0.8], [300])], _d([2], [0.5], [256])),
        # With no earlier ask remembered, a decrease passes; an increase always does.
        (_d([2], [0.5], [256]), [], _d([2], [0.5], [256])),
        (_d([6], [2.0], [1024]), [_d([8], [4.0], [2048]), _d([8], [4.0], [2048])], _d([6], [2.0], [1024])),
    ],
)
def test_steady_holds_only_asks_made_twice_running(want, earlier, expected) -> None:
    got = stabilize(want, CUR, [*earlier, want], run=2)
    np.testing.assert_array_equal(got.replicas, expected.replicas)
    np.testing.assert_allclose(got.cpu_limit, expected.cpu_limit)
    np.testing.assert_allclose(got.mem_limit, expected.mem_limit)


@pytest.mark.parametrize(("window_s", "intervals"), [(0, 1), (15, 1), (16, 2), (60, 4), (300, 20)])
def test_window_intervals(window_s: float, intervals: int) -> None:
    assert window_intervals(window_s, 15.0) == intervals


class Scripted:
    """Asks for the CPU-limit component of each step's action from a fixed list (then the last)."""

    name = "scripted"
    vertical_mode = "in-place"

    def __init__(self, cpu: list[float]):
        self.cpu = cpu

    def initial_state(self) -> Any:
        return 0

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        a = np.zeros((1, 3), dtype=np.float32)
        a[0, 1] = self.cpu[min(state, len(self.cpu) - 1)]
        return a.ravel(), state + 1


def _cpu_limits(policy: Any, steps: int, rps: float = 100.0) -> list[float]:
    env = AutoscaleEnv({"app": "single", "noise": 0.0, "arrival_noise": False, "max_services": 1})
    obs, _ = env.reset(seed=0, options={"rates": np.full(steps, rps)})
    state = policy.initial_state()
    out = []
    for _ in range(steps):
        action, state = policy.act(obs, state)
        assert np.all(np.abs(action) <= 1.0)
        obs, *_ = env.step(action)
        out.append(float(env.decision.cpu_limit[0]))
    return out


def test_a_flapping_policy_is_held_up_and_a_lasting_cut_goes_through_after_the_window() -> None:
    """Up, then down every interval: bare, the limit falls at once; behind a 60 s window (4
    intervals) it holds for 3 more intervals, then comes down one asked step per window (the asks
    made while held were halvings of the held setting)."""
    script = [1.0] + [-1.0] * 12
    env = AutoscaleEnv({"app": "single", "max_services": 1})
    bare = _cpu_limits(Scripted(script), 10)
    held = _cpu_limits(PolicyRule(Scripted(script), EnvContext.of(env), Rule("stable", 60.0)), 10)
    assert bare == [2.0, 1.0, 0.5, 0.25, 0.125, 0.1, 0.1, 0.1, 0.1, 0.1]
    assert held == [2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5]


def test_flapping_every_interval_never_cuts() -> None:
    """Load that alternates faster than the window: the limit stays at its high."""
    script = [1.0, -1.0] * 10
    env = AutoscaleEnv({"app": "single", "max_services": 1})
    held = _cpu_limits(PolicyRule(Scripted(script), EnvContext.of(env), Rule("stable", 60.0)), 12)
    assert held == sorted(held)


def test_registry_builds_and_names_the_wrapper() -> None:
    assert expand(["stable@120:hpa@0.6", "stable@300:safe:oracle"]) == ["stable@120:hpa@0.6", "stable@300:safe:oracle"]
    env = AutoscaleEnv({"app": "single", "max_services": 1})
    policy = make_policy("stable@120:hpa@0.6", env, np.full(10, 100.0))
    assert isinstance(policy, PolicyRule) and policy.rule == Rule("stable", 120.0)
    assert window_intervals(policy.rule.value, env.config.interval_s) == 8
    assert policy.name == "stable@120:hpa@0.6"
    assert inner_name("stable@60:safe:ddpg:runs/x") == "ddpg:runs/x"
    assert inner_name("hpa@0.6") == "hpa@0.6"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("stable@120", "policy 'stable@120': write stable@SECONDS:POLICY"),
        ("stable@x:hpa", "policy 'stable@x:hpa': 'stable@x' needs a number after '@', got 'x'"),
        ("stable@-5:hpa", "policy 'stable@-5:hpa': stabilization window must be in [0, 3600] s, got -5"),
        ("stable@9000:hpa", "must be in [0, 3600] s, got 9000"),
        ("stable@60:ppo", "unknown policy 'ppo'"),
    ],
)
def test_registry_rejects(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        expand([name])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


# --- lean@U:POLICY: growth bounded as the HPA bounds it ---------------------------------


def _services(
    util: float,
    throttled: float = 0.0,
    drops: float = 0.0,
    backlog: float = 0.0,
    replicas: float = 0.0,
    ready: float = 0.0,
) -> np.ndarray:
    row = np.zeros((1, len(F)))
    row[0, F["cpu_util"]], row[0, F["throttled"]], row[0, F["drops"]] = util, throttled, drops
    row[0, F["queue"]] = np.log1p(backlog) / 10.0
    row[0, F["replicas"]], row[0, F["ready"]] = replicas, ready
    return row


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        (_services(0.0), 0.0),
        (_services(0.09), 0.9),  # below the threshold: nothing may grow
        (_services(0.1), 1.0),  # at it: the HPA's ceil(replicas x 1) adds nothing either
        (_services(0.25), 2.5),  # room to run at 0.1, and no further
        (_services(0.0, throttled=0.2), np.inf),  # utilisation is capped: no bound
        (_services(0.0, drops=0.01), np.inf),
        (_services(0.0, backlog=0.5), 0.0),
        (_services(0.0, backlog=3.0), np.inf),
        # 1 of 4 desired pods ready: the 3 starting count as using nothing, as the HPA counts them.
        (_services(0.4, replicas=0.4, ready=0.1), 1.0),
        (_services(0.4, replicas=0.4, ready=0.4), 4.0),
    ],
)
def test_growth_room_table(services: np.ndarray, expected: float) -> None:
    np.testing.assert_allclose(growth_room(services, 0.1), [expected])


def test_growth_room_at_threshold_zero_is_unbounded() -> None:
    assert growth_room(_services(0.0), 0.0).tolist() == [np.inf]


@pytest.mark.parametrize(
    ("want", "room", "expected"),
    [
        # No room: growth held, the cut passes, memory passes as asked.
        (_d([4], [2.0], [1024]), 0.0, _d([2], [1.0], [1024])),
        (_d([1], [0.5], [256]), 0.0, _d([1], [0.5], [256])),
        (_d([4], [2.0], [1024]), 0.9, _d([2], [1.0], [1024])),
        # Unbounded (throttled, dropping, queueing): everything passes.
        (_d([9], [3.0], [1024]), np.inf, _d([9], [3.0], [1024])),
        # Room 2: capacity 2 x 1.0 may reach 4.0 cores.
        (_d([8], [1.0], [512]), 2.0, _d([4], [1.0], [512])),  # replicas only
        (_d([2], [3.0], [512]), 2.0, _d([2], [2.0], [512])),  # the limit only
        (_d([8], [3.0], [512]), 2.0, _d([2], [2.0], [512])),  # the limit first, then no room left
        (_d([3], [1.5], [512]), 2.0, _d([3], [1.5], [512])),  # within room: as asked
        # A cut limit leaves room for more pods at the new limit (4.0 / 0.5), rounded up.
        (_d([20], [0.5], [512]), 2.0, _d([8], [0.5], [512])),
        (_d([20], [0.6], [512]), 2.0, _d([7], [0.6], [512])),  # ceil(6.67), as the HPA rounds
        # Never below the current count while the policy asked for more.
        (_d([20], [3.0], [512]), 1.2, _d([2], [1.2], [512])),
    ],
)
def test_hold_growth_table(want: ScalingDecision, room: float, expected: ScalingDecision) -> None:
    got = hold_growth(want, _d([2], [1.0], [512]), np.array([room]))
    np.testing.assert_array_equal(got.replicas, expected.replicas)
    np.testing.assert_allclose(got.cpu_limit, expected.cpu_limit)
    np.testing.assert_allclose(got.mem_limit, expected.mem_limit)


@pytest.mark.parametrize(
    ("want", "expected"),
    [
        # No room from utilisation, but the SLO is lost: a limit below one core may rise to one.
        (_d([1], [0.8], [256]), _d([1], [0.8], [256])),
        (_d([1], [2.0], [256]), _d([1], [1.0], [256])),
        # Replicas still need room: a limit slows each request, a pod more does not speed one up.
        (_d([3], [0.8], [256]), _d([1], [0.8], [256])),
        (_d([1], [0.2], [256]), _d([1], [0.2], [256])),  # a cut passes
    ],
)
def test_hold_growth_lets_limits_reach_one_core_while_the_slo_is_lost(
    want: ScalingDecision, expected: ScalingDecision
) -> None:
    current = _d([1], [0.3], [256])
    got = hold_growth(want, current, np.array([0.0]), latency_limit(1.2))
    np.testing.assert_array_equal(got.replicas, expected.replicas)
    np.testing.assert_allclose(got.cpu_limit, expected.cpu_limit)
    held = hold_growth(want, current, np.array([0.0]), latency_limit(0.95))  # within the SLO
    np.testing.assert_allclose(held.cpu_limit, np.minimum(want.cpu_limit, current.cpu_limit))


def test_lean_policy_at_no_load_never_grows_and_under_load_follows() -> None:
    """A policy that always asks to double everything: with no requests, lean@0.1 holds CPU and
    replicas where they are; under load the asks pass."""
    always_up = Scripted([1.0])
    env = AutoscaleEnv({"app": "single", "max_services": 1})
    idle = _cpu_limits(PolicyRule(always_up, EnvContext.of(env), Rule("lean", 0.1)), 6, rps=0.0)
    assert idle == [1.0] * 6
    busy = _cpu_limits(PolicyRule(always_up, EnvContext.of(env), Rule("lean", 0.1)), 3, rps=200.0)
    assert busy == [1.0, 2.0, 4.0]  # the first observation, before any interval, shows no load


def test_lean_policy_raises_a_limit_that_loses_the_slo_at_low_utilisation() -> None:
    """At 2 requests/s the single service sits far below lean@0.5's threshold. Cut to 0.1 core,
    each request takes ten times longer and the p99 passes the SLO: the policy's raises pass
    until the SLO is met again, and never past one core; bare, the same asks reach 4 cores."""
    env = AutoscaleEnv({"app": "single", "max_services": 1})
    down_then_up = Scripted([-1.0] * 6 + [1.0])
    bare = _cpu_limits(down_then_up, 14, rps=2.0)
    lean = _cpu_limits(PolicyRule(down_then_up, EnvContext.of(env), Rule("lean", 0.5)), 14, rps=2.0)
    assert bare[5] == lean[5] == 0.1 and bare[-1] == 4.0
    assert lean[6] > 0.1 and max(lean) <= 1.0
    assert lean[-1] == lean[-4]  # held once the SLO is met


def test_registry_builds_lean_and_rejects_bad_thresholds() -> None:
    env = AutoscaleEnv({"app": "single", "max_services": 1})
    policy = make_policy("lean@0.1:stable@60:hpa@0.6", env, np.full(10, 100.0))
    assert policy.rule == Rule("lean", 0.1) and policy.policy.rule == Rule("stable", 60.0)
    assert inner_name("lean@0.1:stable@60:hpa@0.6") == "hpa@0.6"
    for name, message in [
        ("lean@0.1", "write lean@UTILISATION:POLICY"),
        ("lean@x:hpa", "'lean@x' needs a number after '@', got 'x'"),
        ("lean@2:hpa", "utilisation threshold must be in [0, 1], got 2"),
    ]:
        with pytest.raises(ConfigError) as err:
            expand([name])
        assert f"policy '{name}': {message}" in str(err.value)


def test_untouched_services_keep_the_policys_action_bit_for_bit() -> None:
    """Only the services a rule changed are re-encoded: an action of 0.3337 on an untouched service
    comes back as it was, not as the action of its rounded decision."""
    from envs.guard import GuardConfig
    from envs.rules import override_actions

    current = _d([4, 4], [1.0, 1.0], [512, 512])
    want = _d([4, 4], [1.26, 1.26], [512, 512])
    got = _d([4, 4], [1.26, 1.0], [512, 512])  # the rule held the second service's CPU
    grid = np.array([[0.0, 0.3337, 0.0], [0.0, 0.3337, 0.0]], dtype=np.float32)
    out = override_actions(grid, want, got, current, GuardConfig())
    assert out[0].tobytes() == grid[0].tobytes()
    np.testing.assert_allclose(out[1], [0.0, 0.0, 0.0])
