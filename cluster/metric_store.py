"""The one place that reads and writes Redis: metric series, experience records, and a write buffer.

The collector, the KubernetesBackend and the controller's experience records all go through
``MetricStore`` so that key names, the schema version and the failure behaviour are defined once.

Writes never block the caller for long and are never lost silently: each write goes into a bounded
in-memory buffer first and is flushed in one pipeline. When Redis is down, the store keeps the
newest ``buffer_size`` writes, drops the oldest (and counts them in ``stats.dropped``), and retries
with exponential backoff; while it is backing off a write only touches memory. Delivery is
at-least-once: a pipeline cut off halfway may be sent again, so readers must tolerate a duplicate
sample (they do: samples carry their own timestamp).

Reads fail fast with ``StoreUnavailable`` instead, because a reader (the backend) has a better
fallback than waiting: it reports stale metrics and the controller hands over to its heuristic.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
"""Version of the entry layout written by this module; readers skip entries of other versions."""

METRICS_KEY_PREFIX = "aware:metrics"
DEFAULT_METRICS_MAXLEN = 5760
"""Samples kept per Deployment: one day at the collector's default 15 s period."""
DEFAULT_RECORDS_MAXLEN = 100_000

_RESERVED_FIELDS = ("schema", "ts", "source")


def metrics_key(namespace: str, deployment: str) -> str:
    """Redis key of one Deployment's metric series, ``aware:metrics:{namespace}:{deployment}``."""
    for name, value in (("namespace", namespace), ("deployment", deployment)):
        if not value or ":" in value:
            raise ValueError(f"{name}: must be a non-empty name without ':', got {value!r}")
    return f"{METRICS_KEY_PREFIX}:{namespace}:{deployment}"


class StoreUnavailable(RuntimeError):
    """Redis could not be reached (or answered with an error) for a read."""


@dataclass(frozen=True)
class StoreConfig:
    """How to reach Redis and how much to buffer when it cannot be reached."""

    url: str
    """``redis://[:password@]host:port/db`` (``rediss://`` for TLS). Prefer ``password`` over putting it here."""
    password: str | None = None
    """Password (from a mounted Secret); overrides one in the URL."""
    connect_timeout_s: float = 0.5
    """Longest wait for a TCP connect; bounds how long a write can block the caller."""
    socket_timeout_s: float = 0.5
    """Longest wait for one reply (or one pipeline) from Redis."""
    buffer_size: int = 10_000
    """Pending writes kept while Redis is unreachable; the oldest are dropped (and counted) beyond this."""
    backoff_initial_s: float = 0.2
    """First wait before trying again after a failed flush; doubles on each further failure."""
    backoff_max_s: float = 30.0
    """Cap of the backoff, so a recovered Redis is found again within this time."""
    flush_batch: int = 500
    """Most writes sent in one pipeline, so one flush after an outage stays short."""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError(f"url: expected redis://[:password@]host:port/db, got {_redact(self.url)!r}")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError(f"url: bad port in {_redact(self.url)!r}") from None
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ValueError(f"url: database must be a number, got {db!r}")
        for name in ("connect_timeout_s", "socket_timeout_s", "backoff_initial_s", "backoff_max_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number of seconds, got {value!r}")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s: must be >= backoff_initial_s")
        for name in ("buffer_size", "flush_batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


@dataclass
class StoreStats:
    """Counters of the write path (monotonic over the store's life, except ``buffered``)."""

    sent: int = 0
    """Writes Redis acknowledged."""
    buffered: int = 0
    """Writes waiting in memory now."""
    dropped: int = 0
    """Writes discarded because the buffer was full (the oldest go first)."""
    reconnects: int = 0
    """Times a flush succeeded after one or more failed ones."""
    failures: int = 0
    """Flush attempts that failed (connection refused, timeout, Redis error)."""


@dataclass(frozen=True)
class MetricSample:
    """One sample of a Deployment's series as read back."""

    ts: float
    """Wall-clock time of the sample, seconds since the epoch (set by the writer, not by Redis)."""
    values: dict[str, float]
    """Metric name -> value."""
    entry_id: str = ""
    """Redis stream entry id."""
    source: str = ""
    """Who wrote it (a collector's node name), empty when not given."""


@dataclass(frozen=True)
class Record:
    """One record of a generic stream (an experience record, for instance) as read back."""

    entry_id: str
    """Redis stream entry id; pass it as ``after_id`` to read on from here."""
    record: dict[str, Any]
    """The JSON-decoded record."""


@dataclass
class _Pending:
    key: str
    fields: dict[str, str]
    maxlen: int


@dataclass
class MetricStore:
    """Redis reads and buffered writes for metric series and record streams (thread-safe)."""

    config: StoreConfig
    clock: Callable[[], float] = time.monotonic
    """Monotonic clock for the backoff schedule (injectable for tests)."""
    wall_clock: Callable[[], float] = time.time
    """Wall clock stamped on samples and used by ``since_s`` reads."""
    stats: StoreStats = field(default_factory=StoreStats)
    _buffer: deque[_Pending] = field(default_factory=deque, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _next_try: float = field(default=0.0, init=False, repr=False)
    _backoff: float = field(default=0.0, init=False, repr=False)
    _failing: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        cfg = self.config
        parts = urlsplit(cfg.url)
        password = cfg.password if cfg.password is not None else (unquote(parts.password) if parts.password else None)
        # Retries are ours (buffer + backoff); redis-py's own would block the caller.
        self._redis = redis.Redis(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=int(parts.path.lstrip("/") or 0),
            username=unquote(parts.username) if parts.username else None,
            password=password,
            ssl=parts.scheme == "rediss",
            socket_connect_timeout=cfg.connect_timeout_s,
            socket_timeout=cfg.socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> MetricStore:
        """A store for ``url``; keyword arguments are ``StoreConfig`` fields."""
        return cls(StoreConfig(url=url, **kwargs))

    # ---- writes -------------------------------------------------------------------------------

    def append_metrics(
        self,
        namespace: str,
        deployment: str,
        sample: Mapping[str, float],
        ts: float | None = None,
        maxlen: int = DEFAULT_METRICS_MAXLEN,
        source: str = "",
    ) -> bool:
        """Queue one sample of a Deployment's series and try to flush; True when Redis has it now.

        ``sample`` maps metric names to finite numbers; ``ts`` defaults to the wall clock now.
        ``source`` names the writer (a collector's node), so a reader can merge the samples of several
        writers of one Deployment.
        """
        fields = {"schema": str(SCHEMA_VERSION), "ts": repr(float(self.wall_clock() if ts is None else ts))}
        if source:
            fields["source"] = source
        for name, value in sample.items():
            if name in _RESERVED_FIELDS:
                raise ValueError(f"sample.{name}: reserved field name")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"sample.{name}: expected a finite number, got {value!r}")
            fields[name] = repr(float(value))
        return self._write(_Pending(metrics_key(namespace, deployment), fields, maxlen))

    def append_record(self, stream_key: str, record: Mapping[str, Any], maxlen: int = DEFAULT_RECORDS_MAXLEN) -> bool:
        """Queue one JSON-serialisable record on ``stream_key`` and try to flush; True when Redis has it now.

        numpy scalars and arrays are stored as numbers and lists; NaN and infinity are refused (not JSON).
        """
        if not stream_key:
            raise ValueError("stream_key: must not be empty")
        try:
            body = json.dumps(record, allow_nan=False, separators=(",", ":"), default=_numpy_to_json)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"record: not JSON-serialisable ({exc})") from None
        return self._write(_Pending(stream_key, {"schema": str(SCHEMA_VERSION), "json": body}, maxlen))

    def _write(self, item: _Pending) -> bool:
        if item.maxlen < 1:
            raise ValueError(f"maxlen: must be >= 1, got {item.maxlen}")
        with self._lock:
            if len(self._buffer) >= self.config.buffer_size:
                self._flush_locked(force=False)  # make room if Redis is back, before dropping anything
            if len(self._buffer) >= self.config.buffer_size:
                self._buffer.popleft()
                self.stats.dropped += 1
                if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                    log.warning("metric store buffer full: %d writes dropped so far", self.stats.dropped)
            self._buffer.append(item)
            self._flush_locked(force=False)
            self.stats.buffered = len(self._buffer)
            return not self._buffer

    def flush(self, force: bool = False) -> int:
        """Send buffered writes now (``force`` ignores the backoff); returns how many are still pending."""
        with self._lock:
            self._flush_locked(force=force)
            self.stats.buffered = len(self._buffer)
            return len(self._buffer)

    def _flush_locked(self, force: bool) -> None:
        # Bounded: at most buffer_size / flush_batch + 1 pipelines, each bounded by the socket timeout.
        rounds = self.config.buffer_size // self.config.flush_batch + 1
        for _ in range(rounds):
            if not self._buffer:
                return
            if not force and self.clock() < self._next_try:
                return
            batch = [self._buffer[i] for i in range(min(self.config.flush_batch, len(self._buffer)))]
            try:
                pipe = self._redis.pipeline(transaction=False)
                for item in batch:
                    pipe.xadd(item.key, item.fields, maxlen=item.maxlen, approximate=True)
                pipe.execute()
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError) as exc:
                self.stats.failures += 1
                self._backoff = (
                    self.config.backoff_initial_s
                    if not self._failing
                    else min(self._backoff * 2, self.config.backoff_max_s)
                )
                self._next_try = self.clock() + self._backoff
                if not self._failing:
                    log.warning(
                        "redis unreachable (%s); buffering writes, retry in %.1fs", _one_line(exc), self._backoff
                    )
                self._failing = True
                self._redis.connection_pool.disconnect()
                return
            for _ in batch:
                self._buffer.popleft()
            self.stats.sent += len(batch)
            if self._failing:
                self.stats.reconnects += 1
                log.info("redis reachable again; %d writes pending", len(self._buffer))
            self._failing = False
            self._backoff = 0.0
            self._next_try = 0.0

    # ---- reads --------------------------------------------------------------------------------

    def read_metrics(
        self,
        namespace: str,
        deployment: str,
        *,
        since_s: float | None = None,
        last: int | None = None,
    ) -> list[MetricSample]:
        """Samples of one Deployment, oldest first: the last ``last`` and/or those of the last ``since_s`` seconds.

        With neither given, the last 1 sample. Entries of another schema version are skipped.

        Raises:
            StoreUnavailable: Redis could not be read.
        """
        if last is not None and last < 1:
            raise ValueError(f"last: must be >= 1, got {last}")
        if since_s is not None and not (since_s > 0):
            raise ValueError(f"since_s: must be > 0, got {since_s}")
        if last is None and since_s is None:
            last = 1
        key = metrics_key(namespace, deployment)
        cutoff = -math.inf if since_s is None else self.wall_clock() - since_s
        want = last if last is not None else DEFAULT_METRICS_MAXLEN * 2
        out: list[MetricSample] = []
        upper = "+"
        page = 200
        # Bounded: the stream is capped near its maxlen; stop at the cutoff or when `want` are read.
        for _ in range(want // page + 2):
            entries = self._call(lambda u=upper: self._redis.xrevrange(key, max=u, min="-", count=page))
            for entry_id, fields in entries:
                sample = _parse_sample(entry_id, fields)
                if sample is None:
                    continue
                if sample.ts < cutoff:
                    # Samples may arrive late (buffered), so ids are only roughly ordered by ts; stop
                    # once a whole page is older than the cutoff.
                    continue
                out.append(sample)
                if len(out) >= want:
                    break
            if len(out) >= want or len(entries) < page:
                break
            if all((s := _parse_sample(i, f)) is None or s.ts < cutoff for i, f in entries):
                break
            upper = "(" + entries[-1][0]
        out.sort(key=lambda s: s.ts)
        return out

    def read_records(self, stream_key: str, *, after_id: str = "-", count: int = 100) -> list[Record]:
        """Up to ``count`` records of ``stream_key`` after ``after_id`` (exclusive; ``-`` = from the start).

        Raises:
            StoreUnavailable: Redis could not be read.
        """
        if count < 1:
            raise ValueError(f"count: must be >= 1, got {count}")
        lower = "-" if after_id == "-" else "(" + after_id
        entries = self._call(lambda: self._redis.xrange(stream_key, min=lower, max="+", count=count))
        out = []
        for entry_id, fields in entries:
            if fields.get("schema") != str(SCHEMA_VERSION) or "json" not in fields:
                continue
            try:
                out.append(Record(entry_id, json.loads(fields["json"])))
            except json.JSONDecodeError:
                log.warning("skipping unreadable record %s on %s", entry_id, stream_key)
        return out

    def last_records(self, stream_key: str, count: int = 1) -> list[Record]:
        """The newest ``count`` records of ``stream_key``, oldest first."""
        if count < 1:
            raise ValueError(f"count: must be >= 1, got {count}")
        entries = self._call(lambda: self._redis.xrevrange(stream_key, max="+", min="-", count=count))
        out = []
        for entry_id, fields in reversed(entries):
            if fields.get("schema") == str(SCHEMA_VERSION) and "json" in fields:
                try:
                    out.append(Record(entry_id, json.loads(fields["json"])))
                except json.JSONDecodeError:
                    continue
        return out

    def set_value(self, key: str, value: Mapping[str, Any]) -> None:
        """Write a small JSON document (a loadgen instruction, for instance) right away, unbuffered.

        Raises:
            StoreUnavailable: Redis could not be written.
        """
        body = json.dumps({"schema": SCHEMA_VERSION, **value}, allow_nan=False)
        self._call(lambda: self._redis.set(key, body))

    def get_value(self, key: str) -> dict[str, Any] | None:
        """The JSON document at ``key`` (without its schema field), or None when absent or of another schema."""
        body = self._call(lambda: self._redis.get(key))
        if body is None:
            return None
        try:
            doc = json.loads(body)
        except json.JSONDecodeError:
            return None
        if not isinstance(doc, dict) or doc.pop("schema", None) != SCHEMA_VERSION:
            return None
        return doc

    def ping(self) -> bool:
        """True when Redis answers now."""
        try:
            return bool(self._call(self._redis.ping))
        except StoreUnavailable:
            return False

    def _call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError, OSError) as exc:
            self._redis.connection_pool.disconnect()
            raise StoreUnavailable(f"redis at {_redact(self.config.url)}: {_one_line(exc)}") from None

    def close(self) -> None:
        """Try one last flush, then close the connections (pending writes that still fail are counted dropped)."""
        with self._lock:
            self._flush_locked(force=True)
            self.stats.dropped += len(self._buffer)
            self._buffer.clear()
            self.stats.buffered = 0
        self._redis.close()


def _numpy_to_json(value: Any) -> Any:
    """numpy scalars and arrays (what observations and actions are) as plain JSON numbers and lists."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _parse_sample(entry_id: str, fields: dict[str, str]) -> MetricSample | None:
    if fields.get("schema") != str(SCHEMA_VERSION):
        return None
    try:
        ts = float(fields["ts"])
        values = {k: float(v) for k, v in fields.items() if k not in _RESERVED_FIELDS}
    except (KeyError, ValueError):
        return None
    return MetricSample(ts=ts, values=values, entry_id=entry_id, source=fields.get("source", ""))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
