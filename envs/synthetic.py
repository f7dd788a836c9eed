"""Seeded synthetic workload families: request-rate shapes that real traces show, drawn at random.

The shipped traces are few; a policy trained only on them can memorise their shapes. Each family
here is a generator of shapes (a daily cycle, on/off bursts, a flash crowd, ...) whose parameters
(phase, period, burst times, amplitudes) are drawn from ranges with the episode's generator, so every
episode is a fresh instance of the family and the same seed always gives the same series.

Every family returns ``n_steps`` noiseless mean rates whose maximum is exactly ``peak_rps`` and whose
minimum is at least ``FLOOR_FRACTION * peak_rps``: a real service never drops to exactly zero load,
and a zero rate would make latency and utilisation undefined. Poisson arrival noise is added by the
caller (``envs.trace.poisson_noise``), not here, so shapes can be tested exactly.

Time scales that describe the whole pattern (number of daily cycles, ramp length, segment lengths)
are fractions of the episode, so any episode length sees the whole pattern. Time scales that are
physical (how fast a flash crowd arrives, how long a burst or spike lasts) are in seconds and
converted with ``interval_s``, bounded so they still fit in the episode.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np

from envs.errors import ConfigError

FLOOR_FRACTION = 0.02
"""Lowest rate any family produces, as a fraction of the peak."""

RAMP_DIRECTIONS = ("up", "down", "up-down")


def _check(n_steps: int, interval_s: float, peak_rps: float) -> None:
    """Reject arguments no family can honour, before drawing anything from the generator."""
    if int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps}")
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    if not (math.isfinite(peak_rps) and peak_rps > 0):
        raise ValueError(f"peak_rps must be positive, got {peak_rps}")


def _finish(shape: np.ndarray, peak_rps: float) -> np.ndarray:
    """Scale a shape so its max is exactly ``peak_rps`` and clip it at the floor."""
    shape = np.asarray(shape, dtype=np.float64)
    top = float(shape.max())
    if not math.isfinite(top) or top <= 0:
        shape = np.ones_like(shape)
        top = 1.0
    # x / max(x) is exactly 1.0 at the maximum, so the peak comes out exact after the multiplication.
    return np.maximum(shape / top, FLOOR_FRACTION) * peak_rps


def _steps(seconds: float, interval_s: float) -> int:
    """A physical duration in whole control steps, at least one."""
    return max(1, round(seconds / interval_s))


def diurnal(
    n_steps: int,
    interval_s: float,
    peak_rps: float,
    rng: np.random.Generator,
    *,
    cycles: float | None = None,
    phase: float | None = None,
) -> np.ndarray:
    """A daily cycle compressed so an episode sees ``cycles`` of them (drawn from 1 to 3).

    Real web load has a long night trough and a sharper daytime peak, so the raised cosine is taken
    to a power (1 to 2) and lifted onto a trough level (10 % to 40 % of peak); a second harmonic
    (weekday-like asymmetry between morning and evening) keeps the period at one cycle.
    """
    _check(n_steps, interval_s, peak_rps)
    cycles = float(rng.uniform(1.0, 3.0)) if cycles is None else float(cycles)
    if not cycles > 0:
        raise ValueError(f"cycles must be positive, got {cycles}")
    phase = float(rng.uniform(0.0, 2 * math.pi)) if phase is None else float(phase)
    sharpness = rng.uniform(1.0, 2.0)
    trough = rng.uniform(0.1, 0.4)
    harmonic = rng.uniform(0.0, 0.15)
    x = 2 * math.pi * cycles * (np.arange(n_steps) + 0.5) / n_steps + phase
    wave = (0.5 - 0.5 * np.cos(x)) ** sharpness + harmonic * (0.5 - 0.5 * np.cos(2 * x))
    return _finish(trough + (1 - trough) * wave, peak_rps)


def bursty(
    n_steps: int,
    interval_s: float,
    peak_rps: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """On/off bursts from a two-state Markov chain over a low base load.

    Bursts last about 1 to 5 minutes and gaps about 3 to 15 (geometric durations, bounded so an
    episode sees several); each burst has its own height, as in serverless and batch-triggered load.
    """
    _check(n_steps, interval_s, peak_rps)
    mean_on = min(_steps(rng.uniform(60.0, 300.0), interval_s), max(1, n_steps // 8))
    mean_off = min(_steps(rng.uniform(180.0, 900.0), interval_s), max(1, n_steps // 4))
    base = rng.uniform(0.05, 0.3)
    p_leave_on, p_leave_off = 1.0 / mean_on, 1.0 / mean_off
    switches = rng.random(n_steps)
    heights = rng.uniform(0.5, 1.0, size=n_steps + 1)
    on = rng.random() < mean_on / (mean_on + mean_off)  # start from the chain's stationary distribution
    shape = np.full(n_steps, base)
    height = heights[0]
    bursts = 0
    for i in range(n_steps):
        if on:
            shape[i] = height
        leave = p_leave_on if on else p_leave_off
        if switches[i] < leave:
            on = not on
            if on:
                bursts += 1
                height = heights[bursts]
    if not np.any(shape > base):
        # A short episode can miss every burst; one is put in so the family never degenerates to flat.
        start = int(rng.integers(0, n_steps))
        shape[start : start + mean_on] = heights[0]
    return _finish(shape, peak_rps)


def flash_crowd(
    n_steps: int,
    interval_s: float,
    peak_rps: float,
    rng: np.random.Generator,
    *,
    start_frac: float | None = None,
) -> np.ndarray:
    """A sudden spike on a base load: fast rise (30 s to 3 min), slow exponential decay (5 to 30 min).

    The spike reaches 4 to 10 times the base load, which itself drifts gently (+-20 % over the
    episode), like a news event or a sale hitting an otherwise steady site.
    """
    _check(n_steps, interval_s, peak_rps)
    start_frac = float(rng.uniform(0.1, 0.6)) if start_frac is None else float(start_frac)
    if not 0.0 <= start_frac < 1.0:
        raise ValueError(f"start_frac must be in [0, 1), got {start_frac}")
    rise = min(_steps(rng.uniform(30.0, 180.0), interval_s), max(1, n_steps // 10))
    decay = max(_steps(rng.uniform(300.0, 1800.0), interval_s), 3 * rise)
    decay = min(decay, max(3 * rise, n_steps // 6))  # the spike must not become the new normal
    base = 1.0 / rng.uniform(4.0, 10.0)
    drift = rng.uniform(-0.2, 0.2)
    i = np.arange(n_steps, dtype=np.float64)
    start = int(start_frac * n_steps)
    top = start + rise  # the step where the spike peaks
    spike = np.zeros(n_steps)
    rising = (i >= start) & (i < top)
    spike[rising] = (i[rising] - start) / rise
    falling = i >= top
    spike[falling] = np.exp(-(i[falling] - top) / decay)  # 1.0 at the top itself
    level = base * (1 + drift * (i / max(1, n_steps - 1) - 0.5))
    return _finish(level + (1 - base) * spike, peak_rps)


def ramp(
    n_steps: int,
    interval_s: float,
    peak_rps: float,
    rng: np.random.Generator,
    *,
    direction: str | None = None,
) -> np.ndarray:
    """A ramp up, down, or up then down between a low level (5 % to 30 % of peak) and the peak.

    The ramp takes 40 % to 80 % of the episode, with a flat stretch before and after and a mild
    curvature (exponent 0.7 to 1.5) so trends are not always linear; it stays monotone within each leg.
    """
    _check(n_steps, interval_s, peak_rps)
    direction = RAMP_DIRECTIONS[int(rng.integers(0, 3))] if direction is None else direction
    if direction not in RAMP_DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(RAMP_DIRECTIONS)}, got {direction!r}")
    low = rng.uniform(0.05, 0.3)
    length = rng.uniform(0.4, 0.8)
    lead = rng.uniform(0.0, 1.0 - length)
    curve = rng.uniform(0.7, 1.5)
    x = (np.arange(n_steps) + 0.5) / n_steps
    progress = np.clip((x - lead) / length, 0.0, 1.0)  # 0 before the ramp, 1 after it
    if direction == "up":
        level = progress**curve
    elif direction == "down":
        level = (1.0 - progress) ** curve
    else:
        # Up for the first part of the ramp window, down for the rest, around a short plateau.
        hump = 1.0 - np.abs(2.0 * progress - 1.0)
        level = np.clip(hump * rng.uniform(1.0, 1.3), 0.0, 1.0) ** curve
    return _finish(low + (1 - low) * level, peak_rps)


def spikes(
    n_steps: int,
    interval_s: float,
    peak_rps: float,
    rng: np.random.Generator,
    *,
    period_steps: float | None = None,
) -> np.ndarray:
    """Periodic short spikes (3 to 10 per episode, 15 s to 90 s wide) on a base load.

    Like cron jobs or polling clients firing together: the period is fixed within an episode, the
    heights vary slightly (85 % to 100 %), and the base is 10 % to 40 % of peak.
    """
    _check(n_steps, interval_s, peak_rps)
    if period_steps is None:
        period_steps = n_steps / rng.uniform(3.0, 10.0)
    period_steps = max(2.0, float(period_steps))
    width = min(_steps(rng.uniform(15.0, 90.0), interval_s), max(1, int(period_steps // 3)))
    base = rng.uniform(0.1, 0.4)
    offset = rng.uniform(0.0, period_steps)
    shape = np.full(n_steps, base)
    k = 0
    while offset + k * period_steps < n_steps:
        first = int(offset + k * period_steps)
        # A triangle over `width` steps that tops out at its middle step.
        ramp_up = np.arange(1, width + 1)
        tri = np.minimum(ramp_up, ramp_up[::-1]) / math.ceil(width / 2)
        height = rng.uniform(0.85, 1.0)
        span = slice(first, min(n_steps, first + width))
        shape[span] = np.maximum(shape[span], base + (height - base) * tri[: span.stop - span.start])
        k += 1
    return _finish(shape, peak_rps)


def step(
    n_steps: int,
    interval_s: float,
    peak_rps: float,
    rng: np.random.Generator,
    *,
    n_levels: int | None = None,
) -> np.ndarray:
    """Step changes between 2 to 6 levels held for random stretches.

    Abrupt level shifts (a deploy, a traffic switch-over, a client fleet scaling) are the hardest case
    for reactive autoscalers; consecutive levels differ by at least 15 % of peak so each step matters.
    """
    _check(n_steps, interval_s, peak_rps)
    n_levels = int(rng.integers(2, 7)) if n_levels is None else int(n_levels)
    n_levels = max(1, min(n_levels, n_steps))
    levels = [float(rng.uniform(0.1, 1.0))]
    while len(levels) < n_levels:
        candidate = float(rng.uniform(0.1, 1.0))
        if abs(candidate - levels[-1]) >= 0.15:
            levels.append(candidate)
    cuts = np.sort(rng.choice(np.arange(1, n_steps), size=n_levels - 1, replace=False)) if n_levels > 1 else []
    shape = np.empty(n_steps)
    for level, segment in zip(levels, np.split(np.arange(n_steps), cuts), strict=True):
        shape[segment] = level
    return _finish(shape, peak_rps)


def mixer(
    n_steps: int,
    interval_s: float,
    peak_rps: float,
    rng: np.random.Generator,
    *,
    families: tuple[str, ...] | None = None,
    sequence: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Segments of 2 to 4 other families joined end to end, each at its own level (40 % to 100 %).

    Real load changes regime within a day; joining families with a short linear cross-fade (up to
    5 steps) gives the policy regime changes it cannot learn from any single family. Each segment
    gets at least a tenth of the episode so every regime lasts long enough to matter. ``families``
    narrows the pool segments are drawn from; ``sequence`` fixes the segments' families in order.
    """
    _check(n_steps, interval_s, peak_rps)
    others = tuple(name for name in FAMILIES if name != "mixer")
    for chosen in (families, sequence):
        if chosen is not None and (not chosen or any(name not in others for name in chosen)):
            raise ConfigError(f"mixer families must be chosen from {', '.join(others)}, got {', '.join(chosen)}")
    pool = families or others
    n_segments = len(sequence) if sequence is not None else int(rng.integers(2, 5))
    n_segments = min(n_segments, n_steps)
    if n_steps < 4 * n_segments:
        lengths = np.array([len(part) for part in np.array_split(np.arange(n_steps), n_segments)])
    else:
        shares = rng.uniform(1.0, 3.0, size=n_segments)
        lengths = np.floor(shares / shares.sum() * n_steps).astype(int)
        lengths[-1] = n_steps - lengths[:-1].sum()
    bounds = np.concatenate(([0], np.cumsum(lengths)))
    shape = np.empty(n_steps)
    previous_end: float | None = None
    for k, (a, b) in enumerate(itertools.pairwise(bounds)):
        name = sequence[k] if sequence is not None else pool[int(rng.integers(0, len(pool)))]
        segment = FAMILIES[name](int(b - a), interval_s, 1.0, rng) * rng.uniform(0.4, 1.0)
        if previous_end is not None:
            fade = min(5, (b - a) // 2)
            if fade > 0:
                weight = np.arange(1, fade + 1) / (fade + 1)
                segment[:fade] = (1 - weight) * previous_end + weight * segment[:fade]
        shape[a:b] = segment
        previous_end = float(segment[-1])
    return _finish(shape, peak_rps)


FAMILIES: dict[str, Callable[..., np.ndarray]] = {
    "diurnal": diurnal,
    "bursty": bursty,
    "flash-crowd": flash_crowd,
    "ramp": ramp,
    "spikes": spikes,
    "step": step,
    "mixer": mixer,
}
"""Family name (the public, config-facing name) to generator ``f(n_steps, interval_s, peak_rps, rng)``."""


def generate(family: str, n_steps: int, interval_s: float, peak_rps: float, rng: np.random.Generator) -> np.ndarray:
    """Noiseless mean rates of one random instance of ``family``, peaking at ``peak_rps``.

    Raises:
        ConfigError: if ``family`` is not a known family name (the message lists the valid ones).
        ValueError: on a non-positive ``n_steps``, ``interval_s`` or ``peak_rps``.
    """
    try:
        fn = FAMILIES[family]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown workload family {family!r} (valid: {', '.join(FAMILIES)})") from None
    return fn(n_steps, interval_s, peak_rps, rng)
