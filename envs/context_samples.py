"""Load contexts of fresh workload instances, without the simulator: unlimited data for learning
what a workload is.

A training run sees about a hundred episodes, eight or so per training workload, and a
workload classifier fitted on those learns those episodes more than the workloads. Measured on
the load alone (window and context, a small encoder trained to name the 12 training workloads,
then the linear probe on new instances of six families): 0.40 held-out accuracy on 40-minute
instances and 0.77 on 2-hour ones with 8 episodes per workload, 0.75 and 0.84 with 128. The long load context
(``envs.load_context``) depends on the external load only, and the external rate the env
measures is exactly the workload's rate series after the env's level scaling and Poisson
arrivals, so contexts of as many new instances as wanted come from the workloads alone, each
with the index of its workload as label. ``context_samples`` draws them exactly as the env would
observe them; the DDPG learner mixes them into its workload-identification loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.app import load_app
from envs.config import EnvConfig
from envs.load_context import load_context, partly_idle
from envs.workload import TimeScaled, Workload, episode_rates


class ContextSampler:
    """Draws (context, workload index) pairs for an env config's training workloads."""

    def __init__(self, config: EnvConfig | dict[str, Any]):
        cfg = config if isinstance(config, EnvConfig) else EnvConfig.from_dict(dict(config))
        if not cfg.context_span:
            raise ValueError("context samples need an env with a load context (context_span > 0)")
        self.cfg = cfg
        peak = cfg.peak_rps or load_app(cfg.app).default_peak_rps
        self.time_scaled = TimeScaled.of(cfg.workloads, peak, cfg.time_compression, cfg.time_compression_choices)

    @property
    def workloads(self) -> list[Workload]:
        """The training workloads, in the env's order."""
        return self.time_scaled.workloads

    def episode(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """Log external rates of one new instance of workload ``k``, as the env measures them."""
        cfg = self.cfg
        level = (cfg.level_prob, cfg.level_min)
        workload, _ = self.time_scaled.draw(k, rng)
        return np.log1p(
            episode_rates(
                workload,
                cfg.episode_steps,
                cfg.interval_s,
                rng,
                level,
                cfg.arrival_noise,
                cfg.idle_prob,
                (cfg.jitter_prob, cfg.jitter_sigma),
            )
        )

    def sample(self, n_episodes: int, per_episode: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Contexts at ``per_episode`` random steps of each of ``n_episodes`` new instances, with labels.

        Workloads are drawn uniformly, as the env draws them; a step ``t`` sees the rates of the
        ``t`` intervals run before it. A partly idle context (``partly_idle``) is labelled -1, as the env labels it.
        """
        span, buckets = self.cfg.context_span, self.cfg.context_buckets
        xs, ys = [], []
        for _ in range(n_episodes):
            k = int(rng.integers(len(self.workloads)))
            x = self.episode(k, rng)
            for t in rng.integers(1, len(x) + 1, size=per_episode):
                xs.append(load_context(x[:t], span, buckets))
                ys.append(-1 if partly_idle(x[:t], span) else k)
        return np.clip(np.asarray(xs, dtype=np.float32), -10.0, 10.0), np.asarray(ys, dtype=np.int64)
