"""``aware-ray serve``: start (or join) Ray, start Serve on a loopback port, run the application."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import yaml

from envs.errors import ConfigError

GRPC_SERVICER = "aware_ray.serving.proto.policy_pb2_grpc.add_PolicyServiceServicer_to_server"
"""What Serve's gRPC proxy registers (``grpc_servicer_functions``; the same in a Serve config YAML)."""


def serve_args(config: str | None, policy: str | None, apps: str | None) -> dict[str, Any]:
    """The ``args`` of the application: from a Serve config YAML's first application, then the flags."""
    args: dict[str, Any] = {}
    if config:
        try:
            data = yaml.safe_load(Path(config).read_text()) or {}
            args = dict(data["applications"][0].get("args") or {})
        except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError) as exc:
            raise ConfigError(f"{config}: applications.0.args: cannot read ({str(exc).splitlines()[0]})") from None
    if policy:
        args["policy"] = policy
    if apps:
        args["apps"] = [a for a in apps.split(",") if a]
    return args


def start_serve(args: dict[str, Any], host: str, port: int, grpc_port: int = 0, name: str = "aware-ray") -> None:
    """Serve on host:port (and gRPC on grpc_port when > 0) in the Ray instance this process is connected to."""
    from ray import serve
    from ray.serve.config import gRPCOptions

    from aware_ray.serving.app import build_app

    grpc = None
    if grpc_port:
        grpc = gRPCOptions(port=grpc_port, grpc_servicer_functions=[GRPC_SERVICER])
    serve.start(http_options={"host": host, "port": port}, grpc_options=grpc)
    serve.run(build_app(args), name=name, route_prefix="/")


def direct_ingress_on(env: dict[str, str] | None = None) -> bool:
    """Whether Ray processes started with `env` (default: this process's) run Serve's direct ingress."""
    env = dict(os.environ if env is None else env)
    on = {"1", "true", "True"}
    optimized = env.get("RAY_SERVE_THROUGHPUT_OPTIMIZED", "0") in on
    flag = env.get("RAY_SERVE_ENABLE_DIRECT_INGRESS")
    return (flag in on if flag is not None else optimized) or env.get("RAY_SERVE_ENABLE_HA_PROXY") == "1"


def direct_ingress_urls(
    app_name: str = "aware-ray", want: int = 1, timeout_s: float = 60.0, protocol: str = "HTTP"
) -> list[str]:
    """The HTTP URLs of the application's replicas themselves, when Serve runs with direct ingress.

    With ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` (or ``RAY_SERVE_ENABLE_DIRECT_INGRESS=1``) in the
    environment of the Ray processes, each ingress replica also serves HTTP on its own port (from
    ``RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT``, 30000), bound to the proxy's host: a request skips the
    proxy hop (docs/serving.md). Waits up to `timeout_s` for `want` replicas when direct ingress is
    on here; [] without it. ``protocol="GRPC"`` gives the replicas' gRPC targets (``host:port``; with
    Serve's gRPC options set, from port 40000). The targets come from Serve's controller
    (``get_target_groups``, which Serve's own HAProxy reads).
    """
    import ray
    from ray.serve.context import _get_global_client

    controller = _get_global_client()._controller
    host = str(ray.get(controller.get_http_config.remote()).host)
    deadline = time.monotonic() + (timeout_s if direct_ingress_on() else 0.0)
    while True:
        groups = ray.get(controller.get_target_groups.remote(app_name))
        scheme = "http://" if protocol == "HTTP" else ""
        urls = sorted(
            f"{scheme}{t.ip if host in ('0.0.0.0', '::') else host}:{t.port}"
            for g in groups
            if str(g.protocol).endswith(protocol)
            for t in g.targets
            if t.name.startswith("SERVE_REPLICA")
        )
        if len(urls) >= want or time.monotonic() >= deadline:
            return urls
        time.sleep(0.5)


def main_serve(ns: argparse.Namespace) -> int:
    import ray

    args = serve_args(ns.config, ns.policy, ns.apps)
    if ns.address:
        ray.init(address=ns.address)
    else:
        ray.init(include_dashboard=False)
    start_serve(args, ns.host, ns.port, ns.grpc_port)
    print(f"serving on http://{ns.host}:{ns.port} (Ctrl-C stops)", flush=True)
    direct = direct_ingress_urls(timeout_s=10.0)
    if direct:
        print(f"direct ingress (no proxy hop): {' '.join(direct)}", flush=True)
    try:
        deadline = time.monotonic() + ns.seconds if ns.seconds > 0 else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    from ray import serve

    serve.shutdown()
    ray.shutdown()
    return 0
