"""Real request-rate traces: loading a CSV, and the pure functions that shape it for the simulator.

A trace is a CSV with a ``t_seconds`` column (start of each bin) and one or more rate columns in
requests per second (see ``envs/traces/README.md``). Loading validates the whole file up front so a
bad trace fails with one line naming the file, the line and the problem, instead of as a NaN or a
shape error deep inside an episode. Shaping (resampling to the control interval, rescaling to a target
peak, adding Poisson arrival noise) is kept free of I/O and clocks so it can be tested exactly and
reused on synthetic series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.errors import TraceError

TIME_COLUMN = "t_seconds"


@dataclass(frozen=True)
class Trace:
    """A request-rate series read from one CSV column."""

    name: str
    """File stem, plus ``#column`` when a column of a multi-column file was chosen."""
    t_seconds: np.ndarray
    """Start of each bin, strictly increasing (float64)."""
    rps: np.ndarray
    """Mean request rate over each bin, finite and >= 0 (float64)."""
    path: str
    """The file it came from, as given (without ``#column``), so errors and reports can point at it."""

    @property
    def step_s(self) -> float:
        """Median bin length; also the length assumed for the last bin, which has no successor."""
        return float(np.median(np.diff(self.t_seconds)))

    @property
    def duration_s(self) -> float:
        """Trace time covered, including the last bin."""
        return float(self.t_seconds[-1] - self.t_seconds[0] + self.step_s)


def split_column(path: str | Path) -> tuple[str, str | None]:
    """Split ``file.csv#column`` into file and column, so a column can be named in a single string.

    A path that exists as written is never split, in case a file name itself contains ``#``.
    """
    text = str(path)
    if "#" not in text or Path(text).exists():
        return text, None
    file_part, _, column = text.rpartition("#")
    return file_part, column or None


def load_trace(path: str | Path, column: str | None = None) -> Trace:
    """Load and validate a trace CSV; ``path`` may be ``file.csv#column``.

    Raises:
        TraceError: one line, ``"<path>:<line>: <problem>"`` (or ``"<path>: <problem>"`` when no line
            applies), for a missing or unreadable file, a missing header or ``t_seconds`` column, an
            unknown or unchosen rate column, non-numeric values, non-finite or negative rates, time not
            strictly increasing, or fewer than two data rows.
    """
    if column is None:
        path, column = split_column(path)
    where = str(path)
    text = _read_text(Path(path), where)
    lines = text.splitlines()
    header = _parse_header(lines, where)
    t_idx = header.index(TIME_COLUMN)
    rate_columns = [name for i, name in enumerate(header) if i != t_idx]
    r_idx = _choose_column(header, rate_columns, column, where)

    data_lines = lines[1:]
    table = _fast_parse(data_lines, len(header))
    if table is None or not _checks_pass(table[:, t_idx], table[:, r_idx]):
        # The fast parse cannot say which line is at fault; rescan line by line to name it.
        _scan(data_lines, header, t_idx, r_idx, where)
        raise TraceError(f"{where}: cannot parse data rows as numbers")
    if table.shape[0] < 2:
        raise TraceError(f"{where}: fewer than two data rows (found {table.shape[0]})")

    stem = Path(path).stem
    name = f"{stem}#{header[r_idx]}" if column is not None else stem
    return Trace(
        name=name,
        t_seconds=np.ascontiguousarray(table[:, t_idx], dtype=np.float64),
        rps=np.ascontiguousarray(table[:, r_idx], dtype=np.float64),
        path=where,
    )


def _read_text(path: Path, where: str) -> str:
    """Read the whole file; every OS or decoding failure becomes a one-line TraceError."""
    try:
        # utf-8-sig drops the byte-order mark that spreadsheet exports put before the header.
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TraceError(f"{where}: file not found") from None
    except IsADirectoryError:
        raise TraceError(f"{where}: is a directory, not a CSV file") from None
    except UnicodeDecodeError as err:
        raise TraceError(f"{where}: not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise TraceError(f"{where}: cannot read file ({err.strerror or err})") from None


def _parse_header(lines: list[str], where: str) -> list[str]:
    """Return the header's column names, insisting on a ``t_seconds`` column."""
    if not lines or not lines[0].strip():
        raise TraceError(f"{where}:1: header missing (expected '{TIME_COLUMN},requests_per_second')")
    header = [name.strip() for name in lines[0].split(",")]
    if _is_number(header[0]):
        raise TraceError(
            f"{where}:1: header missing, found data {lines[0].strip()!r} (expected '{TIME_COLUMN},requests_per_second')"
        )
    if TIME_COLUMN not in header:
        raise TraceError(f"{where}:1: no '{TIME_COLUMN}' column in header {lines[0].strip()!r}")
    if any(not name for name in header):
        raise TraceError(f"{where}:1: empty column name in header {lines[0].strip()!r}")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise TraceError(f"{where}:1: duplicate column name(s) in header: {', '.join(duplicates)}")
    return header


def _choose_column(header: list[str], rate_columns: list[str], column: str | None, where: str) -> int:
    """Index of the rate column to read; a multi-column file needs an explicit choice."""
    available = ", ".join(rate_columns)
    if not rate_columns:
        raise TraceError(f"{where}:1: no rate column besides '{TIME_COLUMN}'")
    if column is not None:
        if column == TIME_COLUMN or column not in header:
            raise TraceError(f"{where}:1: column '{column}' not found (available: {available})")
        return header.index(column)
    if len(rate_columns) > 1:
        raise TraceError(
            f"{where}:1: {len(rate_columns)} rate columns, choose one with '{where}#<column>' (available: {available})"
        )
    return header.index(rate_columns[0])


def _fast_parse(data_lines: list[str], n_columns: int) -> np.ndarray | None:
    """Parse all data rows in C; None when anything is off, so the caller can rescan for the line."""
    if not any(line.strip() for line in data_lines):  # stops at the first data line
        return np.empty((0, n_columns))
    try:
        table = np.loadtxt(data_lines, delimiter=",", comments=None, ndmin=2, dtype=np.float64)
    except ValueError:
        return None
    if table.shape[1] != n_columns:
        return None
    return table


def _checks_pass(t: np.ndarray, rps: np.ndarray) -> bool:
    """Vectorised form of the per-line checks in ``_scan``."""
    return bool(np.all(np.isfinite(t)) and np.all(np.isfinite(rps)) and np.all(rps >= 0.0) and np.all(np.diff(t) > 0.0))


def _scan(data_lines: list[str], header: list[str], t_idx: int, r_idx: int, where: str) -> None:
    """Check the data rows one by one and raise a TraceError naming the first bad line.

    Only runs after the fast parse or its checks failed, so its speed does not matter.
    """
    prev_t: float | None = None
    prev_line = 0
    rows = 0
    for line_no, line in enumerate(data_lines, start=2):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != len(header):
            raise TraceError(f"{where}:{line_no}: expected {len(header)} fields, found {len(fields)}")
        for name, field in zip(header, fields, strict=True):
            if not _is_number(field):
                raise TraceError(f"{where}:{line_no}: non-numeric value {field!r} in column '{name}'")
        t = float(fields[t_idx])
        rate = float(fields[r_idx])
        if not math.isfinite(t):
            raise TraceError(f"{where}:{line_no}: non-finite time {fields[t_idx]!r} in column '{TIME_COLUMN}'")
        if not math.isfinite(rate):
            raise TraceError(f"{where}:{line_no}: non-finite rate {fields[r_idx]!r} in column '{header[r_idx]}'")
        if rate < 0.0:
            raise TraceError(f"{where}:{line_no}: negative rate {fields[r_idx]} in column '{header[r_idx]}'")
        if prev_t is not None and t <= prev_t:
            raise TraceError(
                f"{where}:{line_no}: time not strictly increasing "
                f"({TIME_COLUMN} {fields[t_idx]} after {prev_t:g} on line {prev_line})"
            )
        prev_t, prev_line = t, line_no
        rows += 1
    if rows < 2:
        raise TraceError(f"{where}: fewer than two data rows (found {rows})")


def _is_number(text: str) -> bool:
    """Whether a CSV field is a plain decimal number, as numpy's parser reads it.

    Python's float() also takes digit separators such as ``1_000``, which numpy rejects; refusing them
    here keeps the line-by-line scan in agreement with the fast parse.
    """
    if not text or "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def resample(t_seconds: np.ndarray, rps: np.ndarray, interval_s: float, time_compression: float = 1.0) -> np.ndarray:
    """Time-weighted mean rate in each control interval of simulated time.

    Row ``i`` holds its rate over ``[t_i, t_{i+1})``; the last row lasts the median step. With
    ``time_compression=k``, ``k`` seconds of trace pass per simulated second, so each interval covers
    ``interval_s * k`` seconds of trace starting at ``t_0``. This averages when an interval spans
    several bins and holds a bin's value when it is longer than the interval. The result covers the
    whole trace: a final partial interval is the mean over the part of it that the trace covers.

    Raises:
        ValueError: on mismatched or too short inputs, non-increasing time, or a non-positive
            interval or compression.
    """
    t = np.asarray(t_seconds, dtype=np.float64)
    r = np.asarray(rps, dtype=np.float64)
    if t.ndim != 1 or t.shape != r.shape:
        raise ValueError(f"t_seconds and rps must be 1-D of equal length, got shapes {t.shape} and {r.shape}")
    if t.size < 2:
        raise ValueError(f"need at least two rows to resample, got {t.size}")
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    if not (math.isfinite(time_compression) and time_compression > 0):
        raise ValueError(f"time_compression must be positive, got {time_compression}")
    steps = np.diff(t)
    if not np.all(steps > 0):
        raise ValueError("t_seconds must be strictly increasing")

    edges = np.append(t, t[-1] + np.median(steps))
    # Cumulative requests at each bin edge; the integral of the step function is piecewise linear
    # between edges, so interpolating it gives the exact request count up to any instant.
    cumulative = np.concatenate(([0.0], np.cumsum(r * np.diff(edges))))
    width = interval_s * time_compression
    span = edges[-1] - edges[0]
    n = max(1, math.ceil(span / width - 1e-9))
    starts = edges[0] + width * np.arange(n)
    ends = np.minimum(starts + width, edges[-1])
    requests = np.interp(ends, edges, cumulative) - np.interp(starts, edges, cumulative)
    return requests / (ends - starts)


def rescale(rates: np.ndarray, peak: float | None = None, mean: float | None = None) -> np.ndarray:
    """Scale rates so their maximum is ``peak`` or their mean is ``mean`` (exactly one of the two).

    Traces range from under 1 rps to thousands; scaling to a target lets the same app and cluster
    be driven by any of them while keeping the trace's shape.

    Raises:
        ValueError: if both or neither target is given, the target is not positive, or the rates are
            empty, negative, non-finite or all zero (nothing to scale).
    """
    if (peak is None) == (mean is None):
        raise ValueError("give exactly one of peak or mean")
    target = peak if peak is not None else mean
    assert target is not None
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"target {'peak' if peak is not None else 'mean'} must be positive, got {target}")
    r = np.asarray(rates, dtype=np.float64)
    if r.size == 0:
        raise ValueError("cannot rescale an empty series")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("rates must be finite and non-negative")
    current = float(r.max()) if peak is not None else float(r.mean())
    if current == 0.0:
        raise ValueError("cannot rescale an all-zero series")
    out = r * (target / current)
    if peak is not None:
        out[np.argmax(r)] = target  # exact, whatever the rounding of the multiplication
    return out


def keep_probability(rps: np.ndarray, step_s: float, mean_count: float) -> float:
    """The probability ``thin_counts`` keeps each request with: ``mean_count`` over the trace's mean
    requests per bin.

    Raises:
        ValueError: on a non-positive step or mean count, or a trace with at most ``mean_count``
            requests per bin on average (thinning cannot make it sparser).
    """
    if not (math.isfinite(step_s) and step_s > 0):
        raise ValueError(f"step_s must be positive, got {step_s}")
    if not (math.isfinite(mean_count) and mean_count > 0):
        raise ValueError(f"mean count must be positive, got {mean_count}")
    have = float(np.rint(np.asarray(rps, dtype=np.float64) * step_s).mean())
    if not have > mean_count:
        raise ValueError(f"the trace has only {have:.3g} requests per {step_s:g} s bin on average")
    return mean_count / have


def thin_counts(rps: np.ndarray, step_s: float, mean_count: float, rng: np.random.Generator) -> np.ndarray:
    """The rates of a sparser source of the same shape: each bin's request count kept request by
    request with probability ``p = keep_probability(...)`` (binomial thinning), then divided by
    ``p`` so the mean level stays. A single serverless function sees a few requests per minute;
    scaled to an app's peak, its counting noise becomes minute-to-minute jumps that a busy
    aggregate (thousands of requests per minute) never shows. Thinning a busy trace gives such a
    load, its shape still real.

    Raises:
        ValueError: as ``keep_probability``.
    """
    p = keep_probability(rps, step_s, mean_count)
    counts = np.rint(np.asarray(rps, dtype=np.float64) * step_s).astype(np.int64)
    return rng.binomial(counts, p) / (p * step_s)


def poisson_noise(rates: np.ndarray, interval_s: float, rng: np.random.Generator) -> np.ndarray:
    """Observed rate per step when arrivals are Poisson around the mean rate.

    A mean rate says how many requests arrive on average; a real interval sees a whole number of them,
    with variance equal to the mean. Drawing counts ``Poisson(rate * interval_s)`` and dividing back by
    the interval gives that, and the passed generator keeps episodes reproducible.

    Raises:
        ValueError: on a non-positive interval or negative or non-finite rates.
    """
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    r = np.asarray(rates, dtype=np.float64)
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("rates must be finite and non-negative")
    return rng.poisson(r * interval_s) / interval_s
