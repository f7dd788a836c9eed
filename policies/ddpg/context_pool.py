"""A rolling pool of load contexts of fresh workload instances for the workload-identification loss.

Replay holds few episodes per workload (see ``envs.context_samples``); the learner therefore
also trains the meta-learner's workload code on contexts drawn from new instances of the
training workloads. Drawing them costs about a millisecond per instance, so the pool is filled
once and then renewed a few instances per update, oldest first: over a run the code sees
thousands of instances of each workload instead of a handful.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.context_samples import ContextSampler


class ContextPool:
    def __init__(self, env_config: dict[str, Any], size: int = 8192, per_episode: int = 16, seed: int | list[int] = 0):
        if size < per_episode or per_episode < 1:
            raise ValueError(f"context pool: size ({size}) must be >= per_episode ({per_episode}) >= 1")
        self.sampler = ContextSampler(env_config)
        self.per_episode = per_episode
        self.rng = np.random.default_rng(seed)
        self.x, self.y = self.sampler.sample(size // per_episode, per_episode, self.rng)
        self.next = 0
        self.instances = size // per_episode
        """Workload instances drawn so far (the pool's diversity over the run)."""

    def renew(self, n_episodes: int) -> None:
        """Replace the oldest ``n_episodes * per_episode`` contexts with ones of new instances."""
        if n_episodes <= 0:
            return
        x, y = self.sampler.sample(n_episodes, self.per_episode, self.rng)
        idx = (self.next + np.arange(len(y))) % len(self.y)
        self.x[idx], self.y[idx] = x, y
        self.next = int((idx[-1] + 1) % len(self.y))
        self.instances += n_episodes

    def batch(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` contexts and their workload indices, drawn uniformly from the pool."""
        idx = self.rng.integers(0, len(self.y), size=n)
        return self.x[idx], self.y[idx]
