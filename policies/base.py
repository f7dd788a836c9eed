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

from envs.action import ACTION_DIMS, encode
from envs.app import AppSpec
from envs.guard import GuardConfig
from envs.metrics import ScalingDecision
from envs.observation import A, ObservationLayout, ServiceView, service_view
from envs.rules import Rule, RuleChain


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
    memory_price: float = 1.0 / 9.0
    """Cores per GiB, as the env's scoreboard prices memory (``EnvConfig.memory_price``): what the
    bootstrap monitor's cost rule weighs reserved memory by."""

    @staticmethod
    def of(env: Any) -> EnvContext:
        """Context of an AutoscaleEnv."""
        return EnvContext(env.app, env.layout, env.config.guard, env.config.interval_s, env.config.memory_price)


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


class PolicyRule:
    """Any policy behind one controller rule (``stable@S:POLICY``, ``lean@U:POLICY``): the one
    wrapper for every rule of ``envs.rules``.

    The policy acts; its asks are read back from its action with the env's own decoding, the rule
    (``envs.rules``, which an env can also apply in training) may change them, and only the
    services it changed are re-encoded. ``behind_rules`` stacks several; the registry builds one
    per rule a policy name starts with. (``vpa-mem:`` is not such a rule: see
    ``policies.vpa_memory``.)
    """

    rule: Rule

    def __init__(self, policy: Policy, ctx: EnvContext, rule: Rule):
        self.policy = policy
        self.ctx = ctx
        self.rule = rule
        self.name = f"{rule}:{getattr(policy, 'name', 'policy')}"
        self.vertical_mode = getattr(policy, "vertical_mode", "in-place")

    def initial_state(self) -> Any:
        return {"policy": self.policy.initial_state(), "rule": RuleChain((self.rule,), self.ctx.interval_s)}

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        action, state["policy"] = self.policy.act(observation, state["policy"])
        n = self.ctx.app.n_services
        obs = np.asarray(observation, dtype=np.float64)
        current = service_view(obs, self.ctx.app, self.ctx.layout).settings()
        grid = np.array(action, dtype=np.float32).reshape(self.ctx.layout.max_services, ACTION_DIMS)
        services = self.ctx.layout.services(obs)[:n]
        e2e = float(self.ctx.layout.app(obs)[A["e2e_latency"]])
        grid[:n] = state["rule"].effective_action(grid[:n], current, services, self.ctx.guard, e2e)
        return grid.ravel(), state


def behind_rules(policy: Policy, ctx: EnvContext, rules: tuple[Rule, ...]) -> Policy:
    """`policy` behind `rules`, the first named outermost (``lean@0.1:stable@120`` puts the window
    nearest the policy), as the nested command-line names build them."""
    for rule in reversed(rules):
        policy = PolicyRule(policy, ctx, rule)
    return policy
