"""Validation: how training, ``reselect``, ``rank`` and ``validation-set`` score a policy.

It lives apart from the Tune driver so that scoring a policy needs no Ray Tune: the rows come
from the same rollout and scoreboard code as ``aware-ray evaluate``, on the run's validation
workloads (never the held-out ones).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aware_ray.training.config import TrainConfig
from policies.registry import FRONTIER_TARGETS

VALIDATION_BASELINES = (*(f"hpa@{t}" for t in FRONTIER_TARGETS), "oracle")


def eval_env_config(cfg: TrainConfig) -> dict[str, Any]:
    """The env validation runs in: the training env without its workloads, and without its rules,
    which belong to the policy (it acts behind them) and not to the baselines."""
    d = cfg.env.to_dict()
    d.pop("workloads", None)
    d.pop("rules", None)
    return d


def validation_rows(
    policy: Any, cfg: TrainConfig, names: list[str] | None = None, wrap: Any = None
) -> list[dict[str, Any]]:
    """Scoreboard rows of `policy` (or of named baselines) on the run's validation workloads;
    ``wrap(policy, env)``, when given, is what acts (the policy behind a controller's rule)."""
    from aware_ray.evaluation.evaluate import EvalPlan, run_job
    from policies import registry as policy_registry

    run = cfg.run
    env = eval_env_config(cfg)
    plan = EvalPlan(policies=[], app=env.pop("app"), env=env, max_hours=run.eval_hours, timeseries="none")
    specs = [f"trace:{t}" for t in run.eval_traces] + [f"family:{f}" for f in run.eval_families]
    rows = []
    for spec in specs:
        for seed in range(run.eval_seeds):
            if names is None:
                rows.append(run_job(plan, spec, seed, lambda e, r: acting(policy, e, wrap)).summary)
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


def validation_score(rows: list[dict[str, Any]], baselines: list[dict[str, Any]], policy: str) -> dict[str, Any]:
    """Mean over validation workloads of the scoreboard's risk-weighted gap closed (``risk_gap``
    in aware_ray.evaluation.scoreboard): the gap closed, and past the riskiest HPA target a charge for the
    violations above it. Plain gap closed gave a policy riskier than every target 0, as good as
    a tuned HPA, so one that cut to the minimum at idle and violated a fifth of the time outscored
    safer policies on its busy workloads, then failed held-out sparse load."""
    from aware_ray.evaluation.scoreboard import goal_met, scores

    mine = [s for s in scores(baselines + rows) if s["policy"] == policy]
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
        "violations": {s["trace"]: float(s["slo_violation_rate"]) for s in mine},
        "violation_rate": float(np.mean([s["slo_violation_rate"] for s in mine])),
        "cpu_core_hours": float(np.mean([s["cpu_core_hours"] for s in mine])),
    }


def validate(policy: Any, cfg: TrainConfig, baselines: list[dict[str, Any]], wrap: Any = None) -> dict[str, Any]:
    """One validation pass: the score on the run's validation workloads and, with a meta-learner,
    the embedding probe's accuracy. Training and ``aware-ray reselect`` both judge by it; ``wrap``
    as in ``validation_rows`` (the probe reads the policy's own embedding)."""
    from aware_ray.evaluation.probe import probe_accuracy

    rows = validation_rows(policy, cfg, wrap=wrap)
    val = validation_score(rows, baselines, rows[0]["policy"] if rows else policy.name)
    if cfg.env.history_window:
        val["probe_accuracy"] = probe_accuracy(policy, {**eval_env_config(cfg), "noise": cfg.env.noise})
    return val
