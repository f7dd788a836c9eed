"""AutoscaleEnv: horizontal and vertical autoscaling of one microservice app, as a gymnasium env."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from envs.action import ACTION_DIMS, clean_actions, decode
from envs.app import AppSpec, load_app
from envs.backend import Backend
from envs.config import EnvConfig
from envs.guard import GuardResult, guard
from envs.interval_scores import IntervalScores, score_intervals
from envs.load_context import partly_idle
from envs.metrics import ScalingDecision, ServiceMetrics
from envs.metrics_batch import MetricsBatch
from envs.observation import ObservationLayout
from envs.observation_builder import ObservationBuilder
from envs.rules import RuleChain, parse_rules
from envs.sim_backend import SimBackend
from envs.workload import TimeScaled, Workload, episode_rates, make_workload


@dataclass
class StepRecord:
    """The scoreboard's raw metrics of one interval (also returned in ``info``)."""

    t_seconds: float
    external_rps: float
    e2e_p99_ms: float
    violated: bool
    dropped: float
    cpu_core_hours: float
    mem_gib_hours: float
    cpu_utilization: float
    scaling_actions: int
    guard_clamps: int
    reward: float
    reserved_cores: float = 0.0
    """CPU reserved at the end of the interval (replicas x CPU limit), cores."""
    reserved_gib: float = 0.0
    """Memory reserved at the end of the interval (replicas x memory limit), GiB."""


class AutoscaleEnv(gym.Env):
    """Scale every service of a microservice app horizontally and vertically.

    ## Description
    One env is one app (1..N services with a call graph) on a node pool, driven by a workload
    (a real trace or a synthetic family, one drawn per episode). Each step is one control
    interval (15 s by default): the agent sets, per service, replicas, CPU limit and memory
    limit; the decision passes the guard (bounds, rate limits, memory floor, node capacity);
    the backend (the built-in simulator, or a Kubernetes cluster) runs the interval.

    ## Action Space
    ``Box(-1, 1, (max_services * 3,), float32)``: per service (replicas, CPU limit, memory
    limit), each relative to the current setting (see ``envs.action``): +1 adds the most pods
    the guard allows in one interval, -1 removes the most; for limits +/-1 multiplies or divides
    by ``guard.max_limit_factor``. Rows of padding services are ignored.

    ## Observation Space
    ``Box(-10, 10, (max_services * 20 + 7 + history_window * 13 + context,), float32)``: per
    service (padded, with a mask)
    ``cpu_util`` (CPU used / ready x limit), ``mem_util``, ``replicas``, ``ready`` and ``pending``
    (over max replicas), ``cpu_limit`` and ``mem_limit`` (over their maxima), ``load`` (arrival
    rate over the capacity of the desired replicas), ``log_rate``, ``queue``, ``latency``
    (service p99 / SLO), ``drops``, ``throttled``, the last action (3), and static traits
    ``cpu_cost``, ``startup``, ``visits``, ``mask``; then app features ``e2e_latency``,
    ``e2e_drops``, ``log_external``, ``external_trend``, ``node_cpu``, ``node_mem``,
    ``n_services``; then, with ``history_window`` W > 0, the last W intervals (oldest first), each
    the app features, mean CPU utilisation and load, the mean action and the reward: the
    meta-learner's view of the workload; then, with ``context_span`` > 0, the long load context
    (``envs.load_context``: 9 shape statistics and ``context_buckets`` coarse means of the log
    external rate over the last ``context_span`` intervals). ``envs.observation`` gives each
    normalisation.

    ## Rewards
    ``slo * SLO preservation + utilization * CPU utilisation - violation * [violated]
    - flapping * changed services / services - cost * reserved CPU / node cores``
    (``envs.reward``; weights in the config).
    An interval violates the SLO when the end-to-end p99 exceeds it or a request was dropped.

    ## Starting State
    The app's initial replicas (all ready) and limits, empty queues; the workload window and
    the arrival noise are drawn from the env's seed.

    ## Episode End
    Never terminates (autoscaling is a continuing task); truncates after ``episode_steps``.

    ## Arguments
    ``config``: an ``EnvConfig`` or a mapping of its keys (as RLlib's ``env_config``);
    ``backend``: an optional Backend to use instead of the simulator.
    ``reset(options={"rates": array, "workload": name})`` replays an explicit rate series
    (its length sets the episode length); ``options={"workload": spec}`` picks the workload.
    With ``level_prob`` > 0, episodes drawn from ``workloads`` are scaled down at random
    (``level_factor``), with ``idle_prob`` > 0 some get stretches of no load (``idle_gate``), and
    with ``jitter_prob`` > 0 some get interval-to-interval noise (``jitter``);
    explicit workloads and series never are, so evaluation is not.
    ``info["workload_id"]`` is the index in ``workloads`` of the episode's workload when drawn
    from them (-1 otherwise, and -1 while the load context is partly idle, ``partly_idle``):
    the label of the meta-learner's workload-identification loss.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, config: EnvConfig | dict[str, Any] | None = None, backend: Backend | None = None):
        super().__init__()
        self.config = config if isinstance(config, EnvConfig) else EnvConfig.from_dict(dict(config or {}))
        cfg = self.config
        self.app: AppSpec = load_app(cfg.app)
        if self.app.n_services > cfg.max_services:
            from envs.errors import ConfigError

            raise ConfigError(
                f"max_services: app {self.app.name!r} has {self.app.n_services} services, above {cfg.max_services}"
            )
        self.layout = ObservationLayout(cfg.max_services, cfg.history_window, cfg.context_span, cfg.context_buckets)
        self.peak_rps = cfg.peak_rps or self.app.default_peak_rps
        self.sim_config = cfg.sim_config()
        self.backend: Backend = backend or SimBackend(self.app, self.sim_config)
        self.set_workloads(cfg.workloads)
        self.episode_time_compression = cfg.time_compression
        n = cfg.max_services
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n * ACTION_DIMS,), np.float32)
        self.observation_space = gym.spaces.Box(-10.0, 10.0, (self.layout.size,), np.float32)
        self.rates = np.zeros(cfg.episode_steps)
        self.workload_name = ""
        self.workload_family = ""
        self.workload_id = -1
        self.builder = ObservationBuilder(self.app, self.layout, cfg.interval_s)
        self.metrics: ServiceMetrics | None = None
        self.decision: ScalingDecision | None = None
        self.last_guard: GuardResult | None = None
        self.rule_chain = RuleChain(parse_rules(cfg.rules), cfg.interval_s) if cfg.rules else None
        self.steps = 0
        self.episode_steps = cfg.episode_steps

    def set_workloads(self, specs: Sequence[str]) -> None:
        """The workloads episodes are drawn from (``config.workloads`` at first); an episode
        already running finishes as it is."""
        cfg = self.config
        self.time_scaled = TimeScaled.of(specs, self.peak_rps, cfg.time_compression, cfg.time_compression_choices)

    @property
    def workloads(self) -> list[Workload]:
        """The workloads episodes are drawn from (``set_workloads``)."""
        return self.time_scaled.workloads

    # ------------------------------------------------------------------------------ gym API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        rng = self.np_random
        self.workload_id = -1
        self.episode_time_compression = self.config.time_compression
        if "rates" in options:
            rates = _checked_rates(options["rates"])
            self.workload_name = str(options.get("workload", "explicit"))
            self.workload_family = str(options.get("family", "trace"))
            self.episode_steps = len(rates)
        else:
            if "workload" in options:
                spec = options["workload"]
                wl = (
                    spec
                    if not isinstance(spec, str)
                    else make_workload(spec, self.peak_rps, self.config.time_compression)
                )
            else:
                self.workload_id = int(rng.integers(len(self.workloads)))
                wl, drawn_compression = self.time_scaled.draw(self.workload_id, rng)
                if drawn_compression is not None:
                    self.episode_time_compression = drawn_compression
            self.episode_steps = int(options.get("episode_steps", self.config.episode_steps))
            drawn = self.workload_id >= 0
            level = (self.config.level_prob, self.config.level_min) if drawn else None
            idle = self.config.idle_prob if drawn else 0.0
            spread = (self.config.jitter_prob, self.config.jitter_sigma) if drawn else None
            rates = episode_rates(
                wl, self.episode_steps, self.config.interval_s, rng, level, self.config.arrival_noise, idle, spread
            )
            self.workload_name, self.workload_family = wl.name, wl.family
        self.rates = rates
        if isinstance(self.backend, SimBackend):
            self.backend.reset(rates, seed=int(rng.integers(2**63 - 1)))
        self.metrics = self.backend.observe()
        self.decision = ScalingDecision.of(self.metrics)
        self.steps = 0
        if self.rule_chain is not None:
            self.rule_chain.reset()
        obs = self.builder.reset(self.metrics)
        return obs, {"workload": self.workload_name, "family": self.workload_family, "workload_id": self.workload_id}

    def step(self, action: np.ndarray):
        pending = self.decide(action)
        self.backend.advance(self.config.interval_s)
        return self.conclude(*pending)

    def decide(self, action: np.ndarray) -> tuple[np.ndarray, GuardResult, float]:
        """First half of ``step``: rules, decoding and guard; the decision goes to the backend.

        ``step`` is ``decide``, the backend's interval, then ``conclude``; a vector env runs
        ``decide`` on each of its envs, one batched interval of the simulator, then ``conclude``.
        """
        assert self.metrics is not None and self.decision is not None, "call reset() first"
        n = self.app.n_services
        a = clean_actions(np.asarray(action).reshape(self.config.max_services, ACTION_DIMS))
        overridden = 0.0
        if self.rule_chain is not None:
            ask = a[:n].copy()
            a[:n] = self.rule_chain.effective_action(
                a[:n], self.decision, self.builder.services, self.config.guard, self.builder.e2e_latency
            )
            overridden = float(np.abs(ask - a[:n]).sum(axis=1).mean())
        want = decode(a[:n], self.decision, self.config.guard)
        result = guard(want, self.decision, self.metrics.mem_usage, self.app, self.config.guard)
        self.backend.apply(result.decision)
        return a, result, overridden

    def conclude(self, a: np.ndarray, result: GuardResult, overridden: float):
        """Second half of ``step``, after the interval ran: observe, score, return the five-tuple."""
        assert self.metrics is not None and self.decision is not None, "call reset() first"
        self.metrics = self.backend.observe()
        # What the backend actually runs: a backend may not apply all of a decision (limits a
        # Recreate-mode updater may not change yet), and the next action is relative to it.
        applied = ScalingDecision.of(self.metrics)
        changed = int(
            (
                (applied.replicas != self.decision.replicas)
                | (applied.cpu_limit != self.decision.cpu_limit)
                | (applied.mem_limit != self.decision.mem_limit)
            ).sum()
        )
        self.decision = applied
        self.last_guard = result
        self.steps += 1
        scores = self._scores(changed, overridden)
        record = step_record(scores, 0, self.metrics.t_seconds, changed, result.clamped)
        obs = self.builder.step(self.metrics, a, float(scores.history_reward[0]))
        truncated = self.steps >= self.episode_steps
        info = {"scoreboard": record, "guard_reasons": result.counts(), "workload_id": self._label()}
        return obs, record.reward, False, truncated, info

    def resume(self, metrics: ServiceMetrics) -> np.ndarray:
        """Take fresh `metrics` as the current state after intervals whose metrics were stale.

        A live controller's backend may fail to report an interval (``observe`` raising); what ran
        meanwhile is unknown, so the next observation starts from what runs now, as if the stale
        intervals had held (zero action, zero reward in the history).
        """
        self.metrics = metrics
        self.decision = ScalingDecision.of(metrics)
        self.steps += 1
        return self.builder.step(metrics, np.zeros_like(self.builder.last_action), 0.0)

    # ------------------------------------------------------------------------------ helpers

    @property
    def last_action(self) -> np.ndarray:
        """The action applied in the last interval (after the rules), (max_services, 3)."""
        return self.builder.last_action

    @property
    def history(self) -> np.ndarray:
        """The history window, (history_window, N_HISTORY_FEATURES), oldest first."""
        return self.builder.history

    @property
    def load_log(self) -> list[float]:
        """log1p of the external rate of the intervals run so far (at most context_span)."""
        return self.builder.load_log

    def _label(self) -> int:
        """The workload label of the current observation: none while its load context is mostly
        idle, since that context no longer shows the workload."""
        if self.config.context_span and partly_idle(self.builder.load_log, self.config.context_span):
            return -1
        return self.workload_id

    def _scores(self, changed: int, overridden: float = 0.0) -> IntervalScores:
        """Scores of the interval: ground truth from the simulator, else the observed metrics."""
        assert self.metrics is not None and self.decision is not None
        truth = getattr(self.backend, "truth", None)
        return interval_scores(self.metrics, truth, self.decision, self.app, self.config, changed, overridden)


def interval_scores(
    m: ServiceMetrics,
    truth: Any,
    decision: ScalingDecision,
    app: AppSpec,
    config: EnvConfig,
    changed: int,
    overridden: float = 0.0,
) -> IntervalScores:
    """Scoreboard figures and rewards of one interval that ended with metrics `m` under `decision`.

    ``truth``: the simulator's ground truth of the interval (``StepTruth``, a batch of one), or
    None on a cluster, where the observed metrics stand in for it. The env, the endpoint
    (``/v1/decide`` rebuilds the history's rewards) and the controller all score intervals with
    this one function; it is ``score_intervals`` (which the vector env runs for all its clusters)
    over a batch of one, the reward the history rows record (``EnvConfig.history_weights``) included.
    """
    return score_intervals(
        MetricsBatch.of(m) if truth is None else None,
        truth,
        np.asarray(decision.replicas)[None],
        np.asarray(decision.cpu_limit)[None],
        np.asarray(decision.mem_limit)[None],
        app,
        config.interval_s,
        config.reward,
        np.array([changed]),
        np.array([overridden]),
        config.history_weights,
    )


def step_record(scores: IntervalScores, b: int, t_seconds: float, changed: int, guard_clamps: int) -> StepRecord:
    """Row `b` of a batch's scores as a ``StepRecord``."""
    return StepRecord(
        t_seconds=float(t_seconds),
        external_rps=float(scores.external_rps[b]),
        e2e_p99_ms=float(scores.e2e_p99_ms[b]),
        violated=bool(scores.violated[b]),
        dropped=float(scores.dropped[b]),
        cpu_core_hours=float(scores.cpu_core_hours[b]),
        mem_gib_hours=float(scores.mem_gib_hours[b]),
        cpu_utilization=float(scores.cpu_utilization[b]),
        scaling_actions=int(changed),
        guard_clamps=int(guard_clamps),
        reward=float(scores.reward[b]),
        reserved_cores=float(scores.reserved_cores[b]),
        reserved_gib=float(scores.reserved_gib[b]),
    )


def _checked_rates(value: Any) -> np.ndarray:
    """Explicit rates from reset options: a non-empty 1-D series of finite rates >= 0."""
    from envs.errors import ConfigError

    try:
        rates = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError("reset options 'rates': not a sequence of numbers") from None
    if rates.ndim != 1 or rates.size == 0:
        raise ConfigError(f"reset options 'rates': need a non-empty 1-D series, got shape {rates.shape}")
    bad = ~np.isfinite(rates) | (rates < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConfigError(f"reset options 'rates': step {i} is {rates[i]!r}; rates must be finite and >= 0")
    return rates
