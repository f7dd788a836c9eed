"""Errors of the Kubernetes side, each with a one-line message a controller can log and act on."""

from __future__ import annotations


class ClusterError(RuntimeError):
    """Base class: something about the cluster stops an action."""


class StaleMetrics(ClusterError):
    """Metrics are missing or older than the staleness limit: the controller must fall back, not act on zeros."""

    def __init__(self, reason: str, services: tuple[str, ...] = ()):
        super().__init__(reason)
        self.reason = reason
        self.services = services
        """Services whose metrics were stale or missing."""


class RbacDenied(ClusterError):
    """The API server answered 403: the service account lacks a verb on a resource."""

    def __init__(self, verb: str, resource: str, namespace: str | None, detail: str = ""):
        where = f" in namespace {namespace!r}" if namespace else " (cluster scope)"
        super().__init__(
            f"RBAC: not allowed to {verb} {resource}{where}; grant it in the Role" + (f" ({detail})" if detail else "")
        )
        self.verb, self.resource, self.namespace = verb, resource, namespace


class NotManaged(ClusterError):
    """A workload is outside what aware-ray may act on (namespace, label, or another autoscaler owns it)."""


class ApiUnavailable(ClusterError):
    """The API server failed (5xx, 429 or a network error) on every retry."""
