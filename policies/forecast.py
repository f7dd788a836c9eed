"""Forecasters for the predictive HPA: pure functions of a series' past.

Each takes the history up to now (oldest first) and a horizon ``h`` in steps, and returns the
value expected ``h`` steps after the last one. None reads anything but the series it is given,
so a caller that passes only the past cannot see the future. The three are those the
Predictive Horizontal Pod Autoscaler and its relatives use:

- ``holt_winters``: exponential smoothing of level, trend and (with ``season > 0``) an additive
  season, as PHPA's Holt-Winters model; with ``season = 0`` it is Holt's linear trend method.
- ``linear_regression``: the least-squares line through the last ``lookback`` points, extended
  ``h`` steps, as PHPA's linear model.
- ``seasonal_naive``: the value one season before the target step (Crane's and AHPA's
  periodic component in its simplest form).

``fit_holt_winters`` chooses the smoothing factors from the history alone by the smallest
squared error of the ``h``-step forecasts it would have made, so the parameters are fitted per
workload from its own past.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np

ALPHAS = (0.1, 0.3, 0.5, 0.7, 0.9)
"""Level smoothing factors ``fit_holt_winters`` tries."""
BETAS = (0.0, 0.05, 0.1, 0.3)
"""Trend smoothing factors it tries (0: the trend stays at its first estimate)."""
GAMMAS = (0.1, 0.3)
"""Season smoothing factors it tries (only with a season)."""


def _check(series: Sequence[float], horizon: int) -> np.ndarray:
    y = np.asarray(series, dtype=np.float64)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError("forecast: the history must be a non-empty 1-D series")
    if horizon < 1:
        raise ValueError(f"forecast: horizon must be >= 1 step, got {horizon}")
    return y


def holt_winters_paths(
    series: Sequence[float], alphas: np.ndarray, betas: np.ndarray, gammas: np.ndarray, season: int, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Additive Holt-Winters for K parameter sets at once (``alphas``, ``betas``, ``gammas`` of
    length K): the forecast ``horizon`` steps after the last point, shape (K,), and the
    ``horizon``-step forecasts made at every earlier step, shape (K, n) (NaN where none was made
    yet), from which the parameters are fitted.

    Initial state: level = the first point (the mean of the first season with one), trend 0
    (the mean step between the first two seasons with one), season = the first season's
    deviations from its mean. A season is used only when the history holds two of them."""
    y = _check(series, horizon)
    n, k = len(y), len(alphas)
    m = season if season > 0 and n >= 2 * season else 0
    past = np.full((k, n), np.nan)
    if m:
        level = np.full(k, y[:m].mean())
        trend = np.full(k, (y[m : 2 * m].mean() - y[:m].mean()) / m)
        seas = np.tile(y[:m] - y[:m].mean(), (k, 1))
        start = m
    else:
        level = np.full(k, y[0])
        trend = np.zeros(k)
        seas = np.zeros((k, 1))
        start = 1
    for t in range(start, n):
        # The forecast for step t + horizon - 1 made with what was known after step t - 1.
        if t + horizon - 1 < n:
            s_idx = (t + horizon - 1) % m if m else 0
            past[:, t + horizon - 1] = level + horizon * trend + seas[:, s_idx]
        s_t = seas[:, t % m] if m else 0.0
        new_level = alphas * (y[t] - s_t) + (1 - alphas) * (level + trend)
        trend = betas * (new_level - level) + (1 - betas) * trend
        if m:
            seas[:, t % m] = gammas * (y[t] - new_level) + (1 - gammas) * seas[:, t % m]
        level = new_level
    s_next = seas[:, (n - 1 + horizon) % m] if m else 0.0
    return level + horizon * trend + s_next, past


def holt_winters(
    series: Sequence[float], alpha: float, beta: float, gamma: float = 0.0, season: int = 0, horizon: int = 1
) -> float:
    """The value ``horizon`` steps after the series' last point by additive Holt-Winters (Holt's
    linear method when ``season`` is 0 or the history is shorter than two seasons); the same
    recursion and initial state as ``holt_winters_paths``, on plain floats because a controller
    calls it every sync."""
    y = _check(series, horizon).tolist()
    n = len(y)
    m = season if season > 0 and n >= 2 * season else 0
    if m:
        first = sum(y[:m]) / m
        level, trend = first, (sum(y[m : 2 * m]) / m - first) / m
        seas = [v - first for v in y[:m]]
    else:
        level, trend, seas = y[0], 0.0, [0.0]
    for t in range(m if m else 1, n):
        s_t = seas[t % m] if m else 0.0
        new_level = alpha * (y[t] - s_t) + (1 - alpha) * (level + trend)
        trend = beta * (new_level - level) + (1 - beta) * trend
        if m:
            seas[t % m] = gamma * (y[t] - new_level) + (1 - gamma) * s_t
        level = new_level
    return level + horizon * trend + (seas[(n - 1 + horizon) % m] if m else 0.0)


def fit_holt_winters(series: Sequence[float], season: int = 0, horizon: int = 1) -> tuple[float, float, float]:
    """(alpha, beta, gamma) from the grid (``ALPHAS`` x ``BETAS`` [x ``GAMMAS``]) whose
    ``horizon``-step forecasts over the series had the smallest squared error; the first of the
    grid (the most smoothing) while no forecast can be scored yet."""
    y = _check(series, horizon)
    gammas = GAMMAS if season > 0 and len(y) >= 2 * season else (0.0,)
    grid = np.array(list(product(ALPHAS, BETAS, gammas)))
    _, past = holt_winters_paths(y, grid[:, 0], grid[:, 1], grid[:, 2], season, horizon)
    scored = ~np.isnan(past[0])
    if not scored.any():
        return tuple(float(x) for x in grid[0])
    err = ((past[:, scored] - y[scored]) ** 2).mean(axis=1)
    return tuple(float(x) for x in grid[int(np.argmin(err))])


def linear_regression(series: Sequence[float], lookback: int, horizon: int = 1) -> float:
    """The least-squares line through the last ``lookback`` points, ``horizon`` steps past the
    last one (the last value itself with a single point)."""
    y = _check(series, horizon)
    if lookback < 1:
        raise ValueError(f"forecast: lookback must be >= 1, got {lookback}")
    y = y[-lookback:]
    if len(y) == 1:
        return float(y[0])
    x = np.arange(len(y), dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept + slope * (len(y) - 1 + horizon))


def seasonal_naive(series: Sequence[float], season: int, horizon: int = 1) -> float:
    """The value one season before the target step (the last value while the history is
    shorter than a season, or when the target is more than a season ahead)."""
    y = _check(series, horizon)
    if season < 1:
        raise ValueError(f"forecast: season must be >= 1 step, got {season}")
    back = season - horizon  # steps before the last point
    if horizon > season or back >= len(y):
        return float(y[-1])
    return float(y[len(y) - 1 - back])
