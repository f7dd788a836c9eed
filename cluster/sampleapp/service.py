"""The sample microservice: burns the CPU its role asks for, holds memory, calls downstream, exports metrics.

``python -m cluster.sampleapp.service`` (role from environment variables, see ``role.Role``). Endpoints:
``GET /`` does one request's work, ``GET /metrics`` is Prometheus text, ``GET /healthz`` answers at once.

CPU is burnt per request against the thread's own CPU clock, so a CPU limit (CFS quota) slows a
request down exactly as the simulator assumes. ``WORKERS`` requests run at once; the others wait in
the queue, which ``app_queue_depth`` reports.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from cluster.sampleapp.http_handler import KeepAliveHandler
from cluster.sampleapp.role import Role

log = logging.getLogger("sampleapp")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def burn_cpu(ms: float) -> None:
    """Spend ``ms`` milliseconds of this thread's CPU time (bounded: at most 60 s of wall time)."""
    end_cpu = time.thread_time() + ms / 1000.0
    deadline = time.monotonic() + 60.0
    x = 0
    while time.thread_time() < end_cpu and time.monotonic() < deadline:
        for _ in range(200):
            x += 1


def cpu_ms_sample(rng: random.Random, mean: float, cv: float) -> float:
    """One request's CPU time: gamma with the role's mean and coefficient of variation."""
    if cv <= 0:
        return mean
    shape = 1.0 / (cv * cv)
    return rng.gammavariate(shape, mean / shape)


class SampleService:
    """One replica: an HTTP server with a bounded worker pool and its metrics registry."""

    def __init__(self, role: Role, host: str = "0.0.0.0", seed: int | None = None):
        self.role = role
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.workers = threading.BoundedSemaphore(role.workers)
        self.registry = CollectorRegistry()
        self.requests = Counter("http_requests", "Requests served", ["code"], registry=self.registry)
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Request latency at this service (queue + work + downstream)",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.own_latency = Histogram(
            "app_service_duration_seconds",
            "Time at this service itself: queue + own work, downstream calls excluded",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue = Gauge("app_queue_depth", "Requests waiting for a worker", registry=self.registry)
        self.inflight = Gauge("app_inflight_requests", "Requests inside this replica", registry=self.registry)
        self.base_memory = bytearray(int(role.mem_base_mib * 2**20))
        for i in range(0, len(self.base_memory), 4096):
            self.base_memory[i] = 1  # touch every page so it is resident
        self.pool = ThreadPoolExecutor(max_workers=max(1, 4 * len(role.downstream))) if role.parallel else None
        self.httpd = ThreadingHTTPServer((host, role.port), self._handler())
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])

    def _calls(self) -> list[str]:
        out = []
        with self.rng_lock:
            for d in self.role.downstream:
                n = int(d.per_request) + (1 if self.rng.random() < d.per_request % 1 else 0)
                out += [d.url + "/"] * n
        return out

    def _call(self, url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=self.role.timeout_s) as resp:
                resp.read()
                return 200 <= resp.status < 300
        except (urllib.error.URLError, OSError, TimeoutError):
            return False

    def work(self) -> int:
        """One request: wait for a worker, burn CPU holding memory, call downstream; returns the HTTP status."""
        t0 = time.perf_counter()
        self.queue.inc()
        got = self.workers.acquire(timeout=self.role.timeout_s)
        self.queue.dec()
        if not got:
            return 503
        try:
            held = bytearray(int(self.role.mem_per_inflight_mib * 2**20))
            for i in range(0, len(held), 4096):
                held[i] = 1
            with self.rng_lock:
                ms = cpu_ms_sample(self.rng, self.role.cpu_ms_mean, self.role.cpu_ms_cv)
            burn_cpu(ms)
        finally:
            self.workers.release()
            self.own_latency.observe(time.perf_counter() - t0)
        calls = self._calls()
        if not calls:
            return 200
        if self.pool is not None:
            ok = all(self.pool.map(self._call, calls))
        else:
            ok = all(self._call(u) for u in calls)  # stops at the first failure, as a sequential caller would
        return 200 if ok else 502

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        svc = self

        class Handler(KeepAliveHandler):
            def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path == "/metrics":
                    self._send(200, generate_latest(svc.registry), "text/plain; version=0.0.4")
                elif path == "/healthz":
                    self._send(200, b"ok")
                elif path == "/":
                    t0 = time.perf_counter()
                    svc.inflight.inc()
                    try:
                        code = svc.work()
                    finally:
                        svc.inflight.dec()
                    svc.latency.observe(time.perf_counter() - t0)
                    svc.requests.labels(code=str(code)).inc()
                    self._send(code, svc.role.name.encode())
                else:
                    self._send(404, b"not found")

        return Handler

    def serve_in_thread(self) -> threading.Thread:
        t = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.pool is not None:
            self.pool.shutdown(wait=False)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        role = Role.from_env(os.environ)
    except ValueError as exc:
        print(f"sampleapp: {exc}", file=sys.stderr)
        return 2
    host = os.environ.get("HOST", "0.0.0.0")
    svc = SampleService(role, host=host)
    log.info(
        "%s listening on %s:%d (cpu %.1f ms, %d workers, %d downstream)",
        role.name,
        host,
        svc.port,
        role.cpu_ms_mean,
        role.workers,
        len(role.downstream),
    )
    with contextlib.suppress(KeyboardInterrupt):
        svc.httpd.serve_forever(poll_interval=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
