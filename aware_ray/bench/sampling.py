"""``aware-ray bench sampling``: RLlib's sampling scale-out and ``train``'s end-to-end rates.

Figures, all from one training config (default.yaml unless given):

* env steps/s that RLlib's env runners collect with 1, 2, ... N env runners (N = cores; each
  runner one ``AutoscaleVectorEnv`` of the config's ``num_envs_per_env_runner`` clusters), and
  the efficiency against linear, ``rate(k) / (k * rate(1))``;
* learner samples/s with 1 and 2 CPU learners (RLlib's LearnerGroup, ``num_learners``) at the
  config's batch per learner, the same data;
* end to end, a few ``algo.train()`` iterations at the config's training intensity: env steps/s
  and learner updates/s, and the time 16 iterations of 2,000 steps would take at those rates.
"""

from __future__ import annotations

import os
import time
from typing import Any

GOAL_EFFICIENCY_2_RUNNERS = 0.8
GOAL_16_ITERATIONS_MIN = 15.0


def _algo(config: str, overrides: list[str]) -> Any:
    from aware_ray.training.config import load_train_config
    from aware_ray.training.train import build_algo_config

    cfg = load_train_config(config, overrides)
    return cfg, build_algo_config(cfg)


def sampling_rate(config: str, runners: int, seconds: float) -> tuple[float, list[int]]:
    """Env steps/s collected through RLlib's synchronous sampling with ``runners`` env runners,
    and the torch intra-op threads each runner uses."""
    from policies.ddpg.rllib_compat import sample_episodes

    _, algo_config = _algo(config, [f"run.num_env_runners={runners}"])
    algo = algo_config.build_algo()
    try:
        threads = algo.env_runner_group.foreach_env_runner(_torch_threads, local_env_runner=False)
        sample_episodes(algo)  # warm-up: env creation, first resets, module
        steps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            episodes, _ = sample_episodes(algo)
            steps += sum(len(e) for e in episodes)
        return steps / (time.perf_counter() - t0), [int(t) for t in threads]
    finally:
        algo.stop()


def _torch_threads(_runner: Any) -> int:
    import torch

    return torch.get_num_threads()


def learner_rate(config: str, learners: int, updates: int) -> float:
    """Samples/s through ``learner_group.update`` with ``learners`` CPU learners (0: local)."""
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    _, algo_config = _algo(config, ["run.num_env_runners=0"])
    algo = algo_config.learners(num_learners=learners, num_cpus_per_learner=1).build_algo()
    try:
        episodes = algo.env_runner.sample(num_timesteps=600, random_actions=True)
        algo.local_replay_buffer.add(episodes)
        size = algo.config.total_train_batch_size
        ts = {"num_env_steps_sampled_lifetime": 600}

        def update() -> None:
            b = algo.local_replay_buffer.sample(num_items=size)
            algo.learner_group.update(
                batch=MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(b)}, env_steps=size), timesteps=ts
            )

        update()
        t0 = time.perf_counter()
        for _ in range(updates):
            update()
        return updates * size / (time.perf_counter() - t0)
    finally:
        algo.stop()


def end_to_end(config: str, iterations: int, steps: int = 1000) -> dict[str, Any]:
    """A few training iterations at the config's training intensity (learning from the start)."""
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

    cfg, algo_config = _algo(
        config, [f"run.steps_per_iteration={steps}", f"ddpg.num_steps_sampled_before_learning_starts={steps // 2}"]
    )
    algo = algo_config.reporting(min_sample_timesteps_per_iteration=steps).build_algo()
    try:
        algo.train()  # learning starts within it; the timed ones learn throughout
        before = algo.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
        updates_before = _updates(algo)
        t0 = time.perf_counter()
        for _ in range(iterations):
            algo.train()
        wall = time.perf_counter() - t0
        env_steps = algo.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0) - before
        updates = _updates(algo) - updates_before
        rate = env_steps / wall
        return {
            "env_steps_per_s": round(rate, 1),
            "updates_per_s": round(updates / wall, 2),
            "updates_per_env_step": round(updates / max(env_steps, 1), 4),
            "training_intensity": cfg.ddpg.get("training_intensity"),
            "iterations_timed": iterations,
            "steps_per_iteration": steps,
            "estimated_16x2000_steps_min": round(32_000 / rate / 60.0, 1),
        }
    finally:
        algo.stop()


def _updates(algo: Any) -> float:
    """Learner updates so far: samples trained on over the batch size."""
    from ray.rllib.core import ALL_MODULES
    from ray.rllib.utils.metrics import LEARNER_RESULTS, NUM_ENV_STEPS_TRAINED_LIFETIME

    trained = algo.metrics.peek((LEARNER_RESULTS, ALL_MODULES, NUM_ENV_STEPS_TRAINED_LIFETIME), default=0)
    return float(trained) / algo.config.total_train_batch_size


def bench_sampling(config: str = "experiments/configs/default.yaml", seconds: float = 10.0, iterations: int = 2):
    import ray

    started = not ray.is_initialized()
    cores = os.cpu_count() or 1
    if started:
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        measured = {k: sampling_rate(config, k, seconds) for k in range(1, cores + 1)}
        rates = {k: m[0] for k, m in measured.items()}
        runner_threads = measured[1][1]
        eff = {str(k): round(r / (k * rates[1]), 3) for k, r in rates.items()}
        learners = {str(n): round(learner_rate(config, n, 10), 1) for n in (1, 2)}
        e2e = end_to_end(config, iterations)
    finally:
        if started:
            ray.shutdown()
    return {
        "bench": "sampling",
        "config": config,
        "env_steps_per_s_by_runners": {str(k): round(r, 1) for k, r in rates.items()},
        "efficiency_vs_linear": eff,
        "goal_efficiency_2_runners": GOAL_EFFICIENCY_2_RUNNERS,
        "env_runner_torch_threads": runner_threads,
        "learner_samples_per_s_by_learners": learners,
        "learner_efficiency_2": round(learners["2"] / (2 * learners["1"]), 3),
        "end_to_end": e2e,
        "goal_16_iterations_min": GOAL_16_ITERATIONS_MIN,
        "cores": cores,
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }
