"""Policy names on the command line, and building each policy for an env.

``hpa-frontier`` expands to the HPA at target utilisations 0.4 .. 0.9 (``hpa@0.6`` ...), the
tuned-HPA frontier every learned policy is judged against.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from policies.base import EnvContext, Policy
from policies.hpa import HPAPolicy
from policies.hpa_vpa import HPAVPAPolicy
from policies.oracle import OraclePolicy
from policies.static import StaticPolicy
from policies.vpa import VPAPolicy

FRONTIER_TARGETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
BASELINES = ("hpa-frontier", "vpa", "hpa+vpa", "oracle", "static")
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
        _builder(name)
        out.append(name)
    if not out:
        raise ConfigError("--policies: no policy given")
    seen: set[str] = set()
    return [n for n in out if not (n in seen or seen.add(n))]


def _builder(name: str) -> Callable[[EnvContext, AutoscaleEnv, np.ndarray], Policy]:
    if name == "hpa":
        name = f"hpa@{DEFAULT_HPA_TARGET}"
    if name.startswith("hpa@"):
        t = _target(name, name[4:])
        return lambda ctx, env, rates: HPAPolicy(ctx, target_utilization=t)
    if name.startswith("hpa+vpa"):
        t = _target(name, name[8:]) if name.startswith("hpa+vpa@") else DEFAULT_HPA_TARGET
        if name not in ("hpa+vpa", f"hpa+vpa@{name[8:]}"):
            raise ConfigError(f"unknown policy '{name}'")
        return lambda ctx, env, rates: HPAVPAPolicy(ctx, target_utilization=t)
    if name == "vpa":
        return lambda ctx, env, rates: VPAPolicy(ctx)
    if name == "oracle":
        return lambda ctx, env, rates: OraclePolicy(ctx, rates)
    if name == "static":
        return lambda ctx, env, rates: StaticPolicy(ctx, float(np.max(rates)) if len(rates) else env.peak_rps)
    raise ConfigError(f"unknown policy '{name}' (known: hpa-frontier, hpa@X, hpa+vpa[@X], vpa, oracle, static)")


def make_policy(name: str, env: AutoscaleEnv, rates: np.ndarray) -> Policy:
    """Build policy `name` for `env`, whose episode will replay `rates`."""
    policy = _builder(name)(EnvContext.of(env), env, rates)
    policy.name = "hpa@0.6" if name == "hpa" else name
    return policy
