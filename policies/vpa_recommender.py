"""A Vertical Pod Autoscaler style recommender: decaying usage histograms turned into request advice.

Why: right-sizing requests is the other half of autoscaling, and the VPA's recommender is the standard
it is measured against. This follows the recommender of kubernetes/autoscaler
(vertical-pod-autoscaler/pkg/recommender: util/decaying_histogram.go, util/histogram.go,
model/container.go, logic/recommender.go, logic/estimator.go): exponential buckets growing 5 %, sample
weights doubling every half-life so recent usage dominates, one memory peak per aggregation interval,
OOM kills turned into bumped memory samples, and percentile + safety-margin estimators with confidence
multipliers on the bounds.

The VPA's time constants are days (24 h half-life, 24 h memory interval, 24 h confidence scale); a
simulator runs hours, so every one of them is a parameter, and the secondary ones default to the
half-life so that compressing time keeps the VPA's proportions. Time is always passed in; nothing here
reads a clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The VPA buckets CPU from 1 millicore to 1000 cores and memory from 10 MB to 1 TB, each bucket 5 % wider
# than the previous one; memory is kept in MiB here, so the byte bounds are converted.
CPU_FIRST_BUCKET_CORES = 0.001
CPU_MAX_CORES = 1000.0
MEM_FIRST_BUCKET_MIB = 1e7 / 2**20
MEM_MAX_MIB = 1e12 / 2**20
BUCKET_RATIO = 1.05
# Minimal bucket weight still counted as non-empty (0.001 x the minimal sample weight 0.1).
HISTOGRAM_EPSILON = 1e-4
# Weights are kept relative to a reference time; past 2**100 the reference is moved to avoid overflow.
_MAX_DECAY_EXPONENT = 100
# Lowest CPU sample weight: a container without a request still contributes a little history.
_MIN_CPU_SAMPLE_WEIGHT = 0.1


class DecayingHistogram:
    """Weighted histogram over exponential buckets whose sample weights halve every ``half_life_s``.

    Bucket 0 covers [0, first_bucket_size); bucket n >= 1 starts at first * (ratio**n - 1) / (ratio - 1),
    so the relative error of any percentile is bounded by the ratio. A sample added at time t carries
    weight ``w * 2**((t - ref) / half_life)``; only relative weights matter, so older samples fade without
    ever being touched. Percentiles return the *end* of the bucket holding the percentile, erring on the
    generous side as a resource recommendation should.
    """

    def __init__(
        self,
        half_life_s: float,
        first_bucket_size: float,
        max_value: float,
        ratio: float = BUCKET_RATIO,
        epsilon: float = HISTOGRAM_EPSILON,
    ) -> None:
        if half_life_s <= 0:
            raise ValueError(f"half_life_s must be > 0, got {half_life_s}")
        if first_bucket_size <= 0 or max_value <= 0 or epsilon <= 0:
            raise ValueError("first_bucket_size, max_value and epsilon must be > 0")
        if ratio <= 1.0:
            raise ValueError(f"ratio must be > 1, got {ratio}")
        self.half_life_s = half_life_s
        self.first_bucket_size = first_bucket_size
        self.ratio = ratio
        self.epsilon = epsilon
        self.num_buckets = math.ceil(math.log(max_value * (ratio - 1) / first_bucket_size + 1, ratio)) + 1
        self._weights = [0.0] * self.num_buckets
        self._total = 0.0
        self._min_bucket = self.num_buckets - 1
        self._max_bucket = 0
        self._reference_s = 0.0

    def find_bucket(self, value: float) -> int:
        """Index of the bucket holding ``value`` (values beyond the range go to the first/last bucket)."""
        if value < self.first_bucket_size:
            return 0
        bucket = int(math.log(value * (self.ratio - 1) / self.first_bucket_size + 1, self.ratio))
        return min(bucket, self.num_buckets - 1)

    def bucket_start(self, bucket: int) -> float:
        """Lower bound of ``bucket``."""
        if not 0 <= bucket < self.num_buckets:
            raise IndexError(f"bucket {bucket} out of range [0, {self.num_buckets - 1}]")
        if bucket == 0:
            return 0.0
        return self.first_bucket_size * (self.ratio**bucket - 1) / (self.ratio - 1)

    def is_empty(self) -> bool:
        """True when no bucket holds at least ``epsilon`` weight."""
        return self._weights[self._min_bucket] < self.epsilon

    def add_sample(self, value: float, weight: float, t_s: float) -> None:
        """Add ``value`` observed at ``t_s`` with base ``weight`` (before decay)."""
        if weight < 0:
            raise ValueError(f"sample weight must be >= 0, got {weight}")
        bucket = self.find_bucket(value)
        decayed = weight * self._decay_factor(t_s)
        self._weights[bucket] += decayed
        self._total += decayed
        if bucket < self._min_bucket and self._weights[bucket] >= self.epsilon:
            self._min_bucket = bucket
        if bucket > self._max_bucket and self._weights[bucket] >= self.epsilon:
            self._max_bucket = bucket

    def subtract_sample(self, value: float, weight: float, t_s: float) -> None:
        """Remove a sample added earlier with the same value, weight and time (used to replace memory peaks)."""
        if weight < 0:
            raise ValueError(f"sample weight must be >= 0, got {weight}")
        bucket = self.find_bucket(value)
        decayed = weight * self._decay_factor(t_s)
        # Never leave a negative bucket because of float drift.
        if decayed > self._weights[bucket] - self.epsilon:
            decayed = self._weights[bucket]
        self._weights[bucket] -= decayed
        self._total -= decayed
        self._update_min_max()

    def percentile(self, p: float) -> float:
        """Approximate ``p``-quantile (0 <= p <= 1): end of the bucket where the cumulative weight reaches it.

        Returns 0.0 for an empty histogram; the last bucket has no end, so its start is returned.
        """
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"percentile must be in [0, 1], got {p}")
        if self.is_empty():
            return 0.0
        threshold = p * self._total
        partial = 0.0
        bucket = self._min_bucket
        while bucket < self._max_bucket:
            partial += self._weights[bucket]
            if partial >= threshold:
                break
            bucket += 1
        if bucket < self.num_buckets - 1:
            return self.bucket_start(bucket + 1)
        return self.bucket_start(bucket)

    def weight_at(self, t_s: float) -> float:
        """Total weight of all samples as seen at ``t_s``, i.e. after their decay up to that time."""
        return self._total * 2.0 ** ((self._reference_s - t_s) / self.half_life_s)

    def _decay_factor(self, t_s: float) -> float:
        if t_s > self._reference_s + self.half_life_s * _MAX_DECAY_EXPONENT:
            self._shift_reference(t_s)
        return 2.0 ** ((t_s - self._reference_s) / self.half_life_s)

    def _shift_reference(self, new_reference_s: float) -> None:
        """Move the reference time to a multiple of the half-life near ``new_reference_s``, rescaling weights."""
        new_reference_s = math.floor(new_reference_s / self.half_life_s + 0.5) * self.half_life_s
        exponent = math.floor((self._reference_s - new_reference_s) / self.half_life_s + 0.5)
        factor = math.ldexp(1.0, exponent)
        for bucket in range(self._min_bucket, self._max_bucket + 1):
            self._weights[bucket] *= factor
        self._total *= factor
        self._update_min_max()
        self._reference_s = new_reference_s

    def _update_min_max(self) -> None:
        last = self.num_buckets - 1
        while self._weights[self._min_bucket] < self.epsilon and self._min_bucket < last:
            self._min_bucket += 1
        while self._weights[self._max_bucket] < self.epsilon and self._max_bucket > 0:
            self._max_bucket -= 1


@dataclass(frozen=True)
class VPARecommendation:
    """Recommended requests (cores, MiB) with the band outside which the updater would act."""

    target_cpu: float
    lower_cpu: float
    upper_cpu: float
    target_mem: float
    lower_mem: float
    upper_mem: float


def needs_update(current: float, lower: float, upper: float) -> bool:
    """Whether the VPA updater would evict to apply a recommendation: the request lies outside [lower, upper].

    The band, not the target, is the trigger so that pods are not restarted for every small drift.
    """
    return current < lower or current > upper


@dataclass
class _ContainerState:
    """Per-container bookkeeping (``ContainerState``): sample ordering and the current memory window."""

    last_cpu_sample_s: float | None = None
    last_mem_sample_s: float | None = None
    window_end_s: float | None = None
    memory_peak: float = 0.0
    oom_peak: float = 0.0


class VPARecommender:
    """Aggregates CPU and memory samples of one workload and recommends requests like the VPA recommender.

    Targets are the ``target_percentile_*`` of the decayed usage plus ``safety_margin``; the lower and
    upper bounds use ``lower_percentile``/``upper_percentile`` with the same margin, scaled by the VPA's
    confidence multipliers so that a short history gives a wide band (upper infinite with no history, lower
    zero) and the updater is not triggered on thin evidence. Everything is floored at ``min_cpu``/``min_mem``.

    Memory is recorded as one peak per ``mem_aggregation_interval_s`` per container, because the request
    must cover the peak, not the average; an OOM kill injects a bumped peak. ``container`` keys keep
    separate windows for separate containers or pods feeding the same recommender, as the VPA does.
    """

    def __init__(
        self,
        cpu_half_life_s: float,
        mem_half_life_s: float,
        target_percentile_cpu: float = 0.9,
        target_percentile_mem: float = 0.9,
        safety_margin: float = 0.15,
        min_cpu: float = 0.025,
        min_mem: float = 250.0,
        *,
        lower_percentile: float = 0.5,
        upper_percentile: float = 0.95,
        mem_aggregation_interval_s: float | None = None,
        confidence_interval_s: float | None = None,
        oom_bump_ratio: float = 1.2,
        oom_min_bump_mib: float = 100.0,
    ) -> None:
        for name, p in (
            ("target_percentile_cpu", target_percentile_cpu),
            ("target_percentile_mem", target_percentile_mem),
            ("lower_percentile", lower_percentile),
            ("upper_percentile", upper_percentile),
        ):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if safety_margin < 0 or min_cpu < 0 or min_mem < 0:
            raise ValueError("safety_margin, min_cpu and min_mem must be >= 0")
        if oom_bump_ratio < 1.0 or oom_min_bump_mib < 0:
            raise ValueError("oom_bump_ratio must be >= 1 and oom_min_bump_mib >= 0")
        self.target_percentile_cpu = target_percentile_cpu
        self.target_percentile_mem = target_percentile_mem
        self.lower_percentile = lower_percentile
        self.upper_percentile = upper_percentile
        self.safety_margin = safety_margin
        self.min_cpu = min_cpu
        self.min_mem = min_mem
        # The VPA uses 24 h for both the half-life and these two; tying them to the half-lives keeps that ratio.
        self.mem_aggregation_interval_s = (
            mem_half_life_s if mem_aggregation_interval_s is None else mem_aggregation_interval_s
        )
        self.confidence_interval_s = cpu_half_life_s if confidence_interval_s is None else confidence_interval_s
        if self.mem_aggregation_interval_s <= 0 or self.confidence_interval_s <= 0:
            raise ValueError("mem_aggregation_interval_s and confidence_interval_s must be > 0")
        self.oom_bump_ratio = oom_bump_ratio
        self.oom_min_bump_mib = oom_min_bump_mib
        self.cpu_histogram = DecayingHistogram(cpu_half_life_s, CPU_FIRST_BUCKET_CORES, CPU_MAX_CORES)
        self.mem_histogram = DecayingHistogram(mem_half_life_s, MEM_FIRST_BUCKET_MIB, MEM_MAX_MIB)
        self._containers: dict[str, _ContainerState] = {}
        # History extent for the confidence multipliers; like the VPA, counted from CPU samples only.
        self.first_sample_s: float | None = None
        self.last_sample_s: float | None = None
        self.total_samples = 0

    def _state(self, container: str) -> _ContainerState:
        return self._containers.setdefault(container, _ContainerState())

    def add_cpu_sample(self, cores: float, t_s: float, request_cores: float | None = None, container: str = "") -> bool:
        """Record average CPU usage (cores) measured at ``t_s``; returns False if the sample was discarded.

        Samples are weighted by the container's request (at least 0.1) when given, so that after a request
        increase the old, starved history counts for less; without a request every sample weighs 1.
        Duplicate or out-of-order samples of one container are discarded, as in the VPA.
        """
        if cores < 0:
            return False
        state = self._state(container)
        if state.last_cpu_sample_s is not None and not t_s > state.last_cpu_sample_s:
            return False
        weight = 1.0 if request_cores is None else max(request_cores, _MIN_CPU_SAMPLE_WEIGHT)
        self.cpu_histogram.add_sample(cores, weight, t_s)
        state.last_cpu_sample_s = t_s
        if self.last_sample_s is None or t_s > self.last_sample_s:
            self.last_sample_s = t_s
        if self.first_sample_s is None or t_s < self.first_sample_s:
            self.first_sample_s = t_s
        self.total_samples += 1
        return True

    def add_mem_sample(self, mib: float, t_s: float, container: str = "") -> bool:
        """Record memory usage (MiB) at ``t_s``; only the peak of each aggregation interval is kept."""
        return self._add_memory(self._state(container), mib, t_s, is_oom=False)

    def add_oom(self, mem_limit_mib: float, t_s: float, container: str = "") -> bool:
        """Record an OOM kill of a container that was allowed ``mem_limit_mib``.

        The VPA cannot observe how much memory would have been enough, so it records a peak of
        max(used x 1.2, used + 100 MiB), where used is the larger of the allowance and the interval's peak.
        OOMs older than the previous interval are discarded.
        """
        if mem_limit_mib < 0:
            return False
        state = self._state(container)
        if state.window_end_s is not None and t_s < state.window_end_s - self.mem_aggregation_interval_s:
            return False
        used = max(mem_limit_mib, state.memory_peak)
        needed = max(used + self.oom_min_bump_mib, used * self.oom_bump_ratio)
        return self._add_memory(state, needed, t_s, is_oom=True)

    def _add_memory(self, state: _ContainerState, value: float, t_s: float, is_oom: bool) -> bool:
        """Keep one peak per interval in the histogram, replacing it when a higher value arrives.

        The peak is stamped with the interval's end, so all samples of an interval decay together.
        """
        if value < 0:
            return False
        if not is_oom and state.last_mem_sample_s is not None and t_s < state.last_mem_sample_s:
            return False
        state.last_mem_sample_s = t_s
        if state.window_end_s is None:
            state.window_end_s = t_s
        add_new_peak = False
        if t_s < state.window_end_s:
            old_peak = max(state.memory_peak, state.oom_peak)
            if old_peak != 0 and value > old_peak:
                self.mem_histogram.subtract_sample(old_peak, 1.0, state.window_end_s)
                add_new_peak = True
        else:
            interval = self.mem_aggregation_interval_s
            state.window_end_s += math.floor((t_s - state.window_end_s) / interval) * interval + interval
            state.memory_peak = 0.0
            state.oom_peak = 0.0
            add_new_peak = True
        if add_new_peak:
            self.mem_histogram.add_sample(value, 1.0, state.window_end_s)
            if is_oom:
                state.oom_peak = value
            else:
                state.memory_peak = value
        return True

    def confidence(self) -> float:
        """History length in confidence intervals (the VPA's days), capped by the sample count.

        The sample count is normalized to one sample per minute, so a sparse stream earns less confidence
        than its time span alone would suggest.
        """
        if self.first_sample_s is None or self.last_sample_s is None:
            return 0.0
        lifespan = (self.last_sample_s - self.first_sample_s) / self.confidence_interval_s
        samples = self.total_samples / (self.confidence_interval_s / 60.0)
        return min(lifespan, samples)

    def recommend(self) -> VPARecommendation:
        """Current recommendation; with no history it is the minimum target and a [min, inf) band."""
        confidence = self.confidence()
        # Upper bound x (1 + 1/confidence), lower bound x (1 + 0.001/confidence)**-2, as the VPA.
        upper_factor = math.inf if confidence <= 0 else 1.0 + 1.0 / confidence
        lower_factor = 0.0 if confidence <= 0 else (1.0 + 0.001 / confidence) ** -2.0
        margin = 1.0 + self.safety_margin

        def estimate(histogram: DecayingHistogram, p: float, factor: float, floor: float) -> float:
            base = histogram.percentile(p) * margin
            if math.isinf(factor):
                return math.inf
            return max(base * factor, floor)

        cpu, mem = self.cpu_histogram, self.mem_histogram
        return VPARecommendation(
            target_cpu=estimate(cpu, self.target_percentile_cpu, 1.0, self.min_cpu),
            lower_cpu=estimate(cpu, self.lower_percentile, lower_factor, self.min_cpu),
            upper_cpu=estimate(cpu, self.upper_percentile, upper_factor, self.min_cpu),
            target_mem=estimate(mem, self.target_percentile_mem, 1.0, self.min_mem),
            lower_mem=estimate(mem, self.lower_percentile, lower_factor, self.min_mem),
            upper_mem=estimate(mem, self.upper_percentile, upper_factor, self.min_mem),
        )
