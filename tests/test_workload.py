"""Tests for envs.workload: shipped traces and split, trace windows, synthetic workloads, spec parsing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from envs.errors import ConfigError, TraceError
from envs.synthetic import FAMILIES
from envs.trace import Trace, load_trace, resample
from envs.workload import (
    TRACES_DIR,
    SyntheticWorkload,
    TraceWorkload,
    Workload,
    default_split,
    make_workload,
)

SELECTED = "azure_functions_2019_selected_functions_1min.csv"
SHIPPED_CSVS = sorted(p.name for p in TRACES_DIR.glob("*.csv"))


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def make_trace(rps: list[float], step: float = 60.0, name: str = "hand") -> Trace:
    return Trace(name=name, t_seconds=np.arange(len(rps)) * step, rps=np.array(rps, dtype=float), path=f"{name}.csv")


# --- shipped traces and split ------------------------------------------------------------------


def test_shipped_folder_is_complete() -> None:
    assert len(SHIPPED_CSVS) == 9
    for extra in ("README.md", "NOTICE-wc98.txt", "split.yaml"):
        assert (TRACES_DIR / extra).is_file()


def shipped_specs() -> list[str]:
    specs = []
    for name in SHIPPED_CSVS:
        if name == SELECTED:
            header = (TRACES_DIR / name).read_text().splitlines()[0].split(",")
            specs += [f"{name}#{column}" for column in header[1:]]
        else:
            specs.append(name)
    return specs


@pytest.mark.parametrize("entry", shipped_specs())
def test_every_shipped_trace_loads(entry: str) -> None:
    trace = load_trace(TRACES_DIR / entry)
    assert len(trace.rps) >= 1440
    assert trace.step_s in (1.0, 60.0)
    assert trace.t_seconds[0] == 0.0
    assert np.all(np.diff(trace.t_seconds) == trace.step_s)  # the README promises a constant step
    assert trace.rps.max() > 0
    workload = make_workload(f"trace:{entry}", peak_rps=100.0)
    assert workload.rates(50, 15.0, rng()).max() <= 100.0


def test_multi_column_file_needs_a_column() -> None:
    with pytest.raises(TraceError, match="6 rate columns"):
        load_trace(TRACES_DIR / SELECTED)


def test_default_split_names_only_shipped_files_and_columns() -> None:
    split = default_split()
    assert set(split) == {"train", "held_out"}
    train, validation = split["train"], split["held_out"]
    assert len(train) == 5
    assert len(validation) == 3 + 6
    assert not set(train) & set(validation)
    for spec in train + validation:
        assert spec.startswith("trace:")
        file_name, _, column = spec.removeprefix("trace:").partition("#")
        assert file_name in SHIPPED_CSVS
        trace = load_trace(TRACES_DIR / file_name, column or None)
        assert len(trace.rps) > 0
    # Every column of the selected-functions file is held out, and nothing of it is trained on.
    columns = (TRACES_DIR / SELECTED).read_text().splitlines()[0].split(",")[1:]
    assert {f"trace:{SELECTED}#{c}" for c in columns} <= set(validation)
    assert all(SELECTED not in spec for spec in train)
    # Every shipped file is used somewhere.
    used = {spec.removeprefix("trace:").partition("#")[0] for spec in train + validation}
    assert used == set(SHIPPED_CSVS)


def test_split_file_is_plain_yaml_of_file_names() -> None:
    data = yaml.safe_load((TRACES_DIR / "split.yaml").read_text())
    assert data["train"][0] == "nasa_http_1995-07_1min.csv"
    assert "nasa_http_1995-08_1min.csv" in data["held_out"]


# --- TraceWorkload -----------------------------------------------------------------------------


def test_trace_workload_fixed_start_rescales_whole_trace() -> None:
    trace = make_trace([1, 2, 3, 4, 8, 2])
    workload = TraceWorkload(trace, peak_rps=80.0, time_compression=4.0, random_start=False)
    assert isinstance(workload, Workload)
    assert workload.name == "hand"
    assert workload.family == "trace"
    assert workload.full_length(15.0) == 6
    # The first window does not contain the peak, so it stays below 80: scaled as part of the whole.
    np.testing.assert_allclose(workload.rates(3, 15.0, rng()), [10.0, 20.0, 30.0])
    np.testing.assert_allclose(workload.rates(6, 15.0, rng()), [10, 20, 30, 40, 80, 20])


def test_trace_workload_wraps_when_shorter_than_episode() -> None:
    workload = TraceWorkload(make_trace([1, 2, 4]), peak_rps=4.0, time_compression=4.0, random_start=False)
    np.testing.assert_allclose(workload.rates(7, 15.0, rng()), [1, 2, 4, 1, 2, 4, 1])
    windows = {tuple(TraceWorkload(make_trace([1, 2, 4]), 4.0).rates(4, 15.0, rng(s))) for s in range(30)}
    assert windows == {(1, 2, 4, 1), (2, 4, 1, 2), (4, 1, 2, 4)}


def test_trace_workload_random_windows_stay_inside_the_trace() -> None:
    rps = list(range(1, 21))
    workload = TraceWorkload(make_trace(rps), peak_rps=20.0, time_compression=4.0)
    starts = set()
    for seed in range(200):
        window = workload.rates(5, 15.0, rng(seed))
        start = int(window[0]) - 1
        np.testing.assert_allclose(window, np.arange(start + 1, start + 6))
        starts.add(start)
    assert starts == set(range(16))  # every offset 0..15 occurs and none wraps


def test_counts_variant_thins_the_trace_per_episode_at_its_recorded_scale() -> None:
    # 1200 requests per minute at the peak; thinned to a mean of 60 per minute.
    trace = make_trace([10.0, 20.0] * 500)
    workload = TraceWorkload(trace, 40.0, 1.0, counts=60.0)
    assert workload.name == "hand+counts@60"
    a, b = workload.rates(4000, 15.0, rng(1)), workload.rates(4000, 15.0, rng(2))
    assert not np.array_equal(a, b)  # redrawn per episode
    np.testing.assert_array_equal(a, workload.rates(4000, 15.0, rng(1)))
    clean = TraceWorkload(trace, 40.0, 1.0).rates(4000, 15.0, rng(1))
    assert a.mean() == pytest.approx(clean.mean(), rel=0.02)  # the recorded trace's level
    assert 0.1 < np.std(a / clean) < 0.4  # about 1/sqrt(40 requests kept per bin)
    for minute in a.reshape(-1, 4):  # a minute's thinned count holds over its four intervals at real time
        assert np.all(minute == minute[0])
    assert workload.at(4.0).counts == 60.0


def test_trace_workload_is_seeded() -> None:
    workload = make_workload("trace:nasa_http_1995-08_1min.csv", peak_rps=50.0)
    a = workload.rates(100, 15.0, rng(3))
    b = workload.rates(100, 15.0, rng(3))
    c = workload.rates(100, 15.0, rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(("interval_s", "compression", "length"), [(15.0, 4.0, 3), (15.0, 8.0, 2), (15.0, 1.0, 12)])
def test_trace_workload_time_compression(interval_s: float, compression: float, length: int) -> None:
    trace = make_trace([2, 4, 6])
    workload = TraceWorkload(trace, peak_rps=6.0, time_compression=compression, random_start=False)
    assert workload.full_length(interval_s) == length
    expected = resample(trace.t_seconds, trace.rps, interval_s, compression)
    expected = expected * 6.0 / expected.max()
    np.testing.assert_allclose(workload.rates(length, interval_s, rng()), expected)


def test_peak_is_the_peak_the_env_sees() -> None:
    """On a 1 s trace averaged into 1-minute steps, the resampled maximum is the target peak."""
    workload = make_workload("trace:twitter_stream_2021-08_day2_1s.csv", peak_rps=200.0)
    assert isinstance(workload, TraceWorkload)
    n = workload.full_length(15.0)
    assert n == 1410
    workload.random_start = False
    whole = workload.rates(n, 15.0, rng())
    assert whole.max() == pytest.approx(200.0)
    assert whole.min() > 0


def test_trace_workload_rejects_all_zero_trace() -> None:
    with pytest.raises(TraceError, match="all rates are zero"):
        TraceWorkload(make_trace([0, 0, 0]), peak_rps=1.0)


# --- SyntheticWorkload -------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_synthetic_workload(family: str) -> None:
    workload = SyntheticWorkload(family, peak_rps=70.0)
    assert isinstance(workload, Workload)
    assert workload.name == family
    assert workload.family == family
    a = workload.rates(120, 15.0, rng(1))
    assert a.shape == (120,)
    assert a.max() == 70.0
    np.testing.assert_array_equal(a, workload.rates(120, 15.0, rng(1)))
    assert not np.array_equal(a, workload.rates(120, 15.0, rng(2)))


def test_idle_variant_is_the_family_cut_by_idle_stretches() -> None:
    """``NAME+idle`` draws the same family instance, then zeroes the stretches ``idle_gate`` draws
    from the same generator: 20-80 % of the episode, reproducible by seed."""
    plain, idle = SyntheticWorkload("spikes", 70.0), SyntheticWorkload("spikes", 70.0, idle=True)
    a, b = plain.rates(240, 15.0, rng(3)), idle.rates(240, 15.0, rng(3))
    zero = b == 0
    assert 0.2 <= zero.mean() <= 0.8 and not (a == 0).any()
    np.testing.assert_array_equal(b[~zero], a[~zero])
    np.testing.assert_array_equal(b, idle.rates(240, 15.0, rng(3)))


def test_jitter_variant_is_the_family_times_mean_one_noise() -> None:
    """``NAME+jitter`` draws the same instance, then one log-normal factor per interval of spread
    ``JITTER_SIGMA``; with ``+idle`` too, the idle stretches stay at zero."""
    from envs.workload import JITTER_SIGMA

    plain, noisy = SyntheticWorkload("diurnal", 70.0), SyntheticWorkload("diurnal", 70.0, jitter=True)
    a, b = plain.rates(4000, 15.0, rng(4)), noisy.rates(4000, 15.0, rng(4))
    assert b.max() <= a.max() + 1e-9  # never past the instance's own peak
    kept = b < a.max()  # the factors where the peak did not cut them
    assert kept.mean() > 0.8
    assert np.std(np.log(b / a)[kept]) == pytest.approx(JITTER_SIGMA, rel=0.1)
    assert np.mean(b / a) == pytest.approx(1.0, abs=0.1)
    np.testing.assert_array_equal(b, noisy.rates(4000, 15.0, rng(4)))
    both = SyntheticWorkload("diurnal", 70.0, idle=True, jitter=True).rates(4000, 15.0, rng(4))
    idle = SyntheticWorkload("diurnal", 70.0, idle=True).rates(4000, 15.0, rng(4))
    np.testing.assert_array_equal(both == 0, idle == 0)


def test_synthetic_workload_unknown_family() -> None:
    with pytest.raises(ConfigError, match="unknown workload family 'wave'"):
        SyntheticWorkload("wave", 1.0)


# --- make_workload -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "cls", "name", "family"),
    [
        ("family:diurnal", SyntheticWorkload, "diurnal", "diurnal"),
        ("flash-crowd", SyntheticWorkload, "flash-crowd", "flash-crowd"),
        ("family:spikes+idle", SyntheticWorkload, "spikes+idle", "spikes"),
        ("diurnal+idle", SyntheticWorkload, "diurnal+idle", "diurnal"),
        ("family:spikes+jitter", SyntheticWorkload, "spikes+jitter", "spikes"),
        ("ramp+idle+jitter", SyntheticWorkload, "ramp+idle+jitter", "ramp"),
        ("trace:nasa_http_1995-08_1min.csv", TraceWorkload, "nasa_http_1995-08_1min", "trace"),
        ("trace:nasa_http_1995-08_1min", TraceWorkload, "nasa_http_1995-08_1min", "trace"),
        ("nasa_http_1995-08_1min.csv", TraceWorkload, "nasa_http_1995-08_1min", "trace"),
        ("trace:nasa_http_1995-07_1min.csv+counts@8", TraceWorkload, "nasa_http_1995-07_1min+counts@8", "trace"),
        (
            f"trace:{SELECTED}#fn_f9a52e1b_smooth_diurnal",
            TraceWorkload,
            "azure_functions_2019_selected_functions_1min#fn_f9a52e1b_smooth_diurnal",
            "trace",
        ),
        (f"{SELECTED}#fn_78310bd8_business_hours", TraceWorkload, None, "trace"),
        (f"trace:{TRACES_DIR / 'azure_llm_inference_2023_conv_1s.csv'}", TraceWorkload, None, "trace"),
    ],
)
def test_make_workload_spec_forms(spec: str, cls: type, name: str | None, family: str) -> None:
    workload = make_workload(spec, peak_rps=40.0)
    assert isinstance(workload, cls)
    assert workload.family == family
    if name is not None:
        assert workload.name == name
    out = workload.rates(30, 15.0, rng())
    assert out.shape == (30,)
    assert np.all(out >= 0)
    assert out.max() <= 40.0


def test_make_workload_path_outside_shipped_folder(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("t_seconds,a,b\n0,1,5\n60,2,10\n")
    workload = make_workload(f"trace:{path}#b", peak_rps=20.0, time_compression=4.0)
    assert isinstance(workload, TraceWorkload)
    assert workload.name == "mine#b"
    assert workload.time_compression == 4.0
    workload.random_start = False
    np.testing.assert_allclose(workload.rates(2, 15.0, rng()), [10.0, 20.0])


def test_make_workload_passes_time_compression() -> None:
    fast = make_workload("trace:azure_functions_2019_sample1350_aggregate_1min.csv", 10.0, time_compression=8.0)
    slow = make_workload("trace:azure_functions_2019_sample1350_aggregate_1min.csv", 10.0, time_compression=4.0)
    assert isinstance(fast, TraceWorkload)
    assert isinstance(slow, TraceWorkload)
    assert fast.full_length(15.0) == 720
    assert slow.full_length(15.0) == 1440


@pytest.mark.parametrize(
    ("spec", "peak", "compression", "error", "fragment"),
    [
        ("family:wave", 10.0, 4.0, ConfigError, "unknown workload family 'wave' (valid: diurnal"),
        ("family:wave+idle", 10.0, 4.0, ConfigError, "mixer; NAME+idle adds idle stretches, NAME+jitter"),
        ("family:spikes+noisy", 10.0, 4.0, ConfigError, "unknown variant '+noisy' (valid: +idle, +jitter"),
        ("family:spikes+jitter+idle", 10.0, 4.0, ConfigError, "in the order +idle+jitter"),
        ("family:spikes+idle+idle", 10.0, 4.0, ConfigError, "variants must appear once each"),
        ("family:spikes+", 10.0, 4.0, ConfigError, "unknown variant '+'"),
        ("family:", 10.0, 4.0, ConfigError, "nothing after 'family:'"),
        ("trace:", 10.0, 4.0, ConfigError, "nothing after 'trace:'"),
        ("", 10.0, 4.0, ConfigError, "empty workload spec"),
        ("   ", 10.0, 4.0, ConfigError, "empty workload spec"),
        ("family:diurnal", 0.0, 4.0, ConfigError, "peak_rps must be a positive number"),
        ("family:diurnal", float("nan"), 4.0, ConfigError, "peak_rps"),
        ("trace:nasa_http_1995-08_1min.csv", 10.0, 0.0, ConfigError, "time_compression"),
        ("wave", 10.0, 4.0, TraceError, "trace file not found"),
        ("trace:no_such_trace.csv", 10.0, 4.0, TraceError, "trace file not found"),
        ("trace:missing/dir/x.csv", 10.0, 4.0, TraceError, "missing/dir/x.csv: file not found"),
        (f"trace:{SELECTED}", 10.0, 4.0, TraceError, "6 rate columns"),
        (f"trace:{SELECTED}#fn_nope", 10.0, 4.0, TraceError, "column 'fn_nope' not found"),
        ("trace:nasa_http_1995-07_1min.csv+counts@x", 10.0, 4.0, ConfigError, "+counts@N needs a positive number"),
        ("trace:nasa_http_1995-07_1min.csv+counts@-2", 10.0, 4.0, ConfigError, "got '-2'"),
        ("trace:nasa_http_1995-07_1min.csv+counts@1000", 10.0, 4.0, ConfigError, "has only 47.7 requests per 60 s"),
    ],
)
def test_make_workload_errors_name_the_spec(
    spec: str, peak: float, compression: float, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as info:
        make_workload(spec, peak_rps=peak, time_compression=compression)
    message = str(info.value)
    assert type(info.value) is error
    assert message.startswith(f"workload {spec!r}: "), message
    assert fragment in message
    assert "\n" not in message


def test_make_workload_bad_file_names_spec_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("t_seconds,requests_per_second\n0,1\n60,-3\n")
    spec = f"trace:{path}"
    with pytest.raises(TraceError) as info:
        make_workload(spec, peak_rps=1.0)
    assert str(info.value) == f"workload {spec!r}: {path}:3: negative rate -3 in column 'requests_per_second'"


def test_validation_shares_no_workload_with_the_held_out_list() -> None:
    """Training's validation chooses checkpoints and `rank` chooses deployments; a held-out workload
    in it would make every held-out figure a test of what was chosen on it. Checked for the code's
    defaults and every shipped training config."""
    from aware_ray.bench.runner import HELD_OUT_FAMILIES
    from aware_ray.training.config import RunConfig

    held_traces = {s.removeprefix("trace:") for s in default_split()["held_out"]}
    default = RunConfig()
    configs = sorted((Path(__file__).resolve().parent.parent / "experiments" / "configs").glob("*.yaml"))
    runs = [(default.eval_traces, default.eval_families)]
    for path in configs:
        run = (yaml.safe_load(path.read_text()) or {}).get("run") or {}
        runs.append((run.get("eval_traces", default.eval_traces), run.get("eval_families", default.eval_families)))
    assert len(runs) > 8
    for traces, families in runs:
        assert not set(traces) & held_traces
        assert not set(families) & set(HELD_OUT_FAMILIES)
