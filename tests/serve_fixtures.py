"""A real local Ray Serve with the policy endpoint, shared by the serving and control tests (one per module)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeEndpoint:
    """Ray + Serve running the endpoint on a free loopback port; ``stop()``/``start()`` the application."""

    def __init__(self, args: dict):
        self.args = args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_port = free_port()
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"

    def boot(self) -> None:
        import ray

        # Replicas import this checkout's code, whatever is installed (restored in close()).
        self._saved_env = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_AUTH_MODE")}
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        from ray import serve
        from ray.serve.config import gRPCOptions

        grpc = gRPCOptions(
            port=self.grpc_port,
            grpc_servicer_functions=["aware_ray.serving.proto.policy_pb2_grpc.add_PolicyServiceServicer_to_server"],
        )
        serve.start(http_options={"host": "127.0.0.1", "port": self.port}, grpc_options=grpc)
        self.start()

    def start(self, args: dict | None = None) -> None:
        from ray import serve

        from aware_ray.serving.app import build_app

        serve.run(build_app(args or self.args), name="aware-ray", route_prefix="/")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("endpoint did not come up")

    def stop(self) -> None:
        from ray import serve

        serve.delete("aware-ray")

    def close(self) -> None:
        import ray
        from ray import serve

        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def serve_endpoint(args: dict) -> Iterator[ServeEndpoint]:
    ep = ServeEndpoint(args)
    ep.boot()
    try:
        yield ep
    finally:
        ep.close()
