"""A policy whose action was computed elsewhere: a batched forward, or the endpoint.

Standing in for a learned policy (its name, the rules it trained under), it goes behind those rules
with ``policies.registry.trained_behind_rules`` as the policy would, so the rule wrappers run exactly
as they run around the policy itself while one forward serves many observations: the endpoint
answers a batch of requests so (``aware_ray.serving.runtime``), the controller applies the
endpoint's answer so (``aware_ray.control.app_controller``), and validation and the embedding probe
step their episodes side by side so (``aware_ray.evaluation``).

The action must have been computed for the observation the wrappers hand it. They hand it the
measured one, except ``smooth@S`` (``policies.smoothed_input``), which hands it the load averaged
over a window; a caller then asks its forward with ``InputWindow.peek``. A caller that sets
``.observation`` beside ``.action`` has that checked on every ``act``: a forward asked with the
measured observation behind ``smooth@S`` would otherwise run silently as if the window were not there.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class GivenAction:
    """Acts with ``.action``, set by the caller before each ``act``; ``name`` and ``rules`` are
    those of the policy it stands in for (no rules for a heuristic or a policy trained without)."""

    vertical_mode = "in-place"

    def __init__(self, name: str = "given", rules: tuple = ()):
        self.name = name
        self.rules = tuple(rules)
        self.action: np.ndarray | None = None
        self.observation: np.ndarray | None = None
        """The observation ``.action`` was computed for, when the caller says (checked in ``act``)."""

    @classmethod
    def standing_in_for(cls, policy: Any) -> GivenAction:
        """A given action under `policy`'s name and trained rules."""
        return cls(policy.name, getattr(policy, "rules", ()))

    def initial_state(self) -> Any:
        return None

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        assert self.action is not None, "set .action before act()"
        if self.observation is not None and not np.array_equal(np.asarray(observation, np.float32), self.observation):
            raise RuntimeError(
                f"{self.name}: the given action was computed for another observation than the one it acts on "
                "(a window on the policy's input, smooth@S, that the caller's forward did not apply)"
            )
        return self.action, state
