"""Framework-neutral part of DDPG's learner: metric keys, and the update counter for TD3's delay."""

from __future__ import annotations

from ray.rllib.algorithms.dqn.dqn_learner import DQNLearner
from ray.rllib.core.learner.learner import Learner
from ray.rllib.utils.annotations import override

CRITIC_LOSS_KEY = "losses/critic"
CRITIC_TWIN_LOSS_KEY = "losses/critic_twin"
ACTOR_LOSS_KEY = "losses/actor"
AUX_LOSS_KEY = "losses/meta_aux"
Q_MEAN_KEY = "q/mean"
Q_MAX_KEY = "q/max"
Q_MIN_KEY = "q/min"
TD_ERROR_MEAN_KEY = "td_error/mean"
NAN_ROWS_KEY = "data/nonfinite_rows"
ACTOR_UPDATED_KEY = "actor/updated"


class DDPGLearner(DQNLearner):
    """Builds target networks (via DQNLearner) and counts gradient updates per module."""

    @override(Learner)
    def build(self) -> None:
        super().build()
        self.updates_per_module: dict[str, int] = {}

    def actor_update_due(self, module_id: str, policy_delay: int) -> bool:
        """TD3's delayed actor: True on every ``policy_delay``-th critic update."""
        n = self.updates_per_module.get(module_id, 0)
        self.updates_per_module[module_id] = n + 1
        return n % max(policy_delay, 1) == 0
