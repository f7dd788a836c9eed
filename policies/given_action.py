"""A policy whose action was computed elsewhere: a batched forward, or the endpoint.

Put behind a policy's rules (``policies.base.behind_rules``), it lets the rule wrappers run exactly
as they run around the policy itself, while one forward serves many observations: the endpoint
answers a batch of requests so (``aware_ray.serving.runtime``), and the embedding probe steps its
episodes side by side so (``aware_ray.evaluation.probe``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class GivenAction:
    """Acts with ``.action``, set by the caller before each ``act``."""

    vertical_mode = "in-place"

    def __init__(self, name: str = "given"):
        self.name = name
        self.action: np.ndarray | None = None

    def initial_state(self) -> Any:
        return None

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        assert self.action is not None, "set .action before act()"
        return self.action, state
