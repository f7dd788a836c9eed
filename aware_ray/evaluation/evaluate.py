"""``aware-ray evaluate``: every policy on the same arrivals, the scoreboard, tables and plots.

Each (workload, seed) fixes one arrival series (the trace window and the Poisson noise come
from the seed), and every policy replays exactly that series on a simulator seeded the same
way, so differences are the policies' own. Jobs run in parallel processes. Everything is
written into a temporary folder first and moved into place at the end, so a failed run
leaves nothing half-written.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from aware_ray.evaluation.rollout import (
    SUMMARY_FIELDS,
    TIMESERIES_FIELDS,
    EpisodeResult,
    EpisodeRun,
    one_inference_thread,
    run_episodes,
)
from aware_ray.evaluation.scoreboard import DEFAULT_MEMORY_PRICE, scores
from envs.app import load_app
from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from envs.trace import poisson_noise
from envs.workload import TraceWorkload, Workload, make_workload
from policies import registry as policy_registry
from policies.base import Policy


@dataclass
class EvalPlan:
    """What to evaluate."""

    policies: list[str]
    """Policy names (``heuristic-frontier`` and ``hpa-frontier`` already expanded)."""
    app: str = "social-network"
    """App name or YAML path."""
    traces: list[str] = field(default_factory=list)
    """Trace files (a shipped name or a path, ``file.csv#column`` for one column)."""
    families: list[str] = field(default_factory=list)
    """Synthetic families."""
    max_hours: float = 6.0
    """Longest simulated time per episode; a longer trace is cut to a window drawn per seed."""
    seeds: int = 3
    """Seeds per workload (0 .. seeds-1)."""
    env: dict[str, Any] = field(default_factory=dict)
    """Extra EnvConfig keys (noise, peak_rps, interval_s, ...)."""
    timeseries: str = "first-seed"
    """Which episodes write per-step rows: 'first-seed', 'all' or 'none'."""
    workers: int = 0
    """Parallel processes (0: one per core)."""
    time_compression: float = 1.0
    """Seconds of trace replayed per simulated second: 1 is real time, as a cluster sees its load.
    Training may compress time as an augmentation; the scoreboard does not."""
    memory_price: float = DEFAULT_MEMORY_PRICE
    """Cores per GiB: money = CPU core-hours + memory GiB-hours x this."""


def workload_specs(plan: EvalPlan) -> list[str]:
    return [f"trace:{t}" for t in plan.traces] + [f"family:{f}" for f in plan.families]


def validate(plan: EvalPlan) -> list[Workload]:
    """Check everything before any work: raises ConfigError/TraceError naming what is wrong."""
    plan.policies = policy_registry.expand(plan.policies)
    if not plan.traces and not plan.families:
        raise ConfigError("evaluate: give at least one --trace or --family")
    if plan.seeds < 1:
        raise ConfigError(f"--seeds: must be >= 1, got {plan.seeds}")
    if not plan.max_hours > 0:
        raise ConfigError(f"--max-hours: must be > 0, got {plan.max_hours}")
    if not (math.isfinite(plan.time_compression) and plan.time_compression > 0):
        raise ConfigError(f"--time-compression: must be a number > 0, got {plan.time_compression}")
    if not (math.isfinite(plan.memory_price) and plan.memory_price >= 0):
        raise ConfigError(f"--memory-price: must be a number >= 0 (cores per GiB), got {plan.memory_price}")
    for key, value in policy_registry.env_overrides(plan.policies).items():
        if key in plan.env and plan.env[key] != value:
            raise ConfigError(f"env {key}={plan.env[key]} conflicts with the learned policy's {key}={value}")
        plan.env[key] = value
    if plan.timeseries not in ("first-seed", "all", "none"):
        raise ConfigError(f"--timeseries: expected first-seed, all or none, got {plan.timeseries!r}")
    env = _env(plan, "in-place")
    return [make_workload(s, env.peak_rps, env.config.time_compression) for s in workload_specs(plan)]


def _env(plan: EvalPlan, vertical_mode: str, needs: dict[str, Any] | None = None) -> AutoscaleEnv:
    """The env of one episode; `needs`: what the acting policy's history needs (``history_needs``)."""
    load_app(plan.app)
    cfg = {"app": plan.app, "time_compression": plan.time_compression, **plan.env, **(needs or {})}
    return AutoscaleEnv({**cfg, "vertical_mode": vertical_mode})


def episode_rates(workload: Workload, seed: int, env: AutoscaleEnv, max_hours: float) -> np.ndarray:
    """The arrival series of one (workload, seed): the same for every policy."""
    interval = env.config.interval_s
    n_max = max(1, int(max_hours * 3600 / interval))
    rng = np.random.default_rng([seed, zlib.crc32(workload.name.encode())])
    if isinstance(workload, TraceWorkload):
        n = min(n_max, workload.full_length(interval))
    else:
        n = n_max
    rates = workload.rates(n, interval, rng)
    if isinstance(workload, TraceWorkload) and rates.max() > 0:
        # Scale each window to the target peak: a window cut from a quiet stretch of a long
        # trace would otherwise leave every policy idling at its minimum.
        rates = rates * (env.peak_rps / rates.max())
    if env.config.arrival_noise:
        rates = poisson_noise(rates, interval, rng)
    return rates


def run_job(
    plan: EvalPlan,
    spec: str,
    seed: int,
    make: Callable[[AutoscaleEnv, np.ndarray], Policy],
    needs: dict[str, Any] | None = None,
) -> EpisodeResult:
    """One episode of one (workload, seed) under the policy `make(env, rates)` builds, in an env
    with the settings its history `needs` (``policies.registry.history_needs``)."""
    return run_episodes([_episode_run(plan, spec, seed, make, needs)])[0]


def run_jobs_together(
    plan: EvalPlan, jobs: list[tuple[str, int]], policy: Any, make: Callable[..., Policy]
) -> list[EpisodeResult]:
    """``run_job`` of each (workload, seed) for one learned `policy`, the episodes stepped side by
    side with one batched forward (its ``act_batch``) per interval (``rollout.run_episodes``);
    ``make(given, env)`` is what acts around each episode's row of it (a ``GivenAction`` standing in
    for `policy`)."""
    from policies.given_action import GivenAction
    from policies.smoothed_input import input_window

    runs = []
    needs = policy.history_needs()
    for spec, seed in jobs:
        given = GivenAction.standing_in_for(policy)
        runs.append(_episode_run(plan, spec, seed, lambda env, rates, g=given: make(g, env), needs))
        runs[-1].given = given
        runs[-1].window = input_window(runs[-1].policy)
    return run_episodes(runs, policy.act_batch)


def _episode_run(
    plan: EvalPlan,
    spec: str,
    seed: int,
    make: Callable[[AutoscaleEnv, np.ndarray], Policy],
    needs: dict[str, Any] | None = None,
) -> EpisodeRun:
    probe = _env(plan, "in-place", needs)
    workload = make_workload(spec, probe.peak_rps, probe.config.time_compression)
    rates = episode_rates(workload, seed, probe, plan.max_hours)
    policy = make(probe, rates)
    env = probe if policy.vertical_mode == "in-place" else _env(plan, policy.vertical_mode, needs)
    record = plan.timeseries == "all" or (plan.timeseries == "first-seed" and seed == 0)
    return EpisodeRun(policy, env, rates, seed, workload.name, workload.family, record)


def _job(plan: EvalPlan, policy_name: str, needs: dict[str, Any], spec: str, seed: int) -> EpisodeResult:
    """One episode of `policy_name` in an env with the settings its history `needs`."""
    make = lambda env, rates: policy_registry.make_policy(policy_name, env, rates)  # noqa: E731
    return run_job(plan, spec, seed, make, needs)


def run(plan: EvalPlan, out: Path, progress: bool = True) -> dict[str, Any]:
    """Evaluate and write DIR/summary.json, summary.csv, timeseries.csv, plots and report.md."""
    workloads = validate(plan)
    specs = workload_specs(plan)
    one_inference_thread()
    jobs = [(p, s, seed) for s in specs for seed in range(plan.seeds) for p in plan.policies]
    needs = {p: policy_registry.history_needs(p) for p in plan.policies}  # read once per policy, not per job
    workers = plan.workers or os.cpu_count() or 1
    results: list[EpisodeResult] = []
    started = time.time()
    bar = tqdm(total=len(jobs), disable=not progress, unit="episode", file=sys.stderr, dynamic_ncols=True)
    if workers <= 1:
        for job in jobs:
            results.append(_job(plan, job[0], needs[job[0]], *job[1:]))
            _tick(bar, job)
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), initializer=one_inference_thread) as pool:
            futures = {pool.submit(_job, plan, job[0], needs[job[0]], *job[1:]): job for job in jobs}
            for fut in as_completed(futures):
                results.append(fut.result())
                _tick(bar, futures[fut])
    bar.close()
    order = {j: i for i, j in enumerate((p, s, seed) for p, s, seed in jobs)}
    names = {w.name: spec for w, spec in zip(workloads, specs, strict=True)}
    results.sort(key=lambda r: order[(r.summary["policy"], names[r.summary["trace"]], r.summary["seed"])])
    rows = [r.summary for r in results]
    board = scores(rows, plan.memory_price)
    app = load_app(plan.app)
    summary = {
        "app": app.name,
        "slo_ms": app.slo_ms,
        "interval_s": float(plan.env.get("interval_s", 15.0)),
        "policies": plan.policies,
        "workloads": [w.name for w in workloads],
        "seeds": plan.seeds,
        "max_hours": plan.max_hours,
        "time_compression": plan.time_compression,
        "memory_price": plan.memory_price,
        "wall_s": round(time.time() - started, 2),
        "results": rows,
        "scores": board,
    }
    out = Path(out)
    tmp = Path(tempfile.mkdtemp(prefix=".eval-", dir=out.parent if out.parent.exists() else None))
    try:
        _write(tmp, summary, results)
        from aware_ray.evaluation.plots import plot_all

        plot_all(tmp, summary, results)
        (tmp / "report.md").write_text(report_markdown(summary))
        out.mkdir(parents=True, exist_ok=True)
        for f in tmp.iterdir():
            shutil.move(str(f), out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary


def _write(d: Path, summary: dict[str, Any], results: list[EpisodeResult]) -> None:
    (d / "summary.json").write_text(json.dumps(summary, indent=1, default=_json_default))
    with open(d / "summary.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=SUMMARY_FIELDS)
        w.writeheader()
        w.writerows(summary["results"])
    with open(d / "timeseries.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(TIMESERIES_FIELDS)
        for r in results:
            w.writerows(r.timeseries)


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def _fmt(x: float | None, spec: str) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def table(summary: dict[str, Any]) -> str:
    """The scoreboard as a fixed-width text table: money, and CPU and memory apart. Policy names are
    printed whole: rules in front of a policy (``mem@1.3:lean@0.1:...``) are what tells rows apart."""
    w = max([24, *(len(s["policy"]) for s in summary["scores"])])
    head = (
        f"{'workload':<50} {'policy':<{w}} {'viol%':>6} {'money':>8} {'core-h':>8} {'GiB-h':>8} {'util':>5} "
        f"{'actions':>8} {'gap':>6}"
    )
    lines = [head, "-" * len(head)]
    for s in summary["scores"]:
        lines.append(
            f"{s['trace'][-50:]:<50} {s['policy']:<{w}} {100 * s['slo_violation_rate']:>6.2f} "
            f"{s['money']:>8.2f} {s['cpu_core_hours']:>8.2f} {s['mem_gib_hours']:>8.2f} "
            f"{s['mean_cpu_utilization']:>5.2f} {s['scaling_actions']:>8.0f} {_fmt(s['gap_closed'], '>6.2f')}"
        )
    return "\n".join(lines)


def _price_text(price: float) -> str:
    return "1/9" if abs(price - 1 / 9) < 1e-9 else f"{price:g}"


def report_markdown(summary: dict[str, Any]) -> str:
    """A short report: setup, the scoreboard table, the plots."""
    rows = [
        "| workload | policy | SLO violations | money | CPU core-h | memory GiB-h | CPU util | scaling actions "
        "| gap closed | gap closed vs HPA |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summary["scores"]:
        rows.append(
            f"| {s['trace']} | {s['policy']} | {100 * s['slo_violation_rate']:.2f} % | {s['money']:.2f} | "
            f"{s['cpu_core_hours']:.2f} | {s['mem_gib_hours']:.2f} | {s['mean_cpu_utilization']:.2f} | "
            f"{s['scaling_actions']:.0f} | {_fmt(s['gap_closed'], '.2f')} | {_fmt(s.get('gap_closed_hpa'), '.2f')} |"
        )
    plots = "\n".join(f"![{p}]({p})" for p in summary.get("plots", []))
    price = _price_text(summary.get("memory_price", DEFAULT_MEMORY_PRICE))
    return (
        f"# Evaluation: {summary['app']}\n\n"
        f"Policies: {', '.join(summary['policies'])}. Seeds: {summary['seeds']}. "
        f"At most {summary['max_hours']} simulated hours per episode, traces replayed at time compression "
        f"{summary.get('time_compression', 1.0):g} (1: real time). Means over seeds.\n\n"
        f"Money = CPU core-hours + memory GiB-hours × {price} (cores per GiB).\n\n"
        "Gap closed = (H(v) − c) / (H(v) − O): H(v) is the heuristic frontier's money at the policy's "
        "violation rate v (the lower-left envelope of the HPA, the HPA with an in-place VPA and the predictive "
        "HPA, each at targets 0.2–0.9), c the policy's money, O the oracle's. 1 matches the oracle; 0 is no "
        "better than the best heuristic; blank where the policy is riskier than every heuristic point (nothing "
        "to compare with). Where it is safer than every point, the safest point's money is used (a lower "
        "bound). The last column is the same against the HPA's frontier alone.\n\n"
        + "\n".join(rows)
        + "\n\n"
        + plots
        + "\n"
    )


def _tick(bar: tqdm, job: tuple[str, str, int]) -> None:
    """One finished (policy, workload, seed) episode on the progress bar."""
    policy, spec, seed = job
    bar.set_postfix_str(f"{policy} {spec.split(':', 1)[1][:30]} seed {seed}", refresh=False)
    bar.update()
