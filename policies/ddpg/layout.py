"""The DDPG module's view of the autoscaling observation, derived from the env's layout."""

from __future__ import annotations

from typing import Any

from envs.observation import N_APP_FEATURES, N_HISTORY_FEATURES, N_SERVICE_FEATURES, F


def autoscale_layout(max_services: int, history_window: int) -> dict[str, Any]:
    """The ``layout`` model-config entry for AutoscaleEnv observations of these sizes."""
    return {
        "max_services": int(max_services),
        "n_service_features": N_SERVICE_FEATURES,
        "n_app_features": N_APP_FEATURES,
        "history_window": int(history_window),
        "n_history_features": N_HISTORY_FEATURES if history_window else 0,
        "mask_index": F["mask"],
    }
