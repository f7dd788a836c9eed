"""The bootstrapping lifecycle's criteria, validated key by key.

Every transition has an explicit criterion here, so a run's log can say why it moved:
the heuristic keeps control for ``offline_episodes`` episodes and until the actor clones it to
``bc_loss_max``; online, the monitor compares the last ``window`` policy-controlled intervals
with the heuristic's reference and hands control back when the policy is worse by more than a
margin; ``serving_episodes`` episodes in which the policy mostly acted and stayed within the
heuristic's violation rate plus the margin freeze the policy; drift in the rewards or
in the workload embedding sends it back to learning.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from envs.errors import ConfigError
from envs.typed_config import from_mapping
from policies.bootstrap.phase import Phase

TEACHERS = ("hpa", "hpa+vpa")


@dataclass(frozen=True)
class BootstrapConfig:
    """How the heuristic hands control to the learned policy, and takes it back."""

    heuristic: str = "hpa+vpa@0.5"
    """The teacher and fallback: ``hpa@T`` or ``hpa+vpa@T`` (HPA on CPU at target T, VPA on memory)."""
    start_phase: str = "initialized"
    """Phase to start in (``online`` starts the policy at once, with the monitor still on)."""
    offline_episodes: int = 50
    """Episodes the heuristic controls before the policy may take over (AWARE's default: 50)."""
    bc_loss_max: float = 0.05
    """Behaviour-cloning loss (mean squared action error) the actor must reach to go online."""
    online_bc_weight: float = 0.5
    """Online, the actor loss is -Q/mean|Q| + this x the cloning loss on replayed actions (TD3+BC)."""
    window: int = 40
    """Policy-controlled intervals the monitor judges together (40 x 15 s = 10 minutes)."""
    violation_margin: float = 0.05
    """Violation rate the policy may exceed the heuristic's reference by, within a window."""
    cost_margin: float = 0.25
    """Share by which what the policy reserves (CPU plus memory at the env's memory price) may exceed
    what the heuristic asks for, over a cost window."""
    cost_window: int = 0
    """Policy-controlled intervals the cost rule judges together (0: ``window``). Longer than the
    violation window is sound: a cost overrun is no emergency, and over short spans the heuristic's
    own ratio to the rule swings with the load's trend (its scale-down stabilisation)."""
    cooldown: int = 80
    """Intervals the heuristic keeps control after a fallback; doubles after each fallback in a row
    (across episodes: only a whole window without a trip brings it back down). 80 (20 minutes) was
    chosen on validation for the controller: on load with ten-fold bursts, 40 left the
    deployment's violations above the safest heuristic's and 80 brought them under
    (docs/results/2026-12-07-jump-validation.md)."""
    max_cooldown: int = 640
    """Cap of that doubling."""
    handback: bool = False
    """End a cooldown early when the heuristic does worse than the policy did: once its violating
    intervals over its last ``window`` in control (after ``handback_grace``) outnumber those of the
    policy's window that tripped the monitor, the policy takes control back (the backoff stays).
    Without it the monitor judges only the policy, and a heuristic that breaks the SLO keeps
    control for the whole cooldown. Off: on validation it met the goal on one workload more, but a
    heuristic still undoing a bad policy's state counts as doing worse, and hands control straight
    back to it (docs/results/2026-12-07-policy-release.md)."""
    handback_grace: int = 8
    """Intervals the heuristic in control is not judged on by ``handback``: the time it needs to
    undo whatever state the policy left (the guard lets replicas and limits double per interval, so
    8 intervals cover a 256x change, and a pod starts in at most 40 s). Without it a policy that
    sets everything to its minimum would get control straight back."""
    canary_envs: int = 0
    """Envs (namespaces) where the ONLINE policy acts, the others staying with the heuristic until
    it is proven and SERVING; 0 lets it act everywhere at once."""
    serving_episodes: int = 20
    """Episodes the policy acted in that are judged together before it is frozen (ONLINE -> SERVING)."""
    serving_min_share: float = 0.8
    """Share of those episodes' intervals the policy must have acted on (fallbacks take the rest)."""
    drift_episodes: int = 5
    """Recent serving episodes the drift rule compares with the training reference."""
    drift_reward_k: float = 3.0
    """Drift when the recent mean reward leaves the reference mean +- k x its spread (AWARE's rule)."""
    drift_spread_factor: float = 3.0
    """... or when the recent spread of episode rewards exceeds this x the reference spread."""
    drift_embedding: float = 3.0
    """... or when the recent workload embedding is this many reference spreads away (0 turns it off)."""
    utilization_ceiling: float = 0.0
    """Whenever the policy acts, replicas are raised so that no service plans above this CPU
    utilisation at the usage just observed, CPU limits are kept at or above the Deployment's own
    and memory limits at or above the heuristic's; the heuristic decides each episode's first
    interval (see shield.py; 0 turns this floor off)."""
    limit_tolerance: float = 0.0
    """Whenever the policy acts, CPU and memory changes smaller than this (in action units, where
    1 is the largest step) are not made, so small biases do not compound (see shield.py; 0: off)."""

    def __post_init__(self) -> None:
        self.phase  # noqa: B018 - parses start_phase
        self.teacher  # noqa: B018 - parses heuristic
        for key in ("offline_episodes", "serving_episodes", "canary_envs", "cost_window", "handback_grace"):
            _int(key, getattr(self, key), 0)
        for key in ("window", "cooldown", "max_cooldown", "drift_episodes"):
            _int(key, getattr(self, key), 1)
        if self.max_cooldown < self.cooldown:
            raise ConfigError(f"bootstrap.max_cooldown: must be >= cooldown ({self.cooldown}), got {self.max_cooldown}")
        for key in ("bc_loss_max", "online_bc_weight", "violation_margin", "cost_margin", "drift_embedding"):
            _number(key, getattr(self, key), 0.0)
        for key in ("drift_reward_k", "drift_spread_factor"):
            value = getattr(self, key)
            _number(key, value, 0.0)
            if value == 0:
                raise ConfigError(f"bootstrap.{key}: must be > 0, got {value}")
        if not 0 <= self.serving_min_share <= 1:
            raise ConfigError(f"bootstrap.serving_min_share: must be in [0, 1], got {self.serving_min_share}")
        _number("utilization_ceiling", self.utilization_ceiling, 0.0)
        _number("limit_tolerance", self.limit_tolerance, 0.0)
        if self.limit_tolerance >= 1:
            raise ConfigError(f"bootstrap.limit_tolerance: must be in [0, 1), got {self.limit_tolerance}")
        if self.utilization_ceiling > 1:
            raise ConfigError(
                f"bootstrap.utilization_ceiling: must be in (0, 1], or 0 for off, got {self.utilization_ceiling}"
            )
        if self.violation_margin > 1:
            raise ConfigError(f"bootstrap.violation_margin: must be a rate in [0, 1], got {self.violation_margin}")
        if not isinstance(self.handback, bool):
            raise ConfigError(f"bootstrap.handback: must be true or false, got {self.handback!r}")

    @property
    def phase(self) -> Phase:
        return Phase.parse(self.start_phase, "bootstrap.start_phase")

    @property
    def teacher(self) -> tuple[str, float]:
        """(kind, target utilisation) of the heuristic."""
        kind, _, target = str(self.heuristic).partition("@")
        if kind not in TEACHERS:
            raise ConfigError(f"bootstrap.heuristic: expected hpa@T or hpa+vpa@T, got {self.heuristic!r}")
        try:
            value = float(target) if target else 0.6
        except ValueError:
            raise ConfigError(f"bootstrap.heuristic: target must be a number, got {target!r}") from None
        if not 0.05 <= value <= 1.0:
            raise ConfigError(f"bootstrap.heuristic: target must be in [0.05, 1.0], got {value}")
        return kind, value

    @staticmethod
    def from_dict(d: dict[str, Any] | None) -> BootstrapConfig:
        """Build from a mapping; unknown keys and wrong types give one line naming the key."""
        return from_mapping(BootstrapConfig, d, "bootstrap")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _int(key: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"bootstrap.{key}: must be an integer >= {low}, got {value!r}")


def _number(key: str, value: Any, low: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= low:
        raise ConfigError(f"bootstrap.{key}: must be a number >= {low}, got {value!r}")
