"""The scoreboard figures and reward of a batch of control intervals, as arrays.

One function scores every interval the project runs: the single env and the controller call it
with a batch of one (``envs.autoscale_env.interval_scores``), the vector env with all of its
clusters at once. Ground truth from the simulator where there is one; on a cluster the observed
metrics stand in for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.app import AppSpec
from envs.metrics_batch import MetricsBatch
from envs.reward import RewardWeights, reward_batch

DROP_VIOLATION = 1.0
"""Dropped requests in an interval from which it counts as violating (one whole request)."""


@dataclass
class IntervalScores:
    """Per interval of a batch, (batch,) arrays: the ``StepRecord`` fields and the reward."""

    external_rps: np.ndarray
    e2e_p99_ms: np.ndarray
    violated: np.ndarray
    dropped: np.ndarray
    cpu_core_hours: np.ndarray
    mem_gib_hours: np.ndarray
    cpu_utilization: np.ndarray
    reward: np.ndarray
    reserved_cores: np.ndarray
    reserved_gib: np.ndarray
    history_reward: np.ndarray
    """The reward under the history's weights (``EnvConfig.history_weights``): what the history
    rows record. The same array as ``reward`` unless those weights differ."""


def score_intervals(
    m: MetricsBatch | None,
    truth: Any,
    replicas: np.ndarray,
    cpu_limit: np.ndarray,
    mem_limit: np.ndarray,
    app: AppSpec,
    interval_s: float,
    weights: RewardWeights,
    changed: np.ndarray,
    overridden: np.ndarray | float = 0.0,
    history_weights: RewardWeights | None = None,
) -> IntervalScores:
    """Scores of intervals that ended with metrics `m` under the decisions (replicas, limits),
    (batch, services) each.

    ``truth``: the simulator's ground truth of the intervals (``StepTruth``, a row per interval),
    or None on a cluster, where the observed metrics `m` stand in for it (`m` is read only then).
    ``changed``: services whose settings changed in each interval; ``overridden``: how far the
    rules moved each action; ``history_weights``: the weights of ``history_reward`` (None: `weights`).
    """
    hours = interval_s / 3600.0
    if truth is not None:
        p99 = truth.e2e_p99_ms
        dropped = truth.dropped_total
        external = truth.external_requests
        cap = (truth.ready_avg * cpu_limit).sum(axis=-1)
        used = truth.cpu_usage.sum(axis=-1)
        core_h = truth.cpu_core_hours
        mem_h = truth.mem_gib_hours
    else:
        assert m is not None, "metrics are needed without ground truth"
        p99, dropped = m.e2e_p99_ms, m.dropped_total
        external = m.external_rps * interval_s
        cap = (m.ready_replicas * m.cpu_limit).sum(axis=-1)
        used = m.cpu_usage.sum(axis=-1)
        alloc = m.replicas - m.pending_replicas
        core_h = (alloc * m.cpu_limit).sum(axis=-1) * hours
        mem_h = (alloc * m.mem_limit).sum(axis=-1) / 1024.0 * hours
    util = np.divide(used, cap, out=np.zeros_like(used), where=cap > 0)
    drop_share = np.divide(dropped, external, out=np.zeros_like(dropped), where=external > 0)
    reserved = (replicas * cpu_limit).sum(axis=-1)
    reserved_mem = (replicas * mem_limit).sum(axis=-1)
    violated = (p99 > app.slo_ms) | (dropped >= DROP_VIOLATION)
    terms = dict(
        e2e_p99_ms=p99,
        slo_ms=app.slo_ms,
        drop_share=drop_share,
        violated=violated,
        cpu_utilization=util,
        changed_services=changed,
        n_services=app.n_services,
        reserved_share=reserved / app.node_cores,
        reserved_mem_share=reserved_mem / app.node_mem_mib,
        overridden=overridden,
    )
    r = reward_batch(weights=weights, **terms)
    same = history_weights is None or history_weights == weights
    history = r if same else reward_batch(weights=history_weights, **terms)
    return IntervalScores(
        external_rps=external / interval_s,
        e2e_p99_ms=p99,
        violated=violated,
        dropped=dropped,
        cpu_core_hours=core_h,
        mem_gib_hours=mem_h,
        cpu_utilization=util,
        reward=r,
        reserved_cores=reserved,
        reserved_gib=reserved_mem / 1024.0,
        history_reward=history,
    )
