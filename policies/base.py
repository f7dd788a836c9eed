"""The one call every decision maker answers: ``act(observation, state) -> (action, state)``.

HPA, VPA, the oracle, static provisioning and DDPG all take the env's observation and return
an action in [-1, 1]^(max_services x 3), so evaluation, bootstrapping and serving treat them
alike. Heuristics decide in Kubernetes terms (replicas and limits) and are turned into actions
by ``HeuristicPolicy``, through the same encoding the env decodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from envs.action import ACTION_DIMS, decode, encode
from envs.app import AppSpec
from envs.guard import GuardConfig
from envs.metrics import ScalingDecision
from envs.observation import ObservationLayout, ServiceView, service_view


@runtime_checkable
class Policy(Protocol):
    """A decision maker for one app."""

    name: str
    vertical_mode: str
    """How the policy's limit changes reach pods ('in-place' or 'recreate'); the env follows it."""

    def initial_state(self) -> Any:
        """State at the start of an episode (histories, clocks, an RNN state...)."""
        ...

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        """Action for `observation`, and the state to pass with the next observation."""
        ...


@dataclass(frozen=True)
class EnvContext:
    """What a heuristic needs to know about the env it acts in."""

    app: AppSpec
    layout: ObservationLayout
    guard: GuardConfig
    interval_s: float

    @staticmethod
    def of(env: Any) -> EnvContext:
        """Context of an AutoscaleEnv."""
        return EnvContext(env.app, env.layout, env.config.guard, env.config.interval_s)


class HeuristicPolicy:
    """Base for rule-based policies: read the observation back, decide, encode the decision."""

    name = "heuristic"
    vertical_mode = "in-place"

    def __init__(self, ctx: EnvContext):
        self.ctx = ctx

    def initial_state(self) -> Any:
        return {"t": 0.0}

    def decide(self, view: ServiceView, current: ScalingDecision, state: Any, now_s: float) -> ScalingDecision:
        """The desired replicas and limits; subclasses implement it."""
        raise NotImplementedError

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        view = service_view(observation, self.ctx.app, self.ctx.layout)
        current = view.settings()
        now = state["t"]
        target = self.decide(view, current, state, now)
        action = np.zeros((self.ctx.layout.max_services, ACTION_DIMS), dtype=np.float32)
        action[: self.ctx.app.n_services] = encode(target, current, self.ctx.guard)
        state["t"] = now + self.ctx.interval_s
        return action.ravel(), state


def override_actions(
    grid: np.ndarray, want: ScalingDecision, got: ScalingDecision, current: ScalingDecision, guard: GuardConfig
) -> np.ndarray:
    """The action rows (n_services, 3) of `grid` with the services a rule changed from `want` to
    `got` re-encoded; the others keep the policy's own action bit for bit, since re-encoding an
    untouched ask could round it to a neighbouring millicore or MiB."""
    changed = (got.replicas != want.replicas) | (got.cpu_limit != want.cpu_limit) | (got.mem_limit != want.mem_limit)
    out = np.array(grid, dtype=np.float32)
    if changed.any():
        out[changed] = encode(got, current, guard)[changed]
    return out


class PolicyRule:
    """Base for a rule a controller puts in front of any policy (``stable@S:``, ``lean@U:``).

    The policy acts; its asks are read back from its action with the env's own decoding, the
    rule's ``apply`` may change them, and only the services it changed are re-encoded. Subclasses
    set ``prefix`` and implement ``apply`` (and ``rule_state`` when the rule remembers anything).
    """

    prefix = "rule"

    def __init__(self, policy: Policy, ctx: EnvContext):
        self.policy = policy
        self.ctx = ctx
        self.name = f"{self.prefix}:{getattr(policy, 'name', 'policy')}"
        self.vertical_mode = getattr(policy, "vertical_mode", "in-place")

    def rule_state(self) -> Any:
        """What the rule remembers across intervals, at the start of an episode."""
        return None

    def apply(self, want: ScalingDecision, current: ScalingDecision, services: np.ndarray, memory: Any):
        """The decision to let through, from the policy's ask, the current settings, the services'
        observation rows and the rule's memory; returns (decision, memory)."""
        raise NotImplementedError

    def initial_state(self) -> Any:
        return {"policy": self.policy.initial_state(), "rule": self.rule_state()}

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        action, state["policy"] = self.policy.act(observation, state["policy"])
        n = self.ctx.app.n_services
        obs = np.asarray(observation, dtype=np.float64)
        current = service_view(obs, self.ctx.app, self.ctx.layout).settings()
        grid = np.array(action, dtype=np.float32).reshape(self.ctx.layout.max_services, ACTION_DIMS)
        want = decode(grid[:n], current, self.ctx.guard)
        got, state["rule"] = self.apply(want, current, self.ctx.layout.services(obs)[:n], state["rule"])
        grid[:n] = override_actions(grid[:n], want, got, current, self.ctx.guard)
        return grid.ravel(), state
