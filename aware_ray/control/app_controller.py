"""One app under control: its env over a Backend, its rules' state, its heuristic and its counters.

Each interval (a reconcile pass, level-triggered: it reads what runs and moves it toward what is
wanted, so a missed pass does no harm):
1. The observation is the one ``ObservationBuilder`` built from the last metrics (the env holds it).
2. The endpoint's raw action for it (fetched for all apps at once by the loop; with ``smooth@S`` in
   the spec, for the observation averaged over this app's window, which only the controller keeps)
   goes through the spec's rules here, with this app's rule state; the heuristic also decides, in
   the shadow, so its histories are current whenever it must take over.
3. Who acts: the heuristic when the mode is shadow (or canary and this app is not in it), when the
   endpoint failed (down, slow, garbage), when the last metrics were stale, or when the bootstrap
   monitor has taken control back; otherwise the policy. Each change of hands is logged with its
   reason and counted.
4. ``AutoscaleEnv.step`` decodes, guards (locally: the network is never trusted for bounds),
   applies through the Backend, lets the interval run, observes, scores and builds the next
   observation: the same code ``evaluate`` runs, so on the simulator the controller reproduces it
   interval by interval.

Stale metrics (``cluster.errors.StaleMetrics`` from ``Backend.observe``) are never read as zeros:
the interval holds what runs (the HPA's answer to missing metrics) and the controller resumes with
the next fresh observation. Any other ``ClusterError`` (the API server down or throttling past its
retries) is held the same way; only errors no retry can fix (``control.kubernetes.FATAL``: another
autoscaler owns the Deployment, a missing label or RBAC verb) stop the controller.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from aware_ray.control.client import Answer
from aware_ray.control.kubernetes import is_fatal
from cluster.errors import ClusterError
from envs.autoscale_env import AutoscaleEnv
from envs.metrics import ScalingDecision, ServiceMetrics
from envs.observation_schema import SCHEMA_VERSION
from policies import registry
from policies.base import EnvContext, Policy
from policies.bootstrap.arbiter import Arbiter, Source
from policies.bootstrap.config import BootstrapConfig
from policies.bootstrap.guarded import outcome_of
from policies.bootstrap.phase import Phase
from policies.bootstrap.teacher import make_teacher
from policies.given_action import GivenAction
from policies.smoothed_input import InputWindow, input_window

log = logging.getLogger("aware_ray.control")

MODES = ("shadow", "canary", "active")
POLICY, HEURISTIC = "policy", "heuristic"


@dataclass
class IntervalResult:
    """What happened in one interval of one app (the report's row and the experience record's core)."""

    app: str
    interval: int
    source: str
    reasons: list[str]
    observation: np.ndarray
    raw_action: np.ndarray | None
    policy_action: np.ndarray | None
    applied_action: np.ndarray | None
    decision: ScalingDecision | None
    """What the guard let through and the backend was asked for (None when the interval held)."""
    running: ScalingDecision | None
    """What runs after the interval (``ScalingDecision.of`` the new metrics)."""
    metrics: ServiceMetrics | None
    scoreboard: dict[str, Any] | None
    guard_reasons: dict[str, int]
    reward: float | None
    policy_version: str
    endpoint_decision: list[dict[str, Any]] = field(default_factory=list)


class AppController:
    """Controls one app (see the module docstring)."""

    def __init__(
        self,
        name: str,
        env: AutoscaleEnv,
        spec: str,
        trained_rules: tuple,
        acts: bool,
        bootstrap: BootstrapConfig | None,
    ):
        self.name = name
        self.env = env
        self.ctx = EnvContext.of(env)
        self.acts = acts
        """Whether the policy may act here (active mode, or canary and this app is in it)."""
        inner, wrap = registry.wrap_chain(spec)
        self.window: InputWindow | None = None
        """``smooth@S``'s window, kept here: the endpoint sees one observation at a time."""
        self.given = GivenAction(inner, trained_rules)
        self.policy: Policy = wrap(registry.trained_behind_rules(self.given, self.ctx), self.ctx)
        self.bootstrap = bootstrap
        cfg = bootstrap or BootstrapConfig()
        self.arbiter = Arbiter(cfg, make_teacher(cfg, self.ctx))
        self.arbiter.phase = Phase.SERVING
        self.arbiter.start_episode()
        self.rule_state: Any = None
        self.obs: np.ndarray | None = None
        self.steps = 0
        self.stale = False
        self.held = 0
        """Intervals held for stale metrics (they do not count as steps of the env)."""
        self._index = 0
        self._unstarted: tuple | None = None
        """(seed, options) of a start that found no fresh metrics: the first fresh ones start the env."""
        self.last_source: str | None = None
        self.handovers: Counter[str] = Counter()
        """Hand-overs to the heuristic by reason."""
        self.sources: Counter[str] = Counter()
        self.events_seen = 0

    def start(self, seed: int | None = None, rates: np.ndarray | None = None, workload: str = "live") -> None:
        """First observation (on the simulator: the episode ``evaluate`` would run for this seed and series)."""
        options = {"rates": rates, "workload": workload} if rates is not None else {}
        self.rule_state = self.policy.initial_state()
        self.window = input_window(self.policy)
        self.steps = 0
        try:
            self.obs, _ = self.env.reset(seed=seed, options=options or None)
        except ClusterError as exc:
            if is_fatal(exc):
                raise
            # A live app without fresh metrics yet (the collector needs two samples for rates): hold
            # until they arrive, then start from them.
            self.obs, self.stale, self._unstarted = None, True, (seed, options or None)
            self._log(f"no fresh metrics at start ({_reason(exc)}); holding until fresh")

    def interval(self, answer: Answer | None, failure: str | None) -> IntervalResult:
        """Run one interval with the endpoint's `answer` (None with `failure` its reason)."""
        self._index = self.steps + self.held
        if self.stale and not self._resync():
            return self._hold()
        obs = self.obs
        assert obs is not None
        reasons: list[str] = []
        policy_action = None
        if self.window is not None:
            # The loop asked the endpoint with ``query_observation()``. The chain's own ``smooth@S``
            # window misses the intervals the endpoint failed, but it only feeds ``self.given``,
            # which ignores it, so no observation is checked here; this window is what counts.
            self.window.push(obs)
        if answer is not None:
            self.given.action = answer.raw_action
            policy_action, self.rule_state = self.policy.act(obs, self.rule_state)
        elif failure:
            reasons.append(failure)
        source, action = self._choose(obs, policy_action, reasons)
        self._handover(source, reasons)
        try:
            self.obs, reward, _, _, info = self.env.step(action)
        except ClusterError as exc:
            if is_fatal(exc):
                raise
            self.stale = True
            self._log(f"metrics stale after the interval ({_reason(exc)}); holding until fresh")
            self.handovers["stale_metrics"] += 1
            return self._result(source, [*reasons, "stale_metrics"], answer, policy_action, None, None, None, {})
        self.steps += 1
        sb = asdict(info["scoreboard"])
        guard_reasons = {k: v for k, v in info["guard_reasons"].items() if v}
        assert self.env.last_guard is not None
        return self._result(
            source,
            reasons,
            answer,
            policy_action,
            np.asarray(self.env.last_action, dtype=np.float32).ravel(),
            self.env.last_guard.decision,
            sb,
            guard_reasons,
            float(reward),
            obs,
        )

    def query_observation(self) -> np.ndarray:
        """The observation the endpoint acts on this interval: the measured one, or with ``smooth@S`` in
        the spec the averaged one (``policies.smoothed_input``), as the policy sees it in evaluate."""
        assert self.obs is not None
        return self.obs if self.window is None else self.window.peek(self.obs)

    # ------------------------------------------------------------------------------ helpers

    def _choose(self, obs: np.ndarray, policy_action: np.ndarray | None, reasons: list[str]) -> tuple[str, np.ndarray]:
        """Who acts this interval, and the action; the heuristic decides every interval either way."""
        arb = self.arbiter
        offered = policy_action if self.acts else None
        if not self.acts:
            reasons.append("shadow")
        if self.bootstrap is None:
            h_action = arb.heuristic_action(obs)  # every interval: its histories stay current
            return (POLICY, offered) if offered is not None else (HEURISTIC, h_action)
        # As ``safe:SPEC`` runs in evaluate (policies.bootstrap.guarded): the policy acts from the
        # first interval, watched by the monitor, and the heuristic decides in the shadow.
        if self.steps:
            tripped = arb.observe(*outcome_of(obs, self.ctx))
            if tripped:
                reasons.append(f"monitor: {tripped}")
        chosen, src = arb.choose(obs, offered)
        if src == Source.POLICY:
            return POLICY, chosen
        if src == Source.FALLBACK:
            reasons.append("monitor_cooldown")
        elif offered is not None:
            # With bootstrap.utilization_ceiling the heuristic decides an episode's first interval
            # (its shield has no usage to judge the policy's decision against yet).
            reasons.append("first_interval")
        return HEURISTIC, chosen

    def _handover(self, source: str, reasons: list[str]) -> None:
        self.sources[source] += 1
        if source != self.last_source:
            if source == HEURISTIC and reasons:
                self.handovers[reasons[0].split(":")[0]] += 1  # one hand-over, counted under its cause
                self._log(f"interval {self.steps}: heuristic takes over ({'; '.join(reasons)})")
            elif source == POLICY and self.last_source is not None:
                self._log(f"interval {self.steps}: policy back in control")
        self.last_source = source
        for event in self.arbiter.new_events(self.events_seen):
            self._log(f"bootstrap: {event}")
        self.events_seen = self.arbiter.events_total

    def _resync(self) -> bool:
        """After stale metrics: take the next fresh observation as the current state (False: still stale)."""
        try:
            if self._unstarted is not None:
                seed, options = self._unstarted
                self.obs, _ = self.env.reset(seed=seed, options=options)
                self._unstarted = None
            else:
                self.obs = self.env.resume(self.env.backend.observe())
        except ClusterError as exc:
            if is_fatal(exc):
                raise
            return False
        self.stale = False
        self._log("fresh metrics again; resuming")
        return True

    def _hold(self) -> IntervalResult:
        """A stale interval: nothing applied, the heuristic (holding) is in charge, time passes."""
        self.handovers["stale_metrics"] += 1
        self.held += 1
        self.sources[HEURISTIC] += 1
        self.last_source = HEURISTIC
        self.env.backend.advance(self.env.config.interval_s)
        return self._result(HEURISTIC, ["stale_metrics"], None, None, None, None, None, {})

    def _result(
        self, source, reasons, answer, policy_action, applied, decision, sb, guard_reasons, reward=None, obs=None
    ):
        return IntervalResult(
            app=self.name,
            interval=self._index,
            source=source,
            reasons=reasons,
            observation=obs if obs is not None else (self.obs if self.obs is not None else np.zeros(0, np.float32)),
            raw_action=None if answer is None else answer.raw_action,
            policy_action=None if policy_action is None else np.asarray(policy_action, dtype=np.float32),
            applied_action=applied,
            decision=decision,
            running=self.env.decision if decision is not None else None,
            metrics=self.env.metrics if decision is not None else None,
            scoreboard=sb,
            guard_reasons=guard_reasons,
            reward=reward,
            policy_version="" if answer is None else answer.version,
            endpoint_decision=[] if answer is None else answer.decision,
        )

    def _log(self, message: str) -> None:
        log.info("%s: %s", self.name, message)

    @property
    def schema_version(self) -> int:
        return SCHEMA_VERSION


def _reason(exc: ClusterError) -> str:
    return str(getattr(exc, "reason", "") or exc)
