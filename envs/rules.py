"""Controller rules in front of a policy's decisions: the scale-down stabilization window
(``stable@S``) and no growth without pressure (``lean@U``).

A controller applies them between the policy and the guard (``policies.stabilized``,
``policies.lean``). The env applies the same rules when its config names them (``rules:
"lean@0.1:stable@120"``), so a policy can train under the rules it will be deployed behind:
DESIGN's rule that training and the live controller run the same decoding and guard, extended to
the rules. Both paths go through ``RuleChain.effective_action``: the policy's ask is decoded, the
rules may change it, and only the services they changed are re-encoded, so the action the env
applies (and shows in the next observation) is the one a controller would have sent.

Pure maths, plus one small stateful class for the window's memory; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from envs.action import decode, encode
from envs.errors import ConfigError
from envs.guard import GuardConfig
from envs.metrics import ScalingDecision
from envs.observation import F

MAX_WINDOW_S = 3600.0
"""Longest stabilization window accepted (the HPA accepts up to one hour)."""
BACKLOG_REQUESTS = 1.0
"""A backlog above this many requests counts as pressure."""
KINDS = ("stable", "lean")


# ---------------------------------------------------------------------------------- stable@S


def stabilize(want: ScalingDecision, current: ScalingDecision, recent: list[ScalingDecision]) -> ScalingDecision:
    """`want` with each decrease raised to the highest of the `recent` asks (which include `want`),
    capped at the current setting; increases and unchanged settings pass as asked."""

    def hold(field: str) -> np.ndarray:
        ask = np.asarray(getattr(want, field), dtype=np.float64)
        cur = np.asarray(getattr(current, field), dtype=np.float64)
        high = np.max([np.asarray(getattr(r, field), dtype=np.float64) for r in recent], axis=0)
        return np.where(ask < cur, np.minimum(cur, np.maximum(ask, high)), ask)

    return ScalingDecision(
        replicas=np.rint(hold("replicas")).astype(np.int64), cpu_limit=hold("cpu_limit"), mem_limit=hold("mem_limit")
    )


def window_intervals(window_s: float, interval_s: float) -> int:
    """Control intervals a window of `window_s` seconds spans (the current one included)."""
    return max(1, math.ceil(window_s / interval_s - 1e-9))


# ---------------------------------------------------------------------------------- lean@U


def under_pressure(services: np.ndarray, min_utilization: float) -> np.ndarray:
    """Per service (rows of the observation's service block): does anything call for more capacity?"""
    backlog = np.expm1(services[:, F["queue"]] * 10.0)
    return (
        (services[:, F["cpu_util"]] >= min_utilization)
        | (services[:, F["throttled"]] > 0)
        | (services[:, F["drops"]] > 0)
        | (backlog > BACKLOG_REQUESTS)
    )


def hold_growth(want: ScalingDecision, current: ScalingDecision, pressure: np.ndarray) -> ScalingDecision:
    """`want`, with replica and CPU-limit increases of services without `pressure` held at the
    current setting."""
    idle = ~np.asarray(pressure, dtype=bool)
    replicas = np.where(idle & (want.replicas > current.replicas), current.replicas, want.replicas)
    cpu = np.where(idle & (want.cpu_limit > current.cpu_limit), current.cpu_limit, want.cpu_limit)
    return ScalingDecision(replicas=replicas.astype(np.int64), cpu_limit=cpu, mem_limit=want.mem_limit)


# ---------------------------------------------------------------------------------- chains


@dataclass(frozen=True)
class Rule:
    """One rule: ``stable`` with a window in seconds, or ``lean`` with a utilisation threshold."""

    kind: str
    value: float

    def __str__(self) -> str:
        return f"{self.kind}@{self.value:g}"


def check_rule(kind: str, value: float, where: str) -> Rule:
    """A Rule, or a one-line ConfigError that starts with `where`."""
    if kind == "stable" and not 0 <= value <= MAX_WINDOW_S:
        raise ConfigError(f"{where}: stabilization window must be in [0, {MAX_WINDOW_S:g}] s, got {value:g}")
    if kind == "lean" and not 0 <= value <= 1:
        raise ConfigError(f"{where}: utilisation threshold must be in [0, 1], got {value:g}")
    if kind not in KINDS:
        raise ConfigError(f"{where}: unknown rule {kind!r} (known: stable@SECONDS, lean@UTILISATION)")
    return Rule(kind, float(value))


def parse_rules(text: str, where: str = "rules") -> tuple[Rule, ...]:
    """``"lean@0.1:stable@120"`` -> its rules, outermost first; "" -> none."""
    rules = []
    for part in (p.strip() for p in text.split(":")) if text.strip() else ():
        kind, sep, number = part.partition("@")
        if not sep:
            raise ConfigError(f"{where}: {part!r} is not a rule (write e.g. lean@0.1:stable@120)")
        try:
            value = float(number)
        except ValueError:
            raise ConfigError(f"{where}: {part!r} needs a number after '@', got {number!r}") from None
        rules.append(check_rule(kind, value, where))
    return tuple(rules)


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


class RuleChain:
    """Rules applied in order, innermost (last named) first, as nested controller wrappers do;
    holds the stabilization windows' memory of the asks each rule received."""

    def __init__(self, rules: tuple[Rule, ...], interval_s: float):
        self.rules = rules
        self.interval_s = interval_s
        self.reset()

    def reset(self) -> None:
        """Forget the asks of an earlier episode."""
        self.memory = [
            deque(maxlen=window_intervals(r.value, self.interval_s)) if r.kind == "stable" else None for r in self.rules
        ]

    def apply(self, want: ScalingDecision, current: ScalingDecision, services: np.ndarray) -> ScalingDecision:
        """The decision to let through, from the policy's ask, the current settings and the
        services' observation rows."""
        for rule, memory in zip(reversed(self.rules), reversed(self.memory), strict=True):
            if rule.kind == "stable":
                memory.append(want)
                want = stabilize(want, current, list(memory))
            else:
                want = hold_growth(want, current, under_pressure(services, rule.value))
        return want

    def effective_action(
        self, grid: np.ndarray, current: ScalingDecision, services: np.ndarray, guard: GuardConfig
    ) -> np.ndarray:
        """The action rows (n_services, 3) a controller would send for the policy's `grid`."""
        want = decode(grid, current, guard)
        return override_actions(grid, want, self.apply(want, current, services), current, guard)
