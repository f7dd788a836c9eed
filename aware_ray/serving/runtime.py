"""What the endpoint computes, without Serve around it: a policy spec answering batches of observations.

For every observation (with the name of the app it comes from) the runtime returns:
- the raw action of the innermost policy (for a learned policy, the actor's output);
- the action after the spec's rules (``lean@U:``, ``stable@S:``, ``vpa-mem:``, and the rules the
  policy trained under), read against the settings the observation holds;
- the decision per service after decoding and the guard, with the guard's reasons;
- the workload embedding (learned policies with a meta-learner) and the policy's version.

The endpoint is stateless, so rules that remember (``stable@S:``'s window) start empty on every
request: the answer's decision is what the policy asks now. The controller keeps each app's rule
state and applies rules and guard again itself, from the raw action, with the metrics it measured
(never trusting the network for bounds); that is the decision that runs.

A learned policy's forwards are batched (``DDPGPolicy.act_batch``) and give each row the bits a
single forward gives it, so a served action is ``evaluate``'s action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.action import ACTION_DIMS, decode, encode
from envs.autoscale_env import AutoscaleEnv, interval_scores
from envs.errors import ConfigError
from envs.guard import guard
from envs.metrics import ScalingDecision, ServiceMetrics
from envs.observation import service_view
from envs.observation_builder import ObservationBuilder
from envs.observation_schema import observation_schema
from policies import registry
from policies.base import EnvContext, Policy
from policies.given_action import GivenAction
from policies.recommended import RECOMMENDED

DEFAULT_SPEC = RECOMMENDED
"""The recommended deployment (``policies.recommended``; see the model card)."""
DEFAULT_APPS = ("social-network", "chain3", "ecommerce", "single")
UNSERVABLE = ("oracle", "static")
"""Policies that need the future arrival series: nothing to serve live."""


@dataclass
class AppRuntime:
    """One app the endpoint serves: its context (layout, guard) and the spec's rules around a given action."""

    env: AutoscaleEnv
    ctx: EnvContext


def check_spec(spec: str) -> tuple[str, Any]:
    """The innermost policy and the rule wrapper of a servable spec; ConfigError names what is wrong."""
    names = registry.expand([spec])
    if len(names) != 1:
        raise ConfigError(f"policy '{spec}': serve one policy, not a group")
    inner, wrap = registry.wrap_chain(names[0])
    if registry.has_fallback(names[0]):
        raise ConfigError(f"policy '{spec}': safe: belongs to the controller (its bootstrap: section)")
    if inner in UNSERVABLE:
        raise ConfigError(f"policy '{spec}': {inner} needs the future arrivals and cannot be served")
    return inner, wrap


class PolicyRuntime:
    """A policy spec loaded for a set of apps (see the module docstring)."""

    def __init__(self, spec: str = DEFAULT_SPEC, apps: tuple[str, ...] | list[str] = DEFAULT_APPS, env=None):
        self.spec = spec
        self.inner_name, self.wrap = check_spec(spec)
        self.learned = None
        overrides: dict[str, Any] = {}
        if self.inner_name.startswith("ddpg:"):
            from policies.ddpg.policy import DDPGPolicy

            self.learned = DDPGPolicy.load(registry.ddpg_path(self.inner_name), self.inner_name)
            overrides = {**self.learned.env_overrides(), **self.learned.history_needs()}
        self.env_config = {**dict(env or {}), **overrides}
        self.apps: dict[str, AppRuntime] = {}
        for name in apps:
            env_ = AutoscaleEnv({**self.env_config, "app": name, "workloads": ["family:step"]})
            self.apps[env_.app.name] = AppRuntime(env_, EnvContext.of(env_))
        first = next(iter(self.apps.values()))
        self.layout = first.env.layout
        self.version = self.learned.version if self.learned is not None else f"heuristic:{self.inner_name}"
        self._heuristics: dict[str, Policy] = {}

    @property
    def observation_size(self) -> int:
        return self.layout.size

    def info(self) -> dict[str, Any]:
        """What ``GET /v1/policy`` shows: version, spec, schema, rules, apps and the model card's summary."""
        meta = self.learned.meta if self.learned is not None else {}
        return {
            "version": self.version,
            "spec": self.spec,
            "apps": {k: {"services": [s.name for s in a.env.app.services]} for k, a in self.apps.items()},
            "observation_size": self.observation_size,
            "action_size": self.layout.max_services * ACTION_DIMS,
            "schema": meta.get("observation_schema") or observation_schema(self.layout),
            "rules": meta.get("rules", ""),
            "model_card": _card_summary(registry.ddpg_path(self.inner_name)) if self.learned is not None else "",
        }

    def raw_actions(self, apps: list[str], observations: np.ndarray) -> np.ndarray:
        """The innermost policy's actions of a batch (one forward for a learned policy)."""
        if self.learned is not None:
            return self.learned.act_batch(observations)
        out = np.zeros((len(apps), self.layout.max_services * ACTION_DIMS), dtype=np.float32)
        for i, (app, obs) in enumerate(zip(apps, observations, strict=True)):
            policy = self._heuristics.get(app)
            if policy is None:
                rt = self.apps[app]
                policy = registry.make_policy(self.inner_name, rt.env, np.zeros(1))
                self._heuristics[app] = policy
            out[i] = policy.act(obs, policy.initial_state())[0]
        return out

    def answer(self, apps: list[str], observations: np.ndarray) -> list[dict[str, Any]]:
        """The full answer for each (app, observation) of a batch (see the module docstring)."""
        observations = np.asarray(observations, dtype=np.float32)
        if self.learned is not None:
            raw, emb = self.learned.act_and_embed(observations)  # one meta-learner pass for both
        else:
            raw, emb = self.raw_actions(apps, observations), None
        return [
            self.decide_one(app, observations[i], raw[i], None if emb is None else emb[i]) for i, app in enumerate(apps)
        ]

    def rules_policy(self, app: str) -> tuple[Policy, GivenAction]:
        """The spec's rules (and the trained policy's own) around a ``GivenAction``, for `app`."""
        given = GivenAction(self.inner_name, self.learned.rules if self.learned is not None else ())
        ctx = self.apps[app].ctx
        return self.wrap(registry.trained_behind_rules(given, ctx), ctx), given

    def decide_one(self, app: str, obs: np.ndarray, raw: np.ndarray, emb: np.ndarray | None) -> dict[str, Any]:
        rt = self.apps[app]
        ctx = rt.ctx
        policy, given = self.rules_policy(app)
        given.action = raw
        effective, _ = policy.act(obs, policy.initial_state())
        n = ctx.app.n_services
        a = np.clip(np.asarray(effective, dtype=np.float64).reshape(ctx.layout.max_services, ACTION_DIMS), -1.0, 1.0)
        a = np.nan_to_num(a, nan=0.0)
        view = service_view(obs, ctx.app, ctx.layout)
        current = view.settings()
        result = guard(decode(a[:n], current, ctx.guard), current, view.mem_usage, ctx.app, ctx.guard)
        d = result.decision
        return {
            "app": app,
            "raw_action": np.asarray(raw).tolist(),  # each value as a Python float, as float(x) gives it
            "action": np.asarray(effective, dtype=np.float32).tolist(),
            "decision": [
                {
                    "service": s.name,
                    "replicas": int(d.replicas[i]),
                    "cpu_limit": float(d.cpu_limit[i]),
                    "mem_limit": float(d.mem_limit[i]),
                    "guard_reasons": list(result.reasons[i]),
                }
                for i, s in enumerate(ctx.app.services)
            ],
            "guard_reasons": {k: v for k, v in result.counts().items() if v},
            "embedding": None if emb is None else np.asarray(emb).tolist(),
            "policy_version": self.version,
        }


def _card_summary(folder: Any) -> str:
    """The model card's first paragraph after its heading (empty without a card)."""
    try:
        text = (folder / "MODEL_CARD.md").read_text()
    except OSError:
        return ""
    paras = [p.strip() for p in text.split("\n\n") if p.strip() and not p.lstrip().startswith("#")]
    return paras[0][:600] if paras else ""


def observation_from_history(
    rt: AppRuntime,
    metrics: list[ServiceMetrics],
    actions: list[np.ndarray] | None = None,
    rewards: list[float] | None = None,
) -> np.ndarray:
    """The observation after the last of `metrics` (oldest first), built as the controller builds it.

    Without `actions`, each interval's applied action is rebuilt from the settings of consecutive
    intervals (``envs.action.encode``); without `rewards`, each is scored from its metrics
    (``interval_scores``) with the weights the policy's history was trained on
    (``EnvConfig.history_weights``). A window shorter than the policy's history starts like an
    episode.
    """
    ctx, cfg = rt.ctx, rt.env.config
    builder = ObservationBuilder(ctx.app, ctx.layout, ctx.interval_s)
    obs = builder.reset(metrics[0])
    n = ctx.app.n_services
    for j in range(1, len(metrics)):
        prev, cur = ScalingDecision.of(metrics[j - 1]), ScalingDecision.of(metrics[j])
        grid = np.zeros((ctx.layout.max_services, ACTION_DIMS))
        if actions is not None:
            grid[:n] = np.asarray(actions[j - 1], dtype=np.float64).reshape(n, ACTION_DIMS)
        else:
            grid[:n] = encode(cur, prev, ctx.guard)
        changed = int(
            (
                (cur.replicas != prev.replicas) | (cur.cpu_limit != prev.cpu_limit) | (cur.mem_limit != prev.mem_limit)
            ).sum()
        )
        r = (
            rewards[j - 1]
            if rewards is not None
            else float(interval_scores(metrics[j], None, cur, ctx.app, cfg, changed).history_reward[0])
        )
        obs = builder.step(metrics[j], grid, r)
    return obs


def metrics_of(d: dict[str, Any]) -> ServiceMetrics:
    """ServiceMetrics from a validated JSON interval (``schemas.IntervalMetrics``)."""
    from aware_ray.serving.schemas import PER_SERVICE

    return ServiceMetrics(
        **{k: np.asarray(v, dtype=np.float64) if k in PER_SERVICE else float(v) for k, v in d.items()}
    )
