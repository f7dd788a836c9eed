"""The controller's ObservationBuilder, fed an env episode's metrics, rebuilds its observations bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from envs.autoscale_env import AutoscaleEnv
from envs.observation_builder import ObservationBuilder


@pytest.mark.parametrize(
    "cfg",
    [
        {"history_window": 8, "context_span": 32, "context_buckets": 8, "rules": "lean@0.1"},
        {"history_window": 0, "context_span": 0},
        {"history_window": 32, "context_span": 128, "context_buckets": 16, "app": "chain3"},
    ],
)
def test_replayed_metrics_give_identical_observations(cfg):
    env = AutoscaleEnv({"workloads": ["family:bursty"], "episode_steps": 80, **cfg})
    obs, _ = env.reset(seed=7)
    steps = [(env.metrics, None, None, obs)]
    rng = np.random.default_rng(1)
    for _ in range(80):
        obs, reward, _, _, _ = env.step(rng.uniform(-1.2, 1.2, env.action_space.shape))
        steps.append((env.metrics, env.last_action.copy(), reward, obs))
    builder = ObservationBuilder(env.app, env.layout, env.config.interval_s)
    for i, (metrics, action, reward, want) in enumerate(steps):
        got = builder.reset(metrics) if i == 0 else builder.step(metrics, action, reward)
        assert got.dtype == np.float32 and got.shape == env.observation_space.shape
        assert got.tobytes() == want.tobytes(), f"interval {i} differs"
    # A second episode through the same builder: reset forgets everything.
    obs, _ = env.reset(seed=8)
    assert builder.reset(env.metrics).tobytes() == obs.tobytes()


def test_builder_rejects_app_larger_than_layout():
    env = AutoscaleEnv({"app": "social-network"})
    from envs.observation import ObservationLayout

    with pytest.raises(ValueError, match="max_services"):
        ObservationBuilder(env.app, ObservationLayout(max_services=2), 15.0)
