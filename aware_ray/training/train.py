"""``aware-ray train``: DDPG on the autoscaling env, through Ray Tune, with model selection.

The run is one Tune trial (so TensorBoard event files land in ``OUT/tune/``) whose trainable
builds the DDPG algorithm, trains it for the configured iterations, and every ``eval_every``
iterations scores the current policy on held-out validation workloads with the same rollout
and scoreboard code as ``aware-ray evaluate``. The best policy by that score (the share of the
tuned-HPA-to-oracle gap it closes), not by training reward, is kept in ``OUT/policy/``.

Outputs in OUT: ``config.yaml`` (the merged config), ``checkpoints/iter_N`` and
``checkpoints/latest`` (RLlib checkpoints, for ``--resume``), ``policy/`` (best exported
policy), ``policy_final/``, ``validation.json`` (every validation score),
``train_summary.json``, and ``tune/`` (Tune's results and TensorBoard logs).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from ray import tune

from aware_ray.training.config import RunConfig, TrainConfig, build_train_config
from aware_ray.training.dashboard import write_layout
from aware_ray.training.run_folder import check_resume, load_or_score_baselines
from aware_ray.training.validation import validate
from envs.atomic_write import staged_dir, write_json, write_text
from envs.errors import ConfigError


def build_algo_config(cfg: TrainConfig) -> Any:
    """The DDPGConfig of a training config."""
    from ray.tune.registry import register_env

    from aware_ray.training.callbacks import ScoreboardCallbacks
    from aware_ray.training.kubernetes_env import make_training_env
    from envs import ENV_ID
    from policies.ddpg import DDPGConfig
    from policies.ddpg.layout import autoscale_layout

    run = cfg.run
    env_config = cfg.env.to_dict()
    ddpg = dict(cfg.ddpg)
    if cfg.bootstrap is not None:
        ddpg["bootstrap"] = cfg.bootstrap.to_dict()
    # Registered (not passed as a function, which RLlib refuses) so that env runners build one
    # AutoscaleVectorEnv per runner under gym_env_vectorize_mode="vector_entry_point".
    register_env(ENV_ID, make_training_env)
    vectorize = "vector_entry_point"
    if cfg.cluster is not None:
        # One cluster namespace per sub-env (aware_ray.training.kubernetes_env), stepped one after another.
        env_config["backend"] = "kubernetes"
        env_config["kubernetes"] = {**cfg.cluster.to_dict(), "envs_per_runner": run.num_envs_per_env_runner}
        vectorize = "SYNC"
    return (
        DDPGConfig()
        .environment(ENV_ID, env_config=env_config)
        .env_runners(
            # Simulator: each runner's envs are one AutoscaleVectorEnv, their clusters step as one batch.
            gym_env_vectorize_mode=vectorize,
            num_env_runners=run.num_env_runners,
            num_envs_per_env_runner=run.num_envs_per_env_runner,
            rollout_fragment_length=run.rollout_fragment_length,
            num_cpus_per_env_runner=1,
        )
        .training(
            layout=autoscale_layout(
                cfg.env.max_services,
                cfg.env.history_window,
                cfg.env.context_span,
                cfg.env.context_buckets,
                len(cfg.env.workloads) if ddpg.get("workload_loss_weight") else 0,
            ),
            **ddpg,
        )
        .callbacks(ScoreboardCallbacks)
        # A lost env runner (a killed process, a preempted node) is restarted and training goes
        # on: the iteration samples its steps from the runners that are up. RLlib's default waits
        # 60 s between restarts; an env runner here starts in seconds.
        .fault_tolerance(
            restart_failed_env_runners=True,
            max_num_env_runner_restarts=run.max_env_runner_restarts,
            delay_between_env_runner_restarts_s=5.0,
        )
        .reporting(min_sample_timesteps_per_iteration=run.steps_per_iteration, min_time_s_per_iteration=0)
        .debugging(seed=run.seed, log_level="ERROR")
    )


def _trainable(params: dict[str, Any]) -> None:
    """The Tune trainable: train, validate, checkpoint; runs in a Ray worker process."""
    import torch

    from aware_ray.training.callbacks import CPU_CORE_HOURS, GUARD_CLAMPS, SLO_VIOLATION_RATE
    from policies.ddpg.ddpg import EXPLORATION_SIGMA
    from policies.ddpg.policy import DDPGPolicy, export_policy

    cfg = build_train_config(params["raw"], params["source"], [])
    out = Path(params["out"])
    torch.set_num_threads(cfg.run.torch_threads)
    algo = build_algo_config(cfg).build_algo()
    if cfg.run.init_from and not params["resume"]:
        from aware_ray.training.init_weights import load_initial_weights

        load_initial_weights(algo, cfg.run.init_from)
    if params.get("experience") and not params["resume"]:
        from aware_ray.control.experience_reader import seed_replay

        seed_replay(algo, params["experience"])
    state_file = out / "train_state.json"
    bootstrap_file = out / "bootstrap.json"
    start_iter, best = 0, {"score": -np.inf, "iteration": None}
    if params["resume"] and (out / "checkpoints" / "latest").exists():
        algo.restore_from_path(str((out / "checkpoints" / "latest").resolve()))
        st = json.loads(state_file.read_text())
        start_iter, best = st["iteration"], st["best"]
        if cfg.bootstrap is not None and "bootstrap" in st:
            from policies.bootstrap.lifecycle import Lifecycle

            algo.bootstrap.lifecycle = Lifecycle.restore(cfg.bootstrap, st["bootstrap"])
            if bootstrap_file.exists():
                algo.bootstrap.handovers.extend(json.loads(bootstrap_file.read_text()).get("handovers", []))
    history = (
        json.loads((out / "validation.json").read_text())
        if params["resume"] and (out / "validation.json").exists()
        else []
    )
    env_cfg = cfg.env.to_dict()
    t0 = time.time()
    for it in range(start_iter + 1, cfg.run.iterations + 1):
        result = algo.train()
        er = result.get("env_runners", {})
        learner = result.get("learners", {}).get("default_policy", {})
        metrics = {
            "iteration": it,
            "env_steps": float(er.get("num_env_steps_sampled_lifetime", 0)),
            "episode_return_mean": float(er.get("episode_return_mean", np.nan) or np.nan),
            SLO_VIOLATION_RATE: float(er.get(SLO_VIOLATION_RATE, np.nan)),
            CPU_CORE_HOURS: float(er.get(CPU_CORE_HOURS, np.nan)),
            GUARD_CLAMPS: float(er.get(GUARD_CLAMPS, np.nan)),
            "time_this_iter_s": float(result.get("time_this_iter_s", 0.0)),
            "exploration/sigma": float(result.get(EXPLORATION_SIGMA, np.nan)),
        }
        for k, v in learner.items():
            if "/" in k and isinstance(v, int | float | np.floating):
                metrics[k] = float(v)
        if algo.bootstrap is not None:
            metrics.update({f"bootstrap/{k}": float(v) for k, v in result.get("bootstrap", {}).items()})
            write_json(bootstrap_file, algo.bootstrap.record())
        last = it == cfg.run.iterations
        if (cfg.run.eval_every and it % cfg.run.eval_every == 0) or last:
            module = algo.get_module()
            policy = DDPGPolicy(module, env_cfg, name="ddpg")
            val = validate(policy, cfg, params["baselines"])
            val["iteration"] = it
            if "probe_accuracy" in val:
                metrics["meta/probe_accuracy"] = val["probe_accuracy"]
            history.append(val)
            metrics.update(
                {
                    "validation/score": val["score"],
                    "validation/slo_violation_rate": val["violation_rate"],
                    "validation/cpu_core_hours": val["cpu_core_hours"],
                }
            )
            if val["score"] > best["score"]:
                best = {"score": val["score"], "iteration": it}
                export_policy(
                    module,
                    out / "policy",
                    env_cfg,
                    {"iteration": it, "validation": val, "env_steps": metrics["env_steps"]},
                )
                _save(algo, out / "checkpoints" / "best")
            write_json(out / "validation.json", history)
        if (cfg.run.checkpoint_every and it % cfg.run.checkpoint_every == 0) or last:
            _save(algo, out / "checkpoints" / f"iter_{it}")
            _save(algo, out / "checkpoints" / "latest")
            st = {
                "iteration": it,
                "best": best,
                "exploration_sigma": metrics["exploration/sigma"],
                "env_steps": metrics["env_steps"],
            }
            if algo.bootstrap is not None:
                st["bootstrap"] = algo.bootstrap.lifecycle.state()
            write_json(state_file, st)
        metrics["best/score"] = best["score"] if np.isfinite(best["score"]) else np.nan
        metrics["wall_s"] = time.time() - t0
        tune.report(metrics)
    export_policy(algo.get_module(), out / "policy_final", env_cfg, {"iteration": cfg.run.iterations})
    algo.stop()


def start_ray(num_cpus: int) -> bool:
    """Join the cluster ``ray job submit`` runs us on (``RAY_ADDRESS``; its size is its own) or start
    a local Ray with `num_cpus` (at least 2); True when this call started Ray and should stop it."""
    import ray

    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False, configure_logging=False)
    else:
        ray.init(num_cpus=max(2, num_cpus), include_dashboard=False, log_to_driver=False, configure_logging=False)
    return True


def trial_resources(run: RunConfig) -> tune.PlacementGroupFactory:
    """What one training run holds: a CPU for the learner and one per env runner."""
    return tune.PlacementGroupFactory([{"CPU": 1}] + [{"CPU": 1}] * run.num_env_runners)


def _save(algo: Any, path: Path) -> None:
    with staged_dir(path, replace=True) as tmp:
        algo.save_to_path(str(tmp.resolve()))


class _Progress(tune.Callback):
    """Prints one readable line per training iteration (Tune's own output is turned off)."""

    def __init__(self, total: int):
        self.total = total

    def on_trial_result(self, iteration, trials, trial, result, **info):
        v = result.get("validation/score")
        val = f" | validation score {v:+.2f}" if v is not None and np.isfinite(v) else ""
        wid = result.get("meta/workload_accuracy")
        if wid is not None and np.isfinite(wid):
            val += f" | workload id {100 * wid:.0f}%"
        phase = result.get("bootstrap/phase")
        if phase is not None:
            from policies.bootstrap.phase import Phase

            share = 100 * result.get("bootstrap/policy_share", 0.0)
            val += f" | {Phase(int(phase)).name.lower()}, policy acts {share:.0f}%"
        print(
            f"iter {result.get('iteration', '?')}/{self.total} | env steps {result.get('env_steps', 0):,.0f} "
            f"| return {result.get('episode_return_mean', float('nan')):.1f} "
            f"| viol {100 * result.get('slo/violation_rate', float('nan')):.1f}% "
            f"| critic {result.get('losses/critic', float('nan')):.3f}{val} "
            f"| {result.get('wall_s', 0):.0f}s",
            flush=True,
        )


def train(cfg: TrainConfig, out: Path, resume: bool = False, experience: str | None = None) -> dict[str, Any]:
    """Run training; returns the summary also written to OUT/train_summary.json.

    ``experience``: controller records (``redis://...`` or a JSONL export) added to the replay buffer
    before the first iteration (``aware_ray.control.experience_reader``)."""
    import ray

    out = Path(out).resolve()
    if out.exists() and not resume and (out / "train_summary.json").exists():
        raise ConfigError(f"{out}: a finished run is there; pass --resume or choose another --out")
    # Every config error is found before any work: the algorithm config whole, then the resume.
    try:
        build_algo_config(cfg).validate()
    except ValueError as exc:
        raise ConfigError(f"{cfg.source}: ddpg: {str(exc).strip().splitlines()[0]}") from None
    if resume:
        check_resume(out)
    if cfg.run.init_from:
        from aware_ray.training.init_weights import resolve_source

        # Absolute, for the trial process (which need not share our working directory).
        cfg.raw.setdefault("run", {})["init_from"] = cfg.run.init_from = str(resolve_source(cfg.run.init_from)[1])
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "config.yaml", yaml.safe_dump(cfg.raw, sort_keys=False))
    t0 = time.time()
    baselines = load_or_score_baselines(out, cfg, resume)
    run = cfg.run
    started_ray = start_ray(1 + run.num_env_runners)
    write_layout(out / "tune")
    try:
        tuner = tune.Tuner(
            tune.with_resources(_trainable, trial_resources(run)),
            param_space={
                "raw": cfg.raw,
                "source": cfg.source,
                "out": str(out),
                "resume": resume,
                "baselines": baselines,
                "experience": experience,
            },
            run_config=tune.RunConfig(
                name="tune", storage_path=str(out), verbose=0, callbacks=[_Progress(run.iterations)]
            ),
        )
        grid = tuner.fit()
        res = grid[0]
        if res.error:
            raise RuntimeError(f"training failed: {res.error}")
    finally:
        if started_ray:
            ray.shutdown()
    history = json.loads((out / "validation.json").read_text()) if (out / "validation.json").exists() else []
    state = json.loads((out / "train_state.json").read_text())
    final = res.metrics or {}
    summary = {
        "config": cfg.source,
        "iterations": state["iteration"],
        # A resumed run with no iteration left to do reports nothing: its steps are the state's.
        "env_steps": final.get("env_steps", state.get("env_steps")),
        "wall_s": round(time.time() - t0, 1),
        "best": state["best"],
        "final_metrics": {k: v for k, v in final.items() if isinstance(v, int | float) and "/" in k},
        "validation": history,
        "policy": str(out / "policy"),
    }
    if (out / "bootstrap.json").exists():
        summary["bootstrap"] = json.loads((out / "bootstrap.json").read_text())
    write_json(out / "train_summary.json", summary)
    return summary


def main_train(config: str, overrides: list[str], out: str, resume: bool, experience: str | None = None) -> int:
    from aware_ray.training.config import check_selection_workloads, load_train_config

    cfg = load_train_config(config, overrides)
    check_selection_workloads(cfg.run, cfg.source)
    if experience:
        from aware_ray.control.experience_reader import read_records

        read_records(experience)  # a bad source fails here, in one line, before Ray starts
    summary = train(cfg, Path(out), resume, experience)
    best = summary["best"]
    steps = "?" if summary["env_steps"] is None else f"{summary['env_steps']:,.0f}"
    print(
        f"aware-ray train: {summary['iterations']} iterations, {steps} env steps in "
        f"{summary['wall_s']:.0f}s; best validation score {best['score']:+.2f} at iteration {best['iteration']}; "
        f"policy in {summary['policy']}",
        file=sys.stdout,
    )
    return 0
