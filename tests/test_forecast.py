"""The predictive HPA's forecasters against series worked out by hand, and the fit on the past."""

from __future__ import annotations

import numpy as np
import pytest

from policies.forecast import (
    ALPHAS,
    BETAS,
    fit_holt_winters,
    holt_winters,
    holt_winters_paths,
    linear_regression,
    seasonal_naive,
)


@pytest.mark.parametrize(("horizon", "want"), [(1, 7.59375), (2, 9.25)])
def test_holt_linear_trend_by_hand(horizon: int, want: float) -> None:
    # alpha = beta = 0.5 on 1, 3, 5, 7 from level 1, trend 0:
    # levels 2, 3.75, 5.9375; trends 0.5, 1.125, 1.65625; forecast 5.9375 + h x 1.65625.
    assert holt_winters([1, 3, 5, 7], 0.5, 0.5, horizon=horizon) == pytest.approx(want)


@pytest.mark.parametrize(("horizon", "want"), [(1, 2.0), (2, 3.875)])
def test_holt_winters_additive_season_by_hand(horizon: int, want: float) -> None:
    # Season 2 on 1, 3, 1, 3, 2, 4 (alpha 0.5, beta 0, gamma 0.5): level 2, season (-1, 1) from the
    # first season; then levels 2, 2, 2.5, 2.75 and seasons (-0.75, 1.125) at the end.
    assert holt_winters([1, 3, 1, 3, 2, 4], 0.5, 0.0, 0.5, season=2, horizon=horizon) == pytest.approx(want)


def test_holt_winters_needs_two_seasons_of_history_for_a_season() -> None:
    # Three points cannot hold two seasons of 2: Holt's linear method instead.
    assert holt_winters([1, 3, 1], 0.5, 0.5, 0.5, season=2) == holt_winters([1, 3, 1], 0.5, 0.5)


def test_vectorised_paths_agree_with_the_scalar_recursion() -> None:
    rng = np.random.default_rng(0)
    y = 10 + 0.1 * np.arange(80) + 3 * np.sin(np.arange(80) * 2 * np.pi / 12) + rng.normal(0, 1, 80)
    for a, b, g, m, h in [(0.5, 0.1, 0.1, 0, 1), (0.3, 0.05, 0.3, 12, 3), (0.9, 0.3, 0.1, 12, 12)]:
        f, _ = holt_winters_paths(y, np.array([a]), np.array([b]), np.array([g]), m, h)
        assert f[0] == pytest.approx(holt_winters(y, a, b, g, m, h))


def test_paths_hold_the_forecast_made_horizon_steps_earlier() -> None:
    y = [1.0, 3.0, 5.0, 7.0]
    _, past = holt_winters_paths(y, np.array([0.5]), np.array([0.5]), np.array([0.0]), 0, 1)
    # The forecast for step 3 made after step 2 is level 3.75 + trend 1.125.
    assert past[0, 3] == pytest.approx(4.875)
    assert np.isnan(past[0, 0])
    for t in range(2, 4):
        assert past[0, t] == pytest.approx(holt_winters(y[:t], 0.5, 0.5))


def test_fit_picks_the_grid_point_with_the_smallest_past_error() -> None:
    rng = np.random.default_rng(1)
    y = np.cumsum(rng.normal(0.5, 1.0, 60))
    alpha, beta, _ = fit_holt_winters(y, horizon=2)
    grid = np.array([(a, b) for a in ALPHAS for b in BETAS])
    _, past = holt_winters_paths(y, grid[:, 0], grid[:, 1], np.zeros(len(grid)), 0, 2)
    ok = ~np.isnan(past[0])
    err = ((past[:, ok] - y[ok]) ** 2).mean(axis=1)
    best = err[(grid[:, 0] == alpha) & (grid[:, 1] == beta)][0]
    assert best == pytest.approx(err.min())


def test_fit_reads_only_the_series_it_is_given() -> None:
    y = list(np.sin(np.arange(40) / 3.0) * 5 + 10)
    assert fit_holt_winters(y[:30], horizon=2) == fit_holt_winters(list(y[:30]), horizon=2)
    assert fit_holt_winters([3.0]) == (ALPHAS[0], BETAS[0], 0.0)  # nothing to score yet


@pytest.mark.parametrize(("lookback", "horizon", "want"), [(5, 1, 5.8), (5, 3, 7.0), (3, 1, 14 / 3), (1, 4, 5.0)])
def test_linear_regression_by_hand(lookback: int, horizon: int, want: float) -> None:
    # 2, 4, 5, 4, 5: slope 6 / 10 = 0.6 and intercept 4 - 0.6 x 2 = 2.8 at x = 0 .. 4.
    assert linear_regression([2, 4, 5, 4, 5], lookback, horizon) == pytest.approx(want)


@pytest.mark.parametrize(("horizon", "want"), [(1, 21.0), (2, 31.0), (3, 12.0), (4, 12.0)])
def test_seasonal_naive_by_hand(horizon: int, want: float) -> None:
    # Season 3: the target step's value one season earlier; beyond a season, the last value.
    assert seasonal_naive([10, 20, 30, 11, 21, 31, 12], 3, horizon) == want


def test_seasonal_naive_on_a_short_history_keeps_the_last_value() -> None:
    assert seasonal_naive([5.0], 3) == 5.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: holt_winters([], 0.5, 0.5),
        lambda: holt_winters([1.0], 0.5, 0.5, horizon=0),
        lambda: linear_regression([1.0], 0),
        lambda: seasonal_naive([1.0], 0),
    ],
)
def test_bad_arguments_raise(call) -> None:
    with pytest.raises(ValueError, match="forecast"):
        call()
