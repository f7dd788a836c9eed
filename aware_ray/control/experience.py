"""Experience records: what each controlled interval saw, did and earned, for retraining.

One record per app and interval, to a Redis stream per app (``aware:experience:<app>``, bounded by
MAXLEN) through ``cluster.metric_store`` (buffered writes: Redis down or slow never blocks the
interval; the oldest buffered records are dropped and counted beyond the bound, and the rest are
flushed on reconnect), and optionally to a JSONL file. ``train --experience`` reads either back
(``aware_ray.control.experience_reader``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from aware_ray.control.app_controller import IntervalResult
from envs.observation_schema import SCHEMA_VERSION

STREAM_PREFIX = "aware:experience"
RECORD_VERSION = 1
"""Version of the record's own layout (the observation's is ``schema_version``)."""


def stream_key(app: str) -> str:
    return f"{STREAM_PREFIX}:{app}"


def _list(x: np.ndarray | None) -> list[float] | None:
    return None if x is None else [float(v) for v in np.asarray(x).ravel()]


def experience_record(r: IntervalResult, spec: str, mode: str) -> dict[str, Any]:
    """The JSON record of one interval (see the module docstring)."""
    m = r.metrics
    d = r.decision
    return {
        "record_version": RECORD_VERSION,
        "schema_version": SCHEMA_VERSION,
        "app": r.app,
        "interval": r.interval,
        "policy": spec,
        "policy_version": r.policy_version,
        "mode": mode,
        "source": r.source,
        "reasons": r.reasons,
        "observation": _list(r.observation),
        "raw_action": _list(r.raw_action),
        "policy_action": _list(r.policy_action),
        "applied_action": _list(r.applied_action),
        "decision": None
        if d is None
        else {"replicas": _list(d.replicas), "cpu_limit": _list(d.cpu_limit), "mem_limit": _list(d.mem_limit)},
        "metrics": None
        if m is None
        else {k: (_list(v) if isinstance(v, np.ndarray) else float(v)) for k, v in asdict(m).items()},
        "reward": r.reward,
        "scoreboard": r.scoreboard,
        "guard_reasons": r.guard_reasons,
    }


class ExperienceSink:
    """Redis streams (optional) and a JSONL file (optional) for experience records."""

    def __init__(self, redis_url: str | None, maxlen: int, buffer: int, file: str | Path | None = None):
        self.maxlen = maxlen
        self.store = None
        if redis_url:
            from cluster.metric_store import MetricStore

            # Short timeouts: a hung Redis costs an interval at most ~0.1 s once per backoff step.
            self.store = MetricStore.from_url(
                redis_url, connect_timeout_s=0.1, socket_timeout_s=0.1, buffer_size=buffer
            )
        self.file = open(file, "a") if file else None  # noqa: SIM115 - closed in close()
        self.written = 0

    def write(self, record: dict[str, Any]) -> None:
        if self.store is not None:
            self.store.append_record(stream_key(record["app"]), record, maxlen=self.maxlen)
        if self.file is not None:
            self.file.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        self.written += 1

    def stats(self) -> dict[str, int]:
        s = self.store.stats if self.store is not None else None
        return {
            "records": self.written,
            "redis_sent": s.sent if s else 0,
            "redis_buffered": s.buffered if s else 0,
            "redis_dropped": s.dropped if s else 0,
            "redis_reconnects": s.reconnects if s else 0,
        }

    def close(self, flush_timeout: bool = True) -> None:
        if self.store is not None:
            self.store.flush(force=flush_timeout)
            self.store.close()
        if self.file is not None:
            self.file.close()
