"""Request bodies of the endpoint, validated with pydantic.

Shapes that depend on the policy (observation length) or the app (services) are checked by
``check_act`` and ``check_decide`` against the loaded policy; everything else by the models. Every
problem becomes a 4xx whose ``error`` names the field (``items.0.observation``) and what is wrong,
never a 500.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import numpy as np
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


OBSERVATION_LIMIT = 10.0
"""Every observation feature lies in [-10, 10] (the observation space's bounds)."""


class ActItem(_Strict):
    """One observation, as a JSON list (``observation``) or as packed float32 (``observation_b64``): exactly one."""

    app: str = Field(min_length=1, max_length=200)
    """The app the observation comes from (one the endpoint serves: see GET /v1/policy)."""
    observation: list[Finite] | None = None
    """The flat observation the ObservationBuilder built, in [-10, 10]."""
    observation_b64: str | None = None
    """The same vector as standard base64 of its little-endian float32 bytes (``obs.astype("<f4").tobytes()``):
    shape ``[observation_size]`` (GET /v1/policy), 4 bytes a feature: 4,096 characters for 768 features
    whatever their values (the JSON list runs 4.8 KB mostly zeros to about 16 KB dense), and it decodes
    without parsing one number per feature (docs/serving.md)."""


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
    """Optional: the reward of each interval after the first, under the weights the policy's history
    records (``env.history_reward``, else ``env.reward``); computed from the metrics when absent."""


class DecideRequest(_Strict):
    items: list[DecideItem] = Field(min_length=1, max_length=MAX_ITEMS)


class RequestError(ValueError):
    """A request that is well-formed JSON but wrong for this policy or app: ``field`` names where."""

    def __init__(self, field: str, message: str, status: int = 422):
        super().__init__(f"{field}: {message}")
        self.field, self.status = field, status


def check_act(req: ActRequest, apps: dict[str, Any], size: int) -> np.ndarray:
    """Apps known, observations of the policy's length and inside the observation space.

    Returns the observations as one float32 matrix (items x size), whichever encoding each item used."""
    out = np.empty((len(req.items), size), dtype=np.float32)
    for i, item in enumerate(req.items):
        check_app(item.app, apps, f"items.{i}.app")
        if item.observation_b64 is not None:
            if item.observation is not None:
                raise RequestError(f"items.{i}.observation_b64", "give observation or observation_b64, not both")
            out[i] = check_observation(
                decode_b64(item.observation_b64, f"items.{i}.observation_b64"), size, f"items.{i}.observation_b64"
            )
        elif item.observation is not None:
            out[i] = check_observation(item.observation, size, f"items.{i}.observation")
        else:
            raise RequestError(f"items.{i}.observation", "missing (give observation or observation_b64)")
    return out


def check_app(app: str, apps: dict[str, Any], field: str) -> None:
    if app not in apps:
        raise RequestError(field, f"unknown app {app!r} (served: {', '.join(sorted(apps))})")


def decode_b64(text: str, field: str) -> np.ndarray:
    """Base64 of little-endian float32 bytes as a float32 vector; RequestError(field) if it is not that."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(field, f"not base64 ({str(exc).splitlines()[0]})") from None
    if len(raw) % 4:
        raise RequestError(field, f"{len(raw)} bytes, not a whole number of float32 values (4 bytes each)")
    return np.frombuffer(raw, dtype="<f4")


def check_observation(values: Any, size: int, field: str) -> np.ndarray:
    """One observation of the policy's length, finite and inside [-10, 10], as float32; RequestError names
    the first bad feature (``field.J``)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (size,):
        raise RequestError(field, f"length {arr.size}, the policy reads {size}")
    ok = (arr >= -OBSERVATION_LIMIT) & (arr <= OBSERVATION_LIMIT)  # False for NaN too
    if not ok.all():
        j = int(np.flatnonzero(~ok)[0])
        x = values[j] if isinstance(values, list) else float(arr[j])
        what = "is not a finite number" if not np.isfinite(arr[j]) else "is outside [-10, 10]"
        raise RequestError(f"{field}.{j}", f"{x} {what}")
    return arr.astype(np.float32)


def check_decide(req: DecideRequest, apps: dict[str, Any]) -> None:
    """Apps known, every per-service list as long as the app's services, actions and rewards aligned."""
    for i, item in enumerate(req.items):
        check_app(item.app, apps, f"items.{i}.app")
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
