"""Tests for envs.trace: CSV validation messages, exact resampling, rescaling and Poisson noise."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from envs.errors import TraceError
from envs.trace import Trace, load_trace, poisson_noise, resample, rescale, thin_counts

TRACES_DIR = Path(__file__).resolve().parent.parent / "envs" / "traces"


def write(tmp_path: Path, text: str, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- loading -----------------------------------------------------------------------------------


def test_load_simple_trace(tmp_path: Path) -> None:
    path = write(tmp_path, "t_seconds,requests_per_second\n0,1.5\n60,2\n120,0\n", name="mini.csv")
    trace = load_trace(path)
    assert isinstance(trace, Trace)
    assert trace.name == "mini"
    assert trace.path == str(path)
    np.testing.assert_array_equal(trace.t_seconds, [0.0, 60.0, 120.0])
    np.testing.assert_array_equal(trace.rps, [1.5, 2.0, 0.0])
    assert trace.step_s == 60.0
    assert trace.duration_s == 180.0


def test_load_tolerates_spaces_blank_lines_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "messy.csv"
    path.write_bytes(b"\xef\xbb\xbft_seconds , requests_per_second\r\n0, 1\r\n\r\n10 ,2\r\n\r\n")
    trace = load_trace(path)
    np.testing.assert_array_equal(trace.t_seconds, [0.0, 10.0])
    np.testing.assert_array_equal(trace.rps, [1.0, 2.0])


def test_time_column_need_not_be_first(tmp_path: Path) -> None:
    path = write(tmp_path, "rps,t_seconds\n3,0\n4,5\n", name="swapped.csv")
    trace = load_trace(path)
    np.testing.assert_array_equal(trace.t_seconds, [0.0, 5.0])
    np.testing.assert_array_equal(trace.rps, [3.0, 4.0])


MULTI = "t_seconds,fn_a,fn_b\n0,1,10\n60,2,20\n120,3,30\n"


@pytest.mark.parametrize(
    ("column_arg", "suffix", "expected"),
    [
        ("fn_a", "", [1.0, 2.0, 3.0]),
        ("fn_b", "", [10.0, 20.0, 30.0]),
        (None, "#fn_b", [10.0, 20.0, 30.0]),
    ],
)
def test_load_column_of_multi_column_file(
    tmp_path: Path, column_arg: str | None, suffix: str, expected: list[float]
) -> None:
    path = write(tmp_path, MULTI, name="multi.csv")
    trace = load_trace(f"{path}{suffix}", column=column_arg)
    chosen = column_arg or suffix[1:]
    assert trace.name == f"multi#{chosen}"
    assert trace.path == str(path)
    np.testing.assert_array_equal(trace.rps, expected)


GOOD_HEADER = "t_seconds,requests_per_second\n"


@pytest.mark.parametrize(
    ("text", "column", "line", "fragment"),
    [
        ("", None, 1, "header missing"),
        ("\n0,1\n60,2\n", None, 1, "header missing"),
        ("0,1\n60,2\n", None, 1, "header missing"),
        ("time,requests_per_second\n0,1\n60,2\n", None, 1, "no 't_seconds' column"),
        ("t_seconds\n0\n60\n", None, 1, "no rate column"),
        ("t_seconds,a,a\n0,1,1\n60,2,2\n", "a", 1, "duplicate column"),
        (GOOD_HEADER + "0,1\n60,2\n", "nope", 1, "column 'nope' not found (available: requests_per_second)"),
        (MULTI, None, 1, "2 rate columns"),
        (MULTI, "t_seconds", 1, "column 't_seconds' not found"),
        (GOOD_HEADER + "0,1\n60,abc\n120,3\n", None, 3, "non-numeric value 'abc' in column 'requests_per_second'"),
        (GOOD_HEADER + "0,1\n60,\n", None, 3, "non-numeric value ''"),
        (GOOD_HEADER + "0,1\n60,1_000\n", None, 3, "non-numeric value '1_000'"),
        (GOOD_HEADER + "0,1\nsixty,2\n", None, 3, "non-numeric value 'sixty' in column 't_seconds'"),
        (GOOD_HEADER + "0,1\n60,2,7\n", None, 3, "expected 2 fields, found 3"),
        (GOOD_HEADER + "0,1\n60,2\n120\n", None, 4, "expected 2 fields, found 1"),
        (GOOD_HEADER + "0,1\n60,nan\n", None, 3, "non-finite rate 'nan'"),
        (GOOD_HEADER + "0,1\n60,inf\n", None, 3, "non-finite rate 'inf'"),
        (GOOD_HEADER + "0,1\ninf,2\n", None, 3, "non-finite time 'inf'"),
        (GOOD_HEADER + "0,1\n60,2\n120,-0.5\n", None, 4, "negative rate -0.5"),
        (GOOD_HEADER + "0,1\n60,2\n60,3\n", None, 4, "time not strictly increasing (t_seconds 60 after 60 on line 3)"),
        (GOOD_HEADER + "0,1\n\n60,2\n30,3\n", None, 5, "after 60 on line 4"),
        (MULTI.replace("60,2,20", "60,2,-20"), "fn_b", 3, "negative rate -20 in column 'fn_b'"),
    ],
)
def test_validation_errors_name_file_and_line(
    tmp_path: Path, text: str, column: str | None, line: int, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TraceError) as info:
        load_trace(path, column=column)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message


def test_negative_value_in_unchosen_column_is_accepted(tmp_path: Path) -> None:
    """Only the chosen rate column must be a valid rate; other columns only have to be numbers."""
    path = write(tmp_path, MULTI.replace("60,2,20", "60,2,-20"))
    np.testing.assert_array_equal(load_trace(path, "fn_a").rps, [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (GOOD_HEADER, "fewer than two data rows (found 0)"),
        (GOOD_HEADER + "\n\n", "fewer than two data rows (found 0)"),
        (GOOD_HEADER + "0,1\n", "fewer than two data rows (found 1)"),
    ],
)
def test_too_few_rows_has_no_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TraceError) as info:
        load_trace(path)
    assert str(info.value) == f"{path}: {fragment}"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(TraceError) as info:
        load_trace(missing)
    assert str(info.value) == f"{missing}: file not found"
    with pytest.raises(TraceError) as info:
        load_trace(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: ")
    assert "\n" not in str(info.value)


def test_binary_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "blob.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(TraceError) as info:
        load_trace(path)
    assert str(info.value).startswith(f"{path}: not a UTF-8 text file")


def test_trace_error_is_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file not found"):
        load_trace(tmp_path / "missing.csv")


def test_largest_shipped_trace_loads_fast() -> None:
    path = TRACES_DIR / "twitter_stream_2021-08_day2_1s.csv"
    start = time.perf_counter()
    trace = load_trace(path)
    elapsed = time.perf_counter() - start
    assert len(trace.rps) == 84_600
    assert trace.rps.max() == 332.0
    assert elapsed < 0.5


def test_error_near_end_of_large_file_names_line(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i % 7}\n" for i in range(20_000))
    path = write(tmp_path, GOOD_HEADER + rows + "20000,-1\n")
    with pytest.raises(TraceError) as info:
        load_trace(path)
    assert str(info.value).startswith(f"{path}:20002: negative rate -1")


# --- resample ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "rps", "interval_s", "compression", "expected"),
    [
        # Same step: identity.
        ([0, 60, 120], [1, 2, 3], 60, 1.0, [1, 2, 3]),
        # Two bins per interval: plain means.
        ([0, 60, 120, 180], [1, 3, 5, 7], 120, 1.0, [2, 6]),
        # A 1-minute bin replayed in one 15 s step is compression 4.
        ([0, 60, 120], [1, 2, 3], 15, 4.0, [1, 2, 3]),
        # Compression 8 with 15 s steps: two minutes per step.
        ([0, 60, 120, 180], [1, 3, 5, 7], 15, 8.0, [2, 6]),
        # Holding: an interval shorter than the bin repeats the bin's value.
        ([0, 60], [4, 8], 30, 1.0, [4, 4, 8, 8]),
        ([0, 60], [4, 8], 20, 1.0, [4, 4, 4, 8, 8, 8]),
        # Interval straddling bins: time-weighted, 1 s at 4 and 1 s at 10 -> 7.
        ([0, 3, 6], [4, 10, 1], 2, 1.0, [4, 7, 10, 1, 1]),
        # Uneven bins: [0,10) at 1, [10,40) at 3; the last row lasts the median step (20 s).
        ([0, 10, 40], [1, 3, 6], 20, 1.0, [2, 3, 6]),
        ([0, 10, 40], [1, 3, 6], 25, 1.0, [2.2, 4.2, 6]),
        # Partial last interval: mean over the covered part only.
        ([0, 1, 2], [2, 4, 6], 2, 1.0, [3, 6]),
        # Trace time need not start at 0.
        ([100, 160, 220], [1, 2, 3], 120, 1.0, [1.5, 3]),
    ],
)
def test_resample_exact(
    t: list[float], rps: list[float], interval_s: float, compression: float, expected: list[float]
) -> None:
    out = resample(np.array(t, dtype=float), np.array(rps, dtype=float), interval_s, compression)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_resample_conserves_requests() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(0, 6000, 60.0)
    rps = rng.uniform(0, 50, size=t.size)
    for interval_s, compression in [(15.0, 4.0), (7.0, 3.0), (600.0, 1.0), (13.0, 1.0)]:
        out = resample(t, rps, interval_s, compression)
        width = interval_s * compression
        assert len(out) == int(np.ceil(6000 / width))
        # Full intervals carry all requests except the partial last one, which carries the rest.
        total = np.sum(out[:-1]) * width + out[-1] * (6000 - width * (len(out) - 1))
        assert total == pytest.approx(np.sum(rps) * 60.0, rel=1e-10)


def test_resample_shipped_1s_trace_to_minutes() -> None:
    trace = load_trace(TRACES_DIR / "twitter_stream_2021-08_day2_1s.csv")
    out = resample(trace.t_seconds, trace.rps, 15.0, 4.0)
    assert len(out) == 84_600 // 60
    np.testing.assert_allclose(out, trace.rps.reshape(-1, 60).mean(axis=1), rtol=1e-9)


@pytest.mark.parametrize(
    ("t", "rps", "interval_s", "compression", "fragment"),
    [
        ([0.0], [1.0], 1.0, 1.0, "at least two rows"),
        ([0.0, 1.0], [1.0], 1.0, 1.0, "equal length"),
        ([0.0, 1.0], [1.0, 1.0], 0.0, 1.0, "interval_s"),
        ([0.0, 1.0], [1.0, 1.0], 1.0, -2.0, "time_compression"),
        ([0.0, 0.0], [1.0, 1.0], 1.0, 1.0, "strictly increasing"),
    ],
)
def test_resample_rejects_bad_input(
    t: list[float], rps: list[float], interval_s: float, compression: float, fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        resample(np.array(t), np.array(rps), interval_s, compression)


# --- rescale -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rates", "kwargs", "expected"),
    [
        ([1.0, 2.0, 4.0], {"peak": 100.0}, [25.0, 50.0, 100.0]),
        ([1.0, 2.0, 3.0], {"mean": 10.0}, [5.0, 10.0, 15.0]),
        ([0.0, 0.5], {"peak": 3.0}, [0.0, 3.0]),
        ([0.3, 0.7, 0.1], {"peak": 0.7}, [0.3, 0.7, 0.1]),
    ],
)
def test_rescale(rates: list[float], kwargs: dict[str, float], expected: list[float]) -> None:
    out = rescale(np.array(rates), **kwargs)
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    if "peak" in kwargs:
        assert out.max() == kwargs["peak"]


def test_rescale_does_not_modify_input() -> None:
    rates = np.array([1.0, 2.0])
    rescale(rates, peak=10.0)
    np.testing.assert_array_equal(rates, [1.0, 2.0])


@pytest.mark.parametrize(
    ("rates", "kwargs", "fragment"),
    [
        ([0.0, 0.0], {"peak": 1.0}, "all-zero"),
        ([0.0, 0.0], {"mean": 1.0}, "all-zero"),
        ([1.0], {}, "exactly one"),
        ([1.0], {"peak": 1.0, "mean": 1.0}, "exactly one"),
        ([1.0], {"peak": 0.0}, "positive"),
        ([1.0], {"mean": -1.0}, "positive"),
        ([], {"peak": 1.0}, "empty"),
        ([1.0, -1.0], {"peak": 1.0}, "non-negative"),
        ([1.0, np.nan], {"peak": 1.0}, "finite"),
    ],
)
def test_rescale_errors(rates: list[float], kwargs: dict[str, float], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        rescale(np.array(rates, dtype=float), **kwargs)


# --- poisson noise -----------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "interval_s"), [(2.0, 15.0), (40.0, 1.0), (0.5, 60.0)])
def test_poisson_noise_mean_and_variance(rate: float, interval_s: float) -> None:
    rng = np.random.default_rng(7)
    out = poisson_noise(np.full(200_000, rate), interval_s, rng)
    # Counts are whole numbers of requests per interval.
    np.testing.assert_allclose(out * interval_s, np.round(out * interval_s), atol=1e-9)
    assert out.mean() == pytest.approx(rate, rel=0.01)
    assert out.var() == pytest.approx(rate / interval_s, rel=0.03)


def test_poisson_noise_seeded_and_zero_stays_zero() -> None:
    rates = np.array([0.0, 1.0, 10.0, 100.0])
    a = poisson_noise(np.tile(rates, 50), 15.0, np.random.default_rng(1))
    b = poisson_noise(np.tile(rates, 50), 15.0, np.random.default_rng(1))
    c = poisson_noise(np.tile(rates, 50), 15.0, np.random.default_rng(2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(a[::4] == 0.0)


@pytest.mark.parametrize(
    ("rates", "interval_s", "fragment"),
    [([1.0], 0.0, "interval_s"), ([-1.0], 1.0, "non-negative"), ([np.inf], 1.0, "finite")],
)
def test_poisson_noise_errors(rates: list[float], interval_s: float, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        poisson_noise(np.array(rates), interval_s, np.random.default_rng(0))


# --- thinning ----------------------------------------------------------------------------------


def test_thin_counts_keeps_the_level_with_the_counting_noise_of_the_sparser_source() -> None:
    # 600 requests per 60 s bin thinned to 6: each bin Binomial(600, 0.01) requests, over 0.01.
    rps = np.full(100_000, 10.0)
    out = thin_counts(rps, 60.0, 6.0, np.random.default_rng(3))
    kept = out * 0.01 * 60.0
    np.testing.assert_allclose(kept, np.round(kept), atol=1e-9)  # whole requests kept per bin
    assert out.mean() == pytest.approx(10.0, rel=0.01)
    assert (kept.var()) == pytest.approx(600 * 0.01 * 0.99, rel=0.03)  # binomial variance


def test_thin_counts_keeps_the_shape_and_zero_bins() -> None:
    rps = np.tile([0.0, 1.0, 5.0, 20.0], 20_000)
    out = thin_counts(rps, 60.0, 30.0, np.random.default_rng(4))
    np.testing.assert_allclose([out[i::4].mean() for i in range(4)], [0.0, 1.0, 5.0, 20.0], rtol=0.03, atol=1e-12)
    assert np.all(out[::4] == 0.0)
    np.testing.assert_array_equal(out, thin_counts(rps, 60.0, 30.0, np.random.default_rng(4)))  # seeded


@pytest.mark.parametrize(
    ("rps", "step_s", "count", "fragment"),
    [
        ([1.0, 2.0], 60.0, 90.0, "the trace has only 90 requests per 60 s bin on average"),
        ([1.0, 2.0], 60.0, 0.0, "mean count must be positive, got 0"),
        ([1.0, 2.0], 0.0, 1.0, "step_s must be positive"),
    ],
)
def test_thin_counts_errors(rps: list[float], step_s: float, count: float, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        thin_counts(np.array(rps), step_s, count, np.random.default_rng(0))
