"""Open-loop load generator: replays a trace window as Poisson arrivals against one URL.

Open loop means arrivals are scheduled from the trace alone; a slow app does not slow the offered
load (a closed-loop client would hide overload). In-flight requests are capped (``max_inflight``)
only to bound memory; arrivals beyond the cap are not sent and are counted as ``skipped``.

``python -m cluster.sampleapp.loadgen --target http://nginx-web:8080 --trace nasa_http_1995-07_1min.csv``
replays once; with ``--redis-url`` and ``--namespace`` it instead waits for the backend's
``LoadInstruction`` (key ``aware:loadgen:{namespace}``) and restarts whenever its ``episode`` changes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from cluster.loadgen_control import LoadInstruction, loadgen_key
from envs.trace import load_trace, resample

log = logging.getLogger("loadgen")
TRACES_DIR = Path(__file__).resolve().parents[2] / "envs" / "traces"


def arrival_offsets(rates: np.ndarray, step_s: float, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (seconds from the start) of a Poisson process whose rate is ``rates[k]`` in bin k.

    A Poisson count per bin with uniform times inside it is exactly a piecewise-constant Poisson process.
    """
    rates = np.asarray(rates, dtype=np.float64)
    if (rates < 0).any() or not np.isfinite(rates).all():
        raise ValueError("rates: must be finite and >= 0")
    counts = rng.poisson(rates * step_s)
    starts = np.repeat(np.arange(len(rates)) * step_s, counts)
    return np.sort(starts + rng.uniform(0.0, step_s, size=starts.shape))


def window_rates(instruction: LoadInstruction, step_s: float = 1.0) -> np.ndarray:
    """The instruction's trace window as requests per second per wall-clock bin of ``step_s``."""
    path = instruction.trace
    file_part = path.split("#")[0]
    if not Path(file_part).exists() and (TRACES_DIR / file_part).exists():
        path = str(TRACES_DIR / path)
    trace = load_trace(path)
    t = trace.t_seconds - trace.t_seconds[0]
    keep = (t >= instruction.start_s) & (t < instruction.start_s + instruction.duration_s)
    if keep.sum() < 1:
        raise ValueError(
            f"start_s: window [{instruction.start_s}, +{instruction.duration_s}) is outside the trace "
            f"({trace.duration_s:g} s long)"
        )
    t_win = t[keep] - instruction.start_s
    rps = trace.rps[keep]
    if len(t_win) < 2:
        return np.full(
            max(1, round(instruction.duration_s / instruction.time_compression / step_s)),
            rps[0] * instruction.rate_scale,
        )
    rates = resample(t_win, rps, step_s, time_compression=instruction.time_compression)
    n = max(1, round(instruction.duration_s / instruction.time_compression / step_s))
    return rates[:n] * instruction.rate_scale


@dataclass
class LoadStats:
    """Counters of one replay."""

    sent: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    """Arrivals not sent because ``max_inflight`` requests were already open."""
    latencies_s: list[float] = field(default_factory=list)
    """Latencies of successful requests (the first ``keep_latencies``)."""


async def _get(host: str, port: int, path: str, timeout_s: float) -> int:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout_s)
        await asyncio.wait_for(reader.read(), timeout_s)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def replay(
    target: str,
    offsets: np.ndarray,
    *,
    max_inflight: int = 2000,
    timeout_s: float = 10.0,
    keep_latencies: int = 100_000,
    stop: asyncio.Event | None = None,
) -> LoadStats:
    """Send one GET to ``target`` at each offset (seconds from now), without waiting for answers to send the next."""
    parts = urlsplit(target)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"target: expected http://host:port/path, got {target!r}")
    host, port, path = parts.hostname, parts.port or 80, parts.path or "/"
    stats = LoadStats()
    inflight: set[asyncio.Task[None]] = set()

    async def one() -> None:
        t0 = time.perf_counter()
        try:
            code = await _get(host, port, path, timeout_s)
        except (TimeoutError, OSError, ValueError, IndexError):
            code = 0
        if 200 <= code < 300:
            stats.ok += 1
            if len(stats.latencies_s) < keep_latencies:
                stats.latencies_s.append(time.perf_counter() - t0)
        else:
            stats.failed += 1

    loop = asyncio.get_running_loop()
    start = loop.time()
    for offset in offsets:
        if stop is not None and stop.is_set():
            break
        delay = start + float(offset) - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(inflight) >= max_inflight:
            stats.skipped += 1
            continue
        task = asyncio.create_task(one())
        inflight.add(task)
        task.add_done_callback(inflight.discard)
        stats.sent += 1
    if inflight:
        await asyncio.wait(inflight, timeout=timeout_s + 1)
    return stats


async def watch(
    target: str, store: object, namespace: str, *, poll_s: float = 1.0, max_seconds: float = 0.0, seed: int = 0
) -> None:
    """Follow the backend's instructions: restart the replay whenever the instruction's episode changes."""
    from cluster.metric_store import StoreUnavailable

    key = loadgen_key(namespace)
    current: tuple[str, asyncio.Task[LoadStats], asyncio.Event] | None = None
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    while not max_seconds or time.monotonic() - started < max_seconds:
        try:
            doc = store.get_value(key)  # type: ignore[attr-defined]
        except StoreUnavailable as exc:
            log.warning("cannot read %s: %s", key, exc)
            doc = None
        if doc is not None:
            try:
                ins = LoadInstruction.from_dict(doc)
            except (TypeError, ValueError) as exc:
                log.error("bad load instruction at %s: %s", key, exc)
                ins = None
            if ins is not None and (current is None or current[0] != ins.episode):
                if current is not None:
                    current[2].set()
                try:
                    offsets = arrival_offsets(window_rates(ins), 1.0, rng)
                except (ValueError, OSError) as exc:  # a bad trace stops this episode's load, not the watcher
                    log.error("episode %s: %s", ins.episode, exc)
                    offsets = np.zeros(0)
                stop = asyncio.Event()
                log.info("episode %s: %d arrivals from %s", ins.episode, len(offsets), ins.trace)
                current = (ins.episode, asyncio.create_task(replay(target, offsets, stop=stop)), stop)
        await asyncio.sleep(poll_s)
    if current is not None:
        current[2].set()
        await current[1]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.sampleapp.loadgen", description=__doc__.splitlines()[0])
    p.add_argument("--target", required=True, help="URL of the app's entry service")
    p.add_argument("--trace", default="", help="trace CSV (file.csv#column allowed) or a shipped trace's file name")
    p.add_argument("--start-s", type=float, default=0.0)
    p.add_argument("--duration-s", type=float, default=900.0)
    p.add_argument("--rate-scale", type=float, default=1.0)
    p.add_argument("--time-compression", type=float, default=1.0)
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""), help="follow instructions from Redis")
    p.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE", ""))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.redis_url:
        from cluster.metric_store import MetricStore, StoreConfig

        if not a.namespace:
            p.error("--namespace: required with --redis-url")
        store = MetricStore(StoreConfig(url=a.redis_url, password=os.environ.get("REDIS_PASSWORD") or None))
        asyncio.run(watch(a.target, store, a.namespace, seed=a.seed))
        return 0
    if not a.trace:
        p.error("--trace: required without --redis-url")
    try:
        ins = LoadInstruction(
            trace=a.trace,
            start_s=a.start_s,
            duration_s=a.duration_s,
            rate_scale=a.rate_scale,
            time_compression=a.time_compression,
        )
        offsets = arrival_offsets(window_rates(ins), 1.0, np.random.default_rng(a.seed))
    except ValueError as exc:
        p.error(str(exc))
    stats = asyncio.run(replay(a.target, offsets))
    log.info("sent %d, ok %d, failed %d, skipped %d", stats.sent, stats.ok, stats.failed, stats.skipped)
    return 0


if __name__ == "__main__":
    sys.exit(main())
