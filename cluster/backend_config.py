"""Configuration of the KubernetesBackend: a validated dataclass, one docstring per field.

Every check raises ``ConfigError`` with one line that names the field, so a typo in a controller's
YAML stops it before it touches the cluster.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from envs.errors import ConfigError

MANAGED_LABEL = "aware-ray.io/managed"
"""Label a Deployment must carry (value ``true``) before aware-ray acts on it."""
RESOURCES_ANNOTATION = "aware-ray.io/resources"
"""Deployment annotation holding the limits last set in place, so pods created later are resized to them."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class KubernetesBackendConfig:
    """Where the app runs, what may be touched, and how changes are made."""

    namespace: str
    """Namespace of the app's Deployments."""
    allowed_namespaces: tuple[str, ...]
    """Namespaces aware-ray may act in; ``namespace`` must be one of them (a second line of defence)."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Metric store written by the collector, ``redis://host:port/db``."""
    redis_password: str | None = None
    """Redis password, read from a mounted Secret by the caller; never put in a config file."""
    interval_s: float = 15.0
    """Control interval; ``advance`` waits for the next one on the wall clock."""
    staleness_s: float = 45.0
    """A service whose newest sample is older than this is stale: ``observe`` raises ``StaleMetrics``."""
    vertical: str = "resize"
    """How CPU and memory limits change: ``resize`` (in place, pods/resize, Kubernetes >= 1.33) or
    ``template`` (patch the pod template: a rolling restart)."""
    dry_run: bool = False
    """Send every change with server-side dry run (``dryRun=All``) and log it; nothing changes."""
    deployments: Mapping[str, str] = field(default_factory=dict)
    """Service name -> Deployment name, where they differ (default: the same name)."""
    container: str | None = None
    """Container whose limits are managed; default: the one named like the Deployment, else the first."""
    field_manager: str = "aware-ray"
    """fieldManager sent with every patch, so ``kubectl`` shows who changed what."""
    max_attempts: int = 5
    """Tries per API call on 409, 429 and 5xx before giving up."""
    backoff_s: float = 0.5
    """First wait between tries (doubles each time) when the server sends no Retry-After."""
    max_backoff_s: float = 10.0
    """Longest single wait between tries, also the cap on a server's Retry-After."""
    request_timeout_s: float = 10.0
    """Timeout of one HTTP request to the API server."""
    ready_timeout_s: float = 300.0
    """How long ``reset`` waits for the app to be ready at its initial state."""
    loadgen_key_prefix: str = "aware:loadgen"
    """Redis key prefix the namespace's load generator watches (``{prefix}:{namespace}``)."""

    def __post_init__(self) -> None:
        if not isinstance(self.namespace, str) or not _DNS_LABEL.match(self.namespace):
            raise ConfigError(f"namespace: must be a DNS label, got {self.namespace!r}")
        allowed = self.allowed_namespaces
        if isinstance(allowed, str) or not all(isinstance(n, str) and _DNS_LABEL.match(n) for n in allowed):
            raise ConfigError(f"allowed_namespaces: must be a list of namespace names, got {allowed!r}")
        object.__setattr__(self, "allowed_namespaces", tuple(allowed))
        if self.namespace not in self.allowed_namespaces:
            raise ConfigError(f"allowed_namespaces: does not include namespace {self.namespace!r}")
        if not isinstance(self.redis_url, str) or not self.redis_url.startswith(("redis://", "rediss://")):
            raise ConfigError(f"redis_url: expected redis://host:port/db, got {self.redis_url!r}")
        if self.vertical not in ("resize", "template"):
            raise ConfigError(f"vertical: expected 'resize' or 'template', got {self.vertical!r}")
        if not isinstance(self.dry_run, bool):
            raise ConfigError(f"dry_run: expected true or false, got {self.dry_run!r}")
        for name in ("interval_s", "staleness_s", "backoff_s", "max_backoff_s", "request_timeout_s", "ready_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name}: must be a positive number of seconds, got {value!r}")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigError(f"max_attempts: must be an integer >= 1, got {self.max_attempts!r}")
        if not isinstance(self.deployments, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and _DNS_LABEL.match(v) for k, v in self.deployments.items()
        ):
            raise ConfigError(f"deployments: must map service names to Deployment names, got {self.deployments!r}")
        if self.container is not None and not (isinstance(self.container, str) and _DNS_LABEL.match(self.container)):
            raise ConfigError(f"container: must be a container name, got {self.container!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "backend") -> KubernetesBackendConfig:
        """Build from a parsed YAML mapping; unknown or missing keys fail naming ``where.key``."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown field (allowed: {', '.join(sorted(known))})")
        kwargs = dict(data)
        if "allowed_namespaces" in kwargs and isinstance(kwargs["allowed_namespaces"], list):
            kwargs["allowed_namespaces"] = tuple(kwargs["allowed_namespaces"])
        for required in ("namespace", "allowed_namespaces"):
            if required not in kwargs:
                raise ConfigError(f"{where}.{required}: missing field")
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{exc}") from None

    def deployment_of(self, service: str) -> str:
        """Deployment name of an app service."""
        return self.deployments.get(service, service)
