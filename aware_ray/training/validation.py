"""Validation: how training, ``reselect``, ``rank`` and ``validation-set`` score a policy.

It lives apart from the Tune driver so that scoring a policy needs no Ray Tune: the rows come
from the same rollout and scoreboard code as ``aware-ray evaluate``, on the run's validation
workloads (never the held-out ones).

Like ``evaluate``, validation replays traces at real time (``EVAL_TIME_COMPRESSION``) whatever
compression the policy trained at, and scores money (``env.memory_price`` of the run) against the
heuristic frontier. Baselines a run stored before that (at the training env's compression, or
with the HPA alone) do not compare with such rows: ``stale_baselines`` says why, ``validate``
refuses them and ``rank`` scores them again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aware_ray.training.config import TrainConfig
from envs.errors import ConfigError
from policies.registry import FRONTIER_FAMILIES, FRONTIER_TARGETS

VALIDATION_BASELINES = (*(f"{f}@{t}" for f in FRONTIER_FAMILIES for t in FRONTIER_TARGETS), "oracle")
EVAL_TIME_COMPRESSION = 1.0
"""Validation replays traces at real time, as ``evaluate`` does (training may compress them)."""


def eval_env_config(cfg: TrainConfig, time_compression: float = EVAL_TIME_COMPRESSION) -> dict[str, Any]:
    """The env validation runs in: the training env at `time_compression`, without its workloads,
    without its rules, which belong to the policy (it acts behind them) and not to the baselines,
    and without its time-scale augmentation, which touches drawn training episodes only (so a
    run folder's baselines fingerprint stays what it was)."""
    d = cfg.env.to_dict()
    d.pop("workloads", None)
    d.pop("rules", None)
    d.pop("time_compression_choices", None)
    d["time_compression"] = time_compression
    return d


def stale_baselines(
    baselines: list[dict[str, Any]], cfg: TrainConfig, time_compression: float = EVAL_TIME_COMPRESSION
) -> str | None:
    """Why stored validation baselines cannot score rows replayed at `time_compression` (None when
    they can): recorded at another compression (rows without the field were recorded at the
    training env's), or missing a heuristic of the frontier."""
    rates = {float(r.get("time_compression", cfg.env.time_compression)) for r in baselines}
    if rates and rates != {float(time_compression)}:
        return f"recorded at time compression {', '.join(f'{x:g}' for x in sorted(rates))}, not {time_compression:g}"
    missing = sorted(set(VALIDATION_BASELINES) - {r["policy"] for r in baselines})
    if missing:
        return f"without {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
    return None


def validation_rows(
    policy: Any,
    cfg: TrainConfig,
    names: list[str] | None = None,
    wrap: Any = None,
    time_compression: float = EVAL_TIME_COMPRESSION,
) -> list[dict[str, Any]]:
    """Scoreboard rows of `policy` (or of named baselines) on the run's validation workloads;
    ``wrap(policy, env)``, when given, is what acts (the policy behind a controller's rule)."""
    from aware_ray.evaluation.evaluate import EvalPlan, run_job, run_jobs_together
    from policies import registry as policy_registry

    run = cfg.run
    env = eval_env_config(cfg, time_compression)
    plan = EvalPlan(
        policies=[],
        app=env.pop("app"),
        env=env,
        max_hours=run.eval_hours,
        timeseries="none",
        time_compression=time_compression,
        memory_price=cfg.env.memory_price,
    )
    specs = [f"trace:{t}" for t in run.eval_traces] + [f"family:{f}" for f in run.eval_families]
    seeds = range(run.eval_seed_start, run.eval_seed_start + run.eval_seeds)
    jobs = [(spec, seed) for spec in specs for seed in seeds]
    if names is None and callable(getattr(policy, "act_batch", None)):
        # One forward per interval for all episodes: the same rows, bit for bit, in about 60 % of the time.
        make = lambda given, e: acting(given, e, wrap)  # noqa: E731
        return [res.summary for res in run_jobs_together(plan, jobs, policy, make)]
    rows = []
    needs = getattr(policy, "history_needs", dict)()  # what its history rows need (a learned policy's)
    for spec, seed in jobs:
        if names is None:
            rows.append(run_job(plan, spec, seed, lambda e, r: acting(policy, e, wrap), needs).summary)
        for name in names or []:
            make = lambda e, r, n=name: policy_registry.make_policy(n, e, r)  # noqa: E731
            rows.append(run_job(plan, spec, seed, make).summary)
    return rows


def acting(policy: Any, env: Any, wrap: Any = None) -> Any:
    """What acts for `policy` in `env`: the policy behind the rules it trained under, and
    ``wrap(...)`` of that when given."""
    from policies.base import EnvContext
    from policies.registry import trained_behind_rules

    inner = trained_behind_rules(policy, EnvContext.of(env))
    return wrap(inner, env) if wrap else inner


def validation_score(
    rows: list[dict[str, Any]], baselines: list[dict[str, Any]], policy: str, memory_price: float | None = None
) -> dict[str, Any]:
    """Mean over validation workloads of the scoreboard's risk-weighted gap closed in money (``risk_gap``
    in aware_ray.evaluation.scoreboard): the gap closed, and past the riskiest heuristic point a charge for the
    violations above it. Plain gap closed gave a policy riskier than every target 0, as good as
    a tuned HPA, so one that cut to the minimum at idle and violated a fifth of the time outscored
    safer policies on its busy workloads, then failed held-out sparse load."""
    from aware_ray.evaluation.scoreboard import DEFAULT_MEMORY_PRICE, goal_met, memory_met, scores

    price = DEFAULT_MEMORY_PRICE if memory_price is None else memory_price
    mine = [s for s in scores(baselines + rows, price) if s["policy"] == policy]
    # No figure counts as 0, no better than the tuned HPA: where the frontier is no dearer than
    # the oracle there is nothing to close.
    risk = {s["trace"]: float(s["risk_gap"] or 0.0) for s in mine}
    return {
        "score": float(np.mean(list(risk.values()))),
        "risk_gap": risk,
        "gap_closed": {s["trace"]: float(s["gap_closed"] or 0.0) for s in mine},
        # The quality goal's own test per workload (half the gap, or half the violations at the
        # same cost), reported beside the score: a policy that trades cost for far fewer
        # violations can meet it with a lower score.
        "goal_met": {s["trace"]: goal_met(s) for s in mine},
        "memory_met": {s["trace"]: memory_met(s) for s in mine},
        # On how many seeds the goal is met against that seed's own frontier: a workload met on
        # the mean of its seeds can be carried by one lucky seed (held-out traces met on the mean
        # on 0-1 of 3 seeds), which the count per workload cannot see.
        **(_seed_goals(baselines + rows, policy, price) if all("seed" in r for r in rows) else {}),
        "violations": {s["trace"]: float(s["slo_violation_rate"]) for s in mine},
        "violation_rate": float(np.mean([s["slo_violation_rate"] for s in mine])),
        "cpu_core_hours": float(np.mean([s["cpu_core_hours"] for s in mine])),
        "mem_gib_hours": float(np.mean([s["mem_gib_hours"] for s in mine])),
        "money": float(np.mean([s["money"] for s in mine])),
        "memory_price": price,
    }


def _seed_goals(rows: list[dict[str, Any]], policy: str, price: float) -> dict[str, Any]:
    """For `policy`, per workload: on how many seeds the goal is met (``seeds_goal_met``) and
    how many seeds were run (``seeds_run``)."""
    from aware_ray.evaluation.scoreboard import seed_goals

    per = seed_goals(rows, policy, price)
    return {
        "seeds_goal_met": {t: met for t, (met, _) in per.items()},
        "seeds_run": {t: n for t, (_, n) in per.items()},
    }


def validate(
    policy: Any,
    cfg: TrainConfig,
    baselines: list[dict[str, Any]],
    wrap: Any = None,
    time_compression: float = EVAL_TIME_COMPRESSION,
) -> dict[str, Any]:
    """One validation pass: the score on the run's validation workloads and, with a meta-learner,
    the embedding probe's accuracy. Training and ``aware-ray reselect`` both judge by it; ``wrap``
    as in ``validation_rows`` (the probe reads the policy's own embedding). Baselines that do not
    compare with the rows (``stale_baselines``) are refused with the reason."""
    from aware_ray.evaluation.probe import probe_accuracy

    reason = stale_baselines(baselines, cfg, time_compression)
    if reason:
        raise ConfigError(
            f"validation baselines {reason}: score them again with `aware-ray validation-set` "
            "(or `aware-ray rank`, which does so itself)"
        )
    rows = validation_rows(policy, cfg, wrap=wrap, time_compression=time_compression)
    val = validation_score(rows, baselines, rows[0]["policy"] if rows else policy.name, cfg.env.memory_price)
    val["time_compression"] = time_compression
    if cfg.env.history_window:
        val["probe_accuracy"] = probe_accuracy(policy, {**eval_env_config(cfg), "noise": cfg.env.noise})
    return val
