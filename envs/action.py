"""Decoding actions in [-1, 1] into scaling decisions, and encoding decisions back.

Per service the action is (replicas, CPU limit, memory limit), each relative to the current
setting so that one policy fits services of any size:

* replicas: a > 0 adds ``round(a * up_range)`` pods, a < 0 removes ``round(-a * down_range)``,
  where the ranges are exactly the guard's per-interval limits (the HPA's default scaling
  policies), so the extreme actions are the largest steps the guard allows;
* limits: multiply by ``max_limit_factor ** a``, rounded to millicores and whole MiB as
  Kubernetes quantities are.

``encode`` is the inverse: it maps a heuristic's decision (HPA, VPA) into the action that
decodes to it, which is how heuristics run through the same env and fill a replay buffer.
"""

from __future__ import annotations

import numpy as np

from envs.guard import GuardConfig
from envs.metrics import ScalingDecision

ACTION_DIMS = 3
"""Action components per service: replicas, CPU limit, memory limit."""


def clean_actions(action: np.ndarray) -> np.ndarray:
    """Actions as float64 in [-1, 1], NaN read as 0 (no change): what a policy's raw output means."""
    a = np.asarray(action, dtype=np.float64)
    return np.clip(np.where(np.isnan(a), 0.0, a), -1.0, 1.0)


def decode_batch(
    action: np.ndarray, replicas: np.ndarray, cpu_limit: np.ndarray, mem_limit: np.ndarray, config: GuardConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replicas (int64), CPU and memory limits asked for by `action`, (..., n_services, 3), from
    the current settings, (..., n_services) each: ``decode`` over any leading batch axes."""
    a = clean_actions(action)
    cur = np.asarray(replicas, dtype=np.float64)
    rng = np.where(a[..., 0] >= 0, config.up_range(cur), config.down_range(cur))
    new_r = cur + np.rint(a[..., 0] * rng)
    f = config.max_limit_factor
    cpu = np.round(cpu_limit * f ** a[..., 1], 3)
    mem = np.round(mem_limit * f ** a[..., 2])
    return new_r.astype(np.int64), cpu, mem


def decode(action: np.ndarray, current: ScalingDecision, config: GuardConfig) -> ScalingDecision:
    """Decision asked for by `action` (shape (n_services, 3), values clipped to [-1, 1])."""
    r, c, m = decode_batch(
        np.asarray(action, dtype=np.float64)[None],
        current.replicas[None],
        current.cpu_limit[None],
        current.mem_limit[None],
        config,
    )
    return ScalingDecision(replicas=r[0], cpu_limit=c[0], mem_limit=m[0])


def encode(target: ScalingDecision, current: ScalingDecision, config: GuardConfig) -> np.ndarray:
    """Action (n_services, 3) that decodes to `target` from `current`, clipped to [-1, 1]."""
    cur = current.replicas.astype(np.float64)
    delta = target.replicas.astype(np.float64) - cur
    rng = np.where(delta >= 0, config.up_range(cur), config.down_range(cur))
    with np.errstate(divide="ignore", invalid="ignore"):
        a_r = np.where(rng > 0, delta / rng, 0.0)
    log_f = np.log(config.max_limit_factor) if config.max_limit_factor > 1 else np.inf
    a_c = np.log(target.cpu_limit / current.cpu_limit) / log_f
    a_m = np.log(target.mem_limit / current.mem_limit) / log_f
    return np.clip(np.stack([a_r, a_c, a_m], axis=1), -1.0, 1.0)
