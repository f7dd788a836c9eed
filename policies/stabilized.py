"""Any policy behind a scale-down stabilization window, the HPA's defence against flapping.

The HPA never scales down to a single low recommendation: it takes the highest recommendation of
the last ``behavior.scaleDown.stabilizationWindowSeconds`` (300 s by default), while scale-up
follows at once. A learned policy that cuts CPU the interval load drops pays for it on load that
alternates faster than it can react (every rise lands on a cut-down limit). ``stable@S:POLICY``
runs POLICY with the same rule applied to each of its three outputs (replicas, CPU limit, memory
limit) over the last S seconds: increases pass, a decrease goes no lower than the highest of the
policy's own asks in the window, and never above the current setting.

A learned policy asks in steps from the current setting, which the window itself holds up, so a
policy that keeps asking to halve comes down one such step per window (the HPA's recommendations
are absolute counts and fall at once). That slower descent is part of the rule as measured:
comparing asks as ratios to the setting they were made from instead (so each cut passes once the
window holds only cuts) was tried, and on held load it let the policy's small upward asks block
every cut and cost more. The policy's asks are read back from its actions with the env's own
decoding, so the wrapper works for every policy and needs nothing from the env beyond the
observation.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from envs.metrics import ScalingDecision
from policies.base import EnvContext, Policy, PolicyRule

MAX_WINDOW_S = 3600.0
"""Longest window accepted (the HPA accepts up to one hour)."""


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


class StabilizedPolicy(PolicyRule):
    """`policy` acts; its decreases are held to the highest of its asks in the last `window_s`."""

    def __init__(self, policy: Policy, ctx: EnvContext, window_s: float):
        if not 0 <= window_s <= MAX_WINDOW_S:
            raise ValueError(f"stabilization window must be in [0, {MAX_WINDOW_S:.0f}] s, got {window_s}")
        self.prefix = f"stable@{window_s:g}"
        super().__init__(policy, ctx)
        self.window_s = window_s
        self.intervals = window_intervals(window_s, ctx.interval_s)

    def rule_state(self) -> Any:
        return deque(maxlen=self.intervals)

    def apply(self, want: ScalingDecision, current: ScalingDecision, services: np.ndarray, memory: Any):
        memory.append(want)
        return stabilize(want, current, list(memory)), memory
