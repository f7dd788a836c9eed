"""The Ray Serve application: ``PolicyEndpoint`` behind a FastAPI ingress, built by ``build_app``.

Routes (JSON; see docs/serving.md for bodies and answers):
- ``POST /v1/act``: a batch of observations with their app names;
- ``POST /v1/decide``: the last intervals of per-service metrics (``ServiceMetrics`` fields);
- ``GET /healthz``; ``GET /v1/policy``: version, spec, schema, rules and the model card's summary.

Every replica holds the whole policy and no per-app state, so any replica answers any request and
Serve may scale them. Concurrent requests are merged into one forward by ``@serve.batch``. A new
policy version rolls out through ``user_config`` (``serve deploy`` with a changed ``policy``, or
``serve.run`` again): Serve calls ``reconfigure`` on the running replicas, which load the new policy
beside the old one and swap in one assignment, so no request fails and each answer names the
version that computed it.

Started by ``serve run experiments/configs/serve.yaml``, ``serve deploy`` of the same file (KubeRay's
``RayService.spec.serveConfigV2`` takes it as is) or ``aware-ray serve``.
"""

import json
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from ray import serve

from aware_ray.serving.runtime import DEFAULT_APPS, DEFAULT_SPEC, PolicyRuntime, metrics_of, observation_from_history
from aware_ray.serving.schemas import (
    MAX_BODY_BYTES,
    MAX_ITEMS,
    ActRequest,
    DecideRequest,
    RequestError,
    check_act,
    check_app,
    check_decide,
    check_observation,
)

api = FastAPI(title="aware-ray policy endpoint", docs_url=None, redoc_url=None)

MAX_BATCH_SIZE = 64
"""Requests merged into one forward at most (``user_config.max_batch_size`` overrides)."""
BATCH_WAIT_S = 0.0
"""How long a request waits for others to share its forward (``user_config.batch_wait_timeout_s``).

Zero: a lone request is answered at once, and under load the requests that queued while the previous
forward ran still go together into the next (Serve takes every request waiting, up to the batch size).
A positive wait adds itself to every answer at low load (2 ms cost 2 ms of a 10 ms p99 budget) and
bought no throughput here (docs/results/2026-12-06-serving.md)."""


def _error(status: int, field: str, message: str) -> JSONResponse:
    return JSONResponse({"error": f"{field}: {message}", "field": field}, status_code=status)


async def _body(request: Request, model: type) -> Any:
    """The body parsed into `model`, or a RequestError naming the field."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise RequestError("body", f"{length} bytes, above the limit of {MAX_BODY_BYTES}", 413)
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise RequestError("body", f"{len(raw)} bytes, above the limit of {MAX_BODY_BYTES}", 413)
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError("body", f"not JSON ({str(exc).splitlines()[0]})", 400) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise RequestError(field, err["msg"]) from None


@serve.deployment(
    name="PolicyEndpoint",
    ray_actor_options={"num_cpus": 1},
    logging_config={"enable_access_log": False},
    max_ongoing_requests=256,
)
@serve.ingress(api)
class PolicyEndpoint:
    """The served policy (see the module docstring). ``user_config``: ``{"policy": SPEC, "apps": [...]}``."""

    def __init__(self, env: dict[str, Any] | None = None):
        import torch

        torch.set_num_threads(1)  # one core per replica: more threads only contend (num_cpus is 1)
        self.env = dict(env or {})
        self.runtime = PolicyRuntime(DEFAULT_SPEC, DEFAULT_APPS, self.env)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Load the policy of `user_config` and swap it in (a version rollout without a restart).

        Serve calls this after ``__init__`` and whenever ``user_config`` changes (``serve deploy``
        with a new ``policy``); requests go on being answered by the old policy until the new one
        is loaded, then by the new one."""
        self._answer.set_max_batch_size(int(user_config.get("max_batch_size", MAX_BATCH_SIZE)))
        self._answer.set_batch_wait_timeout_s(float(user_config.get("batch_wait_timeout_s", BATCH_WAIT_S)))
        spec = str(user_config.get("policy", self.runtime.spec))
        apps = tuple(user_config.get("apps") or self.runtime.apps)
        if spec != self.runtime.spec or set(apps) != set(self.runtime.apps):
            self.runtime = PolicyRuntime(spec, apps, self.env)

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def _answer(self, batches: list[tuple[list[str], np.ndarray]]) -> list[list[dict[str, Any]]]:
        """One forward for all observations of the requests that arrived together."""
        runtime = self.runtime  # one version for the whole batch, even if a swap lands meanwhile
        apps = [a for names, _ in batches for a in names]
        answers = runtime.answer(apps, np.concatenate([obs for _, obs in batches]))
        out, i = [], 0
        for names, _ in batches:
            out.append(answers[i : i + len(names)])
            i += len(names)
        return out

    @api.post("/v1/act")
    async def act(self, request: Request) -> JSONResponse:
        try:
            req = await _body(request, ActRequest)
            obs = check_act(req, self.runtime.apps, self.runtime.observation_size)
        except RequestError as exc:
            return _error(exc.status, exc.field, str(exc).split(": ", 1)[1])
        return JSONResponse({"answers": await self._answer(([it.app for it in req.items], obs))})

    @api.post("/v1/decide")
    async def decide(self, request: Request) -> JSONResponse:
        runtime = self.runtime
        try:
            req = await _body(request, DecideRequest)
            check_decide(req, {k: a.ctx.app.n_services for k, a in runtime.apps.items()})
        except RequestError as exc:
            return _error(exc.status, exc.field, str(exc).split(": ", 1)[1])
        obs = np.stack(
            [
                observation_from_history(
                    runtime.apps[it.app], [metrics_of(m.model_dump()) for m in it.metrics], it.actions, it.rewards
                )
                for it in req.items
            ]
        )
        return JSONResponse({"answers": await self._answer(([it.app for it in req.items], obs))})

    # ---- gRPC (Serve's gRPC proxy calls these by the rpc's name; proto/policy.proto) ----------

    async def Act(self, request: Any, grpc_context: Any = None) -> Any:  # the rpc's name (proto/policy.proto)
        """``PolicyService.Act``: the answers of POST /v1/act; a bad request is INVALID_ARGUMENT naming the field."""
        from aware_ray.serving.proto import policy_pb2

        runtime = self.runtime
        try:
            n = len(request.items)
            if not 1 <= n <= MAX_ITEMS:
                raise RequestError("items", f"{n} items, give 1 to {MAX_ITEMS}")
            obs = np.empty((n, runtime.observation_size), dtype=np.float32)
            for i, it in enumerate(request.items):  # protobuf floats are float32 already: no text to parse
                check_app(it.app, runtime.apps, f"items.{i}.app")
                obs[i] = check_observation(
                    np.fromiter(it.observation, np.float32, len(it.observation)),
                    runtime.observation_size,
                    f"items.{i}.observation",
                )
        except RequestError as exc:
            import grpc

            if grpc_context is not None:
                grpc_context.set_code(grpc.StatusCode.INVALID_ARGUMENT)
                grpc_context.set_details(str(exc))
            return policy_pb2.ActResponse()
        answers = await self._answer(([it.app for it in request.items], obs))
        out = policy_pb2.ActResponse()
        for a in answers:
            pb = out.answers.add(app=a["app"], policy_version=a["policy_version"])
            pb.raw_action.extend(a["raw_action"])
            pb.action.extend(a["action"])
            pb.embedding.extend(a["embedding"] or [])
            for d in a["decision"]:
                pb.decision.add(**d)
        return out

    async def Health(self, request: Any) -> Any:  # the rpc's name (proto/policy.proto)
        from aware_ray.serving.proto import policy_pb2

        return policy_pb2.HealthResponse(status="ok", version=self.runtime.version)

    @api.get("/healthz")
    async def healthz(self) -> dict[str, Any]:
        return {"status": "ok", "version": self.runtime.version}

    @api.get("/v1/policy")
    async def policy(self) -> dict[str, Any]:
        return self.runtime.info()


def build_app(args: dict[str, Any] | None = None) -> serve.Application:
    """The application for ``serve run``/``serve deploy`` (``import_path: aware_ray.serving.app:build_app``).

    ``args``: ``policy`` (a spec the CLI accepts; default the recommended deployment,
    ``policies.recommended.RECOMMENDED``), ``apps``
    (names served; default every shipped app), ``env`` (EnvConfig keys, e.g. the guard). The policy
    is checked here, so a bad spec fails the deploy with one line instead of crash-looping replicas.
    """
    args = dict(args or {})
    unknown = set(args) - {"policy", "apps", "env"}
    if unknown:
        raise ValueError(f"args: unknown key {sorted(unknown)[0]!r} (known: policy, apps, env)")
    policy = str(args.get("policy", DEFAULT_SPEC))
    apps = list(args.get("apps") or DEFAULT_APPS)
    PolicyRuntime(policy, tuple(apps), args.get("env"))  # fail fast, with the field, on a bad spec or app
    # The policy travels in user_config, so changing it is a lightweight update (``reconfigure``).
    return PolicyEndpoint.options(user_config={"policy": policy, "apps": apps}).bind(args.get("env"))
