"""Any policy fed its load averaged over a window (``smooth@S:POLICY``).

The maths is ``envs.input_window.smoothed_observation`` (why, and what is averaged, is there); this
module keeps the last observations it needs, one episode or one controlled app at a time. Only the
policy sees the averaged load: ``smooth@S`` goes directly in front of it, and the rules written in
front of that (``stable@120:floor@0.8:smooth@60:ddpg:pretrained``) read the observation as measured,
so ``floor@T`` still follows a rise at once. The action is a step from the settings that run now,
which the window leaves as they are.

The endpoint is stateless (one observation in, one action out), so behind a controller the window
lives in the controller: it sends the endpoint the averaged observation (``InputWindow.peek``) and
applies the rules to the measured one, the same sequence ``SmoothedInputPolicy`` runs in evaluate.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from envs.errors import ConfigError
from envs.input_window import smoothed_observation
from envs.rules import MAX_WINDOW_S, window_intervals
from policies.base import EnvContext, Policy

PREFIX = "smooth@"
USAGE = "smooth@SECONDS:POLICY, e.g. smooth@60:ddpg:pretrained"


def window_seconds(head: str, name: str) -> float:
    """The window of a ``smooth@S`` prefix, or a one-line ConfigError naming the policy."""
    text = head[len(PREFIX) :]
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"policy '{name}': {head!r} needs a window in seconds after '@', got {text!r}") from None
    if not 0 < value <= MAX_WINDOW_S:
        raise ConfigError(f"policy '{name}': input window must be in (0, {MAX_WINDOW_S:g}] s, got {value:g}")
    return value


class InputWindow:
    """The last observations of one app, and the averaged one its policy acts on."""

    def __init__(self, ctx: EnvContext, window_s: float):
        self.ctx = ctx
        self.window = window_intervals(window_s, ctx.interval_s)
        # One row more than the window: the averaged rate's trend compares it with the window before.
        self.rows: deque[np.ndarray] = deque(maxlen=self.window + 1)

    def peek(self, observation: np.ndarray) -> np.ndarray:
        """What the policy sees for `observation`, the next measured one, without keeping it."""
        rows = [*self.rows, np.asarray(observation, dtype=np.float64)]
        return smoothed_observation(np.stack(rows), self.ctx.layout, self.ctx.app.n_services, self.window)

    def push(self, observation: np.ndarray) -> None:
        """Keep `observation` (once per interval, whether or not a policy acted on it)."""
        self.rows.append(np.asarray(observation, dtype=np.float64).copy())

    def see(self, observation: np.ndarray) -> np.ndarray:
        """``peek`` then ``push``: what the policy sees this interval."""
        seen = self.peek(observation)
        self.push(observation)
        return seen


def input_window(policy: Any) -> InputWindow | None:
    """A fresh ``InputWindow`` like that of the ``smooth@S`` in a built chain (None without one).

    For callers that compute the innermost policy's action elsewhere (a batched forward, the
    endpoint) and hand it in as a ``GivenAction``: they keep this window beside the chain, ask the
    forward with ``peek`` and ``push`` each measured observation, as the chain's own window does.
    """
    while policy is not None:
        if isinstance(policy, SmoothedInputPolicy):
            return policy.new_window()
        policy = getattr(policy, "policy", None)
    return None


class SmoothedInputPolicy:
    """`policy` acting on its observations with the load averaged over the last `window_s` seconds."""

    def __init__(self, policy: Policy, ctx: EnvContext, window_s: float):
        self.policy = policy
        self.ctx = ctx
        self.window_s = window_s
        self.name = f"{PREFIX}{window_s:g}:{getattr(policy, 'name', 'policy')}"
        self.vertical_mode = getattr(policy, "vertical_mode", "in-place")

    def new_window(self) -> InputWindow:
        """An empty window of this policy's length (an episode's start, or a caller's own copy)."""
        return InputWindow(self.ctx, self.window_s)

    def initial_state(self) -> Any:
        return {"policy": self.policy.initial_state(), "window": self.new_window()}

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        seen = state["window"].see(observation)
        action, state["policy"] = self.policy.act(seen, state["policy"])
        return action, state
