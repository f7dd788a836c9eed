"""SimBackend: the Backend protocol over one copy of the simulator, driven by a rate series."""

from __future__ import annotations

import numpy as np

from envs.app import AppSpec
from envs.metrics import ScalingDecision, ServiceMetrics
from envs.simulator import ClusterSim, SimConfig, StepTruth


class SimBackend:
    """One simulated cluster. ``load(rates)`` sets the external rps of each coming interval."""

    def __init__(self, app: AppSpec, config: SimConfig | None = None, seed: int | None = None):
        self.app = app
        self.sim = ClusterSim(app, batch=1, config=config, seed=seed)
        self.rates = np.zeros(1)
        self.step_index = 0

    def reset(self, rates: np.ndarray, seed: int | None = None) -> None:
        """Fresh cluster at the app's initial state, to be driven by `rates` (one per interval)."""
        self.sim.reset(seed)
        self.rates = np.asarray(rates, dtype=np.float64)
        self.step_index = 0

    def observe(self) -> ServiceMetrics:
        return self.sim.observe(0)

    def apply(self, decision: ScalingDecision) -> None:
        self.sim.apply(decision.replicas[None, :], decision.cpu_limit[None, :], decision.mem_limit[None, :])

    def advance(self, seconds: float) -> None:
        """Run whole control intervals covering `seconds` at the loaded rates."""
        n = max(1, round(seconds / self.sim.config.interval_s))
        for _ in range(n):
            rate = self.rates[min(self.step_index, len(self.rates) - 1)]
            self.sim.advance(rate)
            self.step_index += 1

    @property
    def truth(self) -> StepTruth | None:
        """Ground truth of the last interval (what the scoreboard counts)."""
        return self.sim.truth
