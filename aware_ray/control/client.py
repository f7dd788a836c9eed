"""The controller's side of the endpoint: one POST per interval for all apps, with a hard timeout.

Every way the endpoint can fail the controller is one ``EndpointError`` with a reason the hand-over
log counts: ``endpoint_down`` (refused, reset, 5xx, or 404 from a proxy with no application),
``endpoint_slow`` (no answer within the timeout), ``endpoint_garbage`` (an answer that is not
what the policy gives: wrong shape, wrong length, NaN or infinite actions, another policy's
layout). The controller then lets the heuristic decide that interval; it never waits longer than
the timeout.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests

DEFAULT_TIMEOUT_S = 0.3


class EndpointError(RuntimeError):
    """The endpoint gave no usable answer; ``reason`` is endpoint_down, endpoint_slow or endpoint_garbage."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass
class Answer:
    """The part of an endpoint answer the controller uses (it re-applies rules and guard itself)."""

    raw_action: np.ndarray
    version: str
    decision: list[dict[str, Any]]
    """The endpoint's own decision (stateless rules, settings read back from the observation): recorded, not applied."""


class EndpointClient:
    """POST /v1/act with a keep-alive session (see the module docstring)."""

    def __init__(self, url: str, timeout_s: float = DEFAULT_TIMEOUT_S, action_size: int | None = None):
        self.url = url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.action_size = action_size
        self.session = requests.Session()

    def policy(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """GET /v1/policy (startup: the layout, rules and version the controller must match)."""
        try:
            r = self.session.get(f"{self.url}/v1/policy", timeout=timeout_s)
            r.raise_for_status()
            return r.json()
        except (requests.RequestException, ValueError) as exc:
            raise EndpointError("endpoint_down", f"GET {self.url}/v1/policy: {_one_line(exc)}") from None

    def act(self, apps: list[str], observations: list[np.ndarray]) -> list[Answer]:
        """The endpoint's answers for each (app, observation), in order, or EndpointError."""
        body = json.dumps({"items": [act_item(a, o) for a, o in zip(apps, observations, strict=True)]})
        try:
            r = self.session.post(
                f"{self.url}/v1/act", data=body, headers={"content-type": "application/json"}, timeout=self.timeout_s
            )
        except requests.Timeout:
            raise EndpointError("endpoint_slow", f"no answer within {self.timeout_s * 1000:.0f} ms") from None
        except requests.RequestException as exc:
            raise EndpointError("endpoint_down", _one_line(exc)) from None
        if r.status_code >= 500 or r.status_code == 404:
            # 404: the proxy is up but no application answers the route (deleted, or not yet deployed).
            raise EndpointError("endpoint_down", f"HTTP {r.status_code}")
        if r.status_code != 200:
            raise EndpointError("endpoint_garbage", f"HTTP {r.status_code}: {r.text[:200]}")
        try:
            return parse_answers(r.json(), len(apps), self.action_size)
        except (ValueError, KeyError, TypeError) as exc:
            raise EndpointError("endpoint_garbage", _one_line(exc)) from None


def act_item(app: str, observation: np.ndarray) -> dict[str, str]:
    """One /v1/act item with the observation packed (``observation_b64``: little-endian float32, base64).

    The endpoint casts observations to float32 either way, so the packed form gives the same answer as
    the JSON list, in a smaller body that both sides encode and decode without a number per feature."""
    packed = np.ascontiguousarray(observation, dtype="<f4").tobytes()
    return {"app": app, "observation_b64": base64.b64encode(packed).decode("ascii")}


def parse_answers(data: Any, n: int, action_size: int | None) -> list[Answer]:
    """Checked answers from a decoded /v1/act body; ValueError says what is wrong."""
    answers = data["answers"]
    if not isinstance(answers, list) or len(answers) != n:
        raise ValueError(f"expected {n} answers, got {len(answers) if isinstance(answers, list) else type(answers)}")
    out = []
    for i, a in enumerate(answers):
        raw = a["raw_action"]
        if not isinstance(raw, list) or not all(isinstance(x, int | float) and math.isfinite(x) for x in raw):
            raise ValueError(f"answers.{i}.raw_action: not a list of finite numbers")
        if action_size is not None and len(raw) != action_size:
            raise ValueError(f"answers.{i}.raw_action: length {len(raw)}, expected {action_size}")
        out.append(Answer(np.asarray(raw, dtype=np.float32), str(a.get("policy_version", "")), a.get("decision") or []))
    return out


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
