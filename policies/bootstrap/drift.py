"""Drift detection for a serving policy: has the world moved away from what it trained on?

Two rules, either one triggers retraining:

- **rewards** (AWARE's rule): the mean of recent episode rewards leaves the training
  reference's mean +- k spreads, or the recent spread grows beyond a factor of the reference's;
- **workload embedding**: the meta-learner's embedding of recent episodes sits many reference
  spreads away from the embeddings seen in training (a workload the policy never met).

Pure functions on arrays, so tests can state each case as a table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPREAD_FLOOR = 1e-3
"""Smallest spread a reference is given, so a perfectly steady training phase is not a hair trigger."""


@dataclass(frozen=True)
class Reference:
    """What training looked like: episode rewards and (optionally) episode embeddings."""

    reward_mean: float
    reward_std: float
    embedding_mean: np.ndarray | None = None
    embedding_std: np.ndarray | None = None

    @staticmethod
    def of(rewards: list[float], embeddings: list[np.ndarray] | None = None) -> Reference:
        r = np.asarray(rewards, dtype=np.float64)
        if r.size == 0:
            raise ValueError("a drift reference needs at least one episode reward")
        std = max(float(r.std()), SPREAD_FLOOR, 0.01 * abs(float(r.mean())))
        emb_mean = emb_std = None
        if embeddings:
            e = np.stack([np.asarray(x, dtype=np.float64) for x in embeddings])
            emb_mean = e.mean(axis=0)
            spread = e.std(axis=0)
            # No dimension's spread is taken below the mean spread over dimensions: one that
            # barely moved in training would otherwise turn noise into "drift".
            emb_std = np.maximum(spread, max(float(spread.mean()), SPREAD_FLOOR))
        return Reference(float(r.mean()), std, emb_mean, emb_std)

    def to_dict(self) -> dict:
        return {
            "reward_mean": self.reward_mean,
            "reward_std": self.reward_std,
            "embedding_mean": None if self.embedding_mean is None else self.embedding_mean.tolist(),
            "embedding_std": None if self.embedding_std is None else self.embedding_std.tolist(),
        }


def reward_drift(recent: list[float], ref: Reference, k: float, spread_factor: float) -> str | None:
    """Why the recent episode rewards count as drift, or None."""
    r = np.asarray(recent, dtype=np.float64)
    mean = float(r.mean())
    low, high = ref.reward_mean - k * ref.reward_std, ref.reward_mean + k * ref.reward_std
    if not low <= mean <= high:
        return (
            f"reward drift: mean episode reward {mean:.3f} over {r.size} episodes is outside "
            f"{ref.reward_mean:.3f} +- {k:g} x {ref.reward_std:.3f}"
        )
    if r.size > 1 and float(r.std()) > spread_factor * ref.reward_std:
        return (
            f"reward drift: spread {float(r.std()):.3f} over {r.size} episodes exceeds "
            f"{spread_factor:g} x the training spread {ref.reward_std:.3f}"
        )
    return None


def embedding_distance(recent: list[np.ndarray], ref: Reference) -> float:
    """RMS over dimensions of how many reference spreads the recent mean embedding is away."""
    if ref.embedding_mean is None or ref.embedding_std is None:
        return 0.0
    z = (np.mean(np.stack(recent), axis=0) - ref.embedding_mean) / ref.embedding_std
    return float(np.sqrt(np.mean(z**2)))


def embedding_drift(recent: list[np.ndarray], ref: Reference, threshold: float) -> str | None:
    """Why the recent workload embeddings count as drift, or None (threshold 0: never)."""
    if threshold <= 0 or not recent or ref.embedding_mean is None:
        return None
    d = embedding_distance(recent, ref)
    if d > threshold:
        return (
            f"workload drift: the embedding of the last {len(recent)} episodes is {d:.1f} spreads "
            f"from training (limit {threshold:g})"
        )
    return None
