"""Load contexts drawn outside the env follow the env's own draws, and the learner's pool renews them."""

from __future__ import annotations

import numpy as np
import pytest

from envs.autoscale_env import AutoscaleEnv
from envs.context_samples import ContextSampler
from envs.load_context import CONTEXT_STATS, load_context
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
        contexts = []
        for _ in range(20):
            obs, *_ = env.step(np.zeros(env.action_space.shape))
            contexts.append(env.layout.context(obs))
        np.testing.assert_allclose(contexts[-1], load_context(x[:20], 16, 4), atol=1e-4)


def test_samples_cover_every_workload_with_labels() -> None:
    x, y = ContextSampler(CFG).sample(90, 4, np.random.default_rng(0))
    assert x.shape == (360, len(CONTEXT_STATS) + 4) and y.shape == (360,)
    assert set(y.tolist()) == {0, 1, 2}
    assert np.all(np.bincount(y) >= 60)
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
