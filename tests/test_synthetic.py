"""Tests for envs.synthetic: every family's contract (peak, floor, seeding) and its shape."""

from __future__ import annotations

import numpy as np
import pytest

from envs import synthetic
from envs.errors import ConfigError
from envs.synthetic import FAMILIES, FLOOR_FRACTION, generate

SEEDS = range(25)
EXPECTED_FAMILIES = {"diurnal", "bursty", "flash-crowd", "ramp", "spikes", "step", "mixer"}


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_family_names_are_the_api() -> None:
    assert set(FAMILIES) == EXPECTED_FAMILIES


@pytest.mark.parametrize("family", sorted(EXPECTED_FAMILIES))
@pytest.mark.parametrize(("n_steps", "interval_s", "peak"), [(240, 15.0, 100.0), (1, 15.0, 5.0), (7, 60.0, 0.5)])
def test_contract_peak_floor_finite(family: str, n_steps: int, interval_s: float, peak: float) -> None:
    for seed in SEEDS:
        out = generate(family, n_steps, interval_s, peak, rng(seed))
        assert out.shape == (n_steps,)
        assert out.dtype == np.float64
        assert np.all(np.isfinite(out))
        assert out.max() == peak
        assert out.min() >= FLOOR_FRACTION * peak * (1 - 1e-12)


@pytest.mark.parametrize("family", sorted(EXPECTED_FAMILIES))
def test_same_seed_same_series_other_seed_differs(family: str) -> None:
    a = generate(family, 240, 15.0, 100.0, rng(11))
    b = generate(family, 240, 15.0, 100.0, rng(11))
    np.testing.assert_array_equal(a, b)
    others = [generate(family, 240, 15.0, 100.0, rng(seed)) for seed in range(12, 17)]
    assert all(not np.allclose(a, other) for other in others)


@pytest.mark.parametrize("family", sorted(EXPECTED_FAMILIES))
def test_not_flat(family: str) -> None:
    for seed in SEEDS:
        out = generate(family, 240, 15.0, 100.0, rng(seed))
        assert out.min() < 0.9 * out.max(), seed


def test_families_differ_from_each_other() -> None:
    series = {name: generate(name, 240, 15.0, 100.0, rng(5)) for name in FAMILIES}
    names = sorted(series)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not np.allclose(series[a], series[b]), (a, b)


@pytest.mark.parametrize("name", ["Diurnal", "flash_crowd", "", "trace"])
def test_unknown_family_lists_valid_ones(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        generate(name, 10, 15.0, 1.0, rng(0))
    message = str(info.value)
    assert repr(name) in message
    assert all(family in message for family in EXPECTED_FAMILIES)
    assert "\n" not in message


@pytest.mark.parametrize(
    ("n_steps", "interval_s", "peak", "fragment"),
    [(0, 15.0, 1.0, "n_steps"), (2.5, 15.0, 1.0, "n_steps"), (10, 0.0, 1.0, "interval_s"), (10, 15.0, -1.0, "peak")],
)
def test_bad_arguments(n_steps: float, interval_s: float, peak: float, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        generate("diurnal", n_steps, interval_s, peak, rng(0))  # type: ignore[arg-type]


# --- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cycles", [1, 2, 3, 4])
def test_diurnal_has_the_requested_period(cycles: int) -> None:
    n = 240
    period = n // cycles
    out = synthetic.diurnal(n, 15.0, 100.0, rng(cycles), cycles=cycles)
    np.testing.assert_allclose(out[period:], out[:-period], rtol=1e-9)
    # Within one period it is not periodic at half the period.
    assert not np.allclose(out[period // 2 :], out[: -(period // 2)], rtol=1e-3)


def test_diurnal_default_period_is_one_to_three_cycles() -> None:
    n = 960
    for seed in SEEDS:
        out = synthetic.diurnal(n, 15.0, 100.0, rng(seed))
        spectrum = np.abs(np.fft.rfft(out - out.mean()))
        dominant = int(np.argmax(spectrum))
        assert 1 <= dominant <= 3, (seed, dominant)
        # A trough well above the floor: a web site does not go fully idle at night.
        assert out.min() >= 0.1 * 100.0 - 1e-9


def test_bursty_is_piecewise_constant_on_off() -> None:
    for seed in SEEDS:
        out = generate("bursty", 480, 15.0, 100.0, rng(seed))
        changes = int(np.count_nonzero(np.diff(out)))
        assert 1 <= changes <= 480 // 3, (seed, changes)
        base = out.min()
        assert np.count_nonzero(out == base) >= 0.2 * len(out), seed  # off periods at the base load
        assert np.count_nonzero(out > base) >= 1
        assert base <= 0.6 * out.max()


def test_flash_crowd_fast_rise_slow_decay() -> None:
    for seed in SEEDS:
        out = generate("flash-crowd", 240, 15.0, 100.0, rng(seed))
        top = int(np.argmax(out))
        assert out.max() >= 3 * np.median(out), seed
        half = out.min() + 0.5 * (out.max() - out.min())
        # Steps spent rising through the upper half versus decaying back below it.
        rise = top - int(np.flatnonzero(out[: top + 1] < half)[-1]) if np.any(out[: top + 1] < half) else top
        below_after = np.flatnonzero(out[top:] < half)
        decay = int(below_after[0]) if below_after.size else len(out) - top
        assert rise < decay, (seed, rise, decay)


@pytest.mark.parametrize("start_frac", [0.2, 0.5])
def test_flash_crowd_starts_where_asked(start_frac: float) -> None:
    out = synthetic.flash_crowd(400, 15.0, 100.0, rng(3), start_frac=start_frac)
    start = int(start_frac * 400)
    before = out[:start]
    assert before.max() < 0.5 * out.max()
    assert start <= int(np.argmax(out)) <= start + 40


@pytest.mark.parametrize("direction", ["up", "down", "up-down"])
def test_ramp_is_monotone_in_each_leg(direction: str) -> None:
    for seed in SEEDS:
        out = synthetic.ramp(300, 15.0, 100.0, rng(seed), direction=direction)
        d = np.diff(out)
        assert out.max() >= 3 * out.min(), seed
        if direction == "up":
            assert np.all(d >= 0)
            assert out[-1] == out.max()
        elif direction == "down":
            assert np.all(d <= 0)
            assert out[0] == out.max()
        else:
            top = int(np.argmax(out))
            assert np.all(d[:top] >= 0)
            assert np.all(d[top:] <= 0)
            assert out[0] < out.max()
            assert out[-1] < out.max()


def test_ramp_default_draws_all_directions() -> None:
    kinds = set()
    for seed in range(60):
        d = np.diff(generate("ramp", 200, 15.0, 100.0, rng(seed)))
        kinds.add((bool(np.any(d > 0)), bool(np.any(d < 0))))
    assert kinds == {(True, False), (False, True), (True, True)}


def test_ramp_rejects_unknown_direction() -> None:
    with pytest.raises(ValueError, match="direction"):
        synthetic.ramp(10, 15.0, 1.0, rng(0), direction="sideways")


@pytest.mark.parametrize("period", [20.0, 37.5, 60.0])
def test_spikes_are_periodic(period: float) -> None:
    out = synthetic.spikes(600, 15.0, 100.0, rng(4), period_steps=period)
    base = out.min()
    raised = np.flatnonzero(out > base)
    starts = raised[np.insert(np.diff(raised) > 1, 0, True)]
    gaps = np.diff(starts)
    assert len(starts) >= 600 / period - 1
    assert np.all(np.abs(gaps - period) <= 1.0), gaps
    # Spikes are short compared with the period.
    assert np.count_nonzero(out > base) <= len(starts) * period / 3


def test_step_levels_and_changes() -> None:
    for seed in SEEDS:
        out = generate("step", 300, 15.0, 100.0, rng(seed))
        levels = np.unique(out)
        changes = np.flatnonzero(np.diff(out))
        assert 2 <= len(levels) <= 6
        assert 1 <= len(changes) <= 5
        assert np.all(np.abs(np.diff(out)[changes]) >= 0.15 * 100.0 * 0.999)


@pytest.mark.parametrize("n_levels", [2, 4])
def test_step_number_of_levels(n_levels: int) -> None:
    out = synthetic.step(200, 15.0, 100.0, rng(9), n_levels=n_levels)
    assert len(np.flatnonzero(np.diff(out))) == n_levels - 1


def test_mixer_joins_segments_of_other_families() -> None:
    # Made only of step segments, the mixture is flat except at step changes and short cross-fades.
    out = synthetic.mixer(400, 15.0, 100.0, rng(2), families=("step",))
    assert np.count_nonzero(np.diff(out)) <= 4 * 5 + 4 * 5
    assert out.max() == 100.0


@pytest.mark.parametrize("seed", SEEDS)
def test_mixer_sequence_changes_regime(seed: int) -> None:
    """A step segment then a diurnal one: flat stretches first, a smoothly varying rate at the end."""
    n = 400
    out = synthetic.mixer(n, 15.0, 100.0, rng(seed), sequence=("step", "diurnal"))
    head, tail = np.diff(out[: n // 4]), np.diff(out[-n // 4 :])
    assert np.count_nonzero(head) <= 5
    assert np.count_nonzero(tail) >= 0.9 * len(tail)


@pytest.mark.parametrize("kwargs", [{"families": ("mixer",)}, {"families": ()}, {"sequence": ("step", "nope")}])
def test_mixer_rejects_bad_families(kwargs: dict[str, tuple[str, ...]]) -> None:
    with pytest.raises(ConfigError, match="mixer families must be chosen from diurnal"):
        synthetic.mixer(50, 15.0, 1.0, rng(0), **kwargs)


def test_mixer_default_draws_several_segments() -> None:
    """Across seeds, a mixture is usually not one family: its quarters differ in level or variability."""
    differing = 0
    for seed in SEEDS:
        out = generate("mixer", 400, 15.0, 100.0, rng(seed))
        quarters = out.reshape(4, -1)
        differing += np.ptp(quarters.mean(axis=1)) > 5.0 or np.ptp(quarters.std(axis=1)) > 5.0
    assert differing >= 0.8 * len(SEEDS)
