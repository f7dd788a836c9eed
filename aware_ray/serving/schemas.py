"""Request bodies of the endpoint, validated with pydantic.

Shapes that depend on the policy (observation length) or the app (services) are checked by
``check_act`` and ``check_decide`` against the loaded policy; everything else by the models. Every
problem becomes a 4xx whose ``error`` names the field (``items.0.observation``) and what is wrong,
never a 500.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

MAX_BODY_BYTES = 4 * 1024 * 1024
"""Larger bodies are refused with 413 before parsing."""
MAX_ITEMS = 256
"""Observations (or metric windows) per request."""
MAX_INTERVALS = 512
"""Intervals of metrics per /v1/decide item."""

ROUNDING = 1e-6
"""A count this little below zero is floating-point rounding (a drained backlog computed as
-7e-15), not a negative count; it is accepted as it is, so the observation equals the env's."""
Finite = Annotated[float, Field(allow_inf_nan=False)]
Count = Annotated[float, Field(allow_inf_nan=False, ge=-ROUNDING)]
"""A non-negative finite number (replicas, rates, usage, latencies, drops)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ActItem(_Strict):
    app: str = Field(min_length=1, max_length=200)
    """The app the observation comes from (one the endpoint serves: see GET /v1/policy)."""
    observation: list[Finite]
    """The flat observation the ObservationBuilder built, in [-10, 10]."""


class ActRequest(_Strict):
    items: list[ActItem] = Field(min_length=1, max_length=MAX_ITEMS)


class IntervalMetrics(_Strict):
    """One interval of one app: the fields of ``envs.metrics.ServiceMetrics`` (lists over services)."""

    t_seconds: Count
    replicas: list[Count]
    ready_replicas: list[Count]
    pending_replicas: list[Count]
    cpu_limit: list[Annotated[float, Field(allow_inf_nan=False, gt=0.0)]]
    mem_limit: list[Annotated[float, Field(allow_inf_nan=False, gt=0.0)]]
    cpu_usage: list[Count]
    mem_usage: list[Count]
    request_rate: list[Count]
    queue: list[Count]
    p50_ms: list[Count]
    p95_ms: list[Count]
    p99_ms: list[Count]
    dropped: list[Count]
    oom_kills: list[Count]
    throttled: list[Annotated[float, Field(allow_inf_nan=False, ge=0.0, le=1.0)]]
    external_rps: Count
    e2e_p50_ms: Count
    e2e_p95_ms: Count
    e2e_p99_ms: Count
    dropped_total: Count


PER_SERVICE = tuple(k for k, f in IntervalMetrics.model_fields.items() if str(f.annotation).startswith("list"))


class DecideItem(_Strict):
    app: str = Field(min_length=1, max_length=200)
    metrics: list[IntervalMetrics] = Field(min_length=1, max_length=MAX_INTERVALS)
    """The last intervals, oldest first; the last is the one to decide on."""
    actions: list[list[Annotated[float, Field(allow_inf_nan=False, ge=-1.0, le=1.0)]]] | None = None
    """Optional: the action applied after each interval but the last (3 per service); rebuilt from the
    settings of consecutive intervals when absent."""
    rewards: list[Finite] | None = None
    """Optional: the reward of each interval after the first; computed from the metrics when absent."""


class DecideRequest(_Strict):
    items: list[DecideItem] = Field(min_length=1, max_length=MAX_ITEMS)


class RequestError(ValueError):
    """A request that is well-formed JSON but wrong for this policy or app: ``field`` names where."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(f"{field}: {message}")
        self.field, self.status = field, status


def check_act(req: ActRequest, apps: dict[str, Any], size: int) -> None:
    """Apps known, observations of the policy's length and inside the observation space."""
    for i, item in enumerate(req.items):
        if item.app not in apps:
            raise RequestError(f"items.{i}.app", f"unknown app {item.app!r} (served: {', '.join(sorted(apps))})")
        if len(item.observation) != size:
            raise RequestError(f"items.{i}.observation", f"length {len(item.observation)}, the policy reads {size}")
        bad = next((j for j, x in enumerate(item.observation) if not -10.0 <= x <= 10.0), None)
        if bad is not None:
            raise RequestError(f"items.{i}.observation.{bad}", f"{item.observation[bad]} is outside [-10, 10]")


def check_decide(req: DecideRequest, apps: dict[str, Any]) -> None:
    """Apps known, every per-service list as long as the app's services, actions and rewards aligned."""
    for i, item in enumerate(req.items):
        if item.app not in apps:
            raise RequestError(f"items.{i}.app", f"unknown app {item.app!r} (served: {', '.join(sorted(apps))})")
        n = apps[item.app]
        for j, m in enumerate(item.metrics):
            for key in PER_SERVICE:
                if len(getattr(m, key)) != n:
                    raise RequestError(
                        f"items.{i}.metrics.{j}.{key}", f"length {len(getattr(m, key))}, app has {n} services"
                    )
        want = len(item.metrics) - 1
        if item.actions is not None:
            if len(item.actions) != want:
                raise RequestError(f"items.{i}.actions", f"{len(item.actions)} actions for {want} intervals")
            for j, a in enumerate(item.actions):
                if len(a) != 3 * n:
                    raise RequestError(f"items.{i}.actions.{j}", f"length {len(a)}, need 3 x {n} services")
        if item.rewards is not None and len(item.rewards) != want:
            raise RequestError(f"items.{i}.rewards", f"{len(item.rewards)} rewards for {want} intervals")
