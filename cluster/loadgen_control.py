"""The instruction a backend gives a namespace's load generator: which trace window to replay, and how fast.

The backend writes it to Redis (``{prefix}:{namespace}``) on reset; the load generator polls the key
and restarts its replay when the ``episode`` changes. Redis rather than a ConfigMap because the
controller already holds a Redis connection and a ConfigMap update reaches a mounted volume only
after the kubelet's sync delay (up to a minute or more).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_PREFIX = "aware:loadgen"


def loadgen_key(namespace: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Redis key the load generator of ``namespace`` watches."""
    return f"{prefix}:{namespace}"


@dataclass(frozen=True)
class LoadInstruction:
    """One episode's offered load."""

    trace: str
    """Trace file (``file.csv#column`` allowed) or a shipped trace's file name under envs/traces."""
    start_s: float = 0.0
    """Offset into the trace where the window starts, trace seconds."""
    duration_s: float = 900.0
    """Length of the window, trace seconds."""
    rate_scale: float = 1.0
    """Multiplier on the trace's requests per second."""
    time_compression: float = 1.0
    """Trace seconds replayed per wall-clock second (1 = real time)."""
    episode: str = ""
    """Identifier of the episode; a new value makes the load generator start over."""

    def __post_init__(self) -> None:
        if not isinstance(self.trace, str) or not self.trace:
            raise ValueError(f"trace: must name a trace file, got {self.trace!r}")
        for name, lo in (("start_s", 0.0), ("duration_s", None), ("rate_scale", None), ("time_compression", None)):
            value = getattr(self, name)
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or (value < lo if lo is not None else value <= 0):
                bound = ">= 0" if lo is not None else "> 0"
                raise ValueError(f"{name}: must be a finite number {bound}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadInstruction:
        known = {"trace", "start_s", "duration_s", "rate_scale", "time_compression", "episode"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown field of a load instruction")
        return cls(**data)
