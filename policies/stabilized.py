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
observation. The maths lives in ``envs.rules``, which an env also applies when a policy trains
under the rule.
"""

from __future__ import annotations

from envs.rules import MAX_WINDOW_S, check_rule, stabilize, window_intervals
from policies.base import EnvContext, Policy, PolicyRule

__all__ = ["MAX_WINDOW_S", "StabilizedPolicy", "stabilize", "window_intervals"]


class StabilizedPolicy(PolicyRule):
    """`policy` acts; its decreases are held to the highest of its asks in the last `window_s`."""

    def __init__(self, policy: Policy, ctx: EnvContext, window_s: float):
        super().__init__(policy, ctx, check_rule("stable", window_s, "stable@"))
        self.window_s = window_s
        self.intervals = window_intervals(window_s, ctx.interval_s)
