"""The DDPG module's view of the autoscaling observation, derived from the env's layout."""

from __future__ import annotations

from typing import Any

from envs.load_context import context_size
from envs.observation import N_APP_FEATURES, N_HISTORY_FEATURES, N_SERVICE_FEATURES, F


def autoscale_layout(
    max_services: int, history_window: int, context_span: int = 0, context_buckets: int = 16, n_workloads: int = 0
) -> dict[str, Any]:
    """The ``layout`` model-config entry for AutoscaleEnv observations of these sizes.

    ``n_workloads``: training workloads the meta-learner learns to tell apart (the env's
    ``workloads``; 0 for no workload-identification head).
    """
    return {
        "max_services": int(max_services),
        "n_service_features": N_SERVICE_FEATURES,
        "n_app_features": N_APP_FEATURES,
        "history_window": int(history_window),
        "n_history_features": N_HISTORY_FEATURES if history_window else 0,
        "n_context": context_size(int(context_span), int(context_buckets)),
        "n_workloads": int(n_workloads) if history_window else 0,
        "mask_index": F["mask"],
    }
