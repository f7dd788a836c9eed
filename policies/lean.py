"""Any policy kept from growing a service further than the HPA would (``lean@U:POLICY``).

The HPA cannot add pods to a service whose utilisation is below its target: the rule
``ceil(replicas x utilisation / target)`` never exceeds the current count there. A learned policy
has no such floor under its reasoning. Where its observations leave what it saw in training (a
service with no requests for hours), it can double a CPU limit or add pods with nothing to serve,
then cut them again, interval after interval, and pay for capacity no request uses.
``lean@U:POLICY`` lets POLICY grow a service's CPU capacity (replicas x CPU limit) only as far as
the HPA would: to where the service would run at utilisation U (``ceil(replicas x utilisation /
U)`` pods, or the same factor on the limit), utilisation counted over every desired pod as the HPA
counts a pod that is not ready yet. A service that is throttled, drops requests or queues may grow
as asked; so may a CPU limit below one core, up to one core, while the app's end-to-end p99 is past
its SLO (such a limit slows every request, however idle the pod). Everything else (decreases,
memory) passes as asked.

Like ``stable@S:POLICY`` it reads the policy's asks back from its actions with the env's own
decoding and needs nothing beyond the observation, so it wraps any policy. The maths lives in
``envs.rules``, which an env also applies when a policy trains under the rule.
"""

from __future__ import annotations

from envs.rules import BACKLOG_REQUESTS, check_rule, growth_room, hold_growth
from policies.base import EnvContext, Policy, PolicyRule

__all__ = ["BACKLOG_REQUESTS", "LeanPolicy", "growth_room", "hold_growth"]


class LeanPolicy(PolicyRule):
    """`policy` acts; it may not grow a service that shows no pressure (see the module docstring)."""

    def __init__(self, policy: Policy, ctx: EnvContext, min_utilization: float):
        super().__init__(policy, ctx, check_rule("lean", min_utilization, "lean@"))
        self.min_utilization = min_utilization
