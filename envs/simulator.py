"""A vectorised, deterministic simulator of one microservice app on a Kubernetes node pool.

One ``advance`` is one control interval (15 s by default) made of ``substeps`` sub-steps. The
state of ``batch`` independent copies of the app is held in numpy arrays of shape
``(batch, services)``, so training can step hundreds of clusters with one call and one env
steps a batch of one.

What is modelled, per service:

* Pods. A new or restarted pod is ready only after the service's start-up delay (rounded up to
  whole sub-steps). Pods that do not fit the node pool's free CPU or memory (requests = limits)
  stay pending and are retried every sub-step. Scale-down removes pending pods first, then the
  youngest starting ones, then ready ones.
* CPU. A replica with CPU limit L serves up to ``1000 L / cpu_ms`` requests/s: ``max(L, 1)``
  requests at once, each throttled to ``min(L, 1)`` cores (see ``envs.latency``); demand above
  the ready replicas' capacity is throttled and queues.
* Queueing. Within a sub-step the backlog evolves as a fluid: it grows by arrivals minus what
  the ready replicas can serve and is carried to the next step; requests that would wait longer
  than the app's timeout are dropped. Latency adds the fluid delay ``backlog / capacity`` to
  the stationary M/G/c waiting and service time (see ``envs.queueing``).
* Call graph. Arrivals at a service are the external load at the entry plus what its callers
  actually pass on (their throughput times calls per request), so a saturated caller shields
  its callees. End-to-end latency adds callee latencies for sequential calls and takes the
  slowest callee for parallel fan-out.
* Memory. Each ready replica uses ``base + per_inflight * in_flight`` MiB, with in-flight
  requests from Little's law plus its share of the backlog. Replica-to-replica spread makes
  OOM kills probabilistic near the limit; a killed pod drops its in-flight requests and
  restarts (unavailable for its start-up delay).
* Vertical scaling applies in place (Kubernetes in-place pod resize); in ``recreate`` mode, as
  with the VPA's Recreate updater, a limit change evicts half the ready replicas, which then
  restart, and does not apply at all to a Deployment with fewer than two ready replicas.

The simulator holds ground truth. ``observe`` adds optional multiplicative measurement noise,
from a random stream of its own so that noise on or off does not change the dynamics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.app import AppSpec
from envs.latency import CallGraph, server_rate, servers, sojourn
from envs.metrics import ServiceMetrics
from envs.queueing import erlang_c, gamma_quantiles_50_95_99, waiting_quantile, waiting_rate

VERTICAL_MODES = ("in-place", "recreate")


@dataclass(frozen=True)
class SimConfig:
    """Simulator settings that are not part of the app."""

    interval_s: float = 15.0
    """Length of one control interval (one env step), seconds; the HPA's sync period."""
    substeps: int = 3
    """Sub-steps per interval for pod start-up and backlog dynamics."""
    noise: float = 0.05
    """Relative standard deviation of measurement noise on observed usage, rates and latencies."""
    mem_spread: float = 0.05
    """Relative spread of memory use between replicas; makes OOM kills gradual near the limit."""
    vertical_mode: str = "in-place"
    """How limit changes reach pods: 'in-place' (resize) or 'recreate' (evict and restart)."""

    def __post_init__(self) -> None:
        from envs.errors import ConfigError

        if not self.interval_s > 0:
            raise ConfigError(f"interval_s: must be > 0, got {self.interval_s}")
        if not (isinstance(self.substeps, int) and self.substeps >= 1):
            raise ConfigError(f"substeps: must be an integer >= 1, got {self.substeps!r}")
        if not 0 <= self.noise < 1:
            raise ConfigError(f"noise: must be in [0, 1), got {self.noise}")
        if not 0 <= self.mem_spread < 1:
            raise ConfigError(f"mem_spread: must be in [0, 1), got {self.mem_spread}")
        if self.vertical_mode not in VERTICAL_MODES:
            raise ConfigError(f"vertical_mode: expected one of {VERTICAL_MODES}, got {self.vertical_mode!r}")


@dataclass
class StepTruth:
    """Ground truth of the last interval for each copy (arrays (batch,) or (batch, services))."""

    e2e_mean_ms: np.ndarray
    e2e_p50_ms: np.ndarray
    e2e_p95_ms: np.ndarray
    e2e_p99_ms: np.ndarray
    wait_mean_ms: np.ndarray
    wait_p99_ms: np.ndarray
    p50_ms: np.ndarray
    p95_ms: np.ndarray
    p99_ms: np.ndarray
    sojourn_mean_ms: np.ndarray
    arrival_rps: np.ndarray
    served_rps: np.ndarray
    dropped: np.ndarray
    dropped_total: np.ndarray
    external_requests: np.ndarray
    cpu_usage: np.ndarray
    mem_usage: np.ndarray
    oom_kills: np.ndarray
    throttled: np.ndarray
    ready_avg: np.ndarray
    cpu_core_hours: np.ndarray
    mem_gib_hours: np.ndarray


def _phi(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF via the Abramowitz-Stegun 7.1.26 erf (error below 1e-7): OOM odds."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


class ClusterSim:
    """``batch`` copies of one app, stepped together; all randomness from the seed."""

    def __init__(self, app: AppSpec, batch: int = 1, config: SimConfig | None = None, seed: int | None = None):
        self.app = app
        self.config = config or SimConfig()
        self.batch = int(batch)
        cfg = self.config
        self.h = cfg.interval_s / cfg.substeps
        self.cpu_ms = app.column("cpu_ms_mean")
        self.cv = app.column("cpu_ms_cv")
        self.mem_base = app.column("mem_base_mib")
        self.mem_inflight = app.column("mem_per_inflight_mib")
        self.delay_bins = np.ceil(app.column("startup_s") / self.h - 1e-9).astype(np.intp)
        self.n_bins = int(self.delay_bins.max()) + 1
        self.entry = np.zeros(app.n_services)
        self.entry[app.entry] = 1.0
        self.calls = app.calls
        self.depth = _depth(app.calls)
        self.graph = CallGraph.of(app)
        self._svc = np.arange(app.n_services)
        self.reset(seed)

    # ----------------------------------------------------------------------------- state

    def reset(self, seed: int | None = None) -> None:
        """All copies back to the app's initial replicas (ready) and limits, empty queues."""
        B, S = self.batch, self.app.n_services
        ss = np.random.SeedSequence(seed)
        dyn, noise = ss.spawn(2)
        self.rng = np.random.default_rng(dyn)
        self.noise_rng = np.random.default_rng(noise)
        init = np.array([s.initial_replicas for s in self.app.services], dtype=np.float64)
        self.ready = np.tile(init, (B, 1))
        self.starting = np.zeros((B, S, self.n_bins))
        self.unscheduled = np.zeros((B, S))
        self.replicas = self.ready.copy()
        self.cpu_limit = np.tile(self.app.column("cpu_limit_initial"), (B, 1))
        self.mem_limit = np.tile(self.app.column("mem_limit_initial"), (B, 1))
        self.backlog = np.zeros((B, S))
        self.t = 0.0
        self.truth: StepTruth | None = None

    def allocated(self) -> np.ndarray:
        """Pods holding node resources (ready or starting), per copy and service."""
        return self.ready + self.starting.sum(axis=-1)

    # ----------------------------------------------------------------------------- actions

    def apply(self, replicas: np.ndarray, cpu_limit: np.ndarray, mem_limit: np.ndarray) -> None:
        """Set desired replicas and per-replica limits (arrays broadcastable to (batch, services))."""
        B, S = self.batch, self.app.n_services
        replicas = np.broadcast_to(np.asarray(replicas, dtype=np.float64), (B, S))
        cpu_limit = np.broadcast_to(np.asarray(cpu_limit, dtype=np.float64), (B, S))
        mem_limit = np.broadcast_to(np.asarray(mem_limit, dtype=np.float64), (B, S))
        changed = (cpu_limit != self.cpu_limit) | (mem_limit != self.mem_limit)
        if self.config.vertical_mode == "recreate" and changed.any():
            # Like the VPA updater: pods of a Deployment with fewer than two ready replicas are
            # not evicted (its min-replicas rule), so their limits stay until they restart for
            # another reason; otherwise half the ready pods (eviction tolerance) restart now.
            blocked = changed & (self.ready < 2)
            cpu_limit = np.where(blocked, self.cpu_limit, cpu_limit)
            mem_limit = np.where(blocked, self.mem_limit, mem_limit)
            restart = np.where(changed & ~blocked, np.floor(self.ready / 2), 0.0)
            self.ready -= restart
            self.starting[:, self._svc, self.delay_bins] += restart
        self.cpu_limit = cpu_limit.copy()
        self.mem_limit = mem_limit.copy()
        total = self.ready + self.starting.sum(axis=-1) + self.unscheduled
        delta = replicas - total
        self.unscheduled += np.maximum(delta, 0.0)
        remove = np.maximum(-delta, 0.0)
        if remove.any():
            self._remove(remove)
        self.replicas = replicas.copy()
        if self.unscheduled.any():
            self._schedule()

    def _remove(self, remove: np.ndarray) -> None:
        take = np.minimum(self.unscheduled, remove)
        self.unscheduled -= take
        remove = remove - take
        # Youngest starting pods first: walk the pipeline from its far end.
        rev = self.starting[..., ::-1]
        cum = np.cumsum(rev, axis=-1)
        taken = np.minimum(cum, remove[..., None])
        per_bin = np.diff(taken, axis=-1, prepend=0.0)
        self.starting = (rev - per_bin)[..., ::-1].copy()
        remove = remove - taken[..., -1]
        self.ready = np.maximum(self.ready - remove, 0.0)

    def _schedule(self) -> None:
        """Place pending pods where the node pool has room (requests = limits), the rest wait."""
        alloc = self.allocated()
        free_cpu = self.app.node_cores - (alloc * self.cpu_limit).sum(axis=1)
        free_mem = self.app.node_mem_mib - (alloc * self.mem_limit).sum(axis=1)
        need_cpu = (self.unscheduled * self.cpu_limit).sum(axis=1)
        need_mem = (self.unscheduled * self.mem_limit).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.minimum(
                np.where(need_cpu > 0, free_cpu / need_cpu, 1.0), np.where(need_mem > 0, free_mem / need_mem, 1.0)
            )
        ratio = np.clip(ratio, 0.0, 1.0)[:, None]
        fit = np.where(ratio >= 1.0, self.unscheduled, np.floor(self.unscheduled * ratio))
        self.unscheduled -= fit
        self.starting[:, self._svc, self.delay_bins] += fit

    # ----------------------------------------------------------------------------- time

    def advance(self, external_rps: np.ndarray | float) -> StepTruth:
        """Run one control interval at the given external request rate per copy."""
        B, S = self.batch, self.app.n_services
        cfg, h = self.config, self.h
        ext = np.broadcast_to(np.asarray(external_rps, dtype=np.float64), (B,))[:, None]
        ext_entry = ext * self.entry
        timeout = self.app.timeout_s
        mu = server_rate(self.cpu_limit, self.cpu_ms)
        slots = np.maximum(self.cpu_limit, 1.0)
        lam_sum = np.zeros((B, S))
        thr_sum = np.zeros((B, S))
        drop_sum = np.zeros((B, S))
        backlog_sum = np.zeros((B, S))
        ready_sum = np.zeros((B, S))
        throttled = np.zeros((B, S))
        for _ in range(cfg.substeps):
            self.ready += self.starting[..., 0]
            self.starting[..., :-1] = self.starting[..., 1:]
            self.starting[..., -1] = 0.0
            if self.unscheduled.any():
                self._schedule()
            cap = self.ready * slots * mu
            drain = self.backlog / h
            lam = ext_entry
            for _ in range(self.depth):
                lam = ext_entry + np.minimum(lam + drain, cap) @ self.calls
            demand = lam + drain
            thr = np.minimum(demand, cap)
            # What stays queued is the demand not served: (demand - thr) h, which equals
            # backlog + (lam - thr) h but is exactly 0 where the queue drained. The other form left
            # about 1e-15 requests queued by rounding, which the ``backlog_avg > 0`` test below read
            # as a queue, and whose sign followed the last bit of ``lam``: a batch of clusters and a
            # single one (a BLAS product of another shape) then saw different queues.
            backlog = (demand - thr) * h
            drop = np.maximum(backlog - cap * timeout, 0.0)
            self.backlog = backlog - drop
            lam_sum += lam
            thr_sum += thr
            drop_sum += drop
            backlog_sum += self.backlog
            ready_sum += self.ready
            throttled += demand >= cap
        n = cfg.substeps
        lam_avg, thr_avg, ready_avg, backlog_avg = lam_sum / n, thr_sum / n, ready_sum / n, backlog_sum / n
        cap_avg = ready_avg * slots * mu

        # Stationary M/G/c part plus the fluid delay of the carried backlog.
        with np.errstate(divide="ignore", invalid="ignore"):
            fluid = np.where(cap_avg > 0, np.minimum(backlog_avg / cap_avg, timeout), timeout)
        sj = sojourn(lam_avg, ready_avg, self.cpu_limit, self.cpu_ms, self.cv, fluid, timeout)
        none_ready = ready_avg <= 0
        # Without a carried backlog, requests in the stationary tail beyond the timeout give up
        # too. With one, the fluid model has already dropped every request that would wait
        # longer, and counting the tail again would drop served requests twice.
        tail = sj.prob_wait * np.exp(-sj.theta * timeout)
        drop_sum += np.where(none_ready | (backlog_avg > 0), 0.0, thr_avg * cfg.interval_s * tail)
        soj_mean, soj_var = sj.mean, sj.var
        wait_p99 = np.where(
            none_ready, timeout, np.minimum(fluid + waiting_quantile(0.99, sj.prob_wait, sj.theta), timeout)
        )
        e2e_mean, e2e_var = self.graph.end_to_end(soj_mean, soj_var)

        # Memory at the end of the interval: requests in service and waiting (Little's law on
        # the last sub-step's state, not the interval average, so pods that just became ready
        # are not charged for the queue they were not there for) plus the carried backlog.
        with np.errstate(divide="ignore", invalid="ignore"):
            c_end = np.maximum(servers(self.ready, self.cpu_limit), 1e-9)
            wait_end = erlang_c(c_end, np.where(cap > 0, lam / cap, 1.0)) / waiting_rate(c_end, mu, lam, self.cv)
        in_system = np.where(self.ready > 0, thr / mu + lam * wait_end + self.backlog, 0.0)
        inflight = in_system / np.maximum(self.ready, 1.0)
        mem_use = self.mem_base + self.mem_inflight * inflight
        oom = np.zeros((B, S))
        spread = max(cfg.mem_spread, 1e-6)
        p_kill = _phi((mem_use / self.mem_limit - 1.0) / spread)
        risky = (p_kill > 1e-4) & (self.ready > 0)
        if risky.any():
            oom = self._oom_kills(risky, p_kill)
            # A killed pod loses what it held: its share of the backlog and its in-flight requests.
            lost_backlog = self.backlog * oom / np.maximum(self.ready, 1.0)
            self.backlog -= lost_backlog
            self.ready -= oom
            self.starting[:, self._svc, self.delay_bins] += oom
            drop_sum += oom * inflight

        external = ext[:, 0] * cfg.interval_s
        alloc = self.allocated()
        hours = cfg.interval_s / 3600.0
        self.t += cfg.interval_s
        ms = 1000.0
        e2e_q = gamma_quantiles_50_95_99(e2e_mean, e2e_var) * ms
        svc_q = gamma_quantiles_50_95_99(soj_mean, soj_var) * ms
        self.truth = StepTruth(
            e2e_mean_ms=e2e_mean * ms,
            e2e_p50_ms=e2e_q[0],
            e2e_p95_ms=e2e_q[1],
            e2e_p99_ms=e2e_q[2],
            wait_mean_ms=sj.wait_mean * ms,
            wait_p99_ms=wait_p99 * ms,
            p50_ms=svc_q[0],
            p95_ms=svc_q[1],
            p99_ms=svc_q[2],
            sojourn_mean_ms=soj_mean * ms,
            arrival_rps=lam_avg,
            served_rps=thr_avg,
            dropped=drop_sum,
            dropped_total=np.minimum(drop_sum.sum(axis=1), external),
            external_requests=external,
            cpu_usage=np.minimum(thr_avg * self.cpu_ms / 1000.0, ready_avg * self.cpu_limit),
            mem_usage=np.where(self.ready > 0, np.minimum(mem_use, self.mem_limit * (1 + spread)), 0.0),
            oom_kills=oom,
            throttled=throttled / n,
            ready_avg=ready_avg,
            cpu_core_hours=(alloc * self.cpu_limit).sum(axis=1) * hours,
            mem_gib_hours=(alloc * self.mem_limit).sum(axis=1) / 1024.0 * hours,
        )
        return self.truth

    def _oom_kills(self, risky: np.ndarray, p_kill: np.ndarray) -> np.ndarray:
        """Pods OOM-killed this interval, per copy and service (a subclass may draw per copy)."""
        return np.where(risky, self.rng.binomial(self.ready.astype(np.int64), np.where(risky, p_kill, 0.0)), 0.0)

    # ----------------------------------------------------------------------------- observation

    def _noise(self, b: int, n: int) -> np.ndarray:
        """``n`` standard normal draws of measurement noise for copy ``b``'s observation."""
        return self.noise_rng.standard_normal(n)

    def observe(self, b: int = 0) -> ServiceMetrics:
        """What a metrics pipeline would report for copy ``b`` (with measurement noise).

        Usage, rates and latencies get independent multiplicative noise, drawn in one call;
        counts (replicas, drops, OOM kills), limits and the backlog are reported exactly.
        """
        tr = self.truth
        S = self.app.n_services
        if tr is None:
            noisy = np.zeros((6, S))
            e2e = np.zeros(3)
            dropped = oom = throttled = np.zeros(S)
            ext = dropped_total = 0.0
        else:
            noisy = np.stack(
                [tr.cpu_usage[b], tr.arrival_rps[b], tr.mem_usage[b], tr.p50_ms[b], tr.p95_ms[b], tr.p99_ms[b]]
            )
            e2e = np.array([tr.e2e_p50_ms[b], tr.e2e_p95_ms[b], tr.e2e_p99_ms[b]])
            if self.config.noise > 0:
                eps = self._noise(b, noisy.size + 3) * self.config.noise
                noisy = noisy * np.maximum(1.0 + eps[:-3].reshape(noisy.shape), 0.0)
                e2e = e2e * np.maximum(1.0 + eps[-3:], 0.0)
            dropped, oom, throttled = tr.dropped[b].copy(), tr.oom_kills[b].copy(), tr.throttled[b].copy()
            ext = float(tr.external_requests[b] / self.config.interval_s)
            dropped_total = float(tr.dropped_total[b])
        return ServiceMetrics(
            t_seconds=self.t,
            replicas=self.replicas[b].copy(),
            ready_replicas=self.ready[b].copy(),
            pending_replicas=self.starting[b].sum(axis=-1) + self.unscheduled[b],
            cpu_limit=self.cpu_limit[b].copy(),
            mem_limit=self.mem_limit[b].copy(),
            cpu_usage=noisy[0],
            request_rate=noisy[1],
            mem_usage=noisy[2],
            queue=self.backlog[b].copy(),
            p50_ms=noisy[3],
            p95_ms=noisy[4],
            p99_ms=noisy[5],
            dropped=dropped,
            oom_kills=oom,
            throttled=throttled,
            external_rps=ext,
            e2e_p50_ms=float(e2e[0]),
            e2e_p95_ms=float(e2e[1]),
            e2e_p99_ms=float(e2e[2]),
            dropped_total=dropped_total,
        )


def _depth(calls: np.ndarray) -> int:
    """Longest call path in edges, plus one: the fixed-point passes load propagation needs."""
    n = calls.shape[0]
    level = np.zeros(n, dtype=int)
    for i in range(n):
        for j in np.flatnonzero(calls[i]):
            level[j] = max(level[j], level[i] + 1)
    return int(level.max()) + 1
