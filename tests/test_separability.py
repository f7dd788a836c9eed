"""The separability bench: its features, and read-outs that can tell separable classes apart."""

from __future__ import annotations

import numpy as np
import pytest

from aware_ray.bench.separability import bench_separability, env_context_features, load_features, mlp_accuracy
from aware_ray.evaluation.probe import ridge_probe
from envs.load_context import N_CONTEXT_STATS, load_context


def test_load_features_are_relative_to_the_latest_rate() -> None:
    rates = np.expm1(np.arange(20, dtype=np.float64))  # log1p(rates) = 0, 1, ..., 19
    f = load_features(rates, t=12, window=4, coarse=2, every=3)
    # Window: log-rates 8..11 relative to 11; coarse: the 6 intervals before 12 (6..11) in 2 buckets.
    np.testing.assert_allclose(f, [-3, -2, -1, 0, -4, -1])


def test_coarse_context_before_the_start_repeats_the_first_rate() -> None:
    rates = np.expm1(np.arange(10, dtype=np.float64))
    f = load_features(rates, t=4, window=4, coarse=2, every=4)
    # The 8 intervals before t=4: four copies of rate 0, then 0..3: buckets of means 0 and 1.5.
    np.testing.assert_allclose(f[4:], [0 - 3, 1.5 - 3])


def test_window_alone_when_coarse_is_zero() -> None:
    assert load_features(np.ones(10), t=6, window=5, coarse=0, every=8).shape == (5,)


@pytest.mark.parametrize("readout", ["linear", "mlp"])
def test_readouts_separate_separable_classes_and_not_noise(readout: str) -> None:
    rng = np.random.default_rng(0)
    y_tr, y_te = np.repeat(np.arange(3), 60), np.repeat(np.arange(3), 30)
    centres = np.eye(3, 5) * 4.0

    def fit(x_tr: np.ndarray, x_te: np.ndarray) -> float:
        if readout == "linear":
            return ridge_probe(x_tr, y_tr, x_te, y_te)
        return mlp_accuracy(x_tr.astype(np.float32), y_tr, x_te.astype(np.float32), y_te, hidden=16, epochs=200, seed=0)

    apart = fit(centres[y_tr] + rng.normal(size=(180, 5)), centres[y_te] + rng.normal(size=(90, 5)))
    blind = fit(rng.normal(size=(180, 5)), rng.normal(size=(90, 5)))
    assert apart > 0.9
    assert blind < 0.6


def test_bench_reports_both_readouts_for_every_context() -> None:
    out = bench_separability(steps=48, train_seeds=2, test_seeds=1, window=8, coarse=4, every=4, epochs=20)
    assert set(out["results"]) == {"window_8", "window_8+coarse_4x4", "window_8+load_context_16/4"}
    for r in out["results"].values():
        assert 0.0 <= r["linear_probe"] <= 1.0 and 0.0 <= r["mlp"] <= 1.0
        assert r["samples"] == [2 * 6 * 10, 6 * 10]


def test_env_context_features_are_the_window_then_the_envs_load_context() -> None:
    rates = np.expm1(np.arange(30, dtype=np.float64))
    f = env_context_features(rates, t=20, window=4, span=8, buckets=2)
    np.testing.assert_allclose(f[:4], [-3, -2, -1, 0])
    np.testing.assert_allclose(f[4:], load_context(np.arange(20.0), 8, 2))
    assert len(f) == 4 + N_CONTEXT_STATS + 2
