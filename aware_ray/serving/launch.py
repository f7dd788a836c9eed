"""``aware-ray serve``: start (or join) Ray, start Serve on a loopback port, run the application."""

from __future__ import annotations

import argparse
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


def main_serve(ns: argparse.Namespace) -> int:
    import ray

    args = serve_args(ns.config, ns.policy, ns.apps)
    if ns.address:
        ray.init(address=ns.address)
    else:
        ray.init(include_dashboard=False)
    start_serve(args, ns.host, ns.port, ns.grpc_port)
    print(f"serving on http://{ns.host}:{ns.port} (Ctrl-C stops)", flush=True)
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
