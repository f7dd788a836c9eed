"""A predictive HPA (``predictive@T``), built the way the Predictive Horizontal Pod Autoscaler is.

PHPA keeps the HPA's calculation and puts a forecaster in front of it: each sync, the replica
count the HPA computes from CPU use is stored, a model forecasts that count over the time new
pods need to become ready, and the HPA's normalization (bounds, scaling policies, the 300 s
scale-down stabilization) gets the larger of the forecast and the reactive count. So it scales up
ahead of a ramp but never below what the reactive HPA would ask, and scales down no faster than
the HPA does.

Here the forecaster is Holt-Winters (``policies.forecast``; Holt's linear trend without a
season), one per service, with its smoothing factors refitted every ``fit_every`` syncs on that
service's own history of recommendations: parameters fitted per workload from its past only.
The horizon is one sync period plus the service's start-up delay, rounded up to whole intervals.
"""

from __future__ import annotations

import math
from typing import Any

from policies.base import EnvContext
from policies.forecast import fit_holt_winters, holt_winters
from policies.hpa import HPAPolicy
from policies.hpa_rules import HPABehavior, HPAController


class PredictiveHPAController(HPAController):
    """An ``HPAController`` whose metric recommendation is raised to its Holt-Winters forecast."""

    def __init__(
        self,
        target_utilization: float,
        horizon: int,
        history: int = 240,
        fit_every: int = 40,
        season: int = 0,
        behavior: HPABehavior | None = None,
        sync_period_s: float = 0.0,
    ) -> None:
        super().__init__(target_utilization, behavior=behavior, sync_period_s=sync_period_s)
        if horizon < 1 or history < 2 or fit_every < 1:
            raise ValueError(
                "predictive HPA: need horizon >= 1, history >= 2, fit_every >= 1; "
                f"got {horizon}, {history}, {fit_every}"
            )
        self.horizon, self.history_len, self.fit_every, self.season = horizon, history, fit_every, season
        self.history: list[float] = []
        self.params = (0.5, 0.1, 0.1)
        self.syncs = 0
        self.fitted_at: int | None = None
        self.last_forecast: float | None = None

    def adjust_desired(self, desired: int, now_s: float) -> int:
        self.history.append(float(desired))
        del self.history[: -self.history_len]
        # First fit as soon as a few forecasts can be scored, then every `fit_every` syncs.
        due = self.syncs - self.fitted_at >= self.fit_every if self.fitted_at is not None else True
        if due and len(self.history) >= 2 * self.horizon + 2:
            self.params = fit_holt_winters(self.history, self.season, self.horizon)
            self.fitted_at = self.syncs
        self.syncs += 1
        alpha, beta, gamma = self.params
        self.last_forecast = holt_winters(self.history, alpha, beta, gamma, self.season, self.horizon)
        # Never below the reactive count; the HPA rounds replica counts up, so does the forecast.
        return max(desired, math.ceil(self.last_forecast - 1e-9))


class PredictivePolicy(HPAPolicy):
    """The HPA at one target utilisation with a Holt-Winters forecast of its own recommendations."""

    name = "predictive"

    def __init__(
        self,
        ctx: EnvContext,
        target_utilization: float = 0.6,
        history: int = 240,
        fit_every: int = 40,
        season: int = 0,
    ):
        super().__init__(ctx, target_utilization)
        self.history, self.fit_every, self.season = history, fit_every, season

    def horizon(self, startup_s: float) -> int:
        """Syncs ahead to forecast: the next sync plus the start-up delay of a new pod."""
        return 1 + math.ceil(startup_s / self.ctx.interval_s - 1e-9)

    def initial_state(self) -> Any:
        return {
            "t": 0.0,
            "hpa": [
                PredictiveHPAController(
                    self.target,
                    self.horizon(svc.startup_s),
                    self.history,
                    self.fit_every,
                    self.season,
                    behavior=self.behavior,
                )
                for svc in self.ctx.app.services
            ],
        }
