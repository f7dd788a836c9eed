"""MetricStore against a real redis-server: series, records, buffering, drops, kill and restart."""

from __future__ import annotations

import signal
import time

import pytest
import redis

from cluster.metric_store import (
    SCHEMA_VERSION,
    MetricStore,
    StoreConfig,
    StoreUnavailable,
    metrics_key,
)
from tests.cluster_fakes.redis_server import RedisServer, free_port


class FakeClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(redis_server: RedisServer):
    redis_server.start()
    redis_server.flushall()
    s = MetricStore(StoreConfig(url=redis_server.url, backoff_initial_s=0.05, backoff_max_s=0.4))
    yield s
    s.close()


def test_metrics_round_trip_with_schema(store: MetricStore, redis_server: RedisServer) -> None:
    for i in range(5):
        assert store.append_metrics("ns", "web", {"cpu": 0.1 * i, "rps": 10 + i}, ts=100.0 + i)
    got = store.read_metrics("ns", "web", last=3)
    assert [s.ts for s in got] == [102.0, 103.0, 104.0]
    assert got[-1].values == {"cpu": pytest.approx(0.4), "rps": 14.0}
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True).xrange(metrics_key("ns", "web"))
    assert all(fields["schema"] == str(SCHEMA_VERSION) for _, fields in raw)
    assert store.stats.sent == 5 and store.stats.buffered == 0 and store.stats.dropped == 0


def test_read_since_uses_sample_time(redis_server: RedisServer) -> None:
    redis_server.start()
    redis_server.flushall()
    wall = FakeClock(10_000.0)
    s = MetricStore(StoreConfig(url=redis_server.url), wall_clock=wall)
    for t in (9_900.0, 9_950.0, 9_990.0, 9_999.0):
        s.append_metrics("ns", "api", {"cpu": 1.0}, ts=t)
    assert [x.ts for x in s.read_metrics("ns", "api", since_s=20)] == [9_990.0, 9_999.0]
    assert [x.ts for x in s.read_metrics("ns", "api", since_s=60, last=1)] == [9_999.0]
    assert s.read_metrics("ns", "missing", since_s=60) == []
    s.close()


def test_series_is_bounded(store: MetricStore, redis_server: RedisServer) -> None:
    for i in range(600):
        store.append_metrics("ns", "web", {"x": i}, maxlen=100)
    n = redis.Redis.from_url(redis_server.url).xlen(metrics_key("ns", "web"))
    assert 100 <= n < 600  # MAXLEN ~ trims in whole radix-tree nodes


def test_entries_of_another_schema_are_skipped(store: MetricStore, redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    r.xadd(metrics_key("ns", "web"), {"schema": "999", "ts": "1.0", "cpu": "5"})
    store.append_metrics("ns", "web", {"cpu": 1.0}, ts=2.0)
    assert [x.values["cpu"] for x in store.read_metrics("ns", "web", last=10)] == [1.0]


def test_records_round_trip_and_paging(store: MetricStore) -> None:
    for i in range(7):
        store.append_record("aware:experience:test", {"step": i, "obs": [0.5, 1.0], "mode": "shadow"}, maxlen=1000)
    first = store.read_records("aware:experience:test", count=4)
    assert [r.record["step"] for r in first] == [0, 1, 2, 3]
    rest = store.read_records("aware:experience:test", after_id=first[-1].entry_id, count=100)
    assert [r.record["step"] for r in rest] == [4, 5, 6]
    assert rest[0].record == {"step": 4, "obs": [0.5, 1.0], "mode": "shadow"}
    assert [r.record["step"] for r in store.last_records("aware:experience:test", 2)] == [5, 6]


def test_records_take_numpy_values(store: MetricStore) -> None:
    import numpy as np

    store.append_record("aware:experience:np", {"obs": np.array([0.5, 1.5], dtype=np.float32), "a": np.int64(3)})
    assert store.last_records("aware:experience:np")[0].record == {"obs": [0.5, 1.5], "a": 3}
    with pytest.raises(ValueError, match=r"^record: not JSON-serialisable"):
        store.append_record("aware:experience:np", {"obs": np.array([np.nan])})


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.append_metrics("ns", "web", {"cpu": float("nan")}), "sample.cpu"),
        (lambda s: s.append_metrics("ns", "web", {"cpu": "high"}), "sample.cpu"),
        (lambda s: s.append_metrics("ns", "web", {"ts": 1.0}), "sample.ts"),
        (lambda s: s.append_metrics("n:s", "web", {}), "namespace"),
        (lambda s: s.append_record("k", {"x": object()}), "record"),
        (lambda s: s.append_record("", {}), "stream_key"),
        (lambda s: s.read_metrics("ns", "web", last=0), "last"),
    ],
)
def test_bad_input_names_the_field(store: MetricStore, call, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        call(store)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "http://127.0.0.1:1"}, "url"),
        ({"url": "redis://127.0.0.1:1/x"}, "url"),
        ({"url": "redis://127.0.0.1:1", "buffer_size": 0}, "buffer_size"),
        ({"url": "redis://127.0.0.1:1", "socket_timeout_s": -1}, "socket_timeout_s"),
        ({"url": "redis://127.0.0.1:1", "backoff_initial_s": 5, "backoff_max_s": 1}, "backoff_max_s"),
    ],
)
def test_bad_config_names_the_field(kwargs, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:") as info:
        StoreConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_password_in_url_and_override() -> None:
    server = RedisServer(password="s3cret")
    server.start()
    try:
        ok = MetricStore(StoreConfig(url=server.url))
        assert ok.append_metrics("ns", "web", {"cpu": 1.0})
        assert ok.read_metrics("ns", "web")[0].values == {"cpu": 1.0}
        wrong = MetricStore(StoreConfig(url=server.url, password="wrong"))
        assert not wrong.append_metrics("ns", "web", {"cpu": 1.0})
        assert wrong.stats.failures == 1 and wrong.stats.buffered == 1
        with pytest.raises(StoreUnavailable, match=r"redis at redis://:\*\*\*@127\.0\.0\.1"):
            wrong.read_metrics("ns", "web")
    finally:
        server.close()


def test_unreachable_redis_buffers_drops_oldest_and_never_blocks() -> None:
    clock = FakeClock()
    s = MetricStore(
        StoreConfig(url=f"redis://127.0.0.1:{free_port()}/0", buffer_size=5, backoff_initial_s=1, backoff_max_s=8),
        clock=clock,
    )
    t0 = time.monotonic()
    for i in range(12):
        assert not s.append_metrics("ns", "web", {"i": i})
    assert time.monotonic() - t0 < 2.0
    # Only the first write tried to connect; the rest fell inside the backoff window.
    assert s.stats.failures == 1
    assert s.stats.buffered == 5 and s.stats.dropped == 7 and s.stats.sent == 0
    assert [p.fields["i"] for p in s._buffer] == [repr(float(i)) for i in range(7, 12)]
    # Backoff doubles up to its cap.
    waits = []
    for _ in range(6):
        before = s._next_try
        clock.t = before
        s.flush()
        waits.append(s._next_try - clock.t)
        assert before <= s._next_try
    assert waits == [2, 4, 8, 8, 8, 8]
    with pytest.raises(StoreUnavailable):
        s.read_metrics("ns", "web")
    assert not s.ping()


def test_kill_and_restart_midway(redis_server: RedisServer) -> None:
    """Writes go on through an outage: no crash, the buffer keeps the newest, drops are counted, writes resume."""
    redis_server.start()
    redis_server.flushall()
    clock = FakeClock()
    s = MetricStore(
        StoreConfig(url=redis_server.url, buffer_size=20, backoff_initial_s=0.5, backoff_max_s=2), clock=clock
    )
    for i in range(10):
        assert s.append_metrics("ns", "web", {"i": i}, ts=float(i))
    redis_server.stop()
    for i in range(10, 40):
        clock.t += 0.1
        s.append_metrics("ns", "web", {"i": i}, ts=float(i))
    assert s.stats.sent == 10
    assert s.stats.dropped == 10 and s.stats.buffered == 20
    redis_server.start()  # a fresh server: the first 10 samples died with the old one (no persistence)
    clock.t += 10  # past the backoff
    assert s.append_metrics("ns", "web", {"i": 40}, ts=40.0)
    assert s.stats.reconnects == 1 and s.stats.buffered == 0 and s.stats.sent == 31
    got = [int(x.values["i"]) for x in s.read_metrics("ns", "web", last=100)]
    assert got == list(range(20, 41))  # exactly the documented buffer: the 20 newest of the outage, then new
    s.close()


def test_close_counts_undeliverable_writes_as_dropped() -> None:
    s = MetricStore(StoreConfig(url=f"redis://127.0.0.1:{free_port()}/0", connect_timeout_s=0.2))
    s.append_record("k", {"a": 1})
    s.append_record("k", {"a": 2})
    s.close()
    assert s.stats.dropped == 2 and s.stats.buffered == 0


def test_hung_redis_blocks_a_write_at_most_the_socket_timeout() -> None:
    server = RedisServer()
    server.start()
    try:
        s = MetricStore(StoreConfig(url=server.url, socket_timeout_s=0.2, connect_timeout_s=0.2))
        assert s.append_metrics("ns", "web", {"i": 0})
        server.proc.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        assert not s.append_metrics("ns", "web", {"i": 1})
        assert not s.append_metrics("ns", "web", {"i": 2})  # inside the backoff: memory only
        assert time.monotonic() - t0 < 1.0  # one socket timeout (0.2 s) plus scheduling slack
        assert s.stats.failures == 1 and s.stats.buffered == 2
        server.proc.send_signal(signal.SIGCONT)
        assert s.flush(force=True) == 0
        assert [x.values["i"] for x in s.read_metrics("ns", "web", last=10)][-2:] == [1.0, 2.0]
    finally:
        if server.proc is not None:
            server.proc.send_signal(signal.SIGCONT)
        server.close()
