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
    be a multiple of ``buckets``. ``load_context_batch`` over a batch of one.
    """
    window, count = _window(log_rates, span)
    return load_context_batch(window, count, buckets)[0]


def _window(log_rates: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``span`` values right-aligned in a (1, span) window, and how many there are."""
    x = np.asarray(log_rates, dtype=np.float64)[-span:] if span > 0 else np.zeros(0)
    window = np.zeros((1, span))
    if len(x):
        window[0, span - len(x) :] = x
    return window, np.array([len(x)])


def load_context_batch(window: np.ndarray, count: np.ndarray, buckets: int) -> np.ndarray:
    """``load_context`` of a batch of series at once, (batch, context size).

    ``window``: (batch, span), each row's last ``count`` entries the log rates seen (oldest
    first, current last; what lies before them is ignored), as an env's intervals fill it.
    """
    x = np.asarray(window, dtype=np.float64)
    B, span = x.shape
    n = np.minimum(np.asarray(count), span)
    nf = np.maximum(n, 1).astype(np.float64)
    nd = np.maximum(n - 1, 1).astype(np.float64)
    cur = x[:, -1]
    d = np.abs(x[:, 1:] - x[:, :-1])
    if (n >= span).all():
        # Every row full (the usual case once a span has run): the masks below would pass
        # every entry through unchanged, so this gives the same numbers with fewer passes.
        mean = x.sum(axis=1) / nf
        dev = x - mean[:, None]
        high, low, d_in = x.max(axis=1), x.min(axis=1), d
        jumps, above, padded = (d > JUMP).sum(axis=1), (x > mean[:, None]).sum(axis=1), x
    else:
        seen = np.arange(span)[None, :] >= (span - n)[:, None]
        d_seen = seen[:, :-1]
        mean = np.where(seen, x, 0.0).sum(axis=1) / nf
        dev = np.where(seen, x - mean[:, None], 0.0)
        high = np.where(seen, x, -np.inf).max(axis=1, initial=-np.inf)
        low = np.where(seen, x, np.inf).min(axis=1, initial=np.inf)
        d_in = np.where(d_seen, d, 0.0)
        jumps = (d_seen & (d > JUMP)).sum(axis=1)
        above = (seen & (x > mean[:, None])).sum(axis=1)
        first = x[np.arange(B), np.minimum(span - n, span - 1)]
        padded = np.where(seen, x, first[:, None])
    stats = np.stack(
        [
            high - cur,
            low - cur,
            mean - cur,
            np.sqrt((dev * dev).sum(axis=1) / nf),
            d_in.sum(axis=1) / nd,
            d_in.max(axis=1, initial=0.0),
            jumps / nd,
            above / nf,
            n / span,
        ],
        axis=1,
    )
    coarse = padded.reshape(B, buckets, span // buckets).mean(axis=2) - cur[:, None]
    out = np.concatenate([stats, coarse], axis=1)
    out[n == 0] = 0.0
    return out


def partly_idle(log_rates: np.ndarray, span: int) -> bool:
    """Whether the last ``span`` values of ``log_rates`` are idle (log1p(rate) == 0) in
    at least ``IDLE_SHARE`` of the intervals.

    Such a context shows where the load stopped, not which workload ran: the stretches of no
    load that training inserts (``envs.workload.idle_gate``) hide the workload's shape, so
    the workload-identification loss leaves these contexts unlabelled instead of teaching the
    meta-learner that silence is a particular workload. An empty span is not idle (nothing
    was seen yet). ``partly_idle_batch`` over a batch of one.
    """
    window, count = _window(log_rates, span)
    return bool(partly_idle_batch(window, count)[0])


def partly_idle_batch(window: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``partly_idle`` of a batch of windows (as ``load_context_batch`` takes them), (batch,)."""
    x = np.asarray(window, dtype=np.float64)
    span = x.shape[1]
    n = np.minimum(np.asarray(count), span)
    seen = np.arange(span)[None, :] >= (span - n)[:, None]
    idle = (seen & (x <= 0.0)).sum(axis=1)
    return (n > 0) & (idle / np.maximum(n, 1) >= IDLE_SHARE)
