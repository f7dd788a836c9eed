"""Interval by interval: does the heuristic or the policy act on this app?

The phase decides first (the heuristic acts while INITIALIZED or OFFLINE). Once the policy is
in control, the ``SafetyMonitor`` judges every interval it controlled; when it trips, the
heuristic takes control for a cooldown that doubles with each fallback in a row (so a policy
that keeps failing costs ever less), and then the policy is tried again. The heuristic runs
in the shadow on every interval, whoever acts, so its histories (the HPA's stabilisation
window, the VPA's usage histogram) are current the moment it takes over.

The monitor's cost yardstick is what the HPA's own rule would reserve for the CPU actually in
use, ``ceil(used / (target x CPU request))`` replicas at the Deployment's CPU and memory
requests, independent of how the policy has shaped replicas and limits, scaled by the heuristic's
own measured ratio of reserved money to that rule while it was in control (its lag, minimum
replicas, rounding and memory sizing). Where the heuristic has not controlled long enough to
measure that ratio (the policy acts from the first interval, as behind ``safe:`` and in the
live controller), the yardstick is what the heuristic, deciding in the shadow, asks for: its next
decision from the running settings, priced. Money is CPU cores plus memory GiB at the env's memory
price (``EnvContext.memory_price``), as the scoreboard counts it.

Training runs one ``Arbiter`` per env inside RLlib's env runners; the live controller runs one
per app. Nothing here knows about either.
"""

from __future__ import annotations

from collections import deque
from enum import IntEnum
from typing import Any

import numpy as np

from envs.action import ACTION_DIMS, decode
from envs.observation import service_view
from policies.base import HeuristicPolicy
from policies.bootstrap.config import BootstrapConfig
from policies.bootstrap.monitor import Interval, SafetyMonitor
from policies.bootstrap.phase import Phase
from policies.bootstrap.shield import limit_tolerance, memory_floor, utilization_floor

MAX_EVENTS = 1000
"""Hand-over events an arbiter remembers (a controller runs for months)."""


def reserved(replicas: np.ndarray, cpu_limit: np.ndarray, mem_limit_mib: np.ndarray) -> tuple[float, float]:
    """CPU cores and memory GiB that `replicas` pods at these limits reserve, summed over services:
    what the monitor prices, for the policy, the HPA rule and the heuristic alike."""
    pods = np.asarray(replicas, dtype=np.float64)
    return float(np.sum(pods * cpu_limit)), float(np.sum(pods * mem_limit_mib)) / 1024.0


class Source(IntEnum):
    """Who acted on an interval."""

    POLICY = 0
    HEURISTIC = 1
    """The heuristic, because the phase says so."""
    FALLBACK = 2
    """The heuristic, because the monitor took control back from the policy."""


class Arbiter:
    """Chooses between the heuristic's and the policy's action for one app."""

    def __init__(self, cfg: BootstrapConfig, heuristic: HeuristicPolicy):
        self.cfg = cfg
        self.heuristic = heuristic
        self.phase = cfg.phase
        self.canary = True
        """Whether the policy may act here while ONLINE (see BootstrapConfig.canary_envs)."""
        self.monitor = SafetyMonitor(cfg.window, cfg.violation_margin, cfg.cost_margin, cfg.cost_window)
        self.cooldown_left = 0
        self.next_cooldown = cfg.cooldown
        self.fallbacks = 0
        """Fallbacks since this arbiter was made."""
        self.events: deque[str] = deque(maxlen=MAX_EVENTS)
        """Why control changed hands, in order (fallbacks and hand-backs; the latest MAX_EVENTS)."""
        self.events_total = 0
        """Events ever logged (a reader that remembers it knows which of ``events`` are new)."""
        self._h_state: Any = None
        self._first_interval = True
        self._last_source: Source | None = None
        self._last_ask = 0.0
        self._last_shadow = 0.0
        self._clean = 0
        self._h_reserved = 0.0
        self._h_ask = 0.0
        self._h_intervals = 0
        self._tripped_at = 0
        """Violating intervals in the policy's window that tripped the last fallback."""
        self._fallback_violated: deque[bool] = deque(maxlen=cfg.window)
        """The heuristic's last ``window`` intervals in control since that fallback, past the grace:
        violated or not."""
        self._fallback_seen = 0
        """Intervals the heuristic has controlled since that fallback."""

    def _log(self, event: str) -> None:
        self.events.append(event)
        self.events_total += 1

    def new_events(self, seen: int) -> list[str]:
        """Events logged after the first ``seen`` (those still remembered)."""
        new = min(self.events_total - seen, len(self.events))
        return list(self.events)[len(self.events) - new :] if new > 0 else []

    def set_reference(self, violation_rate: float) -> None:
        """The heuristic's violation rate while it controlled (the monitor's yardstick)."""
        self.monitor.reference_violation_rate = float(violation_rate)

    def start_episode(self) -> None:
        """A new episode (a new workload or cluster): fresh heuristic state and monitor window.

        The backoff carries over (a cooldown still running finishes in the new episode): a
        policy that keeps failing gets ever fewer chances, however the time is cut into
        episodes, and only a whole window without a trip brings the cooldown back down.
        """
        self._h_state = self.heuristic.initial_state()
        self._first_interval = True
        self._last_source = None
        self.monitor.reset()
        self._clean = 0

    def heuristic_action(self, observation: np.ndarray) -> np.ndarray:
        """The heuristic's action (also advances its state)."""
        if self._h_state is None:
            self._h_state = self.heuristic.initial_state()
        action, self._h_state = self.heuristic.act(observation, self._h_state)
        return action

    @property
    def cost_reference(self) -> float | None:
        """The heuristic's reserved money over the HPA rule's while it controlled by phase.

        None until it has controlled for a whole window: the monitor's cost rule then judges
        against the heuristic's asks in the shadow (``shadow_cost``).
        """
        if self._h_intervals < self.cfg.window or self._h_ask <= 0:
            return None
        return self._h_reserved / self._h_ask

    def money(self, cores: float, gib: float) -> float:
        """Reserved CPU cores and memory GiB as one cost, in cores (memory at the env's price)."""
        return float(cores) + float(gib) * self.heuristic.ctx.memory_price

    def rule_cost(self, observation: np.ndarray) -> float:
        """What the HPA rule reserves for the CPU in use now, in money: its replicas at the
        Deployment's CPU and memory requests."""
        ctx = self.heuristic.ctx
        app = ctx.app
        view = service_view(observation, app, ctx.layout)
        used = view.cpu_utilization * view.ready_replicas * view.cpu_limit
        request = app.column("cpu_limit_initial")
        target = self.cfg.teacher[1]
        replicas = np.clip(
            np.ceil(used / (request * target) - 1e-9), app.column("min_replicas"), app.column("max_replicas")
        )
        return self.money(*reserved(replicas, request, app.column("mem_limit_initial")))

    def shadow_cost(self, observation: np.ndarray, heuristic_action: np.ndarray) -> float:
        """What the heuristic's action would reserve, in money: its decision from the settings that
        run now, within the app's replica bounds."""
        ctx = self.heuristic.ctx
        app = ctx.app
        current = service_view(observation, app, ctx.layout).settings()
        action = np.asarray(heuristic_action, dtype=np.float64).reshape(ctx.layout.max_services, ACTION_DIMS)
        d = decode(action[: app.n_services], current, ctx.guard)
        replicas = np.clip(d.replicas, app.column("min_replicas"), app.column("max_replicas"))
        return self.money(*reserved(replicas, d.cpu_limit, d.mem_limit))

    def observe(self, violated: bool, reserved_cores: float, reserved_gib: float = 0.0) -> str | None:
        """The outcome of the last interval (SLO violated; CPU cores and memory GiB reserved at its
        end); returns the fallback reason if the monitor tripped."""
        reserved = self.money(reserved_cores, reserved_gib)
        if self._last_source == Source.HEURISTIC:
            self._h_reserved += reserved
            self._h_ask += self._last_ask
            self._h_intervals += 1
        if self._last_source == Source.FALLBACK:
            self._judge_fallback(bool(violated))
        if self._last_source != Source.POLICY:
            return None
        self.monitor.cost_reference = self.cost_reference
        reason = self.monitor.observe(Interval(bool(violated), reserved, self._last_ask, self._last_shadow))
        if reason is not None:
            if self.cfg.handback:  # what the heuristic in control is judged against
                self._tripped_at = sum(i.violated for i in list(self.monitor.intervals)[-self.cfg.window :])
                self._fallback_violated.clear()
                self._fallback_seen = 0
            self.fallbacks += 1
            self.cooldown_left = self.next_cooldown
            self.next_cooldown = min(2 * self.next_cooldown, self.cfg.max_cooldown)
            self.monitor.reset()
            self._clean = 0
            self._log(f"fallback to the heuristic for {self.cooldown_left} intervals: {reason}")
            return reason
        self._clean += 1
        if self._clean >= self.cfg.window:
            # A whole window without a trip: the policy has earned a fresh backoff.
            self.next_cooldown = self.cfg.cooldown
        return None

    def _judge_fallback(self, violated: bool) -> None:
        """With ``handback``: give control back when the heuristic in control has violated the SLO
        in more of its last ``window`` intervals (past ``handback_grace``) than the policy had when
        it was taken away."""
        if not self.cfg.handback:
            return
        self._fallback_seen += 1
        if self._fallback_seen <= self.cfg.handback_grace:
            return  # still undoing the policy's state: not the heuristic's own doing
        self._fallback_violated.append(violated)
        if self.cooldown_left <= 0:
            return
        worse = sum(self._fallback_violated)
        if worse > self._tripped_at:
            self.cooldown_left = 0
            self._log(
                f"policy back in control early: the heuristic violated the SLO in {worse} of its "
                f"{len(self._fallback_violated)} intervals in control, the policy in {self._tripped_at} "
                "of the window that tripped"
            )

    def shield(self, observation: np.ndarray, policy_action: np.ndarray, heuristic_action: np.ndarray) -> np.ndarray:
        """The policy's action through the configured shield (see shield.py)."""
        action = np.asarray(policy_action, dtype=np.float32)
        ctx = self.heuristic.ctx
        if self.cfg.limit_tolerance > 0:
            action = limit_tolerance(action, ctx.app.n_services, self.cfg.limit_tolerance)
        if self.cfg.utilization_ceiling > 0:
            action = utilization_floor(action, observation, ctx, self.cfg.utilization_ceiling)
            action = memory_floor(action, heuristic_action, ctx.app.n_services)
        return action

    def choose(self, observation: np.ndarray, policy_action: np.ndarray | None) -> tuple[np.ndarray, Source]:
        """The action to apply for this interval, and who it comes from.

        Call ``observe`` with the previous interval's outcome first. ``policy_action`` may be
        None while the heuristic is in control by phase.
        """
        h_action = self.heuristic_action(observation)
        self._last_ask = self.rule_cost(observation)
        self._last_shadow = self.shadow_cost(observation, h_action)
        held_back = self.phase == Phase.ONLINE and not self.canary
        # The floor judges a decision against the usage just observed; on an episode's first
        # interval none has been, so the heuristic decides it.
        unjudged = self._first_interval and self.cfg.utilization_ceiling > 0
        self._first_interval = False
        if self.phase.heuristic_in_control or policy_action is None or held_back or unjudged:
            source = Source.HEURISTIC
        elif self.cooldown_left > 0:
            self.cooldown_left -= 1
            source = Source.FALLBACK
            if self.cooldown_left == 0:
                self._log("policy back in control after the cooldown")
        else:
            source = Source.POLICY
        self._last_source = source
        if source == Source.POLICY:
            return self.shield(observation, policy_action, h_action), source
        return np.asarray(h_action, dtype=np.float32), source
