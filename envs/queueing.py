"""Queueing maths for the simulator: M/M/c exactly, M/G/c by the Allen–Cunneen approximation.

The model, per service and control interval:

* A replica with CPU limit ``L`` cores serves requests at rate ``mu = 1000 L / cpu_ms`` (a
  request needing ``cpu_ms`` of one core runs ``L`` times faster or slower under its CFS quota),
  so ``c`` ready replicas form an M/G/c queue with offered load ``rho = lambda / (c mu)``.
* Probability of waiting: Erlang C, ``C(c, rho)``. It is read from a table computed once with
  the exact Erlang B recursion (integer c up to ``C_MAX``, a fine grid in rho) and interpolated,
  because the simulator needs it for thousands of services per millisecond.
* Waiting time tail: ``P(W > t) = C exp(-theta t)`` with ``theta = (c mu - lambda)`` for M/M/c
  (exact) and ``theta = (c mu - lambda) * 2 / (1 + cv^2)`` for M/G/c, the Allen–Cunneen
  correction that scales the mean wait by ``(1 + cv^2) / 2``.
* Sojourn time (wait + service) and end-to-end latency are summarised by mean and variance, and
  their percentiles read from a gamma distribution with those moments (Wilson–Hilferty quantile).

All functions are vectorised over numpy arrays of any shape.
"""

from __future__ import annotations

import math

import numpy as np

C_MAX = 512
"""Largest server count held in the Erlang C table; larger counts are clipped (C is then ~0)."""
_RHO_POINTS = 4001
_RHO_GRID = np.linspace(0.0, 1.0, _RHO_POINTS)
RHO_MAX = 0.98
"""Offered load is clipped here for the stationary formulas. Beyond it the stationary queue would
take far longer than a control interval to build, and real overload is handled by the fluid backlog."""


def erlang_c_exact(c: int, rho: float) -> float:
    """Erlang C probability of waiting for an M/M/c queue (reference implementation).

    Uses the numerically stable Erlang B recursion ``B(k) = a B(k-1) / (k + a B(k-1))`` with
    offered traffic ``a = c rho``, then ``C = B / (1 - rho (1 - B))``.
    """
    if c < 1:
        raise ValueError("c must be >= 1")
    if rho >= 1.0:
        return 1.0
    a = c * rho
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1.0 - rho * (1.0 - b))


_TABLE = np.ones((1, _RHO_POINTS))
"""Rows of Erlang C over the rho grid, row c for c servers; grown on demand (see _table)."""


def _table(c_needed: int) -> np.ndarray:
    """The Erlang C table with at least ``c_needed`` + 1 rows.

    Rows are built lazily, doubling the size each time, because a row for c costs c vector
    steps of the Erlang B recursion and most apps never need more than a few dozen servers.
    """
    global _TABLE
    have = _TABLE.shape[0] - 1
    if c_needed <= have:
        return _TABLE
    target = min(C_MAX, max(c_needed, 2 * have, 64))
    rho = _RHO_GRID
    rows = []
    for c in range(have + 1, target + 1):
        a = c * rho
        b = np.ones_like(rho)
        for k in range(1, c + 1):
            b = a * b / (k + a * b)
        with np.errstate(divide="ignore", invalid="ignore"):
            rows.append(np.where(rho < 1.0, b / (1.0 - rho * (1.0 - b)), 1.0))
    _TABLE = np.vstack([_TABLE, *rows])
    return _TABLE


def erlang_c(c: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Erlang C for arrays of (possibly fractional) server counts and loads.

    Fractional c (a replica that became ready part-way through an interval) interpolates
    linearly between the neighbouring integers; rho is interpolated on the table grid.
    """
    c = np.clip(np.asarray(c, dtype=np.float64), 1.0, C_MAX)
    r = np.clip(np.asarray(rho, dtype=np.float64), 0.0, RHO_MAX) * (_RHO_POINTS - 1)
    c0 = np.floor(c).astype(np.intp)
    c1 = np.minimum(c0 + 1, C_MAX)
    table = _table(int(c1.max(initial=1)))
    fc = c - c0
    r0 = np.floor(r).astype(np.intp)
    fr = r - r0
    r1 = r0 + 1
    lo = table[c0, r0] * (1 - fr) + table[c0, r1] * fr
    hi = table[c1, r0] * (1 - fr) + table[c1, r1] * fr
    return lo * (1 - fc) + hi * fc


def waiting_rate(c: np.ndarray, mu: np.ndarray, lam: np.ndarray, cv: np.ndarray) -> np.ndarray:
    """Decay rate theta of the waiting-time tail P(W > t) = C exp(-theta t).

    Load is clipped at RHO_MAX so that the stationary part stays finite when the fluid
    backlog takes over.
    """
    lam_eff = np.minimum(lam, RHO_MAX * c * mu)
    return (c * mu - lam_eff) * 2.0 / (1.0 + cv * cv)


def waiting_quantile(p: float, prob_wait: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """p-quantile of the waiting time: zero when the chance of waiting is below 1 - p."""
    tail = 1.0 - p
    with np.errstate(divide="ignore"):
        q = np.log(np.maximum(prob_wait, 1e-300) / tail) / theta
    return np.maximum(q, 0.0)


_Z = {0.5: 0.0, 0.95: 1.6448536269514722, 0.99: 2.3263478740408408}


def _wilson_hilferty(z: np.ndarray | float, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Gamma quantile(s) at standard-normal score(s) z for the given mean and variance.

    Shape k is floored at 0.3, below which the approximation degrades; z broadcasts against
    the moments (a leading axis of scores gives several quantiles from one moment pass).
    """
    mean = np.asarray(mean, dtype=np.float64)
    var = np.maximum(np.asarray(var, dtype=np.float64), 1e-30)
    kk = np.maximum(mean * mean / var, 0.3)
    scale = var / np.maximum(mean, 1e-30)
    h = 1.0 / (9.0 * kk)
    q = kk * scale * np.maximum(1.0 - h + z * np.sqrt(h), 0.0) ** 3
    return np.where(mean > 0, q, 0.0)


def gamma_quantile(p: float, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """p-quantile of a gamma distribution with the given mean and variance (Wilson–Hilferty).

    Accurate to about 1 % for shape k >= 1 at the percentiles used here.
    """
    z = _Z.get(p)
    return _wilson_hilferty(_normal_ppf(p) if z is None else z, mean, var)


_Z3 = np.array([_Z[0.5], _Z[0.95], _Z[0.99]])


def gamma_quantiles_50_95_99(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """p50, p95 and p99 at once (stacked on a new first axis): the simulator needs all three for
    every service and for the end-to-end latency each step, from one pass over the moments."""
    ndim = np.ndim(mean)
    return _wilson_hilferty(_Z3.reshape((3,) + (1,) * ndim), mean, var)


def _normal_ppf(p: float) -> float:
    """Inverse standard normal CDF by bisection on math.erf (only for unusual percentiles)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
