"""AutoscaleVectorEnv: sub-env k replays a single AutoscaleEnv seeded s + k, step for step."""

from __future__ import annotations

from dataclasses import asdict

import gymnasium as gym
import numpy as np
import pytest

from envs.autoscale_env import AutoscaleEnv, StepRecord
from envs.vector_env import AutoscaleVectorEnv, make_autoscale_env

CONFIG = {
    "app": "social-network",
    "workloads": ["family:diurnal", "family:bursty", "family:flash-crowd"],
    "episode_steps": 25,
    "max_services": 16,
    "history_window": 8,
    "context_span": 16,
    "context_buckets": 4,
    "level_prob": 0.5,
    "idle_prob": 0.3,
    "jitter_prob": 0.5,
}


def _rollout_pair(config: dict, n: int, steps: int, seed: int, scale: float) -> None:
    vec = AutoscaleVectorEnv(n, config)
    singles = [AutoscaleEnv(config) for _ in range(n)]
    obs_v, info_v = vec.reset(seed=seed)
    for k, env in enumerate(singles):
        obs, info = env.reset(seed=seed + k)
        np.testing.assert_array_equal(obs_v[k], obs)
        assert info_v["workload_id"][k] == info["workload_id"]
    rng = np.random.default_rng(seed)
    resetting = np.zeros(n, dtype=bool)
    episodes_done = 0
    for t in range(steps):
        actions = rng.uniform(-scale, scale, (n, *vec.single_action_space.shape)).astype(np.float32)
        obs_v, rew_v, term_v, trunc_v, info_v = vec.step(actions)
        merged: dict = {}
        for k, env in enumerate(singles):
            if resetting[k]:  # NEXT_STEP autoreset: the action is ignored, the first observation returned
                obs, info = env.reset()
                rew, term, trunc = 0.0, False, False
                merged = vec._add_info(merged, info, k)
            else:
                obs, rew, term, trunc, info = env.step(actions[k])
                merged = vec._add_info(merged, info, k)
                assert info_v["scoreboard"][k].violated == info["scoreboard"].violated
                assert info_v["workload_id"][k] == info["workload_id"]
            np.testing.assert_array_equal(obs_v[k], obs, err_msg=f"step {t}, env {k}")
            # Rewards match to rounding: BLAS may sum a batch's rows in another order than one row.
            assert rew_v[k] == pytest.approx(rew, rel=1e-9, abs=1e-12)
            assert (term_v[k], trunc_v[k]) == (term, trunc)
        _assert_infos_equal(info_v, merged)
        episodes_done += int(trunc_v.sum())
        resetting = term_v | trunc_v
    assert episodes_done >= n  # the comparison ran through autoresets


def _assert_infos_equal(got: dict, want: dict) -> None:
    """The vector's infos are what gymnasium's ``_add_info`` makes of the single envs' infos."""
    assert set(got) == set(want)
    for key, value in want.items():
        if isinstance(value, dict):
            _assert_infos_equal(got[key], value)
        elif value.dtype == object:
            assert got[key].dtype == object
            for g, w in zip(got[key], value, strict=True):
                if isinstance(w, StepRecord):  # floats to rounding, as the rewards
                    assert asdict(g) == pytest.approx(asdict(w), rel=1e-9, abs=1e-12)
                else:
                    assert g == w
        else:
            assert got[key].dtype == value.dtype, key
            np.testing.assert_array_equal(got[key], value, err_msg=key)


def test_sub_env_k_equals_a_single_env_seeded_s_plus_k() -> None:
    _rollout_pair(CONFIG, n=4, steps=60, seed=11, scale=1.0)


def test_equal_with_controller_rules_and_their_penalty() -> None:
    # The rules run per sub-env (each its own stabilization window); the reward charges what
    # they override, and the history window shows it.
    config = {**CONFIG, "rules": "lean@0.2:stable@60", "reward": {"overridden": 0.5}, "episode_steps": 12}
    _rollout_pair(config, n=3, steps=30, seed=5, scale=1.0)
    _rollout_pair({**config, "rules": "mem@1.3"}, n=2, steps=20, seed=6, scale=1.0)


def test_equal_with_a_history_reward_of_its_own() -> None:
    # The history rows record the reward under env.history_reward, the step returns env.reward's.
    config = {**CONFIG, "reward": {"cost": 16.0}, "history_reward": {"violation": 4.0}, "episode_steps": 12}
    _rollout_pair(config, n=2, steps=20, seed=4, scale=1.0)


def test_equal_with_explicit_episode_lengths_and_default_training_window() -> None:
    # A longer context than the episode (the context never fills) and the shipped 16 buckets.
    config = {**CONFIG, "history_window": 32, "context_span": 128, "context_buckets": 16, "episode_steps": 7}
    _rollout_pair(config, n=5, steps=24, seed=2, scale=0.5)


def test_equal_under_memory_pressure_and_recreate_mode() -> None:
    # Small memory limits make OOM kills likely (the per-copy random draws), recreate mode
    # restarts pods on every limit change.
    config = {**CONFIG, "vertical_mode": "recreate", "episode_steps": 15}
    _rollout_pair(config, n=3, steps=40, seed=3, scale=1.0)


def test_spaces_seeds_and_errors() -> None:
    vec = AutoscaleVectorEnv(3, CONFIG)
    single = AutoscaleEnv(CONFIG)
    assert vec.single_observation_space == single.observation_space
    assert vec.observation_space.shape == (3, *single.observation_space.shape)
    assert vec.action_space.shape == (3, *single.action_space.shape)
    a, _ = vec.reset(seed=[5, 6, 7])
    b, _ = vec.reset(seed=5)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="seed: a list of 3 seeds"):
        vec.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="num_envs: must be an integer >= 1"):
        AutoscaleVectorEnv(0, CONFIG)
    assert isinstance(make_autoscale_env(dict(CONFIG)), AutoscaleEnv)
    made = make_autoscale_env({**CONFIG, "num_envs": 2})
    assert isinstance(made, AutoscaleVectorEnv) and made.num_envs == 2


def test_single_env_still_passes_the_checker() -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(AutoscaleEnv(CONFIG), skip_render_check=True)
    assert isinstance(AutoscaleVectorEnv(2, CONFIG), gym.vector.VectorEnv)
