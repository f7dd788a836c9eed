"""Benchmarks. Each prints one JSON line; none is a timed test.

``sim`` (``aware_ray.bench.sim``): the env, the vector env and the batched simulator, steps/s.
``learner`` (``aware_ray.bench.learner``): DDPG learner updates/s at a config's model, profile shares.
``sampling`` (``aware_ray.bench.sampling``): RLlib's env steps/s over 1..N env runners, 1 and 2
learners, and ``train``'s end-to-end rates.
``ddpg-pendulum``: our DDPG on Pendulum-v1 for 20k env steps, mean return of the final
deterministic policy over 10 episodes, and the wall time.
``ddpg-quality``: trained policies against the heuristic frontier (HPA, HPA with an in-place VPA
and the predictive HPA at targets 0.2-0.9), VPA, HPA+VPA, static and the oracle on held-out
traces and families (and other apps, zero-shot), several seeds, at real time unless told
otherwise; per workload the money, CPU and memory, the gap closed in money and the goal.
``bootstrap``: heuristic only vs RL from scratch vs bootstrapped RL over one lifecycle
(see ``aware_ray.bench.bootstrap``).
``adapt``: env steps to 90 % of a specialist on held-out workloads, the meta policy fine-tuned vs
transfer learning vs scratch, and the zero-shot score (see ``aware_ray.bench.adapt``).
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


HELD_OUT_FAMILIES = ("flash-crowd", "bursty", "spikes", "diurnal+jitter")
"""Synthetic held-out workloads of ``bench ddpg-quality`` on social-network (the first alone on the
other apps), beside the held-out traces of ``envs/traces/split.yaml``. Training's validation uses
none of these names (``training.config.RunConfig.eval_families``) unless it starts at
``HELD_OUT_SEEDS`` or later."""

HELD_OUT_SEEDS = 100
"""Held-out tables draw the families' instances from seeds below this (``--seeds`` is refused past
it), so a validation set may name a held-out family from this seed on (``run.eval_seed_start``)
and still see none of the held-out episodes."""


def quality_rows(summary: dict[str, Any], policy: str) -> dict[str, dict[str, Any]]:
    """The benchmark's figures for `policy` per workload, from one app's ``evaluate`` summary (its
    ``summary.json``): means over seeds scored in money against the heuristic frontier (and each
    family's own), CPU and memory apart, the goal's parts, and on how many seeds the goal (memory
    included) is met against each seed's own frontier."""
    from aware_ray.evaluation.scoreboard import DEFAULT_MEMORY_PRICE, goal_met, memory_met, seed_goals

    price = summary.get("memory_price", DEFAULT_MEMORY_PRICE)
    per_seed = seed_goals(summary["results"], policy, price)
    oracle = {s["trace"]: s for s in summary["scores"] if s["policy"] == "oracle"}

    def r(x: float | None, nd: int) -> float | None:
        return None if x is None else round(x, nd)

    out = {}
    for s in summary["scores"]:
        if s["policy"] != policy:
            continue
        o = oracle.get(s["trace"])
        out[s["trace"]] = {
            "gap_closed": r(s["gap_closed"], 3),
            "violation_reduction": r(s["violation_reduction"], 3),
            "slo_violation_rate": round(s["slo_violation_rate"], 4),
            "violation_cap": r(s.get("violation_cap"), 4),
            "money": round(s["money"], 2),
            "cpu_core_hours": round(s["cpu_core_hours"], 2),
            "mem_gib_hours": round(s["mem_gib_hours"], 2),
            **(
                {"oracle_money": round(o["money"], 2), "oracle_mem_gib_hours": round(o["mem_gib_hours"], 2)}
                if o
                else {}
            ),
            "memory_reference_gib_hours": r(s.get("memory_reference_gib_hours"), 2),
            "memory_ratio": r(s.get("memory_ratio"), 3),
            **{k: r(v, 3) for k, v in s.items() if k.startswith("gap_closed_")},
            "goal_met": goal_met(s),
            "memory_met": memory_met(s),
            "seeds_goal_met": per_seed[s["trace"]][0],
        }
    return out


def _goal_counts(per_app: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Workloads where the goal is met (violations and money), where memory is met too, of how many."""
    rows = [x for rows in per_app.values() for x in rows.values()]
    both = [x["goal_met"] and x["memory_met"] is not False for x in rows]
    return {
        "goal_met_on": sum(both),
        "money_goal_met_on": sum(x["goal_met"] for x in rows),
        "memory_met_on": sum(x["memory_met"] is True for x in rows),
        "workloads": len(rows),
        "goal_met_by_app": {
            app: [sum(x["goal_met"] and x["memory_met"] is not False for x in rows.values()), len(rows)]
            for app, rows in per_app.items()
        },
    }


def _probe(policy: str) -> dict[str, Any]:
    """The embedding probe's figures for a learned policy with a meta-learner (None otherwise)."""
    from policies import registry as policy_registry

    out: dict[str, Any] = dict.fromkeys(
        (
            "probe_accuracy_held_out",
            "probe_accuracy_folds",
            "probe_accuracy_raw_window",
            "probe_accuracy_short_episodes",
            "probe_episode_steps",
        )
    )
    learned_name = policy_registry.inner_name(policy)  # a wrapper does not change the embedding
    if not learned_name.startswith("ddpg:"):
        return out
    from aware_ray.evaluation.probe import RawWindow, probe_accuracy, probe_folds, trained_length
    from policies.ddpg.policy import DDPGPolicy

    learned = DDPGPolicy.load(policy_registry.ddpg_path(learned_name))
    if not learned.env_config.get("history_window"):
        return out
    env_cfg = {k: v for k, v in learned.env_config.items() if k != "workloads"}
    per_fold = probe_folds(learned, env_cfg)
    out["probe_accuracy_folds"] = [round(f, 3) for f in per_fold]
    out["probe_accuracy_held_out"] = round(float(np.mean(per_fold)), 3)  # the mean of the unrounded folds
    out["probe_accuracy_raw_window"] = round(probe_accuracy(RawWindow(env_cfg), env_cfg), 3)
    out["probe_accuracy_short_episodes"] = round(probe_accuracy(learned, env_cfg, steps=SHORT_PROBE_STEPS), 3)
    out["probe_episode_steps"] = [trained_length(env_cfg), SHORT_PROBE_STEPS]
    return out


def bench_ddpg_quality(
    policy: str | list[str],
    out: str,
    seeds: int = 3,
    max_hours: float = 4.0,
    workers: int = 0,
    time_compression: float = 1.0,
    memory_price: float | None = None,
    probe: bool = True,
) -> dict[str, Any]:
    """Every policy in `policy` (one name or several: they share the baselines' episodes) on the
    held-out workloads of each app. One policy: its figures; several: ``by_policy`` holds each
    one's, and each is also written to OUT/quality_<policy>.json (what ``model_card --refresh``
    reads)."""
    from pathlib import Path

    from aware_ray.evaluation.evaluate import EvalPlan, run
    from aware_ray.evaluation.plots import slug
    from aware_ray.evaluation.scoreboard import DEFAULT_MEMORY_PRICE
    from envs.atomic_write import write_json
    from envs.errors import ConfigError
    from envs.workload import default_split

    names = [policy] if isinstance(policy, str) else list(policy)
    if not 1 <= seeds <= HELD_OUT_SEEDS:
        raise ConfigError(f"--seeds: must be 1 to {HELD_OUT_SEEDS} (validation may use the seeds past it), got {seeds}")
    price = DEFAULT_MEMORY_PRICE if memory_price is None else memory_price
    traces = [s.split(":", 1)[1] for s in default_split()["held_out"]]
    families = list(HELD_OUT_FAMILIES)
    summaries: dict[str, Any] = {}
    for app in QUALITY_APPS:
        held = traces if app == "social-network" else traces[:3]
        plan = EvalPlan(
            policies=[*names, "heuristic-frontier", "vpa", "hpa+vpa", "oracle", "static"],
            app=app,
            traces=held,
            families=families if app == "social-network" else families[:1],
            max_hours=max_hours,
            seeds=seeds,
            timeseries="none",
            workers=workers,
            time_compression=time_compression,
            memory_price=price,
        )
        summaries[app] = run(plan, Path(out) / app, progress=False)
    probes: dict[str, dict[str, Any]] = {}
    by_policy = {}
    for name in names:
        per_app = {app: quality_rows(summary, name) for app, summary in summaries.items()}
        from policies.registry import inner_name

        inner = inner_name(name)
        if inner not in probes:
            probes[inner] = _probe(name) if probe else _probe("none")
        by_policy[name] = {
            "bench": "ddpg-quality",
            "policy": name,
            "seeds": seeds,
            "max_hours": max_hours,
            "time_compression": time_compression,
            "memory_price": price,
            **_goal_counts(per_app),
            **probes[inner],
            "results": per_app,
            "out": out,
        }
        if len(names) > 1:
            write_json(Path(out) / f"quality_{slug(name)}.json", by_policy[name])
    if len(names) == 1:
        return by_policy[names[0]]
    return {"bench": "ddpg-quality", "policies": names, "by_policy": by_policy, "out": out}


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
        names = [p.strip() for p in args.policy.split(",") if p.strip()]
        return bench_ddpg_quality(
            names[0] if len(names) == 1 else names,
            args.out or "reports/quality",
            args.seeds,
            args.max_hours,
            args.workers,
            args.time_compression,
            args.memory_price,
        )
    if name == "bootstrap":
        from aware_ray.bench.bootstrap import bench_bootstrap

        return bench_bootstrap(
            args.config or "experiments/configs/bootstrap.yaml",
            args.set,
            args.episodes,
            args.switch_at,
            args.new_workload or ["family:flash-crowd"],
            args.first_n,
            args.last_k,
            args.out or "reports/bootstrap",
            [a.strip() for a in args.arms.split(",")] if args.arms else None,
        )
    if name == "adapt" and getattr(args, "merge", None):
        from aware_ray.bench.adapt_merge import merge_adapt

        return merge_adapt([f.strip() for f in args.merge.split(",") if f.strip()], args.out)
    if name == "adapt":
        from aware_ray.bench.adapt import bench_adapt

        arms = [a.strip() for a in args.arms.split(",")] if args.arms else None
        return bench_adapt(args.config or "experiments/configs/adapt.yaml", args.set, args.out or "reports/adapt", arms)
    if name == "separability":
        from aware_ray.bench.separability import bench_separability

        return bench_separability(steps=args.probe_steps, train_seeds=args.train_seeds, test_seeds=args.test_seeds)
    raise ValueError(f"unknown benchmark {name!r}")
