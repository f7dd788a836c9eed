"""``aware-ray bench bootstrap``: what bootstrapping buys over a whole lifecycle.

Three arms see the same sequence of simulated episodes (same seeds, so the same workload
draws): the training workloads of the config, then, from episode ``switch_at`` on, a workload
none of them has seen (which should make a serving policy retrain):

- ``heuristic``: the bootstrap teacher (HPA+VPA) alone, never handing over;
- ``rl_scratch``: DDPG from scratch, acting from the first interval;
- ``rl_bootstrap``: DDPG under the lifecycle (OFFLINE -> ONLINE -> SERVING, drift -> ONLINE).

Each arm is a real RLlib training run with the config's env runners. Reported per arm:
violating intervals and CPU core-hours over the whole run, over the first N episodes and over
the last K, the phases and every transition with its reason. Goals (from AWARE, made stricter):
bootstrapped RL has at most 1.1x the heuristic's violations over the lifecycle, at least 10x
fewer than RL from scratch in the first N episodes, and costs less than the heuristic at the end.
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from aware_ray.training.config import TrainConfig, build_train_config, load_train_config

ARMS = ("heuristic", "rl_scratch", "rl_bootstrap")
NEVER = 10**12
"""Episodes/steps that never come: keeps the heuristic arm in OFFLINE without learning."""


def arm_config(cfg: TrainConfig, arm: str) -> TrainConfig:
    """The training config of one arm."""
    if cfg.bootstrap is None:
        from envs.errors import ConfigError

        raise ConfigError(f"{cfg.source}: the bootstrap bench needs a 'bootstrap' section")
    raw = copy.deepcopy(cfg.raw)
    if arm == "heuristic":
        raw["bootstrap"] = {**raw.get("bootstrap", {}), "offline_episodes": NEVER, "start_phase": "initialized"}
        raw.setdefault("ddpg", {})["num_steps_sampled_before_learning_starts"] = NEVER
    elif arm == "rl_scratch":
        raw.pop("bootstrap", None)
    return build_train_config(raw, cfg.source, [])


def _set_workloads(algo: Any, specs: list[str]) -> None:
    """Point every env of every runner at new workloads (episodes already running finish as they are)."""

    def apply(runner: Any) -> None:
        for env in getattr(runner.env, "envs", []):
            env.unwrapped.set_workloads(specs)

    algo.env_runner_group.foreach_env_runner(apply, local_env_runner=True)


def run_arm(
    cfg: TrainConfig, arm: str, episodes: int, switch_at: int, new_workloads: list[str], export: Path | None = None
) -> dict[str, Any]:
    """Train one arm until `episodes` episodes have finished; per-episode rows and transitions.

    With ``export``, the learning arms' final policy is written there (``policy_<arm>``), so it
    can be evaluated or inspected afterwards (``aware-ray evaluate --policies ddpg:PATH``).
    """
    from aware_ray.training.train import build_algo_config
    from policies.bootstrap.driver import pull_reports

    acfg = arm_config(cfg, arm)
    algo = build_algo_config(acfg).build_algo()
    rows: list[dict[str, Any]] = []
    switched, seen, t0, iterations = False, 0, time.time(), 0
    try:
        while len(rows) < episodes:
            result = algo.train()
            iterations += 1
            if algo.bootstrap is not None:
                new = algo.bootstrap.episodes[seen:]
                seen = len(algo.bootstrap.episodes)
            else:
                new = [(iterations, None, r) for r in pull_reports(algo)]
            for it, phase, rep in new:
                rows.append(
                    {
                        "episode": len(rows) + 1,
                        "iteration": it,
                        "phase": phase.name if phase is not None else "SCRATCH",
                        "violations": rep.violations,
                        "violation_rate": rep.violation_rate,
                        "cpu_core_hours": rep.cpu_core_hours,
                        "reward": rep.reward,
                        "policy_share": rep.policy_share,
                        "fallbacks": rep.fallbacks,
                        "new_workload": switched,
                    }
                )
            print(
                f"bench bootstrap: {arm}: {min(len(rows), episodes)}/{episodes} episodes, {time.time() - t0:.0f}s",
                file=sys.stderr,
                flush=True,
            )
            if not switched and len(rows) >= switch_at:
                _set_workloads(algo, new_workloads)
                switched = True
        env_steps = float(result.get("env_runners", {}).get("num_env_steps_sampled_lifetime", 0))
        transitions = [t.to_dict() for t in algo.bootstrap.lifecycle.transitions] if algo.bootstrap else []
        handovers = list(algo.bootstrap.handovers) if algo.bootstrap else []
        if export is not None and arm != "heuristic":
            from policies.ddpg.policy import export_policy

            info = {"bench": "bootstrap", "arm": arm, "episodes": episodes, "env_steps": env_steps}
            export_policy(algo.get_module(), export / f"policy_{arm}", cfg.env.to_dict(), info)
    finally:
        algo.stop()
    return {
        "rows": rows[:episodes],
        "transitions": transitions if arm == "rl_bootstrap" else [],
        "handovers": handovers if arm == "rl_bootstrap" else [],
        "wall_s": round(time.time() - t0, 1),
        "iterations": iterations,
        "env_steps": env_steps,
    }


def fallback_reasons(handovers: list[dict[str, Any]]) -> dict[str, int]:
    """Fallbacks of the bootstrapped arm by the monitor's signal (SLO violations or cost)."""
    fallbacks = [h["event"] for h in handovers if h["event"].startswith("fallback")]
    slo = sum("violated the SLO" in e for e in fallbacks)
    return {"slo": slo, "cost": len(fallbacks) - slo}


def summarize(rows: list[dict[str, Any]], first_n: int, last_k: int) -> dict[str, Any]:
    def tot(rs: list[dict[str, Any]], key: str) -> float:
        return float(sum(r[key] for r in rs))

    first, last = rows[:first_n], rows[-last_k:]
    return {
        "episodes": len(rows),
        "violations": int(tot(rows, "violations")),
        "cpu_core_hours": round(tot(rows, "cpu_core_hours"), 2),
        "first_n_violations": int(tot(first, "violations")),
        "first_n_cpu_core_hours": round(tot(first, "cpu_core_hours"), 2),
        "last_k_violations": int(tot(last, "violations")),
        "last_k_cpu_core_hours": round(tot(last, "cpu_core_hours"), 2),
        "fallbacks": int(tot(rows, "fallbacks")),
        "policy_share": round(float(np.mean([r["policy_share"] for r in rows])), 3) if rows else 0.0,
        "episodes_per_phase": {p: sum(r["phase"] == p for r in rows) for p in sorted({r["phase"] for r in rows})},
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def _goals(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The three goals, each judged where the arms it compares were run."""
    h, s, b = (summary.get(arm) for arm in ARMS)
    goals: dict[str, Any] = {"met": {}}
    if b is not None and h is not None:
        goals["lifecycle_violations_vs_heuristic"] = _ratio(b["violations"], h["violations"])
        goals["last_k_cost_vs_heuristic"] = cost = _ratio(b["last_k_cpu_core_hours"], h["last_k_cpu_core_hours"])
        goals["met"]["lifecycle_violations_le_1.1x_heuristic"] = b["violations"] <= 1.1 * h["violations"]
        goals["met"]["cheaper_than_heuristic_at_end"] = cost is not None and cost < 1.0
    if b is not None and s is not None:
        goals["first_n_scratch_vs_bootstrap_violations"] = _ratio(s["first_n_violations"], b["first_n_violations"])
        goals["met"]["first_n_ge_10x_fewer_than_scratch"] = (
            s["first_n_violations"] >= 10 * b["first_n_violations"] and s["first_n_violations"] > 0
        )
    return goals


def bench_bootstrap(
    config: str,
    overrides: list[str],
    episodes: int,
    switch_at: int,
    new_workloads: list[str],
    first_n: int,
    last_k: int,
    out: str | None,
    arms: list[str] | None = None,
) -> dict[str, Any]:
    import ray

    from envs.errors import ConfigError

    cfg = load_train_config(config, overrides)
    for name, value in (("--episodes", episodes), ("--first-n", first_n), ("--last-k", last_k)):
        if value < 1:
            raise ConfigError(f"{name}: must be >= 1, got {value}")
    arms = list(arms or ARMS)
    for arm in arms:
        if arm not in ARMS:
            raise ConfigError(f"--arms: unknown arm {arm!r} (known: {', '.join(ARMS)})")
    if not 0 < switch_at <= episodes:
        raise ConfigError(f"--switch-at: must be in [1, --episodes], got {switch_at}")
    from envs.workload import make_workload

    for spec in new_workloads:
        make_workload(spec, 100.0)
    runs: dict[str, Any] = {}
    from aware_ray.training.train import start_ray

    started = start_ray(1 + cfg.run.num_env_runners)
    try:
        for arm in arms:
            runs[arm] = run_arm(cfg, arm, episodes, switch_at, new_workloads, Path(out) if out else None)
    finally:
        if started:
            ray.shutdown()
    summary = {arm: summarize(runs[arm]["rows"], first_n, last_k) for arm in arms}
    goals = _goals(summary)
    result = {
        "bench": "bootstrap",
        "config": cfg.source,
        "app": cfg.env.app,
        "episodes": episodes,
        "episode_steps": cfg.env.episode_steps,
        "switch_at": switch_at,
        "new_workloads": new_workloads,
        "first_n": first_n,
        "last_k": last_k,
        "arms": summary,
        "goals": goals,
        "transitions": runs["rl_bootstrap"]["transitions"] if "rl_bootstrap" in runs else [],
        "fallback_reasons": fallback_reasons(runs["rl_bootstrap"]["handovers"]) if "rl_bootstrap" in runs else {},
        "wall_s": {arm: runs[arm]["wall_s"] for arm in arms},
    }
    if out:
        from envs.atomic_write import write_json

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(
            folder / "bootstrap_bench.json",
            {
                **result,
                "rows": {arm: runs[arm]["rows"] for arm in arms},
                "handovers": runs["rl_bootstrap"]["handovers"] if "rl_bootstrap" in runs else [],
            },
        )
        result["out"] = str(folder / "bootstrap_bench.json")
    return result
