"""Policy names on the command line, and building each policy for an env.

``hpa-frontier`` expands to the HPA at target utilisations 0.2 .. 0.9 (``hpa@0.6`` ...);
``heuristic-frontier`` to the heuristics users would run, each at those targets: the HPA, the HPA
with an in-place VPA for memory (``hpa+vpa-inplace@T``) and the predictive HPA (``predictive@T``).
Their lower-left envelope in money against violations is what every learned policy is judged
against (``aware_ray.evaluation.scoreboard``). ``safe:POLICY`` runs POLICY behind
the bootstrap fallback (``policies.bootstrap.guarded``), as the live controller would, and
``safe@T:POLICY`` the same with ``hpa+vpa@T`` as the fallback heuristic.
``stable@S:POLICY`` runs POLICY behind a scale-down stabilization window of S seconds, as the
HPA holds its own decreases (``steady@S:POLICY``: holding only asks made two intervals running);
``lean@U:POLICY`` lets POLICY grow a service no further than the HPA
at target U would, ``mem@H:POLICY`` sizes memory limits at H times peak use, and
``floor@T:POLICY`` keeps replicas at or above what the HPA at target T would set, and
``plan@U:POLICY`` plans no service above utilisation U at the CPU in use (the rules of
``envs.rules``, parsed there, wrapped by ``policies.base.PolicyRule``); ``vpa-mem:POLICY`` keeps
POLICY's replicas and CPU limits and lets the VPA set memory limits (``policies.vpa_memory``), and
``smooth@S:POLICY`` feeds POLICY its load averaged over the last S seconds
(``policies.smoothed_input``).
Such rules nest (``vpa-mem:lean@0.1:stable@120:ddpg:pretrained``). A ``ddpg:PATH`` policy trained under
rules (``env.rules``) always acts behind them; rules named here go in front of those.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from envs.rules import leading_rule
from policies.base import EnvContext, Policy, PolicyRule, behind_rules
from policies.hpa import HPAPolicy
from policies.hpa_vpa import HPAVPAPolicy
from policies.hpa_vpa_inplace import HPAVPAInPlacePolicy
from policies.oracle import OraclePolicy
from policies.predictive import PredictivePolicy
from policies.smoothed_input import PREFIX as SMOOTH_PREFIX
from policies.smoothed_input import USAGE as SMOOTH_USAGE
from policies.smoothed_input import SmoothedInputPolicy, window_seconds
from policies.static import StaticPolicy
from policies.vpa import VPAPolicy

if TYPE_CHECKING:
    from policies.bootstrap.config import BootstrapConfig

# Low targets belong on it: a learned policy often runs safer than the HPA at 0.4, and there the
# scoreboard could only bound the gap from below with the safest target's cost (on Twitter load
# on chain3 the bound said -0.50 where the HPA at 0.2 and 0.3 put the same policy at 0.43).
FRONTIER_TARGETS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
FRONTIER_FAMILIES = ("hpa", "hpa+vpa-inplace", "predictive")
"""The heuristic families of ``heuristic-frontier``; ``FAMILY@T`` names one point."""
BASELINES = ("heuristic-frontier", "vpa", "hpa+vpa", "oracle", "static")
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
"""The shipped pretrained DDPG policy (``ddpg:pretrained``)."""
DEFAULT_HPA_TARGET = 0.6
"""Target of a bare ``hpa`` (and of the HPA inside ``hpa+vpa``)."""


def _target(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"policy '{name}': target utilisation must be a number, got {text!r}") from None
    if not 0.05 <= value <= 1.0:
        raise ConfigError(f"policy '{name}': target utilisation must be in [0.05, 1.0], got {value}")
    return value


def expand(names: list[str]) -> list[str]:
    """Expand groups and check every name; raises ConfigError naming the first bad one."""
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name == "hpa-frontier":
            out.extend(f"hpa@{t}" for t in FRONTIER_TARGETS)
            continue
        if name == "heuristic-frontier":
            out.extend(f"{f}@{t}" for f in FRONTIER_FAMILIES for t in FRONTIER_TARGETS)
            continue
        if name in ("hpa", "hpa+vpa-inplace", "predictive"):
            name = f"{name}@{DEFAULT_HPA_TARGET}"  # the name its results carry
        _builder(name)
        out.append(name)
    if not out:
        raise ConfigError("--policies: no policy given")
    seen: set[str] = set()
    return [n for n in out if not (n in seen or seen.add(n))]


def _builder(name: str) -> Callable[[EnvContext, AutoscaleEnv, np.ndarray], Policy]:
    if name in ("hpa", "hpa+vpa-inplace", "predictive"):
        name = f"{name}@{DEFAULT_HPA_TARGET}"
    if name.startswith("hpa@"):
        t = _target(name, name[4:])
        return lambda ctx, env, rates: HPAPolicy(ctx, target_utilization=t)
    if name.startswith("hpa+vpa-inplace@"):
        t = _target(name, name[len("hpa+vpa-inplace@") :])
        return lambda ctx, env, rates: HPAVPAInPlacePolicy(ctx, target_utilization=t)
    if name.startswith("predictive@"):
        t = _target(name, name[len("predictive@") :])
        return lambda ctx, env, rates: PredictivePolicy(ctx, target_utilization=t)
    if name.startswith("hpa+vpa"):
        t = _target(name, name[8:]) if name.startswith("hpa+vpa@") else DEFAULT_HPA_TARGET
        if name not in ("hpa+vpa", f"hpa+vpa@{name[8:]}"):
            raise ConfigError(f"unknown policy '{name}'")
        return lambda ctx, env, rates: HPAVPAPolicy(ctx, target_utilization=t)
    if name == "vpa":
        return lambda ctx, env, rates: VPAPolicy(ctx)
    if name == "oracle":
        return lambda ctx, env, rates: OraclePolicy(ctx, rates)
    if split_wrapper(name) is not None:
        inner_spec, wrap = wrap_chain(name)
        inner = _builder(inner_spec)
        return lambda ctx, env, rates: wrap(inner(ctx, env, rates), ctx)
    if name.startswith("ddpg:"):
        path = ddpg_path(name)
        from policies.ddpg.policy import DDPGPolicy

        DDPGPolicy.load(path)  # fail early, with the path, on a missing or corrupt policy
        return lambda ctx, env, rates: trained_behind_rules(DDPGPolicy.load(path, name), ctx)
    if name == "static":
        return lambda ctx, env, rates: StaticPolicy(ctx, float(np.max(rates)) if len(rates) else env.peak_rps)
    raise ConfigError(
        f"unknown policy '{name}' (known: heuristic-frontier, hpa-frontier, hpa@X, hpa+vpa[@X], "
        "hpa+vpa-inplace@X, predictive@X, vpa, oracle, static, ddpg:PATH, "
        "safe:POLICY, safe@T:POLICY, stable@S:POLICY, steady@S:POLICY, lean@U:POLICY, mem@H:POLICY, floor@T:POLICY, "
        "plan@U:POLICY, smooth@S:POLICY, vpa-mem:POLICY)"
    )


Wrap = Callable[[Policy, EnvContext], Policy]
"""Puts a rule in front of a built policy: what the live controller would apply to its decisions."""


FALLBACK_PREFIXES = ("safe:", "safe@")
"""How a name puts the bootstrap fallback in front of a policy: ``safe:`` or ``safe@T:``."""


def fallback_config(head: str, name: str) -> BootstrapConfig:
    """The bootstrap settings of a ``safe:`` (defaults) or ``safe@T:`` (the fallback heuristic
    ``hpa+vpa@T``, as a controller's ``bootstrap.heuristic``) prefix; a one-line ConfigError otherwise."""
    from policies.bootstrap.config import BootstrapConfig

    if head == "safe":
        return BootstrapConfig()
    return BootstrapConfig(heuristic=f"hpa+vpa@{_target(name, head[len('safe@') :]):g}")


def has_fallback(name: str) -> bool:
    """Whether a policy name puts the bootstrap fallback (``safe:`` or ``safe@T:``) anywhere in its chain."""
    while (split := split_wrapper(name)) is not None:
        if name.startswith(FALLBACK_PREFIXES):
            return True
        name = split[1]
    return False


def split_wrapper(name: str) -> tuple[Wrap, str] | None:
    """The rule a name puts in front of another policy (``safe:``, ``safe@T:``, ``stable@S:``, ``lean@U:``,
    ``vpa-mem:``, ``smooth@S:``) and the name it wraps; None for a policy that wraps none."""
    if name.startswith(FALLBACK_PREFIXES):
        from policies.bootstrap.guarded import GuardedPolicy

        head, _, inner = name.partition(":")
        cfg = fallback_config(head, name)
        return (lambda policy, ctx: GuardedPolicy(policy, ctx, cfg)), inner
    if name.startswith("vpa-mem:"):
        from policies.vpa_memory import VPAMemoryPolicy

        return (lambda policy, ctx: VPAMemoryPolicy(policy, ctx)), name[len("vpa-mem:") :]
    if name.startswith(SMOOTH_PREFIX):
        head, sep, inner = name.partition(":")
        if not sep or not inner:
            raise ConfigError(f"policy '{name}': write {SMOOTH_USAGE}")
        window_s = window_seconds(head, name)
        if split_wrapper(inner) is not None:
            where = f"policy '{name}': {head}"
            raise ConfigError(f"{where} goes directly in front of the policy it feeds (RULES:{head}:POLICY)")
        return (lambda policy, ctx: SmoothedInputPolicy(policy, ctx, window_s)), inner
    if (lead := leading_rule(name, f"policy '{name}'")) is not None:
        rule, inner = lead
        return (lambda policy, ctx: PolicyRule(policy, ctx, rule)), inner
    return None


def wrap_chain(name: str) -> tuple[str, Wrap]:
    """The innermost policy of a name, and all its rules as one ``Wrap`` (outermost applied last)."""
    wraps: list[Wrap] = []
    while (split := split_wrapper(name)) is not None:
        wrap, name = split
        wraps.append(wrap)

    def apply(policy: Policy, ctx: EnvContext) -> Policy:
        for wrap in reversed(wraps):
            policy = wrap(policy, ctx)
        return policy

    return name, apply


def trained_behind_rules(policy: Policy, ctx: EnvContext) -> Policy:
    """A learned policy behind the rules it trained under (none for one trained without)."""
    return behind_rules(policy, ctx, getattr(policy, "rules", ()))


def inner_name(name: str) -> str:
    """The policy a ``safe:``, ``stable@S:``, ``lean@U:`` or ``vpa-mem:`` name wraps (itself when it wraps none)."""
    return wrap_chain(name)[0]


def ddpg_path(name: str) -> Path:
    """The folder behind a ``ddpg:PATH`` or ``ddpg:pretrained`` policy name."""
    spec = name[5:]
    if not spec:
        raise ConfigError(f"policy '{name}': give a path to an exported policy folder, or 'pretrained'")
    return PRETRAINED_DIR if spec == "pretrained" else Path(spec)


def history_needs(name: str) -> dict[str, object]:
    """The env settings the history rows of the learned policy `name` wraps need
    (``envs.config.policy_needs``); empty for a heuristic. Per policy, unlike the layout: learned
    policies trained under other rewards run side by side, each in an env of its own."""
    name = inner_name(name)
    if not name.startswith("ddpg:"):
        return {}
    from policies.ddpg.policy import DDPGPolicy

    return DDPGPolicy.load(ddpg_path(name)).history_needs()


def env_overrides(names: list[str]) -> dict[str, object]:
    """Env settings the learned policies need (their observation layout); they must agree."""
    from policies.ddpg.policy import DDPGPolicy

    out: dict[str, object] = {}
    for name in names:
        name = inner_name(name)
        if name.startswith("ddpg:"):
            need = DDPGPolicy.load(ddpg_path(name)).env_overrides()
            for k, v in need.items():
                if k in out and out[k] != v:
                    raise ConfigError(f"policy '{name}': needs {k}={v}, another policy needs {out[k]}")
                out[k] = v
    return out


def make_policy(name: str, env: AutoscaleEnv, rates: np.ndarray) -> Policy:
    """Build policy `name` for `env`, whose episode will replay `rates`."""
    policy = _builder(name)(EnvContext.of(env), env, rates)
    policy.name = f"{name}@{DEFAULT_HPA_TARGET}" if name in ("hpa", "hpa+vpa-inplace", "predictive") else name
    return policy
