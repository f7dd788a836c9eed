"""Tests for policies.vpa_recommender: histogram arithmetic by hand, decay, tracking, OOM handling, updater band."""

from __future__ import annotations

import math

import pytest

from policies.vpa_recommender import (
    CPU_FIRST_BUCKET_CORES,
    CPU_MAX_CORES,
    MEM_FIRST_BUCKET_MIB,
    MEM_MAX_MIB,
    DecayingHistogram,
    VPARecommender,
    needs_update,
)


def small_histogram(half_life_s: float = 3600.0) -> DecayingHistogram:
    """Ratio 2 and first bucket 1 give bucket starts 0, 1, 3, 7, 15, 31, 63, 127 (8 buckets up to 100)."""
    return DecayingHistogram(half_life_s, first_bucket_size=1.0, max_value=100.0, ratio=2.0)


def test_exponential_buckets_by_hand() -> None:
    h = small_histogram()
    assert h.num_buckets == 8
    assert [h.bucket_start(b) for b in range(8)] == [0.0, 1.0, 3.0, 7.0, 15.0, 31.0, 63.0, 127.0]
    assert [h.find_bucket(v) for v in (0.5, 2.0, 5.0, 10.0, 1000.0)] == [0, 1, 2, 3, 7]


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        # weights: [0.5 -> bucket 0] 1, [2 -> bucket 1] 1, [5 -> bucket 2] 2; total 4
        (0.0, 1.0),  # threshold 0 is reached in bucket 0, whose end is 1
        (0.25, 1.0),  # threshold 1: bucket 0 alone
        (0.5, 3.0),  # threshold 2: buckets 0-1, end of bucket 1 is 3
        (0.75, 7.0),  # threshold 3: needs bucket 2, end 7
        (1.0, 7.0),
    ],
)
def test_percentiles_by_hand(p: float, expected: float) -> None:
    h = small_histogram()
    h.add_sample(0.5, 1.0, 0.0)
    h.add_sample(2.0, 1.0, 0.0)
    h.add_sample(5.0, 2.0, 0.0)
    assert h.percentile(p) == expected


def test_empty_and_overflow_buckets() -> None:
    h = small_histogram()
    assert h.is_empty()
    assert h.percentile(0.9) == 0.0
    h.add_sample(1000.0, 1.0, 0.0)  # beyond the range: the last bucket, which has no end
    assert h.percentile(0.5) == 127.0


@pytest.mark.parametrize("value", [0.0005, 0.013, 0.2, 1.0, 3.7, 64.0, 999.0])
def test_vpa_cpu_buckets_bound_the_relative_error(value: float) -> None:
    h = DecayingHistogram(3600.0, CPU_FIRST_BUCKET_CORES, CPU_MAX_CORES)
    bucket = h.find_bucket(value)
    assert h.bucket_start(bucket) <= value < h.bucket_start(bucket + 1)
    h.add_sample(value, 1.0, 0.0)
    # a single sample reads back as its bucket end: at most 5 % (or one first bucket) above the value
    assert value <= h.percentile(0.5) <= value * 1.05 + CPU_FIRST_BUCKET_CORES


def test_memory_histogram_covers_10mb_to_1tb() -> None:
    h = DecayingHistogram(3600.0, MEM_FIRST_BUCKET_MIB, MEM_MAX_MIB)
    assert h.bucket_start(1) == pytest.approx(MEM_FIRST_BUCKET_MIB)
    assert h.bucket_start(h.num_buckets - 1) >= MEM_MAX_MIB


@pytest.mark.parametrize(("elapsed", "weight"), [(0.0, 1.0), (100.0, 0.5), (200.0, 0.25), (50.0, 2**-0.5)])
def test_decay_halves_weight_every_half_life(elapsed: float, weight: float) -> None:
    h = small_histogram(half_life_s=100.0)
    h.add_sample(0.5, 1.0, 0.0)
    assert h.weight_at(elapsed) == pytest.approx(weight)


def test_newer_samples_dominate_percentiles() -> None:
    fresh = small_histogram(half_life_s=100.0)
    fresh.add_sample(0.5, 1.0, 0.0)
    fresh.add_sample(5.0, 1.0, 100.0)  # one half-life later: twice the weight
    assert fresh.weight_at(100.0) == pytest.approx(1.5)
    assert fresh.percentile(0.5) == 7.0  # threshold 1.5 of 3 (relative) is past the old sample's 1
    same_time = small_histogram(half_life_s=100.0)
    same_time.add_sample(0.5, 1.0, 0.0)
    same_time.add_sample(5.0, 1.0, 0.0)
    assert same_time.percentile(0.5) == 1.0


def test_reference_shift_keeps_long_runs_finite() -> None:
    h = small_histogram(half_life_s=1.0)
    h.add_sample(0.5, 1.0, 0.0)
    h.add_sample(5.0, 1.0, 1000.0)  # 1000 half-lives later: far past 2**100, the reference moves
    assert math.isfinite(h.weight_at(1000.0))
    assert h.weight_at(1000.0) == pytest.approx(1.0)
    assert h.percentile(0.0) == 7.0  # the old sample has decayed below epsilon


def test_subtract_sample_restores_the_histogram() -> None:
    h = small_histogram()
    h.add_sample(2.0, 1.0, 10.0)
    h.add_sample(5.0, 1.0, 10.0)
    h.subtract_sample(5.0, 1.0, 10.0)
    assert h.percentile(1.0) == 3.0
    h.subtract_sample(2.0, 1.0, 10.0)
    assert h.is_empty()


def feed_cpu(rec: VPARecommender, cores: float, start_s: float, minutes: int) -> float:
    for minute in range(minutes):
        rec.add_cpu_sample(cores, start_s + 60.0 * minute)
    return start_s + 60.0 * minutes


@pytest.mark.parametrize(("before", "after"), [(0.2, 1.0), (1.0, 0.2)])
def test_recommendation_tracks_a_step_change(before: float, after: float) -> None:
    rec = VPARecommender(cpu_half_life_s=600.0, mem_half_life_s=600.0)
    t = feed_cpu(rec, before, 0.0, 120)
    first = rec.recommend()
    assert before * 1.15 <= first.target_cpu <= (before * 1.05 + 0.001) * 1.15
    feed_cpu(rec, after, t, 120)  # two hours = 12 half-lives of the new level
    second = rec.recommend()
    assert after * 1.15 <= second.target_cpu <= (after * 1.05 + 0.001) * 1.15
    assert second.lower_cpu <= second.target_cpu <= second.upper_cpu


def test_bounds_widen_with_short_history() -> None:
    rec = VPARecommender(cpu_half_life_s=3600.0, mem_half_life_s=3600.0, min_cpu=0.0)
    assert rec.recommend().upper_cpu == math.inf  # no history: never force an eviction downwards
    feed_cpu(rec, 0.5, 0.0, 10)
    short = rec.recommend()
    # 10 samples over 540 s: confidence = min(540 / 3600, 10 / 60) = 0.15, so upper x (1 + 1 / 0.15)
    p95 = rec.cpu_histogram.percentile(0.95)
    assert short.upper_cpu == pytest.approx(p95 * 1.15 * (1 + 1 / 0.15))
    assert short.lower_cpu == pytest.approx(rec.cpu_histogram.percentile(0.5) * 1.15 * (1 + 0.001 / 0.15) ** -2)
    feed_cpu(rec, 0.5, 600.0, 110)
    long = rec.recommend()
    assert long.upper_cpu < short.upper_cpu
    assert short.lower_cpu <= long.lower_cpu <= long.target_cpu <= long.upper_cpu


def test_empty_recommender_returns_minimums() -> None:
    rec = VPARecommender(cpu_half_life_s=3600.0, mem_half_life_s=3600.0)
    result = rec.recommend()
    assert (result.target_cpu, result.lower_cpu, result.upper_cpu) == (0.025, 0.025, math.inf)
    assert (result.target_mem, result.lower_mem, result.upper_mem) == (250.0, 250.0, math.inf)


def test_memory_keeps_one_peak_per_interval() -> None:
    rec = VPARecommender(cpu_half_life_s=3600.0, mem_half_life_s=3600.0, min_mem=0.0)
    for t, mib in ((0.0, 100.0), (10.0, 300.0), (20.0, 200.0)):
        assert rec.add_mem_sample(mib, t)
    # one sample, stamped at the interval end (3600), carrying the interval's peak
    assert rec.mem_histogram.weight_at(3600.0) == pytest.approx(1.0)
    assert 300.0 <= rec.mem_histogram.percentile(0.0) <= 300.0 * 1.05 + MEM_FIRST_BUCKET_MIB
    rec.add_mem_sample(50.0, 3600.0)  # next interval: a second peak
    assert rec.mem_histogram.weight_at(7200.0) == pytest.approx(1.5)
    assert not rec.add_mem_sample(400.0, 3000.0)  # out of order: discarded


@pytest.mark.parametrize(
    ("limit", "prior_peak", "expected_peak"),
    [
        (100.0, None, 200.0),  # +100 MiB beats x1.2
        (500.0, None, 600.0),  # the two rules meet
        (1000.0, None, 1200.0),  # x1.2 beats +100 MiB
        (500.0, 800.0, 960.0),  # the interval's observed peak exceeds the limit: bump from the peak
    ],
)
def test_oom_bumps_memory(limit: float, prior_peak: float | None, expected_peak: float) -> None:
    rec = VPARecommender(cpu_half_life_s=3600.0, mem_half_life_s=3600.0, min_mem=0.0)
    if prior_peak is not None:
        rec.add_mem_sample(prior_peak, 0.0)
    assert rec.add_oom(limit, 10.0)
    target = rec.recommend().target_mem
    assert expected_peak * 1.15 <= target <= (expected_peak * 1.05 + MEM_FIRST_BUCKET_MIB) * 1.15


def test_old_oom_is_discarded() -> None:
    rec = VPARecommender(cpu_half_life_s=3600.0, mem_half_life_s=3600.0)
    rec.add_mem_sample(100.0, 10_000.0)  # window ends at 13600
    assert not rec.add_oom(500.0, 5_000.0)  # older than the previous interval


def test_cpu_samples_are_deduplicated_per_container() -> None:
    rec = VPARecommender(cpu_half_life_s=3600.0, mem_half_life_s=3600.0)
    assert rec.add_cpu_sample(0.5, 60.0, container="a")
    assert not rec.add_cpu_sample(0.5, 60.0, container="a")
    assert not rec.add_cpu_sample(0.5, 30.0, container="a")
    assert rec.add_cpu_sample(0.5, 60.0, container="b")
    assert rec.total_samples == 2


def test_cpu_samples_are_weighted_by_request() -> None:
    rec = VPARecommender(cpu_half_life_s=3600.0, mem_half_life_s=3600.0)
    rec.add_cpu_sample(0.1, 0.0, request_cores=0.01)  # floored at weight 0.1
    rec.add_cpu_sample(2.0, 1.0, request_cores=4.0)
    assert rec.cpu_histogram.percentile(0.05) >= 2.0  # the starved, low-request sample barely counts


@pytest.mark.parametrize(
    ("current", "lower", "upper", "expected"),
    [
        (1.0, 0.5, 2.0, False),
        (0.5, 0.5, 2.0, False),
        (2.0, 0.5, 2.0, False),
        (0.4, 0.5, 2.0, True),
        (2.5, 0.5, 2.0, True),
        (100.0, 0.5, math.inf, False),
    ],
)
def test_needs_update_outside_the_band(current: float, lower: float, upper: float, expected: bool) -> None:
    assert needs_update(current, lower, upper) is expected
