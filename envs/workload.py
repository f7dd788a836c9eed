"""Workloads: the external request rate an episode replays, from a real trace or a synthetic family.

The env only needs "give me the mean rate for each of the next ``n_steps`` control intervals"; this
module hides whether that comes from a shipped trace (rescaled and time-compressed) or from a seeded
synthetic family, and turns a one-string spec from a config or the command line into a workload.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import yaml

from envs.errors import ConfigError, TraceError
from envs.synthetic import FAMILIES, generate
from envs.trace import Trace, keep_probability, load_trace, poisson_noise, resample, rescale, split_column, thin_counts

IDLE_SUFFIX = "+idle"
"""``family:NAME+idle``: the family cut by idle stretches (``idle_gate``), e.g. for validation, where
a policy that cuts to the minimum at idle and waits for pressure shows its risk."""

JITTER_SUFFIX = "+jitter"
"""``family:NAME+jitter``: the family with interval-to-interval noise of spread ``JITTER_SIGMA``
(``with_noise``), e.g. for validation, where a policy that cuts at every dip shows its risk.
Both may be given, in this order (``spikes+idle+jitter``)."""

JITTER_SIGMA = 0.7
"""Spread of ``+jitter``: the relative noise of a source with about two requests per interval
(1/sqrt(2)), which a low-rate service shows once scaled to an app's peak."""

VARIANTS = (IDLE_SUFFIX, JITTER_SUFFIX)

COUNTS_SUFFIX = "+counts@"
"""``trace:PATH+counts@N``: the trace thinned to N requests per trace bin on average
(``envs.trace.thin_counts``), redrawn per episode: a low-rate source of the trace's shape, e.g.
for validation on the counting noise of a single function, from a trace that is trained on."""

TRACES_DIR = Path(__file__).parent / "traces"
"""The shipped traces (see its README.md for sources and terms) and the default split."""

SPLIT_FILE = TRACES_DIR / "split.yaml"


@runtime_checkable
class Workload(Protocol):
    """A source of external request rates for episodes."""

    name: str
    """What is replayed, e.g. ``nasa_http_1995-08_1min`` or ``diurnal``."""
    family: str
    """Group used to aggregate evaluation results: the synthetic family name, or ``"trace"``."""

    def rates(self, n_steps: int, interval_s: float, rng: np.random.Generator) -> np.ndarray:
        """Noiseless mean external request rate (rps) for each of ``n_steps`` control intervals."""
        ...


class TraceWorkload:
    """Replays a window of a real trace, rescaled to a target peak and compressed in time.

    The whole trace is scaled once, so that the maximum of the resampled trace (the rate the env can
    actually see) is ``peak_rps``; windows therefore keep their level relative to the rest of the
    trace, and a quiet night stays quiet instead of being blown up to the peak.
    """

    family = "trace"

    def __init__(
        self,
        trace: Trace,
        peak_rps: float,
        time_compression: float = 4.0,
        random_start: bool = True,
        counts: float | None = None,
    ):
        if not (math.isfinite(peak_rps) and peak_rps > 0):
            raise ConfigError(f"{trace.name}: peak_rps must be positive, got {peak_rps}")
        if not (math.isfinite(time_compression) and time_compression > 0):
            raise ConfigError(f"{trace.name}: time_compression must be positive, got {time_compression}")
        if not np.any(trace.rps > 0):
            raise TraceError(f"{trace.path}: all rates are zero, cannot scale to a peak")
        if counts is not None:
            try:
                keep_probability(trace.rps, trace.step_s, counts)
            except ValueError as err:
                raise ConfigError(f"{trace.name}{COUNTS_SUFFIX}{counts:g}: {err}") from None
        self.trace = trace
        self.name = trace.name + (f"{COUNTS_SUFFIX}{counts:g}" if counts is not None else "")
        self.peak_rps = float(peak_rps)
        self.time_compression = float(time_compression)
        self.random_start = random_start
        self.counts = counts
        """Mean requests per trace bin the trace is thinned to in each episode (None: as recorded)."""
        self._cache: dict[float, tuple[np.ndarray, float]] = {}

    def series(self, interval_s: float) -> np.ndarray:
        """The whole trace at ``interval_s`` per step, scaled to ``peak_rps`` (cached per interval)."""
        return self._scaled(interval_s)[0]

    def _scaled(self, interval_s: float) -> tuple[np.ndarray, float]:
        """``series`` and the factor it scaled the resampled trace by, computed once per interval."""
        interval_s = float(interval_s)
        if interval_s not in self._cache:
            resampled = resample(self.trace.t_seconds, self.trace.rps, interval_s, self.time_compression)
            self._cache[interval_s] = (rescale(resampled, peak=self.peak_rps), self.peak_rps / float(resampled.max()))
        return self._cache[interval_s]

    def full_length(self, interval_s: float) -> int:
        """Steps needed to replay the whole trace once, so evaluation can cover all of it."""
        return len(self.series(interval_s))

    def rates(self, n_steps: int, interval_s: float, rng: np.random.Generator) -> np.ndarray:
        """A window of ``n_steps`` from a random offset (0 without ``random_start``).

        The offset is drawn so the window lies inside the trace when the trace is long enough;
        a trace shorter than the window wraps around to its start.
        """
        if int(n_steps) != n_steps or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {n_steps}")
        series = self.series(interval_s)
        length = len(series)
        offset = 0
        if self.random_start:
            offset = int(rng.integers(0, length - n_steps + 1)) if length >= n_steps else int(rng.integers(0, length))
        if self.counts is not None:
            # Scaled as the recorded trace is, so a window keeps its level (and noise may pass the peak).
            thinned = thin_counts(self.trace.rps, self.trace.step_s, self.counts, rng)
            series = (
                resample(self.trace.t_seconds, thinned, interval_s, self.time_compression) * self._scaled(interval_s)[1]
            )
        return series[(offset + np.arange(n_steps)) % length].copy()

    def at(self, time_compression: float) -> TraceWorkload:
        """The same trace (loaded once) replayed at another compression."""
        return TraceWorkload(self.trace, self.peak_rps, time_compression, self.random_start, self.counts)

    def __repr__(self) -> str:
        return f"TraceWorkload({self.name!r}, peak_rps={self.peak_rps}, time_compression={self.time_compression})"


class SyntheticWorkload:
    """A fresh random instance of a synthetic family on every call, drawn from the passed generator."""

    def __init__(self, family: str, peak_rps: float, idle: bool = False, jitter: bool = False):
        if family not in FAMILIES:
            known = (
                f"valid: {', '.join(FAMILIES)}; NAME{IDLE_SUFFIX} adds idle stretches, "
                f"NAME{JITTER_SUFFIX} interval-to-interval noise"
            )
            raise ConfigError(f"unknown workload family {family!r} ({known})")
        if not (math.isfinite(peak_rps) and peak_rps > 0):
            raise ConfigError(f"{family}: peak_rps must be positive, got {peak_rps}")
        self.name = family + (IDLE_SUFFIX if idle else "") + (JITTER_SUFFIX if jitter else "")
        self.family = family
        self.peak_rps = float(peak_rps)
        self.idle = idle
        self.jitter = jitter

    def rates(self, n_steps: int, interval_s: float, rng: np.random.Generator) -> np.ndarray:
        """Mean rates of a new instance of the family, peaking at ``peak_rps``; with ``idle``, cut
        by the idle stretches training episodes get (``idle_gate``); with ``jitter``, times
        interval-to-interval noise of spread ``JITTER_SIGMA`` (``with_noise``)."""
        rates = generate(self.family, n_steps, interval_s, self.peak_rps, rng)
        if self.idle:
            rates = rates * idle_gate(n_steps, rng)
        if self.jitter:
            rates = with_noise(rates, rng, JITTER_SIGMA)
        return rates

    def __repr__(self) -> str:
        return f"SyntheticWorkload({self.name!r}, peak_rps={self.peak_rps})"


def resolve_trace_path(path: str) -> Path:
    """Where a trace file named in a spec lives: a bare name is looked up in the shipped traces first.

    A bare name may leave out ``.csv``. Anything else (a relative or absolute path, or a bare name
    that is not shipped) is taken as given.
    """
    candidate = Path(path)
    if candidate.parent == Path() and not candidate.is_absolute():
        for shipped in (TRACES_DIR / path, TRACES_DIR / f"{path}.csv"):
            if shipped.is_file():
                return shipped
    return candidate


def level_factor(rng: np.random.Generator, prob: float, low: float) -> float:
    """The training-time load-level scale of one episode: with probability ``prob``, log-uniform
    in [low, 1], else 1.

    Synthetic families always reach the app's peak, and a trace window is as busy as its trace;
    a service that idles most of the day (serverless functions, internal tools) is then never
    seen in training, and a policy keeps capacity it does not need there. Scaling some episodes
    down puts every shape at every load level in the replay buffer.
    """
    if rng.random() >= prob:
        return 1.0
    return float(np.exp(rng.uniform(np.log(low), 0.0)))


def idle_gate(n_steps: int, rng: np.random.Generator, max_stretches: int = 4) -> np.ndarray:
    """A 0/1 mask of ``n_steps`` with 1 to ``max_stretches`` idle stretches (zeros) between busy ones.

    Services that receive no requests at all for long stretches (a batch window, a function
    called a few times an hour, a tool used in office hours) are common, and a load that is
    exactly zero is a state no synthetic family or busy trace window ever shows: a policy that
    never met it extrapolates there, and may even grow its allocation while nothing arrives.
    The idle share of the episode is uniform in [0.2, 0.8], cut into stretches of random length
    (Dirichlet) that alternate with busy ones.
    """
    k = int(rng.integers(1, max_stretches + 1))
    idle_total = round(float(rng.uniform(0.2, 0.8)) * n_steps)
    idle = _split(idle_total, k, rng)
    busy = _split(n_steps - idle_total, k + 1, rng)
    gate = np.ones(n_steps)
    t = 0
    for b, i in zip(busy[:-1], idle, strict=True):
        t += b
        gate[t : t + i] = 0.0
        t += i
    return gate


def jitter(rates: np.ndarray, rng: np.random.Generator, sigma_max: float) -> np.ndarray:
    """``rates`` with interval-to-interval noise (``with_noise``) of a spread drawn uniform in
    [0, ``sigma_max``] for the episode.

    A service called a few times a minute (most serverless functions, internal tools) sees its
    load jump by a factor of two or three from one interval to the next; scaled to an app's peak,
    such a trace changes by a log-ratio of about 1 per interval, where the shipped busy traces
    change by 0.1 to 0.5. A policy that never met that noise cuts capacity at
    every dip and the next interval lands on the cut.
    """
    return with_noise(rates, rng, float(rng.uniform(0.0, sigma_max)))


def with_noise(rates: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """``rates`` times independent log-normal factors of spread ``sigma`` and mean one, one per
    interval, no higher than the series' own peak: the load is scaled to the app's peak, and
    noise past it would only measure an overload no autoscaler can serve."""
    if len(rates) == 0:
        return rates
    factors = np.exp(sigma * rng.standard_normal(len(rates)) - sigma**2 / 2)
    return np.minimum(rates * factors, rates.max())


def _split(total: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """``total`` cut into ``parts`` non-negative integers summing to it, at random proportions."""
    cuts = np.floor(np.cumsum(rng.dirichlet(np.ones(parts))) * total + 1e-9).astype(np.int64)
    cuts[-1] = total
    return np.diff(np.concatenate([[0], cuts]))


class TimeScaled:
    """Time-scale augmentation (``EnvConfig.time_compression_choices``): each workload at every
    compression of ``choices``, one drawn per episode. Traces only; a synthetic family is
    generated in simulated time and has no compression. With no choices nothing is drawn, so the
    random stream, and every episode, is what it was without the augmentation."""

    def __init__(self, workloads: list[Workload], choices: tuple[float, ...] | list[float]):
        self.workloads = workloads
        self.choices = tuple(float(c) for c in choices)
        self.variants = [[w.at(c) if isinstance(w, TraceWorkload) else w for c in self.choices] for w in workloads]

    @classmethod
    def of(cls, specs: Sequence[str], peak_rps: float, time_compression: float, choices: Sequence[float]) -> TimeScaled:
        """The training workloads of ``specs`` (as an env config names them), each built once."""
        return cls([make_workload(s, peak_rps, time_compression) for s in specs], tuple(choices))

    def draw(self, k: int, rng: np.random.Generator) -> tuple[Workload, float | None]:
        """Workload ``k`` at a compression drawn from the choices, and that compression (None where
        none applies: no choices, or a synthetic family, which still takes its draw so that the
        random stream does not depend on which workload came up)."""
        if not self.choices:
            return self.workloads[k], None
        j = int(rng.integers(len(self.choices)))
        wl = self.variants[k][j]
        return wl, self.choices[j] if isinstance(wl, TraceWorkload) else None


def episode_rates(
    workload: Workload,
    n_steps: int,
    interval_s: float,
    rng: np.random.Generator,
    level: tuple[float, float] | None = None,
    arrival_noise: bool = True,
    idle_prob: float = 0.0,
    jitter_spread: tuple[float, float] | None = None,
) -> np.ndarray:
    """The per-interval rates of one episode of ``workload``: a new instance (or trace window),
    scaled by ``level_factor(rng, *level)`` when ``level`` = (prob, low) is given, with idle
    stretches (``idle_gate``) with probability ``idle_prob``, with interval-to-interval noise
    (``jitter``) with probability p when ``jitter_spread`` = (p, sigma_max), with Poisson arrivals when
    ``arrival_noise``. The env and ``envs.context_samples`` both draw through it, so samples of
    the load outside the env follow the env's own distribution."""
    rates = workload.rates(n_steps, interval_s, rng)
    if level is not None and level[0] > 0:
        rates = rates * level_factor(rng, *level)
    if idle_prob > 0 and rng.random() < idle_prob:
        rates = rates * idle_gate(len(rates), rng)
    if jitter_spread is not None and jitter_spread[0] > 0 and rng.random() < jitter_spread[0]:
        rates = jitter(rates, rng, jitter_spread[1])
    if arrival_noise:
        rates = poisson_noise(rates, interval_s, rng)
    return rates


def _family_variants(rest: str, where: str) -> tuple[str, list[str]]:
    """``NAME+idle+jitter`` split into the family and its variants, each known and in order."""
    family, *parts = rest.split("+")
    variants = [f"+{p}" for p in parts]
    for v in variants:
        if v not in VARIANTS:
            raise ConfigError(f"{where}: unknown variant {v!r} (valid: {', '.join(VARIANTS)}, in that order)")
    if variants != sorted(set(variants), key=VARIANTS.index):
        raise ConfigError(f"{where}: variants must appear once each, in the order {''.join(VARIANTS)}")
    return family, variants


def make_workload(spec: str, peak_rps: float, time_compression: float = 4.0) -> Workload:
    """Build a workload from a one-string spec.

    ``"family:NAME"`` gives a synthetic family (``NAME+idle``: with idle stretches, ``NAME+jitter``:
    with interval-to-interval noise, ``NAME+idle+jitter``: both); ``"trace:PATH"``
    a trace, where PATH may end in ``#column`` and a bare file name is looked up in the shipped traces
    first, and ``+counts@N`` thins it to N requests per bin (``COUNTS_SUFFIX``); a bare spec is a
    family if it names one, a trace otherwise.

    Raises:
        ConfigError: empty spec, unknown family, or a non-positive peak or compression; the message
            starts with the spec.
        TraceError: the trace cannot be loaded; the message starts with the spec and then names the
            file and line.
    """
    where = f"workload {spec!r}"
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"{where}: empty workload spec (use 'family:NAME' or 'trace:PATH')")
    if not (isinstance(peak_rps, numbers.Real) and math.isfinite(peak_rps) and peak_rps > 0):
        raise ConfigError(f"{where}: peak_rps must be a positive number, got {peak_rps!r}")
    if not (isinstance(time_compression, numbers.Real) and math.isfinite(time_compression) and time_compression > 0):
        raise ConfigError(f"{where}: time_compression must be a positive number, got {time_compression!r}")

    kind, sep, rest = spec.strip().partition(":")
    if not sep or kind not in ("family", "trace"):
        kind, rest = ("family" if spec.strip().partition("+")[0] in FAMILIES else "trace"), spec.strip()
    if not rest:
        raise ConfigError(f"{where}: nothing after '{kind}:'")
    if kind == "family":
        family, variants = _family_variants(rest, where)
        try:
            return SyntheticWorkload(family, peak_rps, idle=IDLE_SUFFIX in variants, jitter=JITTER_SUFFIX in variants)
        except ConfigError as err:  # an unknown family: the class's message, behind the spec
            raise ConfigError(f"{where}: {err}") from None

    counts = None
    if COUNTS_SUFFIX in rest:
        rest, _, number = rest.rpartition(COUNTS_SUFFIX)
        try:
            counts = float(number)
        except ValueError:
            counts = math.nan
        if not (math.isfinite(counts) and counts > 0):
            raise ConfigError(f"{where}: {COUNTS_SUFFIX}N needs a positive number of requests per bin, got {number!r}")
    file_part, column = split_column(rest)
    path = resolve_trace_path(file_part)
    try:
        trace = load_trace(path, column)
        return TraceWorkload(trace, peak_rps, time_compression, counts=counts)
    except ConfigError as err:  # too few requests to thin: the class's message, behind the spec
        raise ConfigError(f"{where}: {err}") from None
    except TraceError as err:
        if not path.exists() and path.parent == Path():
            raise TraceError(f"{where}: trace file not found (not shipped in envs/traces/ nor at {path})") from None
        raise TraceError(f"{where}: {err}") from None


def default_split() -> dict[str, list[str]]:
    """The shipped train / held-out split as ``trace:`` specs, read from ``traces/split.yaml``.

    Raises:
        ConfigError: if the split file is missing, malformed, or names nothing.
    """
    try:
        data = yaml.safe_load(SPLIT_FILE.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{SPLIT_FILE}: cannot read split ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{SPLIT_FILE}: expected a mapping with 'train' and 'held_out' lists")
    split: dict[str, list[str]] = {}
    for key in ("train", "held_out"):
        entries = data.get(key)
        if not isinstance(entries, list) or not entries or not all(isinstance(e, str) and e for e in entries):
            raise ConfigError(f"{SPLIT_FILE}: '{key}' must be a non-empty list of trace file names")
        split[key] = [f"trace:{entry}" for entry in entries]
    return split
