"""The controller's Kubernetes backends: one ``cluster.KubernetesBackend`` per app with ``backend: kubernetes``.

The controller itself only sees the ``envs.backend.Backend`` seam; this module turns an app's
``kubernetes:`` settings (and the Redis password file a Secret mounts) into a checked
``KubernetesBackendConfig`` and builds the backend. Which cluster errors stop the controller and
which make it hold an interval is decided here too (``is_fatal``), so the loop stays cluster-agnostic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aware_ray.control.config import AppConfig, ControlConfig
from cluster.backend_config import KubernetesBackendConfig
from cluster.errors import ClusterError, NotManaged, RbacDenied
from envs.errors import ConfigError

FATAL = (NotManaged, RbacDenied)
"""Errors no retry can fix (another autoscaler owns a Deployment, a missing label, a missing RBAC verb):
the controller stops with the one-line message instead of holding forever."""


def is_fatal(exc: BaseException) -> bool:
    """True for a cluster error that must stop the controller; other ``ClusterError``s are stale intervals."""
    return isinstance(exc, FATAL)


def read_password(path: str | None, where: str) -> str | None:
    """The Redis password in the file at `path` (a mounted Secret), trailing newline stripped."""
    if path is None:
        return None
    try:
        text = Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{where}: redis_password_file: cannot read {path} ({exc.strerror})") from None
    if not text:
        raise ConfigError(f"{where}: redis_password_file: {path} is empty")
    return text


def backend_config(a: AppConfig, dry_run: bool, where: str = "kubernetes", interval_s: float | None = None):
    """The checked ``KubernetesBackendConfig`` of app `a` (ConfigError names ``where.key``)."""
    data: dict[str, Any] = dict(a.kubernetes)
    if "redis_password" in data:
        raise ConfigError(f"{where}.redis_password: give redis_password_file (a mounted Secret), not the password")
    if "namespace" in data and "allowed_namespaces" not in data:
        data["allowed_namespaces"] = [data["namespace"]]
    if dry_run:
        data["dry_run"] = True
    if interval_s is not None:
        data.setdefault("interval_s", interval_s)
    cfg = KubernetesBackendConfig.from_dict(data, where)
    if a.redis_password_file is not None:
        from dataclasses import replace

        cfg = replace(cfg, redis_password=read_password(a.redis_password_file, where.rsplit(".", 1)[0]))
    return cfg


def kubernetes_backends(cfg: ControlConfig, **kwargs: Any) -> dict[str, Any]:
    """``{app name: KubernetesBackend}`` for every ``backend: kubernetes`` app of `cfg`.

    In shadow mode every backend is a dry run: the heuristic decides and its changes are validated and
    logged by the API server, but nothing changes (what the manifest's shadow start promises).
    ``kwargs`` go to each ``KubernetesBackend`` (``api_client``, ``store``, clocks); without an
    ``api_client`` the in-cluster service account or the kubeconfig is used.
    """
    from cluster.kubernetes_backend import KubernetesBackend
    from envs.app import load_app

    interval_s = cfg.env.get("interval_s")
    out: dict[str, Any] = {}
    for a in cfg.apps:
        if a.backend != "kubernetes":
            continue
        # Shadow mode changes nothing in a cluster: the heuristic's decisions go as server-side dry runs.
        dry = cfg.dry_run or cfg.mode == "shadow"
        bc = backend_config(a, dry, f"apps.{a.name}.kubernetes", interval_s)
        out[a.name] = KubernetesBackend(load_app(a.app), bc, **kwargs)
    return out


__all__ = ["FATAL", "ClusterError", "backend_config", "is_fatal", "kubernetes_backends", "read_password"]
