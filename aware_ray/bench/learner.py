"""``aware-ray bench learner``: DDPG learner updates per second at a config's model and batch.

Both replay paths run in the same process on the same data, so their ratio is fair on a busy
machine: RLlib's ``EpisodeReplayBuffer`` (episodes sliced per update and turned into a batch by
the learner connector, the path every run took before the flat buffer) and ``FlatReplayBuffer``
(n-step transitions in flat arrays, the batch a fancy-index). One cProfile window of the flat
path gives the time shares of an update: replay sampling, batch building (numpy to torch),
forward per network, loss, backward, optimizer step, target update, metrics, weight sync.

What bounds the rate is arithmetic: the floating-point operations of one update (counted by
torch's ``FlopCounterMode``), against what this core's matrix products reach on the update's own
shapes in the same run. ``updates_per_s_at_gemm_rate`` is the rate an update would reach if every
operation ran as fast as a large matrix product: the ceiling on one thread, whatever the Python
around it.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import time
from typing import Any


def _share_targets() -> dict[str, list[Any]]:
    """The functions whose cumulative time makes each share of an update."""
    import torch
    from ray.rllib.core.learner.learner import Learner
    from ray.rllib.core.learner.torch.torch_learner import TorchLearner
    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger
    from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

    from policies.ddpg.ddpg_learner import DDPGLearner
    from policies.ddpg.flat_replay_buffer import FlatReplayBuffer
    from policies.ddpg.torch import networks
    from policies.ddpg.torch.ddpg_torch_rl_module import DDPGTorchRLModule

    return {
        "replay_sample": [FlatReplayBuffer.sample, EpisodeReplayBuffer.sample],
        "batch_building": [Learner._make_batch_if_necessary],
        "forward_meta_learner": [networks.MetaLearner.forward],
        "forward_actor": [networks.ServiceActor.preactivation],
        "forward_critic": [networks.ServiceCritic.forward],
        "forward_train_total": [DDPGTorchRLModule._forward_train],
        "loss": [Learner.compute_losses],
        "backward": [torch.Tensor.backward],
        "optimizer_step": [TorchLearner.apply_gradients],
        "target_update": [DDPGLearner.after_gradient_based_update],
        "metrics_reduce": [MetricsLogger.reduce],
    }


def _shares(profile: cProfile.Profile, total_s: float) -> dict[str, float]:
    """Cumulative time of each share's functions over the profiled window, as a share of it."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    for share, fns in _share_targets().items():
        keys = {(f.__code__.co_filename, f.__code__.co_firstlineno, f.__code__.co_name) for f in fns}
        cum = sum(row[3] for key, row in stats.items() if key in keys)
        out[share] = round(cum / total_s, 3)
    return out


ISSUE_BASELINE_S_PER_UPDATE = 0.4
"""Seconds per 256-sample update of ``default.yaml``'s learner when throughput work began (episode
replay, one meta-learner pass per use, all 16 service slots); the goal is ten times its rate."""


def gemm_gflops(rows: int = 3072, width: int = 128, seconds: float = 1.0) -> float:
    """This core's float32 matrix-product rate on an update's typical shape (rows x 128 by 128 x 128:
    a per-service layer over 256 rows of 12 services), GFLOP/s."""
    import torch

    a, b = torch.randn(rows, width), torch.randn(width, width)
    for _ in range(5):
        a @ b
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        a @ b
        n += 1
    return 2.0 * rows * width * width * n / (time.perf_counter() - t) / 1e9


def update_gflop(update: Any) -> float:
    """Floating-point operations of one call of ``update`` (forward and backward), GFLOP."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        update()
    return counter.get_total_flops() / 1e9


def bench_learner(
    config: str = "experiments/configs/default.yaml",
    updates: int = 20,
    batch: int = 256,
    warm_steps: int = 2000,
    gpu: bool = False,
) -> dict[str, Any]:
    """The figures of the module docstring; ``gpu``: the (local) learner on a CUDA GPU."""
    import numpy as np
    import ray
    import torch
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
    from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

    from aware_ray.training.config import load_train_config
    from aware_ray.training.train import build_algo_config
    from envs.errors import ConfigError
    from policies.ddpg.flat_replay_buffer import FlatReplayBuffer

    if gpu and not torch.cuda.is_available():
        raise ConfigError("--gpu: no CUDA GPU is visible to torch here")
    torch.set_num_threads(1)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    cfg = load_train_config(config, ["run.num_env_runners=0", f"ddpg.train_batch_size_per_learner={batch}"])
    algo = build_algo_config(cfg).learners(num_learners=0, num_gpus_per_learner=1 if gpu else 0).build_algo()
    try:
        t0 = time.perf_counter()
        episodes = algo.env_runner.sample(num_timesteps=warm_steps, random_actions=True)
        sample_s = time.perf_counter() - t0
        flat = algo.local_replay_buffer
        assert isinstance(flat, FlatReplayBuffer)
        old = EpisodeReplayBuffer(capacity=200_000)
        flat.add(episodes)
        old.add(episodes)
        lg = algo.learner_group
        ts = {"num_env_steps_sampled_lifetime": warm_steps}

        def flat_update() -> None:
            b = flat.sample(num_items=batch)
            lg.update(batch=MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch(b)}, env_steps=batch), timesteps=ts)

        def episode_update() -> None:
            eps = old.sample(num_items=batch, n_step=1, gamma=cfg.ddpg.get("gamma", 0.98), sample_episodes=True)
            lg.update(episodes=eps, timesteps=ts)

        def rate(fn: Any, n: int) -> tuple[float, float]:
            """(updates per wall second, updates per CPU second of this process): on a shared
            machine the second is the fair one, as other users' load stretches wall time."""
            fn()  # warm-up
            t, c = time.perf_counter(), time.process_time()
            for _ in range(n):
                fn()
            return n / (time.perf_counter() - t), n / (time.process_time() - c)

        # Interleaved, so a change of machine load hits both paths alike.
        flat_rates, old_rates, two_threads = [], [], []
        for _ in range(2):
            flat_rates.append(rate(flat_update, updates))
            old_rates.append(rate(episode_update, max(updates // 4, 2)))
            torch.set_num_threads(2)
            two_threads.append(rate(flat_update, updates))
            torch.set_num_threads(1)
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        for _ in range(updates):
            flat_update()
        prof.disable()
        total = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(updates):
            algo.env_runner_group.sync_weights(from_worker_or_learner_group=lg, inference_only=True)
        sync_s = (time.perf_counter() - t) / updates
        shares = _shares(prof, total)
        gflop = update_gflop(flat_update)
        gemm = gemm_gflops()
        per_update = total / updates
        shares["weight_sync_local"] = round(sync_s / (per_update + sync_s), 3)
        new_rate, old_rate = (float(np.median([r[0] for r in x])) for x in (flat_rates, old_rates))
        new_cpu, old_cpu = (float(np.median([r[1] for r in x])) for x in (flat_rates, old_rates))
        return {
            "bench": "learner",
            "config": config,
            "batch": batch,
            "updates_per_s": round(new_rate, 2),
            "samples_per_s": round(new_rate * batch, 1),
            "updates_per_cpu_s": round(new_cpu, 2),
            "updates_per_s_episode_replay": round(old_rate, 2),
            "updates_per_cpu_s_episode_replay": round(old_cpu, 2),
            "speedup_vs_episode_replay": round(new_rate / old_rate, 2),
            "speedup_vs_episode_replay_cpu": round(new_cpu / old_cpu, 2),
            "goal_speedup": 10.0,
            "goal_updates_per_s": round(10.0 / ISSUE_BASELINE_S_PER_UPDATE, 1),
            "speedup_vs_issue_baseline": round(new_rate * ISSUE_BASELINE_S_PER_UPDATE, 2),
            "gflop_per_update": round(gflop, 3),
            "achieved_gflops": round(gflop * new_rate, 1),
            "gemm_gflops_this_core": round(gemm, 1),
            "updates_per_s_at_gemm_rate": round(gemm / gflop, 1),
            "bound": "arithmetic: every operation at the core's matrix-product rate gives "
            f"{gemm / gflop:.1f} updates/s on one thread",
            "profile_shares_flat": shares,
            "profile_s_per_update": round(per_update, 4),
            "warm_sample_env_steps_per_s": round(warm_steps / sample_s, 1),
            "learner_device": "cuda" if gpu else "cpu",
            "torch_threads": torch.get_num_threads(),
            "updates_per_s_2_threads": round(float(np.median([r[0] for r in two_threads])), 2),
            "cores": os.cpu_count(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            "model_params": int(sum(p.numel() for p in algo.get_module().parameters())),
        }
    finally:
        algo.stop()
        if started:
            ray.shutdown()
