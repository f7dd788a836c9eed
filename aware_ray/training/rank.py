"""Rank policies on one run's validation workloads: ``aware-ray rank RUN POLICY [POLICY ...]``
(RUN may also be a folder of ``aware-ray validation-set``: a validation without a training run).

Runs of the same config differ a lot from seed to seed, so the policy to ship is chosen among
several runs (and the policy shipped now). Each run's own validation history cannot settle that:
an older run may have been validated with fewer seeds or other workloads. Here every candidate is
scored with RUN's validation (its workloads, seeds, windows and stored baselines), the very
scoring training uses to keep a run's best checkpoint, so the figures are comparable with RUN's
``validation.json`` and with each other. The held-out benchmark plays no part in the choice.
A candidate may also be a policy behind a controller's rule (``stable@S:POLICY``, a scale-down
stabilization window; ``lean@U:POLICY``, growth no further than the HPA at target U would allow),
so whether a policy ships behind one is decided the same way.

Candidates are ordered by the quality goal first, then by the score: the number of validation
workloads on which a candidate meets the goal (half the money gap closed, or half the violations at
equal money, with violations within the cap, and memory within 1.5x HPA+VPA in-place's), then the
number of (workload, seed) episodes on which it meets the goal against that seed's own frontier,
then the validation score among those with the same counts (``ranking_key``). The score alone, a
mean of gaps closed charged only past the riskiest heuristic point, ranked a deployment first that
missed the goal's 2 % cap on one more workload than the runner-up, for 0.004 more score. The seed
count comes before the score because the goal is judged on means over seeds, and a workload met
on the mean can be carried by one seed: a released policy met four held-out traces on 0-1 of 3
seeds each, which the workload count alone did not show.

Candidates replay the validation at real time unless ``--time-compression`` says otherwise, and are
scored in money against the heuristic frontier. Where RUN's stored baselines were recorded
otherwise (a run trained before either: at its training compression, with the HPA alone), they
are scored again here, in memory, with a note; RUN's folder is not changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aware_ray.evaluation.rollout import one_inference_thread
from aware_ray.training.reselect import run_validation
from aware_ray.training.validation import (
    EVAL_TIME_COMPRESSION,
    VALIDATION_BASELINES,
    stale_baselines,
    validate,
    validation_rows,
)
from envs.atomic_write import write_json
from envs.errors import ConfigError
from policies.registry import ddpg_path, wrap_chain


def _policy_path(name: str) -> Path:
    """A candidate given as ``ddpg:PATH``, ``ddpg:pretrained`` or a bare policy or run folder."""
    return ddpg_path(name if name.startswith("ddpg:") else f"ddpg:{name}")


def _candidate(name: str) -> tuple[Path, Any]:
    """The policy folder of a candidate and, for one behind rules (``stable@S:``, ``lean@U:``,
    ``safe:``), what acts: ``wrap(policy, env)``."""
    inner, wrap = wrap_chain(name)
    if inner == name:
        return _policy_path(name), None
    from policies.base import EnvContext

    return _policy_path(inner), lambda policy, env: wrap(policy, EnvContext.of(env))


def goal_count(row: dict[str, Any]) -> int:
    """Validation workloads on which a ranked candidate meets the quality goal, memory included."""
    memory = row.get("memory_met", {})
    return sum(bool(met) and bool(memory.get(trace, True)) for trace, met in row["goal_met"].items())


def seed_goal_count(row: dict[str, Any]) -> int:
    """Validation episodes (workload and seed) on which a ranked candidate meets the goal against
    that seed's own frontier, memory included; 0 for rows scored before seeds were counted."""
    return sum(int(n) for n in row.get("seeds_goal_met", {}).values())


def ranking_key(row: dict[str, Any]) -> tuple[int, int, float]:
    """Sort key of a ranked candidate, larger first: the goal's count, the seeds' count, then the
    validation score."""
    return goal_count(row), seed_goal_count(row), float(row["score"])


def _seeds_text(row: dict[str, Any]) -> str:
    """ ", on S of N episodes" where the row counted seeds."""
    if "seeds_goal_met" not in row:
        return ""
    return f", on {seed_goal_count(row)} of {len(row['seeds_goal_met']) * int(row.get('seeds', 0))} episodes"


def rank(
    run_dir: str | Path,
    names: list[str],
    time_compression: float = EVAL_TIME_COMPRESSION,
    memory_price: float | None = None,
) -> dict[str, Any]:
    """Score each named policy on RUN's validation (at `time_compression`, money at `memory_price`
    cores per GiB, default the run's); return them best first."""
    import dataclasses

    from policies.ddpg.policy import DDPGPolicy

    if not names:
        raise ConfigError("rank: name at least one policy to score")
    if not time_compression > 0:
        raise ConfigError(f"--time-compression: must be > 0, got {time_compression}")
    if memory_price is not None and not memory_price >= 0:
        raise ConfigError(f"--memory-price: must be >= 0 (cores per GiB), got {memory_price}")
    run_dir = Path(run_dir)
    _, cfg, baselines = run_validation(run_dir, "rank", need_summary=False)
    if memory_price is not None:
        cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, memory_price=memory_price))
    env = cfg.env.to_dict()
    policies = []
    for name in names:
        path, wrap = _candidate(name)
        policy = DDPGPolicy.load(path, name="ddpg")
        for key, need in policy.env_overrides().items():
            if env.get(key) != need:
                raise ConfigError(
                    f"policy '{name}': its observations need {key}={need}, "
                    f"the validation of {run_dir} runs with {key}={env.get(key)}"
                )
        policies.append((policy, wrap))
    reason = stale_baselines(baselines, cfg, time_compression)
    if reason:
        print(f"aware-ray rank: the stored validation baselines were {reason}; scoring them again", flush=True)
        baselines = validation_rows(None, cfg, list(VALIDATION_BASELINES), time_compression=time_compression)
    rows = []
    for name, (policy, wrap) in zip(names, policies, strict=True):
        val = validate(policy, cfg, baselines, wrap, time_compression)
        rows.append({"policy": name, **val})
        met = goal_count(val)
        print(
            f"{name}: validation score {val['score']:+.3f}, violations {100 * val['violation_rate']:.1f} %, "
            f"money {val['money']:.2f} ({val['cpu_core_hours']:.2f} core-h, {val['mem_gib_hours']:.1f} GiB-h), "
            f"goal met on {met} of {len(val['goal_met'])}{_seeds_text(val)}"
        )
    for row in rows:
        row["goal_count"] = goal_count(row)
        row["seed_goal_count"] = seed_goal_count(row)
    rows.sort(key=ranking_key, reverse=True)
    return {
        "validation_of": str(run_dir),
        "time_compression": time_compression,
        "memory_price": cfg.env.memory_price,
        "ranking": rows,
    }


def main_rank(
    run_dir: str,
    names: list[str],
    out: str | None,
    time_compression: float = EVAL_TIME_COMPRESSION,
    memory_price: float | None = None,
) -> int:
    one_inference_thread()
    result = rank(run_dir, names, time_compression, memory_price)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(out), result)
    best = result["ranking"][0]
    print(
        f"aware-ray rank: best on the validation of {run_dir}: {best['policy']} "
        f"(goal met on {best['goal_count']} of {len(best['goal_met'])}{_seeds_text(best)}, score {best['score']:+.3f})"
    )
    if out:
        print(f"wrote {out}")
    return 0
