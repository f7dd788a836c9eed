"""Benchmarks. Each prints one JSON line; none is a timed test.

``sim`` (``aware_ray.bench.sim``): the env, the vector env and the batched simulator, steps/s.
``learner`` (``aware_ray.bench.learner``): DDPG learner updates/s at a config's model, profile shares.
``sampling`` (``aware_ray.bench.sampling``): RLlib's env steps/s over 1..N env runners, 1 and 2
learners, and ``train``'s end-to-end rates.
``ddpg-pendulum``: our DDPG on Pendulum-v1 for 20k env steps, mean return of the final
deterministic policy over 10 episodes, and the wall time.
``ddpg-quality``: a trained policy against the tuned-HPA frontier, VPA, HPA+VPA, static and
the oracle on held-out traces and families (and other apps, zero-shot), several seeds; the
gap closed per workload.
``bootstrap``: heuristic only vs RL from scratch vs bootstrapped RL over one lifecycle
(see ``aware_ray.bench.bootstrap``).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np


def bench_ddpg_pendulum(
    env_steps: int = 20_000, training_intensity: float = 64.0, seed: int = 0, replay_buffer: str = "FlatReplayBuffer"
) -> dict[str, Any]:
    import gymnasium as gym
    import ray
    import torch

    from policies.ddpg import DDPGConfig

    torch.set_num_threads(1)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    cfg = (
        DDPGConfig()
        .environment("Pendulum-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1, rollout_fragment_length=32)
        .training(
            actor_lr=1e-3,
            critic_lr=1e-3,
            tau=0.005,
            gamma=0.98,
            actor_hiddens=[256, 256],
            critic_hiddens=[256, 256],
            training_intensity=training_intensity,
            num_steps_sampled_before_learning_starts=1000,
            exploration={"type": "gaussian", "sigma": 0.1, "final_sigma": 0.1},
            replay_buffer_config={"type": replay_buffer, "capacity": 200_000},
        )
        .reporting(min_sample_timesteps_per_iteration=1000, min_time_s_per_iteration=0)
        .debugging(seed=seed, log_level="ERROR")
    )
    algo = cfg.build_algo()
    t0 = time.perf_counter()
    steps = 0
    while steps < env_steps:
        steps = int(algo.train()["env_runners"]["num_env_steps_sampled_lifetime"])
    wall = time.perf_counter() - t0
    module = algo.get_module()
    env = gym.make("Pendulum-v1")
    returns = []
    for ep in range(10):
        obs, _ = env.reset(seed=10_000 + ep)
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                a = module.act(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()
            obs, r, term, trunc, _ = env.step(a * 2.0)  # actions in [-1, 1] -> Pendulum's [-2, 2]
            total += float(r)
            done = term or trunc
        returns.append(total)
    algo.stop()
    if started:
        ray.shutdown()
    return {
        "bench": "ddpg-pendulum",
        "replay_buffer": replay_buffer,
        "env_steps": steps,
        "training_intensity": training_intensity,
        "mean_return": round(float(np.mean(returns)), 1),
        "std_return": round(float(np.std(returns)), 1),
        "wall_s": round(wall, 1),
        "goal_mean_return": -200.0,
        "cores": os.cpu_count(),
    }


QUALITY_APPS = ("social-network", "chain3", "ecommerce")


SHORT_PROBE_STEPS = 160
"""Episode length of the second probe figure: time-compressed instances of the families."""


def quality_rows(summary: dict[str, Any], policy: str) -> dict[str, dict[str, Any]]:
    """The benchmark's figures for `policy` per workload, from one app's ``evaluate`` summary (its
    ``summary.json``): means over seeds scored against the frontier, and on how many seeds the
    goal is met against each seed's own frontier. Memory (the policy's and, where it ran, the
    oracle's GiB-hours) is reported beside the goal, which counts CPU only: a policy can meet the
    goal while reserving many times the memory it needs."""
    from aware_ray.evaluation.scoreboard import seed_goals

    per_seed = seed_goals(summary["results"], policy)
    oracle = {s["trace"]: s["mem_gib_hours"] for s in summary["scores"] if s["policy"] == "oracle"}
    return {
        s["trace"]: {
            "gap_closed": None if s["gap_closed"] is None else round(s["gap_closed"], 3),
            "violation_reduction": None if s["violation_reduction"] is None else round(s["violation_reduction"], 3),
            "slo_violation_rate": round(s["slo_violation_rate"], 4),
            "cpu_core_hours": round(s["cpu_core_hours"], 2),
            "seeds_goal_met": per_seed[s["trace"]][0],
            "mem_gib_hours": round(s["mem_gib_hours"], 2),
            **({"oracle_mem_gib_hours": round(oracle[s["trace"]], 2)} if s["trace"] in oracle else {}),
        }
        for s in summary["scores"]
        if s["policy"] == policy
    }


def bench_ddpg_quality(policy: str, out: str, seeds: int = 3, max_hours: float = 4.0, workers: int = 0):
    from pathlib import Path

    from aware_ray.evaluation.evaluate import EvalPlan, run
    from aware_ray.evaluation.scoreboard import goal_met
    from envs.workload import default_split

    traces = [s.split(":", 1)[1] for s in default_split()["validation"]]
    families = ["flash-crowd", "bursty", "spikes"]
    per_app: dict[str, Any] = {}
    for app in QUALITY_APPS:
        held = traces if app == "social-network" else traces[:3]
        plan = EvalPlan(
            policies=[policy, "hpa-frontier", "vpa", "hpa+vpa", "oracle", "static"],
            app=app,
            traces=held,
            families=families if app == "social-network" else families[:1],
            max_hours=max_hours,
            seeds=seeds,
            timeseries="none",
            workers=workers,
        )
        summary = run(plan, Path(out) / app, progress=False)
        per_app[app] = quality_rows(summary, policy)

    main = per_app["social-network"]
    probe = probe_raw = probe_short = probe_steps = folds = None
    from policies import registry as policy_registry

    learned_name = policy_registry.inner_name(policy)  # a wrapper does not change the embedding
    if learned_name.startswith("ddpg:"):
        from aware_ray.evaluation.probe import RawWindow, probe_accuracy, probe_folds, trained_length
        from policies.ddpg.policy import DDPGPolicy

        learned = DDPGPolicy.load(policy_registry.ddpg_path(learned_name))
        if learned.env_config.get("history_window"):
            env_cfg = {k: v for k, v in learned.env_config.items() if k != "workloads"}
            per_fold = probe_folds(learned, env_cfg)
            folds = [round(f, 3) for f in per_fold]
            probe = round(float(np.mean(per_fold)), 3)  # as probe_accuracy: the mean of the unrounded folds
            probe_raw = round(probe_accuracy(RawWindow(env_cfg), env_cfg), 3)
            probe_short = round(probe_accuracy(learned, env_cfg, steps=SHORT_PROBE_STEPS), 3)
            probe_steps = [trained_length(env_cfg), SHORT_PROBE_STEPS]
    return {
        "bench": "ddpg-quality",
        "policy": policy,
        "seeds": seeds,
        "max_hours": max_hours,
        "goal_met_on": sum(goal_met(x) for x in main.values()),
        "workloads": len(main),
        "probe_accuracy_held_out": probe,
        "probe_accuracy_folds": folds,
        "probe_accuracy_raw_window": probe_raw,
        "probe_accuracy_short_episodes": probe_short,
        "probe_episode_steps": probe_steps,
        "results": per_app,
        "out": out,
    }


def run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    if name == "sim":
        from aware_ray.bench.sim import bench_sim

        return bench_sim(args.seconds, args.batch)
    if name == "learner":
        from aware_ray.bench.learner import bench_learner

        return bench_learner(args.config_train, args.updates, gpu=args.gpu)
    if name == "sampling":
        from aware_ray.bench.sampling import bench_sampling

        return bench_sampling(args.config_train, args.seconds, args.e2e_iterations)
    if name == "ddpg-pendulum":
        return bench_ddpg_pendulum(args.env_steps, args.training_intensity, args.seed, args.replay_buffer)
    if name == "ddpg-quality":
        return bench_ddpg_quality(args.policy, args.out or "reports/quality", args.seeds, args.max_hours)
    if name == "bootstrap":
        from aware_ray.bench.bootstrap import bench_bootstrap

        return bench_bootstrap(
            args.config,
            args.set,
            args.episodes,
            args.switch_at,
            args.new_workload or ["family:flash-crowd"],
            args.first_n,
            args.last_k,
            args.out or "reports/bootstrap",
            [a.strip() for a in args.arms.split(",")] if args.arms else None,
        )
    if name == "separability":
        from aware_ray.bench.separability import bench_separability

        return bench_separability(steps=args.probe_steps, train_seeds=args.train_seeds, test_seeds=args.test_seeds)
    raise ValueError(f"unknown benchmark {name!r}")
