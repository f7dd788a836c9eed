"""Load contexts drawn outside the env follow the env's own draws, and the learner's pool renews them."""

from __future__ import annotations

import numpy as np
import pytest

from envs.autoscale_env import AutoscaleEnv
from envs.context_samples import ContextSampler
from envs.load_context import CONTEXT_STATS, load_context, partly_idle
from policies.ddpg.context_pool import ContextPool

CFG = {
    "app": "chain3",
    "workloads": ["family:spikes", "family:ramp", "trace:nasa_http_1995-07_1min.csv"],
    "episode_steps": 60,
    "history_window": 2,
    "context_span": 16,
    "context_buckets": 4,
    "level_prob": 0.5,
    "level_min": 0.1,
    "idle_prob": 0.5,
}


def test_an_episode_is_the_series_the_env_measures() -> None:
    """Same generator state, same workload: the sampler's series is the one the env replays and
    measures, level scaling, idle stretches and Poisson arrivals included, so its contexts are the env's."""
    env = AutoscaleEnv({**CFG, "workloads": ["family:spikes"]})
    sampler = ContextSampler({**CFG, "workloads": ["family:spikes"]})
    for seed in range(4):
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        rng.integers(1)  # the env draws the workload index first
        x = sampler.episode(0, rng)
        np.testing.assert_allclose(x, np.log1p(env.rates))
        contexts, labels = [], []
        for _ in range(20):
            obs, _, _, _, info = env.step(np.zeros(env.action_space.shape))
            contexts.append(env.layout.context(obs))
            labels.append(info["workload_id"])
        np.testing.assert_allclose(contexts[-1], load_context(x[:20], 16, 4), atol=1e-4)
        assert labels == [-1 if partly_idle(x[: t + 1], 16) else 0 for t in range(20)]


def test_time_scaled_episodes_are_the_series_the_env_measures() -> None:
    """With time-scale augmentation the sampler draws the compression as the env does, so a
    trace's contexts at compression 1 and 4 both appear in the learner's samples."""
    cfg = {**CFG, "workloads": ["trace:nasa_http_1995-07_1min.csv"], "time_compression_choices": [1, 4]}
    env, sampler = AutoscaleEnv(cfg), ContextSampler(cfg)
    seen = set()
    for seed in range(8):
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        rng.integers(1)  # the env draws the workload index first
        np.testing.assert_allclose(sampler.episode(0, rng), np.log1p(env.rates))
        seen.add(env.episode_time_compression)
    assert seen == {1.0, 4.0}


def test_partly_idle_contexts_are_unlabelled_in_env_and_sampler() -> None:
    """Idle stretches hide the workload: the env's info and the sampler both leave such contexts
    unlabelled (-1), and label every other one."""
    cfg = {**CFG, "idle_prob": 1.0, "level_prob": 0.0}
    env = AutoscaleEnv(cfg)
    seen = set()
    for seed in range(3):
        env.reset(seed=seed)
        for _ in range(60):
            *_, info = env.step(np.zeros(env.action_space.shape))
            idle = partly_idle(np.asarray(env.load_log), 16)
            assert info["workload_id"] == (-1 if idle else env.workload_id)
            seen.add(idle)
    assert seen == {True, False}
    _, y = ContextSampler(cfg).sample(40, 8, np.random.default_rng(0))
    assert 0 < (y == -1).sum() < len(y) and set(y[y >= 0].tolist()) == {0, 1, 2}
    _, y = ContextSampler({**cfg, "idle_prob": 0.0}).sample(40, 8, np.random.default_rng(0))
    assert (y >= 0).all()


def test_samples_cover_every_workload_with_labels() -> None:
    x, y = ContextSampler(CFG).sample(90, 4, np.random.default_rng(0))
    assert x.shape == (360, len(CONTEXT_STATS) + 4) and y.shape == (360,)
    assert set(y.tolist()) <= {-1, 0, 1, 2}  # -1: partly idle contexts (CFG's idle_prob)
    assert np.all(np.bincount(y[y >= 0]) >= 40)
    assert np.isfinite(x).all() and np.abs(x).max() <= 10.0
    filled = x[:, CONTEXT_STATS.index("filled")]
    assert filled.min() > 0 and filled.max() == pytest.approx(1.0)


def test_a_sampler_needs_a_load_context() -> None:
    with pytest.raises(ValueError, match="context_span"):
        ContextSampler({**CFG, "context_span": 0})


def test_the_pool_renews_its_oldest_contexts() -> None:
    pool = ContextPool(CFG, size=64, per_episode=8, seed=1)
    assert pool.instances == 8 and pool.x.shape[0] == 64
    before = pool.x.copy()
    pool.renew(3)
    assert pool.instances == 11
    changed = np.any(pool.x != before, axis=1)
    assert changed[:24].all() and not changed[24:].any()
    pool.renew(6)  # wraps around: rows 24..63 then 0..7
    assert pool.next == 8
    x, y = pool.batch(32)
    assert x.shape == (32, pool.x.shape[1]) and y.dtype == np.int64
    with pytest.raises(ValueError, match="context pool"):
        ContextPool(CFG, size=4, per_episode=8)


def test_learners_of_a_group_draw_different_instances() -> None:
    """The learner seeds its pool with (seed, rank): rank 0 alone, and two ranks differ."""
    from policies.ddpg.torch.ddpg_torch_learner import learner_rank

    assert learner_rank() == 0  # no process group here
    a = ContextPool(CFG, size=32, per_episode=8, seed=[0, 0])
    b = ContextPool(CFG, size=32, per_episode=8, seed=[0, 1])
    assert not np.allclose(a.x, b.x)
    np.testing.assert_array_equal(a.x, ContextPool(CFG, size=32, per_episode=8, seed=[0, 0]).x)
