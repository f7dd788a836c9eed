"""The long load context: what the external load did over the last half hour or so, in a few numbers.

The history window (32 intervals, 8 minutes) is too short to tell workloads apart: a quiet
stretch before a flash crowd looks like a step's plateau or a slow diurnal hour, and a burst
looks like a spike. Over a longer span their shapes differ (``aware-ray bench separability``
measures how much), but feeding a GRU hundreds of rows per observation is costly for every
replayed sample. So the env summarises the log external rate over the last ``span`` intervals
into a fixed-size vector: shape statistics plus ``buckets`` coarse means. Every entry is
relative to the current level, because the shape, not the level, characterises a workload
(the level is already in the app features).

Pure functions of the series, shared by the env and the separability bench.
"""

from __future__ import annotations

import numpy as np

CONTEXT_STATS = (
    "max",  # highest log rate in the span, minus the current one
    "min",  # lowest, minus the current one
    "mean",  # mean, minus the current one
    "std",  # standard deviation of the log rate
    "mean_step",  # mean |change| between consecutive intervals
    "max_step",  # largest |change| between consecutive intervals
    "jumps",  # share of changes larger than JUMP (about 10 % of the rate)
    "above_mean",  # share of the span above its mean (a spike is short, a plateau long)
    "filled",  # share of the span observed so far (the first intervals of a run see less)
)
N_CONTEXT_STATS = len(CONTEXT_STATS)
JUMP = 0.1
"""A change of log1p(rate) larger than this counts as a jump."""
IDLE_SHARE = 0.2
"""A span with no requests at all in at least this share of its intervals is partly idle: its
statistics then describe the silence (``min``, ``std``, ``jumps`` follow the edges of the idle
stretch) more than the load. Training workloads alone go fully idle in about 1 % of their
contexts at this share."""


def context_size(span: int, buckets: int) -> int:
    """Entries of the context vector: the statistics and the coarse buckets (0 when off)."""
    return N_CONTEXT_STATS + buckets if span > 0 else 0


def load_context(log_rates: np.ndarray, span: int, buckets: int) -> np.ndarray:
    """The context of the last ``span`` values of ``log_rates`` (oldest first, current last).

    ``log_rates`` may be shorter than ``span`` (a run's first intervals): the statistics are
    over what was seen, and the buckets before it repeat the first value seen. ``span`` must
    be a multiple of ``buckets``.
    """
    x = np.asarray(log_rates, dtype=np.float64)[-span:]
    if len(x) == 0:
        return np.zeros(context_size(span, buckets), dtype=np.float64)
    cur = x[-1]
    d = np.abs(np.diff(x)) if len(x) > 1 else np.zeros(1)
    mean = x.mean()
    stats = [
        x.max() - cur,
        x.min() - cur,
        mean - cur,
        x.std(),
        d.mean(),
        d.max(),
        float((d > JUMP).mean()),
        float((x > mean).mean()),
        len(x) / span,
    ]
    padded = np.concatenate([np.full(span - len(x), x[0]), x])
    coarse = padded.reshape(buckets, span // buckets).mean(axis=1) - cur
    return np.concatenate([stats, coarse])


def partly_idle(log_rates: np.ndarray, span: int) -> bool:
    """Whether the last ``span`` values of ``log_rates`` are idle (log1p(rate) == 0) in
    at least ``IDLE_SHARE`` of the intervals.

    Such a context shows where the load stopped, not which workload ran: the stretches of no
    load that training inserts (``envs.workload.idle_gate``) hide the workload's shape, so
    the workload-identification loss leaves these contexts unlabelled instead of teaching the
    meta-learner that silence is a particular workload. An empty span is not idle (nothing
    was seen yet).
    """
    x = np.asarray(log_rates, dtype=np.float64)[-span:] if span > 0 else np.zeros(0)
    return len(x) > 0 and float((x <= 0.0).mean()) >= IDLE_SHARE
