"""The online safety monitor: is the policy doing worse than the heuristic it replaced?

Two signals, over the intervals the policy controlled:

- **violations**, over the last ``window``: the heuristic's reference violation rate (measured
  while it was in control) plus a margin gives a budget of violating intervals per window; one
  more than the budget trips the monitor at once, so a policy that breaks the SLO on every
  interval is caught after ``budget + 1`` intervals, well within the window;
- **cost**, over the last ``cost_window`` (``window`` unless set longer): what the policy
  reserved, in money (CPU cores plus memory GiB at the env's memory price, as the scoreboard
  counts it), against what the HPA's rule reserves for the CPU in use times the heuristic's own
  measured ratio to that rule, where the heuristic has controlled long enough to measure it
  (training's OFFLINE phase); otherwise against what the heuristic, running in the shadow, would
  reserve with its next decision. Judged once a whole cost window is in. Counting CPU alone tripped
  on policies that hold more CPU and much less memory than the heuristic, handing control to a
  heuristic that cost more.

Counterfactual violations cannot be observed (the heuristic did not act); the CPU a rule would
reserve for the observed usage can be computed: that is why the two signals use different
references.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    """One policy-controlled interval as the monitor sees it."""

    violated: bool
    reserved: float
    """What the policy had reserved over the interval, in cores plus priced GiB (replicas x
    (CPU limit + memory limit x memory price))."""
    rule: float
    """The same for what the HPA rule reserves for the CPU in use at the same decision."""
    shadow: float = 0.0
    """The same for what the heuristic, deciding in the shadow, asked for at the same decision."""


class SafetyMonitor:
    """Sliding-window judge of the policy against the heuristic's reference."""

    def __init__(self, window: int, violation_margin: float, cost_margin: float, cost_window: int | None = None):
        self.window = window
        self.cost_window = cost_window or window
        """Intervals the cost rule judges together (a cost overrun is no emergency, and the
        heuristic's own ratio to the rule swings with the load's trend over shorter spans)."""
        self.violation_margin = violation_margin
        self.cost_margin = cost_margin
        self.reference_violation_rate = 0.0
        """The heuristic's violation rate while it controlled (set by the lifecycle)."""
        self.cost_reference: float | None = 1.0
        """The heuristic's own reserved money over the HPA rule's, while it controlled (None: not
        measured; the shadow heuristic's asks are the yardstick then)."""
        self.intervals: deque[Interval] = deque(maxlen=max(window, self.cost_window))

    def budget(self) -> int:
        """Violating intervals allowed in one window."""
        rate = min(self.reference_violation_rate + self.violation_margin, 1.0)
        return math.floor(rate * self.window + 1e-9)

    def reset(self) -> None:
        """Forget the window (after a fallback, or on a new episode)."""
        self.intervals.clear()

    def observe(self, interval: Interval) -> str | None:
        """Add one interval; the reason to hand control back, or None while the policy is fine."""
        self.intervals.append(interval)
        recent = list(self.intervals)[-self.window :]
        violations = sum(i.violated for i in recent)
        budget = self.budget()
        if violations > budget:
            return (
                f"policy violated the SLO in {violations} of its last {len(recent)} intervals; "
                f"the budget is {budget} per {self.window} (heuristic reference "
                f"{100 * self.reference_violation_rate:.1f}% + {100 * self.violation_margin:.1f}% margin)"
            )
        if len(self.intervals) >= self.cost_window:
            judged = list(self.intervals)[-self.cost_window :]
            mine = sum(i.reserved for i in judged)
            if self.cost_reference is not None:
                theirs = sum(i.rule for i in judged)
                allowed = self.cost_reference * (1.0 + self.cost_margin)
                yardstick = "the HPA rule gives the CPU in use"
                detail = f"the heuristic's own ratio {self.cost_reference:.2f}, allowed {allowed:.2f}x"
            else:
                theirs = sum(i.shadow for i in judged)
                allowed = 1.0 + self.cost_margin
                yardstick = "the heuristic asked for in the shadow"
                detail = f"allowed {allowed:.2f}x"
            if theirs > 0 and mine > theirs * allowed:
                return (
                    f"policy reserved {mine / theirs:.2f}x the money (CPU plus priced memory) {yardstick} "
                    f"over {self.cost_window} intervals ({detail})"
                )
        return None
