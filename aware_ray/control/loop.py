"""``aware-ray control``: the live loop over every configured app, one interval at a time.

Per interval the loop asks the endpoint once for all apps whose metrics are fresh (one batched POST,
bounded by the timeout), lets each ``AppController`` decide and apply, writes each app's experience
record, appends the report row, and waits for the next interval (on the simulator: ``speed`` times
real time, or not at all with ``max``; a live backend waits in its own ``advance``).

The report folder gets ``intervals.jsonl`` (one line per app and interval, written as it runs) and
``summary.json`` (totals per app as ``evaluate`` computes them, hand-overs by reason, who acted, the
experience writer's counters and the endpoint's latency), written atomically at the end.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from aware_ray.control.app_controller import AppController
from aware_ray.control.client import EndpointClient, EndpointError
from aware_ray.control.config import AppConfig, ControlConfig
from aware_ray.control.experience import ExperienceSink, experience_record
from envs.atomic_write import write_json
from envs.autoscale_env import AutoscaleEnv
from envs.config import layout_needs, policy_needs
from envs.errors import ConfigError
from envs.rules import parse_rules
from policies import registry
from policies.bootstrap.config import BootstrapConfig

log = logging.getLogger("aware_ray.control")


def policy_facts(spec: str) -> tuple[dict[str, Any], tuple, str]:
    """(env overrides, trained rules, version hint) of a spec, read from its ``policy.json`` (no weights)."""
    names = registry.expand([spec])
    inner, _ = registry.wrap_chain(names[0])
    if registry.has_fallback(names[0]):
        raise ConfigError(f"policy '{spec}': the controller runs the bootstrap itself; use its bootstrap: section")
    if not inner.startswith("ddpg:"):
        return {}, (), f"heuristic:{inner}"
    js = registry.ddpg_path(inner) / "policy.json"
    try:
        meta = json.loads(js.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{js}: cannot read ({str(exc).splitlines()[0]})") from None
    env = meta.get("env", {})
    return {**layout_needs(env), **policy_needs(env)}, parse_rules(str(env.get("rules", "")), f"{js}: env.rules"), ""


class Controller:
    """All apps of one controller process (see the module docstring)."""

    def __init__(self, cfg: ControlConfig, backends: dict[str, Any] | None = None):
        self.cfg = cfg
        overrides, rules, _ = policy_facts(cfg.policy)
        # A simulated app replays its trace at real time, as evaluate does (env: may say otherwise).
        self.env_config = {"time_compression": 1.0, **cfg.env, **overrides}
        self.bootstrap = BootstrapConfig.from_dict(cfg.bootstrap) if cfg.bootstrap is not None else None
        self.apps: list[AppController] = []
        self.lengths: dict[str, int] = {}
        for a in cfg.apps:
            acts = cfg.mode == "active" or (cfg.mode == "canary" and a.name in cfg.canary)
            backend = (backends or {}).get(a.name)
            env = AutoscaleEnv({**self.env_config, "app": a.app, "vertical_mode": "in-place"}, backend=backend)
            ctl = AppController(a.name, env, registry.expand([cfg.policy])[0], rules, acts, self.bootstrap)
            rates, workload = sim_series(a, env) if backend is None else (None, "live")
            ctl.start(seed=a.seed, rates=rates, workload=workload)
            self.lengths[a.name] = len(rates) if rates is not None else 0
            self.apps.append(ctl)
        self.client = EndpointClient(cfg.endpoint, cfg.timeout_ms / 1000.0, self.apps[0].ctx.layout.max_services * 3)
        self.sink = ExperienceSink(
            cfg.experience.redis, cfg.experience.maxlen, cfg.experience.buffer, cfg.experience.file
        )
        self.totals = {c.name: _Totals() for c in self.apps}
        self.endpoint_ms: list[float] = []
        self.overhead_ms: list[float] = []
        self.failures: dict[str, int] = {}
        self._last_failure: str | None = None

    def run(self, out: str | Path | None = None) -> dict[str, Any]:
        """Run until every simulated series ends (or ``intervals``); returns (and writes) the summary."""
        out = Path(out or self.cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        live_only = not any(self.lengths.values())
        n = self.cfg.intervals or max(self.lengths.values() or [0])
        if n == 0 and not live_only:
            raise ConfigError("control: intervals: give a number of intervals for a live backend")
        # A live backend waits for the next interval on the wall clock itself (``advance``); without
        # ``intervals`` it runs until the process is stopped, as a Deployment does.
        speed_period = self.apps[0].env.config.interval_s / float(self.cfg.speed) if self.cfg.speed != "max" else None
        period = None if live_only else speed_period
        started = time.time()
        with open(out / "intervals.jsonl", "w") as rows:
            for _ in range(n) if n else itertools.count():
                t0 = time.perf_counter()
                live = [c for c in self.apps if not self.lengths[c.name] or c.steps < self.lengths[c.name]]
                if not live:
                    break
                endpoint_s, _ = self._interval(live, rows)
                spent = time.perf_counter() - t0
                self.overhead_ms.append((spent - endpoint_s) * 1000.0)
                if period is not None and spent < period:
                    time.sleep(period - spent)
        self.sink.close()
        summary = self.summary(time.time() - started)
        write_json(out / "summary.json", summary)
        return summary

    def step(self, rows: Any = None) -> list[Any]:
        """Run one interval of every app still running; returns their ``IntervalResult``s."""
        live = [c for c in self.apps if not self.lengths[c.name] or c.steps < self.lengths[c.name]]
        return self._interval(live, rows)[1] if live else []

    def _interval(self, live: list[AppController], rows: Any) -> tuple[float, list[Any]]:
        asking = [c for c in live if not c.stale]
        answers: dict[str, Any] = {}
        failure = None
        t0 = time.perf_counter()
        if asking:
            try:
                got = self.client.act([c.env.app.name for c in asking], [c.query_observation() for c in asking])
                answers = {c.name: a for c, a in zip(asking, got, strict=True)}
            except EndpointError as exc:
                failure = exc.reason
                self.failures[exc.reason] = self.failures.get(exc.reason, 0) + 1
                if exc.reason != self._last_failure:  # once per outage, not once per interval
                    log.warning("endpoint: %s", exc)
        self._last_failure = failure
        endpoint_s = time.perf_counter() - t0
        self.endpoint_ms.append(endpoint_s * 1000.0)
        results = []
        for c in live:
            r = c.interval(answers.get(c.name), failure)
            self.sink.write(experience_record(r, self.cfg.policy, self.cfg.mode))
            self.totals[c.name].add(r)
            if rows is not None:
                rows.write(json.dumps(_row(r), separators=(",", ":")) + "\n")
            results.append(r)
        return endpoint_s, results

    def summary(self, wall_s: float) -> dict[str, Any]:
        apps = {}
        for c in self.apps:
            t = self.totals[c.name]
            apps[c.name] = {
                "app": c.env.app.name,
                **t.summary(),
                "sources": dict(c.sources),
                "handovers": dict(c.handovers),
                "bootstrap_fallbacks": c.arbiter.fallbacks if self.bootstrap is not None else 0,
            }
        ms = np.asarray(self.endpoint_ms or [0.0])
        return {
            "policy": self.cfg.policy,
            "mode": self.cfg.mode,
            "endpoint": self.cfg.endpoint,
            "wall_s": round(wall_s, 3),
            "apps": apps,
            "endpoint_failures": self.failures,
            "endpoint_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))},
            "overhead_ms_per_interval": float(np.mean(self.overhead_ms or [0.0])),
            "experience": self.sink.stats(),
        }


def sim_series(a: AppConfig, env: AutoscaleEnv) -> tuple[np.ndarray, str]:
    """The arrival series ``evaluate`` replays for this app's trace (or family), seed and max hours."""
    from aware_ray.evaluation.evaluate import episode_rates
    from envs.workload import make_workload

    spec = f"trace:{a.trace}" if a.trace else f"family:{a.family}"
    workload = make_workload(spec, env.peak_rps, env.config.time_compression)
    return episode_rates(workload, a.seed, env, a.max_hours), workload.name


class _Totals:
    """Scoreboard totals of one app, as ``rollout.run_episode`` adds them up."""

    def __init__(self) -> None:
        self.steps = 0
        self.violated = self.dropped = self.core_h = self.mem_h = self.reward = 0.0
        self.actions = self.clamps = 0

    def add(self, r: Any) -> None:
        sb = r.scoreboard
        if sb is None:
            return
        self.steps += 1
        self.violated += sb["violated"]
        self.dropped += sb["dropped"]
        self.core_h += sb["cpu_core_hours"]
        self.mem_h += sb["mem_gib_hours"]
        self.reward += r.reward
        self.actions += sb["scaling_actions"]
        self.clamps += sb["guard_clamps"]

    def summary(self) -> dict[str, Any]:
        n = max(self.steps, 1)
        return {
            "steps": self.steps,
            "slo_violation_rate": self.violated / n,
            "dropped_requests": self.dropped,
            "cpu_core_hours": self.core_h,
            "mem_gib_hours": self.mem_h,
            "scaling_actions": self.actions,
            "guard_clamps": self.clamps,
            "reward": self.reward,
        }


def _row(r: Any) -> dict[str, Any]:
    def lists(d: Any) -> dict[str, list[float]] | None:
        if d is None:
            return None
        return {"replicas": d.replicas.tolist(), "cpu_limit": d.cpu_limit.tolist(), "mem_limit": d.mem_limit.tolist()}

    return {
        "app": r.app,
        "interval": r.interval,
        "source": r.source,
        "reasons": r.reasons,
        "policy_version": r.policy_version,
        "decision": lists(r.decision),
        "running": lists(r.running),
        "scoreboard": r.scoreboard,
        "guard_reasons": r.guard_reasons,
    }
