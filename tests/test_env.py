"""Tests for the gymnasium env: API conformance, seeding, spaces, padding, episodes, config
validation, the observation read-back, the reward and the scoreboard.

Scoreboard values are worked out by hand for steady states set up with measurement noise and
arrival noise off, where the simulator's outcome follows from the app spec alone.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict
from typing import Any

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.autoscale_env import AutoscaleEnv, StepRecord
from envs.config import EnvConfig
from envs.errors import ConfigError
from envs.guard import GuardConfig
from envs.observation import APP_FEATURES, N_APP_FEATURES, N_SERVICE_FEATURES, SERVICE_FEATURES, service_view
from envs.reward import RewardWeights, reward, slo_preservation

APPS = ["single", "chain3", "social-network", "ecommerce"]
HOURS = 15.0 / 3600.0
MASK = SERVICE_FEATURES.index("mask")


def make(config: dict[str, Any]) -> AutoscaleEnv:
    env = gymnasium.make(envs.ENV_ID, config=config).unwrapped
    assert isinstance(env, AutoscaleEnv)
    return env


def quiet(app: str, **extra: Any) -> AutoscaleEnv:
    """An env without measurement or arrival noise, for hand-computed outcomes."""
    return make({"app": app, "noise": 0.0, "arrival_noise": False, **extra})


# --- API conformance -----------------------------------------------------------------------------


@pytest.mark.parametrize("app", APPS)
def test_check_env_passes(app: str) -> None:
    env = make({"app": app, "episode_steps": 20})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    assert [str(w.message) for w in caught] == []


def test_registered_id() -> None:
    assert envs.ENV_ID == "aware_ray/Autoscale-v0"
    assert envs.ENV_ID in gymnasium.registry


# --- seeding -------------------------------------------------------------------------------------


def rollout(workload: str, seed: int, steps: int = 50) -> tuple[list[np.ndarray], list[float], list[StepRecord], dict]:
    env = make({"app": "chain3", "workloads": [workload], "episode_steps": 60})
    obs, info = env.reset(seed=seed)
    actions = np.random.default_rng(99).uniform(-1.0, 1.0, (steps, *env.action_space.shape)).astype(np.float32)
    observations, rewards, boards = [obs], [], []
    for a in actions:
        obs, r, terminated, truncated, step_info = env.step(a)
        assert not terminated and not truncated
        observations.append(obs)
        rewards.append(r)
        boards.append(step_info["scoreboard"])
    return observations, rewards, boards, info


WORKLOADS = ["family:bursty", "trace:nasa_http_1995-08_1min"]


@pytest.mark.parametrize("workload", WORKLOADS)
def test_same_seed_same_rollout(workload: str) -> None:
    obs_a, rew_a, board_a, info_a = rollout(workload, seed=7)
    obs_b, rew_b, board_b, info_b = rollout(workload, seed=7)
    assert info_a == info_b
    assert len(obs_a) == 51
    for x, y in zip(obs_a, obs_b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert rew_a == rew_b
    assert [asdict(b) for b in board_a] == [asdict(b) for b in board_b]
    # The rollout is not trivial: the random actions moved things and rewards vary.
    assert len(set(rew_a)) > 10


@pytest.mark.parametrize("workload", WORKLOADS)
def test_different_seed_different_rollout(workload: str) -> None:
    obs_a, rew_a, board_a, _ = rollout(workload, seed=7, steps=10)
    obs_c, rew_c, board_c, _ = rollout(workload, seed=8, steps=10)
    assert not all(np.array_equal(x, y) for x, y in zip(obs_a, obs_c, strict=True))
    assert rew_a != rew_c
    assert [b.external_rps for b in board_a] != [b.external_rps for b in board_c]


def test_reset_with_seed_replays_on_the_same_env() -> None:
    env = make({"app": "single", "workloads": ["family:spikes"], "episode_steps": 30})
    action = np.full(env.action_space.shape, 0.3, dtype=np.float32)

    def run() -> list[float]:
        env.reset(seed=3)
        return [env.step(action)[1] for _ in range(10)]

    assert run() == run()


# --- spaces and padding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "max_services", "obs_size", "act_size"),
    [
        ("single", 16, 16 * 20 + 7, 48),
        ("chain3", 3, 3 * 20 + 7, 9),
        ("chain3", 8, 8 * 20 + 7, 24),
        ("social-network", 12, 12 * 20 + 7, 36),
        ("social-network", 16, 327, 48),
    ],
)
def test_spaces(app: str, max_services: int, obs_size: int, act_size: int) -> None:
    env = make({"app": app, "max_services": max_services})
    assert N_SERVICE_FEATURES == 20 and N_APP_FEATURES == 7
    obs_space, act_space = env.observation_space, env.action_space
    assert isinstance(obs_space, gymnasium.spaces.Box) and isinstance(act_space, gymnasium.spaces.Box)
    assert obs_space.shape == (obs_size,) and act_space.shape == (act_size,)
    assert obs_space.dtype == np.float32 and act_space.dtype == np.float32
    assert np.all(act_space.low == -1.0) and np.all(act_space.high == 1.0)
    assert np.all(obs_space.low == -10.0) and np.all(obs_space.high == 10.0)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (obs_size,)
    assert obs_space.contains(obs)
    obs, *_ = env.step(act_space.sample())
    assert obs.dtype == np.float32 and obs_space.contains(obs)


def test_too_many_services_for_max_services() -> None:
    with pytest.raises(ConfigError) as err:
        make({"app": "social-network", "max_services": 11})
    msg = str(err.value)
    assert msg.startswith("max_services:") and "\n" not in msg


@pytest.mark.parametrize(("app", "n"), [("single", 1), ("chain3", 3), ("social-network", 12)])
def test_padding_rows_are_zero(app: str, n: int) -> None:
    env = make({"app": app, "max_services": 16})
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(5)
    for _ in range(5):
        svc = env.layout.services(obs)
        assert svc.shape == (16, 20)
        np.testing.assert_array_equal(svc[n:], 0.0)
        np.testing.assert_array_equal(svc[:n, MASK], 1.0)
        assert env.layout.app(obs)[APP_FEATURES.index("n_services")] == pytest.approx(n / 16)
        # Actions on padding rows are ignored, whatever they are.
        obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))


def test_padding_actions_are_ignored() -> None:
    a = quiet("chain3", max_services=6)
    b = quiet("chain3", max_services=6)
    rates = np.full(5, 80.0)
    a.reset(seed=0, options={"rates": rates})
    b.reset(seed=0, options={"rates": rates})
    act = np.random.default_rng(1).uniform(-1, 1, (5, 18)).astype(np.float32)
    noisy = act.copy()
    noisy.reshape(5, 6, 3)[:, 3:] = np.random.default_rng(2).uniform(-1, 1, (5, 3, 3))
    for x, y in zip(act, noisy, strict=True):
        ra = a.step(x)
        rb = b.step(y)
        assert ra[1] == rb[1]
        np.testing.assert_array_equal(a.decision.replicas, b.decision.replicas)


# --- episodes ------------------------------------------------------------------------------------


def test_truncates_after_episode_steps() -> None:
    env = make({"app": "chain3", "episode_steps": 5})
    env.reset(seed=0)
    flags = [env.step(np.zeros(env.action_space.shape, dtype=np.float32))[2:4] for _ in range(5)]
    assert flags == [(False, False)] * 4 + [(False, True)]
    env.reset(seed=0, options={"episode_steps": 3})
    flags = [env.step(np.zeros(env.action_space.shape, dtype=np.float32))[3] for _ in range(3)]
    assert flags == [False, False, True]


def test_reset_with_explicit_rates() -> None:
    env = make({"app": "single", "episode_steps": 100})
    rates = [10.0, 50.0, 120.0, 80.0]
    _, info = env.reset(seed=4, options={"rates": rates})
    assert info == {"workload": "explicit", "family": "trace", "workload_id": -1}
    np.testing.assert_array_equal(env.rates, rates)
    seen, truncated = [], []
    for _ in rates:
        _, _, _, trunc, step_info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
        seen.append(step_info["scoreboard"].external_rps)
        truncated.append(trunc)
    # Explicit rates are replayed as given (no arrival noise) and set the episode length.
    assert seen == rates
    assert truncated == [False, False, False, True]
    # A later reset without rates goes back to the configured length.
    env.reset(seed=4)
    assert env.episode_steps == 100
    assert env.rates.shape == (100,)


@pytest.mark.parametrize("rates", [[], [math.nan, 10.0], [-50.0, 10.0], [math.inf, 10.0]])
def test_reset_rejects_bad_explicit_rates(rates: list[float]) -> None:
    env = quiet("single")
    with pytest.raises(ValueError, match="rates"):
        env.reset(seed=0, options={"rates": rates})


def test_nan_action_changes_nothing() -> None:
    env = quiet("chain3")
    env.reset(seed=0, options={"rates": [80.0] * 3})
    before = env.decision.copy()
    _, _, _, _, info = env.step(np.full(env.action_space.shape, np.nan, dtype=np.float32))
    assert info["scoreboard"].scaling_actions == 0
    assert info["scoreboard"].guard_clamps == 0
    np.testing.assert_array_equal(env.decision.replicas, before.replicas)
    np.testing.assert_array_equal(env.decision.cpu_limit, before.cpu_limit)
    np.testing.assert_array_equal(env.decision.mem_limit, before.mem_limit)


def test_reset_names_the_workload() -> None:
    env = make({"app": "single", "workloads": ["family:ramp"]})
    _, info = env.reset(seed=0)
    assert info == {"workload": "ramp", "family": "ramp", "workload_id": 0}
    _, info = env.reset(seed=0, options={"workload": "family:step"})
    assert info == {"workload": "step", "family": "step", "workload_id": -1}
    _, info = env.reset(seed=0, options={"rates": [1.0, 2.0], "workload": "mine", "family": "hand"})
    assert info == {"workload": "mine", "family": "hand", "workload_id": -1}


# --- config --------------------------------------------------------------------------------------

BAD_CONFIGS = [
    # unknown keys
    ({"episodes": 3}, "episodes: "),
    ({"reward": {"x": 1.0}}, "reward.x: "),
    ({"guard": {"x": 1}}, "guard.x: "),
    # wrong types
    ({"episode_steps": "240"}, "episode_steps: "),
    ({"episode_steps": 2.0}, "episode_steps: "),
    ({"episode_steps": True}, "episode_steps: "),
    ({"max_services": 16.0}, "max_services: "),
    ({"interval_s": "15"}, "interval_s: "),
    ({"noise": None}, "noise: "),
    ({"peak_rps": "high"}, "peak_rps: "),
    ({"peak_rps": False}, "peak_rps: "),
    ({"arrival_noise": 1}, "arrival_noise: "),
    ({"app": 3}, "app: "),
    ({"vertical_mode": 1}, "vertical_mode: "),
    ({"workloads": 5}, "workloads: "),
    ({"workloads": ["family:diurnal", 3]}, "workloads: "),
    ({"reward": 1.0}, "reward: "),
    ({"guard": "strict"}, "guard: "),
    ({"reward": {"slo": "1"}}, "reward.slo: "),
    ({"reward": {"violation": True}}, "reward.violation: "),
    ({"guard": {"max_up_pods": "4"}}, "guard.max_up_pods: "),
    ({"guard": {"node_capacity": 1}}, "guard.node_capacity: "),
    # bad values
    ({"episode_steps": 0}, "episode_steps"),
    ({"peak_rps": -1.0}, "peak_rps"),
    ({"peak_rps": 0}, "peak_rps"),
    ({"time_compression": 0.0}, "time_compression"),
    ({"max_services": 0}, "max_services"),
    ({"vertical_mode": "sideways"}, "vertical_mode"),
    ({"workloads": []}, "workloads"),
    ({"reward": {"slo": -1.0}}, "reward.slo"),
    ({"reward": {"flapping": math.nan}}, "reward.flapping"),
    ({"guard": {"max_down_percent": 150.0}}, "guard.max_down_percent"),
    ({"guard": {"max_up_pods": -2}}, "guard.max_up_pods"),
    ({"guard": {"max_limit_factor": 0.5}}, "guard.max_limit_factor"),
]


@pytest.mark.parametrize(("config", "key"), BAD_CONFIGS, ids=[str(c) for c, _ in BAD_CONFIGS])
def test_env_config_rejects(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        EnvConfig.from_dict(config)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(key), msg  # the full key first, as every config error starts


SIM_KEYS = [
    ({"interval_s": 0.0}, "interval_s"),
    ({"interval_s": -15.0}, "interval_s"),
    ({"substeps": 0}, "substeps"),
    ({"noise": 1.5}, "noise"),
    ({"noise": -0.1}, "noise"),
]


@pytest.mark.parametrize(("config", "key"), SIM_KEYS, ids=[str(c) for c, _ in SIM_KEYS])
def test_env_config_rejects_simulator_values(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        EnvConfig.from_dict(config)


@pytest.mark.parametrize(("config", "key"), SIM_KEYS, ids=[str(c) for c, _ in SIM_KEYS])
def test_env_rejects_simulator_values(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        AutoscaleEnv({"app": "single", **config})
    msg = str(err.value)
    assert msg.startswith(f"{key}:") and "\n" not in msg


def test_env_config_round_trip() -> None:
    d = {
        "app": "chain3",
        "workloads": "family:ramp",
        "peak_rps": 120,
        "episode_steps": 30,
        "noise": 0,
        "arrival_noise": False,
        "reward": {"slo": 2.0, "flapping": 0},
        "guard": {"max_up_pods": 2, "node_capacity": False},
    }
    cfg = EnvConfig.from_dict(d)
    assert cfg.workloads == ("family:ramp",)
    assert cfg.peak_rps == 120.0 and isinstance(cfg.peak_rps, float)
    assert cfg.reward == RewardWeights(slo=2.0, flapping=0.0)
    assert cfg.guard == GuardConfig(max_up_pods=2, node_capacity=False)
    assert EnvConfig.from_dict(cfg.to_dict()) == cfg
    assert EnvConfig.from_dict(None) == EnvConfig()


# --- observation read-back -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "replicas", "cpu", "mem"),
    [
        ("single", [4], [1.0], [512]),
        ("chain3", [2, 3, 2], [0.5, 1.0, 0.5], [384, 512, 512]),
    ],
)
def test_service_view_initial_state(app: str, replicas: list[int], cpu: list[float], mem: list[float]) -> None:
    env = make({"app": app})
    obs, _ = env.reset(seed=0)
    view = service_view(obs, env.app, env.layout)
    np.testing.assert_array_equal(view.replicas, replicas)
    np.testing.assert_array_equal(view.ready_replicas, replicas)
    np.testing.assert_array_equal(view.cpu_limit, cpu)
    np.testing.assert_array_equal(view.mem_limit, mem)


@pytest.mark.parametrize("app", APPS)
def test_service_view_reads_back_exactly(app: str) -> None:
    env = make({"app": app, "workloads": ["family:diurnal"]})
    obs, _ = env.reset(seed=11)
    rng = np.random.default_rng(11)
    for _ in range(25):
        obs, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        view = service_view(obs, env.app, env.layout)
        np.testing.assert_array_equal(view.replicas, env.decision.replicas)
        np.testing.assert_array_equal(view.ready_replicas, env.metrics.ready_replicas)
        np.testing.assert_array_equal(view.cpu_limit, env.decision.cpu_limit)
        np.testing.assert_array_equal(view.mem_limit, env.decision.mem_limit)
        # Measured quantities come back to float32 precision.
        m = env.metrics
        np.testing.assert_allclose(view.cpu_utilization, m.cpu_utilization, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(view.request_rate, m.request_rate, rtol=1e-5, atol=1e-5)
        unclipped = m.mem_usage < 2.0 * m.mem_limit
        np.testing.assert_allclose(view.mem_usage[unclipped], m.mem_usage[unclipped], rtol=1e-5)


# --- reward --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "weights", "expected"),
    [
        # SLO met, nothing dropped: 1 + utilisation.
        ({"e2e_p99_ms": 100, "drop_share": 0.0, "violated": False, "cpu_utilization": 0.5}, {}, 1.5),
        ({"e2e_p99_ms": 200, "drop_share": 0.0, "violated": False, "cpu_utilization": 0.0}, {}, 1.0),
        # SLO missed by 2x: 200 / 400 = 0.5, minus the violation penalty 2.
        ({"e2e_p99_ms": 400, "drop_share": 0.0, "violated": True, "cpu_utilization": 0.8}, {}, 0.5 + 0.8 - 2.0),
        # A quarter dropped: 0.75 x 1, penalty.
        ({"e2e_p99_ms": 100, "drop_share": 0.25, "violated": True, "cpu_utilization": 0.6}, {}, 0.75 + 0.6 - 2.0),
        # Both: 0.5 x 0.5.
        ({"e2e_p99_ms": 400, "drop_share": 0.5, "violated": True, "cpu_utilization": 0.2}, {}, 0.25 + 0.2 - 2.0),
        # Shares and utilisation are clipped to [0, 1].
        ({"e2e_p99_ms": 100, "drop_share": 1.7, "violated": True, "cpu_utilization": 1.3}, {}, 0.0 + 1.0 - 2.0),
        ({"e2e_p99_ms": 100, "drop_share": -0.2, "violated": False, "cpu_utilization": -0.1}, {}, 1.0),
        # Flapping: 2 of 4 services changed, 0.1 x 2 / 4.
        (
            {"e2e_p99_ms": 100, "drop_share": 0.0, "violated": False, "cpu_utilization": 0.4, "changed_services": 2},
            {},
            1.0 + 0.4 - 0.05,
        ),
        # Cost: a quarter of the node pool reserved, weight 1.
        (
            {"e2e_p99_ms": 100, "drop_share": 0.0, "violated": False, "cpu_utilization": 0.5, "reserved_share": 0.25},
            {},
            1.5 - 0.25,
        ),
        # Memory: a fifth of the pool's memory reserved, weight 2 (default 0: no charge).
        (
            {
                "e2e_p99_ms": 100,
                "drop_share": 0.0,
                "violated": False,
                "cpu_utilization": 0.5,
                "reserved_mem_share": 0.2,
            },
            {"memory": 2.0},
            1.5 - 0.4,
        ),
        (
            {
                "e2e_p99_ms": 100,
                "drop_share": 0.0,
                "violated": False,
                "cpu_utilization": 0.5,
                "reserved_mem_share": 0.2,
            },
            {},
            1.5,
        ),
        # Rules overrode 1.5 action units per service on average, weight 0.5 (default 0: no charge).
        (
            {"e2e_p99_ms": 100, "drop_share": 0.0, "violated": False, "cpu_utilization": 0.5, "overridden": 1.5},
            {"overridden": 0.5},
            1.5 - 0.75,
        ),
        ({"e2e_p99_ms": 100, "drop_share": 0.0, "violated": False, "cpu_utilization": 0.5, "overridden": 1.5}, {}, 1.5),
        # Custom weights: 3 x 0.8 + 0.5 x 0.5 - 4 x 1 - 1 x 4 / 4 (p99 250 over SLO 200).
        (
            {"e2e_p99_ms": 250, "drop_share": 0.0, "violated": True, "cpu_utilization": 0.5, "changed_services": 4},
            {"slo": 3.0, "utilization": 0.5, "violation": 4.0, "flapping": 1.0},
            2.4 + 0.25 - 4.0 - 1.0,
        ),
    ],
)
def test_reward_table(kwargs: dict[str, Any], weights: dict[str, float], expected: float) -> None:
    args = {"slo_ms": 200.0, "changed_services": 0, "n_services": 4, **kwargs}
    assert reward(**args, weights=RewardWeights(**weights)) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("p99", "drop", "expected"),
    [(50.0, 0.0, 1.0), (100.0, 0.0, 1.0), (125.0, 0.0, 0.8), (1000.0, 0.0, 0.1), (125.0, 0.5, 0.4)],
)
def test_slo_preservation(p99: float, drop: float, expected: float) -> None:
    assert slo_preservation(p99, 100.0, drop) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("field_name", "value"),
    [("slo", -1.0), ("utilization", math.inf), ("violation", math.nan), ("memory", -1.0), ("overridden", -0.5)],
)
def test_reward_weights_reject(field_name: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"^reward\.{field_name}:"):
        RewardWeights(**{field_name: value})


# --- scoreboard ----------------------------------------------------------------------------------


def test_scoreboard_steady_state_single() -> None:
    # 4 replicas x 1 core x 512 MiB serve 100 rps x 20 ms = 2 cores of work: utilisation 0.5.
    env = quiet("single")
    env.reset(seed=0, options={"rates": [100.0] * 6})
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    total = 0.0
    for i in range(6):
        _, r, _, _, info = env.step(zero)
        b = info["scoreboard"]
        assert b.t_seconds == 15.0 * (i + 1)
        assert b.external_rps == 100.0
        assert b.cpu_core_hours == pytest.approx(4 * 1.0 * HOURS, rel=1e-12)
        assert b.mem_gib_hours == pytest.approx(4 * 512 / 1024 * HOURS, rel=1e-12)
        assert b.cpu_utilization == pytest.approx(0.5, rel=1e-12)
        assert b.dropped < 1e-6 and not b.violated
        assert b.e2e_p99_ms < 250.0
        assert (b.scaling_actions, b.guard_clamps) == (0, 0)
        # 1 + utilisation 0.5 - cost: 4 x 1.0 reserved cores over the 48-core pool.
        assert r == b.reward == pytest.approx(1.5 - 4.0 / 48.0, abs=1e-9)
        assert sum(info["guard_reasons"].values()) == 0
        total += b.cpu_core_hours
    assert total == pytest.approx(6 * 4 * HOURS, rel=1e-12)


def test_scoreboard_counts_allocated_pods_while_they_start() -> None:
    # chain3 at 100 rps: 0.4 + 1.2 + 0.6 = 2.2 cores of work. At step 2 every service gets
    # +max(4, current) pods (2->6, 3->7, 2->6), so 6 x 0.5 + 7 x 1 + 6 x 0.5 = 13 cores are
    # allocated at once, but they become ready after 15 s, 30 s and 45 s (1, 2, 3 intervals).
    env = quiet("chain3")
    env.reset(seed=0, options={"rates": [100.0] * 7})
    ready_cores = [5, 5, 5, 7, 11, 13, 13]
    alloc_cores = [5, 5, 13, 13, 13, 13, 13]
    for i in range(7):
        a = np.zeros((16, 3), dtype=np.float32)
        if i == 2:
            a[:3, 0] = 1.0
        _, r, _, _, info = env.step(a.ravel())
        b = info["scoreboard"]
        assert b.scaling_actions == (3 if i == 2 else 0)
        assert b.cpu_core_hours == pytest.approx(alloc_cores[i] * HOURS, rel=1e-12)
        assert b.cpu_utilization == pytest.approx(2.2 / ready_cores[i], rel=1e-9)
        assert not b.violated
        flapping = 0.1 * b.scaling_actions / 3
        cost = alloc_cores[i] / 48.0  # reserved cores over chain3's 48-core pool
        assert r == pytest.approx(1.0 + 2.2 / ready_cores[i] - flapping - cost, abs=1e-9)
    np.testing.assert_array_equal(env.decision.replicas, [6, 7, 6])
    np.testing.assert_array_equal(env.metrics.ready_replicas, [6, 7, 6])


@pytest.mark.parametrize("app", ["chain3", "social-network"])
def test_scoreboard_fields_are_consistent(app: str) -> None:
    env = make({"app": app, "workloads": ["family:flash-crowd"], "episode_steps": 40})
    env.reset(seed=21)
    n = env.app.n_services
    slo = env.app.slo_ms
    rng = np.random.default_rng(21)
    prev = env.decision.copy()
    for i in range(40):
        r_step = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        b, reasons = r_step[4]["scoreboard"], r_step[4]["guard_reasons"]
        assert r_step[1] == b.reward
        assert b.t_seconds == 15.0 * (i + 1)
        changed = (
            (env.decision.replicas != prev.replicas)
            | (env.decision.cpu_limit != prev.cpu_limit)
            | (env.decision.mem_limit != prev.mem_limit)
        )
        assert b.scaling_actions == int(changed.sum())
        assert b.guard_clamps == sum(1 for rs in env.last_guard.reasons if rs)
        assert sum(reasons.values()) >= b.guard_clamps
        assert b.violated == (b.e2e_p99_ms > slo or b.dropped >= 1.0)
        assert 0.0 <= b.cpu_utilization <= 1.0 + 1e-9
        assert b.cpu_core_hours > 0 and b.mem_gib_hours > 0
        # The reward, recomputed by hand from the scoreboard with the default weights.
        drop_share = b.dropped / (b.external_rps * 15.0) if b.external_rps > 0 else 0.0
        keep = 1.0 if b.e2e_p99_ms <= slo else slo / b.e2e_p99_ms
        expected = (
            keep * (1.0 - min(max(drop_share, 0.0), 1.0))
            + min(b.cpu_utilization, 1.0)
            - 2.0 * b.violated
            - 0.1 * b.scaling_actions / n
            - 1.0 * float((env.decision.replicas * env.decision.cpu_limit).sum()) / env.app.node_cores
        )
        assert b.reward == pytest.approx(expected, abs=1e-9)
        prev = env.decision.copy()


def test_memory_weight_charges_the_reserved_memory_share() -> None:
    # Same seed, same actions: the rewards differ by exactly the weight x reserved memory share.
    def run(weights: dict[str, float]) -> tuple[list[float], list[float]]:
        env = make({"app": "chain3", "workloads": ["family:bursty"], "episode_steps": 20, "reward": weights})
        env.reset(seed=5)
        rng = np.random.default_rng(5)
        rewards, shares = [], []
        for _ in range(10):
            rewards.append(env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))[1])
            d = env.decision
            shares.append(float((d.replicas * d.mem_limit).sum()) / env.app.node_mem_mib)
        return rewards, shares

    free, shares = run({})
    charged, _ = run({"memory": 3.0})
    assert min(shares) > 0
    assert np.allclose(np.subtract(free, charged), 3.0 * np.asarray(shares), atol=1e-12)


def test_history_reward_keeps_what_the_policy_sees() -> None:
    # env.history_reward: the step pays the new reward, the history rows record the old one, so
    # the observations are those of the weights the policy was trained with, bit for bit.
    base = {"app": "chain3", "workloads": ["family:bursty"], "episode_steps": 20, "history_window": 8}
    trained = make({**base, "reward": {"violation": 4.0}})
    tuned = make({**base, "reward": {"violation": 4.0, "cost": 16.0}, "history_reward": {"violation": 4.0}})
    plain = make({**base, "reward": {"violation": 4.0, "cost": 16.0}})
    runs = []
    for env in (trained, tuned, plain):
        obs, _ = env.reset(seed=5)
        rng = np.random.default_rng(5)
        seen, paid = [obs], []
        for _ in range(12):
            obs, reward, *_ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            seen.append(obs)
            paid.append(reward)
        runs.append((np.stack(seen), paid))
    assert runs[1][0].tobytes() == runs[0][0].tobytes()
    assert runs[1][1] == runs[2][1] and runs[1][1] != runs[0][1]
    assert runs[2][0].tobytes() != runs[0][0].tobytes()  # without it the new weights change the input
