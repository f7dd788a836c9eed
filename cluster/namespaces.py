"""Which namespace an env runner drives: one copy of the app per (env runner, vector index).

RLlib's env runner ``i`` with vector index ``j`` builds a KubernetesBackend for
``namespace_for(prefix, i, j, mapping)`` and calls ``backend.reset(LoadInstruction(...))`` at each
episode start; ``{prefix}-{i}-{j}`` by default, or a configured map (``"i-j" -> namespace``) for
clusters whose namespaces are named otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def namespace_for(prefix: str, runner_index: int, vector_index: int, mapping: Mapping[str, str] | None = None) -> str:
    """Namespace of env runner ``runner_index``, sub-env ``vector_index``.

    ``mapping`` keys are ``"{runner_index}-{vector_index}"``; a mapping without the pair is an error
    (silently sharing a namespace between two runners would make them fight over one app).
    """
    for name, value in (("runner_index", runner_index), ("vector_index", vector_index)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}: must be an integer >= 0, got {value!r}")
    if mapping:
        key = f"{runner_index}-{vector_index}"
        if key not in mapping:
            raise ValueError(
                f"namespaces.{key}: no namespace configured for env runner {runner_index}, vector index {vector_index}"
            )
        ns = mapping[key]
    else:
        ns = f"{prefix}-{runner_index}-{vector_index}"
    if len(ns) > 63 or not _DNS_LABEL.match(ns):
        raise ValueError(f"namespace_prefix: {ns!r} is not a valid namespace name (lowercase DNS label, <= 63 chars)")
    return ns
