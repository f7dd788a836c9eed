"""One policy for API-server errors, used by every call the cluster side makes.

- 409 Conflict: the object changed under us; the attempt (which re-reads first) is retried.
- 429 Too Many Requests and 5xx: wait (the server's Retry-After when it sends one, else an
  exponential backoff) and retry.
- 403 Forbidden: no retry; ``RbacDenied`` names the verb and the resource in one line.
- Anything else: one-line ``ClusterError``.

Retries are bounded by ``max_attempts`` and each wait by ``max_backoff_s``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from cluster.errors import ApiUnavailable, ClusterError, RbacDenied

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE = {409, 429, 500, 502, 503, 504}


def api_client_from_environment() -> Any:
    """An ApiClient for the pod's service account in a cluster, else for ``$KUBECONFIG`` (or ~/.kube/config).

    Each call builds its own Configuration rather than the client's global default, and reads
    ``KUBECONFIG`` now rather than when the kubernetes package was imported.
    """
    from kubernetes import client, config

    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)
        return client.ApiClient(cfg)
    except config.ConfigException:
        path = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or os.path.expanduser("~/.kube/config")
        try:
            return config.new_client_from_config(config_file=path)
        except (config.ConfigException, OSError) as exc:
            raise ClusterError(f"kubeconfig: no cluster configuration (in-cluster or {path}): {exc}") from None


def _message(exc: Any) -> str:
    try:
        return str(json.loads(exc.body).get("message", "")).splitlines()[0]
    except (TypeError, ValueError, AttributeError, IndexError):
        return str(getattr(exc, "reason", "") or "")


def _retry_after(exc: Any) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def call_api(
    attempt: Callable[[], T],
    *,
    verb: str,
    resource: str,
    namespace: str | None,
    max_attempts: int,
    backoff_s: float,
    max_backoff_s: float,
    sleep: Callable[[float], None],
) -> T:
    """Run ``attempt`` until it succeeds, retrying conflicts, throttling and server errors."""
    from kubernetes.client.exceptions import ApiException

    wait = backoff_s
    last = ""
    for i in range(max_attempts):
        try:
            return attempt()
        except ApiException as exc:
            status = int(exc.status or 0)
            if status == 403:
                raise RbacDenied(verb, resource, namespace, _message(exc)) from None
            if status not in RETRYABLE:
                raise ClusterError(
                    f"{verb} {resource} in {namespace or 'cluster'}: HTTP {status} {_message(exc)}"
                ) from None
            last = f"HTTP {status} {_message(exc)}".strip()
            if i == max_attempts - 1:
                break
            if status == 409:
                log.info("%s %s: conflict, re-reading and retrying", verb, resource)
                delay = 0.0
            else:
                hinted = _retry_after(exc)
                delay = min(hinted if hinted is not None else wait, max_backoff_s)
                wait = min(wait * 2, max_backoff_s)
                log.warning("%s %s: %s; retrying in %.1fs", verb, resource, last, delay)
        except (OSError, ConnectionError) as exc:
            last = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if i == max_attempts - 1:
                break
            delay = min(wait, max_backoff_s)
            wait = min(wait * 2, max_backoff_s)
        except Exception as exc:
            # urllib3 wraps connection failures in its own errors (MaxRetryError, ProtocolError).
            if type(exc).__module__.startswith("urllib3"):
                last = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                if i == max_attempts - 1:
                    break
                delay = min(wait, max_backoff_s)
                wait = min(wait * 2, max_backoff_s)
            else:
                raise
        if delay > 0:
            sleep(delay)
    raise ApiUnavailable(f"{verb} {resource} in {namespace or 'cluster'}: gave up after {max_attempts} tries ({last})")
