"""Rank policies on one run's validation workloads: ``aware-ray rank RUN POLICY [POLICY ...]``
(RUN may also be a folder of ``aware-ray validation-set``: a validation without a training run).

Runs of the same config differ a lot from seed to seed, so the policy to ship is chosen among
several runs (and the policy shipped now). Each run's own validation history cannot settle that:
an older run may have been validated with fewer seeds or other workloads. Here every candidate is
scored with RUN's validation (its workloads, seeds, windows and stored baselines), the very
scoring training uses to keep a run's best checkpoint, so the figures are comparable with RUN's
``validation.json`` and with each other. The held-out benchmark plays no part in the choice.
RUN may name several validation folders, ``RUN,RUN...`` (each of distinct workloads): every
candidate is then scored on each and ranked over all their workloads together, as the shipped
policy was chosen over four sets. A candidate may also be a policy behind a controller's rule
(``stable@S:POLICY``, a scale-down stabilization window; ``lean@U:POLICY``, growth no further
than the HPA at target U would allow), so whether a policy ships behind one is decided the same
way.

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
from aware_ray.training.reselect import checkpoint_policy, is_checkpoint, run_validation
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
    """A candidate given as ``ddpg:PATH``, ``ddpg:pretrained`` or a bare policy or run folder, or
    one of a run's checkpoints (``runs/NAME/checkpoints/iter_N``, scored as it is, unexported)."""
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
    """The ranking's line ends in ", on S of N episodes" where the row counted seeds."""
    if "seeds_run" not in row:
        return ""
    return f", on {seed_goal_count(row)} of {sum(row['seeds_run'].values())} episodes"


def validation_dirs(spec: str | Path) -> list[Path]:
    """The validation folders of ``RUN[,RUN...]``, each named once."""
    parts = [part.strip() for part in str(spec).split(",")]
    if not all(parts):
        raise ConfigError(f"rank: '{spec}' names an empty validation folder (RUN[,RUN...])")
    dirs = [Path(part) for part in parts]
    for k, d in enumerate(dirs):
        if d in dirs[:k]:
            raise ConfigError(f"rank: '{d}' is named twice (RUN[,RUN...])")
    return dirs


def distinct_workloads(sets: list[tuple[Any, Any]]) -> None:
    """Refuse validation sets (``(folder, workload names)`` each) of which two name one workload:
    joined, one would overwrite the other's figures."""
    where: dict[str, Any] = {}
    for folder, traces in sets:
        for trace in sorted(traces):
            if trace in where:
                raise ConfigError(
                    f"rank: workload '{trace}' is in both {where[trace]} and {folder}; "
                    "rank on sets of distinct workloads"
                )
            where[trace] = folder


PER_WORKLOAD = ("risk_gap", "gap_closed", "goal_met", "memory_met", "violations", "seeds_goal_met", "seeds_run")
"""The fields of a validation row that hold one value per workload."""

MEANS = ("violation_rate", "cpu_core_hours", "mem_gib_hours", "money")
"""The fields of a validation row that are means over its workloads."""


def combine_sets(parts: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """One candidate's validation rows on several sets (``(folder, row)`` each) as one row over all
    their workloads: the per-workload fields joined, the score and the other means taken over every
    workload (a set of ten weighs five times one of two), and each set's score and counts kept
    under ``sets``. Ranking over all the sets at once is how the policy to ship was chosen: a
    candidate that wins one set and loses another is judged on the whole."""
    distinct_workloads([(folder, row["goal_met"]) for folder, row in parts])
    out: dict[str, Any] = {k: {} for k in PER_WORKLOAD}
    sets = {}
    for folder, row in parts:
        for key in PER_WORKLOAD:
            out[key].update(row.get(key, {}))
        sets[folder] = {
            "score": row["score"],
            "goal_count": goal_count(row),
            "seed_goal_count": seed_goal_count(row),
            "workloads": len(row["goal_met"]),
            **({"probe_accuracy": row["probe_accuracy"]} if "probe_accuracy" in row else {}),
        }
    if not all("seeds_goal_met" in row for _, row in parts):
        del out["seeds_goal_met"], out["seeds_run"]
    weights = [len(row["goal_met"]) for _, row in parts]
    total = sum(weights)
    out["score"] = sum(out["risk_gap"].values()) / max(len(out["risk_gap"]), 1)
    for key in MEANS:
        out[key] = sum(w * row[key] for w, (_, row) in zip(weights, parts, strict=True)) / max(total, 1)
    first = parts[0][1]
    for key in ("memory_price", "time_compression"):
        if key in first:
            out[key] = first[key]
    out["sets"] = sets
    return out


def _load(name: str) -> tuple[Any, Any]:
    """A candidate's policy and its rule wrapper (``_candidate``), loaded once for every set."""
    from policies.ddpg.policy import DDPGPolicy

    path, wrap = _candidate(name)
    policy = checkpoint_policy(path) if is_checkpoint(path) else DDPGPolicy.load(path, name="ddpg")
    return policy, wrap


def _check_layout(names: list[str], policies: list[tuple[Any, Any]], cfg: Any, run_dir: Path) -> None:
    """Refuse a candidate whose observations RUN's validation env does not produce."""
    env = cfg.env.to_dict()
    for name, (policy, _) in zip(names, policies, strict=True):
        for key, need in policy.env_overrides().items():
            if env.get(key) != need:
                raise ConfigError(
                    f"policy '{name}': its observations need {key}={need}, "
                    f"the validation of {run_dir} runs with {key}={env.get(key)}"
                )


def _score_on(
    run_dir: Path,
    cfg: Any,
    baselines: list[dict[str, Any]],
    names: list[str],
    policies: list[tuple[Any, Any]],
    time_compression: float,
) -> list[dict[str, Any]]:
    """Each named policy's validation row on RUN's validation, in the order named."""
    reason = stale_baselines(baselines, cfg, time_compression)
    if reason:
        print(f"aware-ray rank: the stored validation baselines were {reason}; scoring them again", flush=True)
        baselines = validation_rows(None, cfg, list(VALIDATION_BASELINES), time_compression=time_compression)
    rows = []
    for name, (policy, wrap) in zip(names, policies, strict=True):
        val = validate(policy, cfg, baselines, wrap, time_compression)
        rows.append({"policy": name, **val})
        print(f"{run_dir}: {_summary_text(name, val)}", flush=True)
    return rows


def _summary_text(name: str, row: dict[str, Any]) -> str:
    return (
        f"{name}: validation score {row['score']:+.3f}, violations {100 * row['violation_rate']:.1f} %, "
        f"money {row['money']:.2f} ({row['cpu_core_hours']:.2f} core-h, {row['mem_gib_hours']:.1f} GiB-h), "
        f"goal met on {goal_count(row)} of {len(row['goal_met'])}{_seeds_text(row)}"
    )


def rank(
    run_dir: str | Path,
    names: list[str],
    time_compression: float = EVAL_TIME_COMPRESSION,
    memory_price: float | None = None,
) -> dict[str, Any]:
    """Score each named policy on RUN's validation (``RUN[,RUN...]``: on all those sets' workloads
    together, ``combine_sets``) at `time_compression`, money at `memory_price` cores per GiB
    (default the runs'); return them best first."""
    import dataclasses

    if not names:
        raise ConfigError("rank: name at least one policy to score")
    if not time_compression > 0:
        raise ConfigError(f"--time-compression: must be > 0, got {time_compression}")
    if memory_price is not None and not memory_price >= 0:
        raise ConfigError(f"--memory-price: must be >= 0 (cores per GiB), got {memory_price}")
    dirs = validation_dirs(run_dir)
    # Every folder read, and every candidate loaded, once and before any scoring starts: no workload
    # named by two sets, one memory price, and observations every set's env produces.
    sets = []
    for d in dirs:
        _, cfg, baselines = run_validation(d, "rank", need_summary=False)
        if memory_price is not None:
            cfg = dataclasses.replace(cfg, env=dataclasses.replace(cfg.env, memory_price=memory_price))
        sets.append((d, cfg, baselines))
    distinct_workloads([(d, {str(r.get("trace")) for r in b if isinstance(r, dict)}) for d, _, b in sets])
    prices = {cfg.env.memory_price for _, cfg, _ in sets}
    if len(prices) > 1:
        raise ConfigError(f"rank: the validation sets price memory differently ({sorted(prices)}); give --memory-price")
    policies = [_load(name) for name in names]
    for d, cfg, _ in sets:
        _check_layout(names, policies, cfg, d)
    per_set = [_score_on(d, cfg, baselines, names, policies, time_compression) for d, cfg, baselines in sets]
    if len(dirs) == 1:
        rows = per_set[0]
    else:
        rows = [
            {"policy": name, **combine_sets([(str(d), rows[k]) for d, rows in zip(dirs, per_set, strict=True)])}
            for k, name in enumerate(names)
        ]
        for row in rows:
            print(f"all {len(dirs)} sets: {_summary_text(row['policy'], row)}")
    for row in rows:
        row["goal_count"] = goal_count(row)
        row["seed_goal_count"] = seed_goal_count(row)
    rows.sort(key=ranking_key, reverse=True)
    return {
        "validation_of": str(run_dir) if len(dirs) == 1 else [str(d) for d in dirs],
        "time_compression": time_compression,
        "memory_price": rows[0]["memory_price"],
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
