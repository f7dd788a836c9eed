"""The long load context: its statistics by hand, the env's context block, and load-level scaling."""

from __future__ import annotations

import numpy as np
import pytest

from envs.autoscale_env import AutoscaleEnv
from envs.config import EnvConfig
from envs.errors import ConfigError
from envs.load_context import CONTEXT_STATS, JUMP, N_CONTEXT_STATS, context_size, load_context, partly_idle
from envs.observation import ObservationLayout
from envs.workload import idle_gate, jitter, level_factor

S = {name: i for i, name in enumerate(CONTEXT_STATS)}


def test_a_flat_series_has_no_shape() -> None:
    c = load_context(np.full(8, 3.0), span=8, buckets=4)
    assert len(c) == context_size(8, 4) == N_CONTEXT_STATS + 4
    expected = np.zeros(N_CONTEXT_STATS + 4)
    expected[S["filled"]] = 1.0
    np.testing.assert_allclose(c, expected)


def test_statistics_by_hand() -> None:
    x = np.array([0.0, 0.0, 2.0, 0.0, 1.0, 1.0, 1.0, 1.0])  # current level 1
    c = load_context(x, span=8, buckets=2)
    steps = np.abs(np.diff(x))  # 0, 2, 2, 1, 0, 0, 0
    assert c[S["max"]] == pytest.approx(1.0)
    assert c[S["min"]] == pytest.approx(-1.0)
    assert c[S["mean"]] == pytest.approx(0.75 - 1.0)
    assert c[S["std"]] == pytest.approx(x.std())
    assert c[S["mean_step"]] == pytest.approx(steps.mean())
    assert c[S["max_step"]] == pytest.approx(2.0)
    assert c[S["jumps"]] == pytest.approx(3 / 7)
    assert c[S["above_mean"]] == pytest.approx(5 / 8)  # 2 and the four 1s are above 0.75
    assert c[S["filled"]] == pytest.approx(1.0)
    np.testing.assert_allclose(c[N_CONTEXT_STATS:], [0.5 - 1.0, 1.0 - 1.0])


def test_only_the_last_span_counts() -> None:
    x = np.concatenate([np.full(50, 9.0), np.arange(8.0)])
    np.testing.assert_allclose(load_context(x, 8, 4), load_context(np.arange(8.0), 8, 4))


def test_a_short_run_is_summarised_over_what_was_seen() -> None:
    c = load_context(np.array([1.0, 3.0]), span=8, buckets=4)
    assert c[S["filled"]] == pytest.approx(2 / 8)
    assert c[S["max_step"]] == pytest.approx(2.0)
    # Buckets before the run repeat the first value seen: [1 1] [1 1] [1 1] [1 3], minus 3.
    np.testing.assert_allclose(c[N_CONTEXT_STATS:], [-2.0, -2.0, -2.0, -1.0])
    assert load_context(np.array([]), 8, 4).shape == (N_CONTEXT_STATS + 4,)


def test_small_changes_are_not_jumps() -> None:
    x = np.arange(10) * (JUMP / 2)
    assert load_context(x, 16, 4)[S["jumps"]] == 0.0
    assert load_context(x * 4, 16, 4)[S["jumps"]] == 1.0


def test_context_is_off_by_default() -> None:
    assert context_size(0, 16) == 0
    assert ObservationLayout(4, 2).size == ObservationLayout(4, 2, 0, 16).size


def test_env_appends_the_context_of_the_observed_load() -> None:
    cfg = {"app": "chain3", "max_services": 4, "history_window": 3, "context_span": 8, "context_buckets": 2}
    env = AutoscaleEnv({**cfg, "workloads": ["family:spikes"], "noise": 0.0})
    obs, _ = env.reset(seed=3)
    assert obs.shape == env.observation_space.shape == (env.layout.size,)
    # Before any interval ran nothing was measured: an empty context, not a rate of zero.
    np.testing.assert_array_equal(env.layout.context(obs), np.zeros(env.layout.context_size))
    seen = []
    for _ in range(12):
        obs, *_ = env.step(np.zeros(env.action_space.shape))
        seen.append(np.log1p(env.metrics.external_rps))
        np.testing.assert_allclose(env.layout.context(obs), load_context(np.array(seen), 8, 2), atol=1e-5)
    assert env.layout.history(obs).shape == (3, 13)
    # A new episode starts a new context.
    env.reset(seed=4)
    obs, *_ = env.step(np.zeros(env.action_space.shape))
    assert env.layout.context(obs)[S["filled"]] == pytest.approx(1 / 8)
    # The measured external rate is the workload's series (Poisson arrivals included).
    assert env.metrics.external_rps == pytest.approx(env.rates[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"context_span": -1}, "context_span"),
        ({"context_span": 12, "context_buckets": 8}, "context_span: must be a multiple of context_buckets"),
        ({"context_buckets": 0}, "context_buckets"),
        ({"level_prob": 1.5}, "level_prob"),
        ({"level_min": 0.0}, "level_min"),
        ({"idle_prob": -0.1}, "idle_prob"),
        ({"jitter_prob": 2.0}, "jitter_prob: must be in \\[0, 1\\], got 2.0"),
        ({"jitter_sigma": 0.0}, "jitter_sigma: must be in \\(0, 3\\], got 0.0"),
        ({"jitter_sigma": 5.0}, "jitter_sigma"),
    ],
)
def test_bad_context_and_level_settings_name_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EnvConfig.from_dict(kwargs)


def test_level_factor_is_log_uniform_below_one_with_the_given_probability() -> None:
    rng = np.random.default_rng(0)
    f = np.array([level_factor(rng, 0.25, 0.01) for _ in range(4000)])
    scaled = f[f < 1.0]
    assert len(scaled) / len(f) == pytest.approx(0.25, abs=0.03)
    assert scaled.min() >= 0.01
    # Log-uniform: half of the scaled episodes below the geometric middle (0.1).
    assert np.mean(scaled < 0.1) == pytest.approx(0.5, abs=0.07)
    assert all(level_factor(rng, 0.0, 0.01) == 1.0 for _ in range(50))


def test_only_training_draws_are_scaled_down() -> None:
    base = {"app": "chain3", "workloads": ["family:ramp"], "arrival_noise": False, "episode_steps": 40}
    env = AutoscaleEnv({**base, "level_prob": 1.0, "level_min": 0.1})
    for seed in range(5):
        env.reset(seed=seed)
        assert 0.1 * env.peak_rps <= env.rates.max() < env.peak_rps
        env.reset(seed=seed, options={"workload": "family:ramp"})  # evaluation: never scaled
        assert env.rates.max() == pytest.approx(env.peak_rps)


@pytest.mark.parametrize("n", [1, 7, 480])
def test_idle_gate_cuts_stretches_of_no_load(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(200):
        g = idle_gate(n, rng)
        assert g.shape == (n,) and set(np.unique(g)) <= {0.0, 1.0}
        idle = (g == 0).sum()
        assert round(0.2 * n) <= idle <= round(0.8 * n)
        starts = np.flatnonzero(np.diff(np.concatenate([[1.0], g])) < 0)
        assert len(starts) <= 4  # at most four idle stretches


def test_only_training_draws_get_idle_stretches() -> None:
    base = {"app": "chain3", "workloads": ["family:ramp"], "episode_steps": 80}
    env = AutoscaleEnv({**base, "idle_prob": 1.0})
    for seed in range(5):
        env.reset(seed=seed)
        assert 0.2 * 80 <= (env.rates == 0).sum() <= 0.8 * 80
        env.reset(seed=seed, options={"workload": "family:ramp"})  # evaluation: never idled
        assert (env.rates > 0).all()
    env = AutoscaleEnv({**base, "idle_prob": 0.0})
    env.reset(seed=0)
    assert (env.rates > 0).all()


def test_jitter_keeps_the_mean_below_the_peak_and_draws_its_spread_per_episode() -> None:
    rng = np.random.default_rng(0)
    ramp = np.linspace(1.0, 50.0, 20000)
    out = jitter(ramp, rng, 0.5)
    assert out.max() <= 50.0 and np.mean(out[:10000]) == pytest.approx(np.mean(ramp[:10000]), rel=0.05)
    base = np.full(20000, 50.0)
    base[0] = 1e9  # a peak far above: nothing else is cut
    spreads = []
    for _ in range(40):
        out = jitter(base, rng, 1.0)
        assert (out > 0).all() and out.max() <= 1e9
        spreads.append(np.std(np.log(out[1:] / 50.0)))
    # One spread per episode, uniform in [0, 1]: some nearly flat, some as noisy as a rare function.
    assert min(spreads) < 0.15 and max(spreads) > 0.85 and max(spreads) <= 1.0 + 0.02


def test_only_training_draws_get_jitter_and_none_leaves_the_draws_unchanged() -> None:
    base = {"app": "chain3", "workloads": ["family:ramp"], "episode_steps": 80, "arrival_noise": False}
    plain, noisy = AutoscaleEnv(base), AutoscaleEnv({**base, "jitter_prob": 1.0, "jitter_sigma": 2.0})
    off = AutoscaleEnv({**base, "jitter_prob": 0.0, "jitter_sigma": 2.0})
    for seed in range(5):
        plain.reset(seed=seed)
        noisy.reset(seed=seed)
        off.reset(seed=seed)
        assert np.array_equal(off.rates, plain.rates)  # no jitter draws no random numbers
        # The same instance (jitter draws after it), times one factor per interval.
        factors = np.log(noisy.rates / plain.rates)
        kept = noisy.rates < plain.rates.max()  # the rest are cut at the instance's peak
        assert noisy.rates.max() <= plain.rates.max() and kept.mean() > 0.5
        assert np.std(factors) > 0.01 and len(np.unique(factors[kept])) == kept.sum()
        noisy.reset(seed=seed, options={"workload": "family:ramp"})  # evaluation: never jittered
        plain.reset(seed=seed, options={"workload": "family:ramp"})
        assert np.array_equal(noisy.rates, plain.rates)


@pytest.mark.parametrize(
    ("log_rates", "span", "idle"),
    [
        ([], 4, False),  # nothing seen yet
        ([0.0], 4, True),
        ([1.0, 0.0], 4, True),
        ([1.0, 1.0, 1.0, 1.0, 1.0, 0.0], 8, False),  # one idle interval in six
        ([1.0, 1.0, 1.0, 1.0, 0.0], 8, True),  # one in five: the threshold counts
        ([0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0], 5, False),  # only the last 5 count
        ([0.0, 0.0, 0.0, 0.0], 0, False),  # no context, no verdict
        ([0.01, 0.02, 0.01], 4, False),  # low load is not idle
    ],
)
def test_partly_idle(log_rates: list[float], span: int, idle: bool) -> None:
    assert partly_idle(np.asarray(log_rates), span) is idle


def test_time_compression_choices_draw_per_trace_episode_and_leave_evaluation_alone() -> None:
    """Time-scale augmentation: a drawn trace episode replays at one of the choices (the same
    trace window at compression 1 moves a quarter as fast as at 4), a family has none, explicit
    workloads keep ``time_compression``, and no choices leaves every episode as it was."""
    base = {
        "app": "chain3",
        "workloads": ["trace:nasa_http_1995-07_1min.csv", "family:ramp"],
        "episode_steps": 64,
        "arrival_noise": False,
    }
    plain, empty = AutoscaleEnv(base), AutoscaleEnv({**base, "time_compression_choices": []})
    scaled = AutoscaleEnv({**base, "time_compression_choices": [1, 4]})
    seen = set()
    for seed in range(24):
        plain.reset(seed=seed)
        empty.reset(seed=seed)
        assert np.array_equal(plain.rates, empty.rates)
        scaled.reset(seed=seed)
        c = scaled.episode_time_compression
        seen.add((scaled.workload_family, c))
        if scaled.workload_family == "trace":
            # The whole trace at that compression holds the episode's window.
            series = scaled.workloads[scaled.workload_id].at(c).series(15.0)
            windows = np.lib.stride_tricks.sliding_window_view(series, 64)
            assert np.any(np.all(np.isclose(windows, scaled.rates), axis=1))
            assert len(series) * c == pytest.approx(len(scaled.workloads[0].series(15.0)) * 4, rel=0.01)
        else:
            assert c == 4.0  # families are generated in simulated time
    assert seen == {("trace", 1.0), ("trace", 4.0), ("ramp", 4.0)}
    scaled.reset(seed=0, options={"workload": "trace:nasa_http_1995-07_1min.csv"})
    plain.reset(seed=0, options={"workload": "trace:nasa_http_1995-07_1min.csv"})
    assert np.array_equal(scaled.rates, plain.rates) and scaled.episode_time_compression == 4.0


@pytest.mark.parametrize(
    ("choices", "needle"),
    [
        ([1, 0], "time_compression_choices: each must be a number > 0, got 0.0"),
        ("fast", "time_compression_choices: expected a list, got 'fast'"),
        ([1, "a"], "time_compression_choices[1]: expected a number, got 'a'"),
        ([1, True], "time_compression_choices[1]: expected a number, got True"),
    ],
)
def test_bad_time_compression_choices_fail_in_one_line(choices, needle) -> None:
    with pytest.raises(ConfigError) as err:
        EnvConfig.from_dict({"time_compression_choices": choices})
    assert str(err.value) == needle
