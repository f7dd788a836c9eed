"""Exploration noise for DDPG: Gaussian or Ornstein-Uhlenbeck, with a linear decay schedule.

The scale decays from ``sigma`` to ``final_sigma`` over ``decay_steps`` sampled actions (counted
by the env runner's module copy), so early training explores widely and later training
refines. OU noise is temporally correlated, which suits control tasks where a single step's
jitter averages out; its state is kept per batch row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

NOISE_TYPES = ("gaussian", "ou")


@dataclass
class ExplorationNoise:
    type: str = "gaussian"
    """'gaussian' or 'ou' (Ornstein-Uhlenbeck)."""
    sigma: float = 0.2
    """Initial standard deviation (in action units, actions in [-1, 1])."""
    final_sigma: float = 0.05
    """Standard deviation after the decay."""
    decay_steps: int = 50_000
    """Sampled actions over which sigma decays linearly to final_sigma."""
    ou_theta: float = 0.15
    """Mean reversion rate of OU noise."""

    def __post_init__(self) -> None:
        if self.type not in NOISE_TYPES:
            raise ValueError(f"exploration.type: expected one of {NOISE_TYPES}, got {self.type!r}")
        if self.sigma < 0 or self.final_sigma < 0:
            raise ValueError("exploration.sigma and exploration.final_sigma must be >= 0")
        if self.decay_steps < 0:
            raise ValueError("exploration.decay_steps must be >= 0")
        if not 0 < self.ou_theta <= 1:
            raise ValueError("exploration.ou_theta must be in (0, 1]")
        self.steps = 0
        self._ou: torch.Tensor | None = None

    @staticmethod
    def from_config(d: dict[str, Any]) -> ExplorationNoise:
        return ExplorationNoise(**d)

    def scale(self) -> float:
        """Current sigma of the schedule."""
        if self.decay_steps == 0:
            return self.final_sigma
        frac = min(self.steps / self.decay_steps, 1.0)
        return self.sigma + (self.final_sigma - self.sigma) * frac

    def sample(self, like: torch.Tensor) -> torch.Tensor:
        sigma = self.scale()
        self.steps += like.shape[0]
        if self.type == "gaussian":
            return torch.randn_like(like) * sigma
        if self._ou is None or self._ou.shape != like.shape:
            self._ou = torch.zeros_like(like)
        self._ou = self._ou - self.ou_theta * self._ou + sigma * torch.randn_like(like)
        return self._ou
