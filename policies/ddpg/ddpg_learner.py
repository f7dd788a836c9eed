"""Framework-neutral part of DDPG's learner: metric keys, the update counter for TD3's delay and
the actor's warm-up."""

from __future__ import annotations

from typing import Any

from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.learner.utils import update_target_network
from ray.rllib.core.rl_module.apis import TargetNetworkAPI
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME, NUM_TARGET_UPDATES

from policies.ddpg.rllib_compat import DQNLearner

CRITIC_LOSS_KEY = "losses/critic"
CRITIC_TWIN_LOSS_KEY = "losses/critic_twin"
ACTOR_LOSS_KEY = "losses/actor"
AUX_LOSS_KEY = "losses/meta_aux"
WORKLOAD_LOSS_KEY = "losses/meta_workload"
WORKLOAD_ACC_KEY = "meta/workload_accuracy"
CONTEXT_INSTANCES_KEY = "meta/context_instances"
Q_MEAN_KEY = "q/mean"
Q_MAX_KEY = "q/max"
Q_MIN_KEY = "q/min"
TD_ERROR_MEAN_KEY = "td_error/mean"
NAN_ROWS_KEY = "data/nonfinite_rows"
ACTOR_UPDATED_KEY = "actor/updated"
BC_LOSS_KEY = "losses/behaviour_cloning"
SATURATION_LOSS_KEY = "losses/actor_saturation"

BC_MODES = ("off", "offline", "online")
"""How the actor learns: DDPG's -Q ("off"); behaviour cloning of the replayed actions only
("offline": the heuristic acts and fills the buffer, AWARE's OFFLINE phase); or -Q normalised by
mean |Q| plus ``bc_weight`` x cloning, TD3+BC's regulariser that keeps a bootstrapped actor near
the actions that were proven safe while it improves on them ("online")."""


class DDPGLearner(DQNLearner):
    """Builds target networks (via DQNLearner) and counts gradient updates per module."""

    @override(Learner)
    def build(self) -> None:
        super().build()
        self.updates_per_module: dict[str, int] = {}
        self.actor_updated: dict[str, bool] = {}
        """Per module, whether the last gradient update was one of TD3's delayed steps, on which the
        actor steps (unless it is still warming up) and the target networks move."""
        self.sampled_lifetime = 0
        """Env steps sampled over the run's life at the current update (RLlib's counter, which a
        checkpoint restores): what ``num_steps_sampled_before_actor_learns`` is counted in."""
        weight = float(getattr(self.config, "bc_weight", 0.0) or 0.0)
        self.bc_mode = "online" if weight > 0 else "off"  # ``ddpg.bc_weight``; bootstrapping switches it per phase
        self.bc_weight = weight
        self.context_pools: dict[str, Any] = {}
        """Per module, the pool of fresh workload contexts (built on the first update that needs it)."""

    def set_behaviour_cloning(self, mode: str, weight: float = 0.0) -> None:
        """Switch the actor objective (see BC_MODES); the bootstrapping driver calls it per phase."""
        if mode not in BC_MODES:
            raise ValueError(f"behaviour cloning mode: expected one of {BC_MODES}, got {mode!r}")
        if not weight >= 0:
            raise ValueError(f"behaviour cloning weight: must be >= 0, got {weight!r}")
        self.bc_mode = mode
        self.bc_weight = float(weight)

    def actor_update_due(self, module_id: str, policy_delay: int, actor_learns_from: int = 0) -> bool:
        """Whether the actor steps on this update: on every ``policy_delay``-th critic update (TD3's
        delayed actor), once ``actor_learns_from`` env steps have been sampled. The target networks
        move on TD3's schedule whatever the warm-up, so the critics' targets follow their critics
        while the actor waits."""
        n = self.updates_per_module.get(module_id, 0)
        self.updates_per_module[module_id] = n + 1
        due = n % max(policy_delay, 1) == 0
        self.actor_updated[module_id] = due
        return due and self.sampled_lifetime >= actor_learns_from

    @override(Learner)
    def before_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        super().before_gradient_based_update(timesteps=timesteps)
        self.sampled_lifetime = int(timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0) or 0)

    @override(DQNLearner)
    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """Polyak-move the target networks, on TD3's delayed steps only.

        DQN's learner moves targets after every update; TD3 (Fujimoto et al. 2018) moves them
        with the actor, every ``policy_delay``-th critic update, so the critic's target changes
        no faster than the policy it evaluates. With ``policy_delay`` 1 (DDPG) that is every
        update, as before.
        """
        Learner.after_gradient_based_update(self, timesteps=timesteps)
        timestep = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)
        for module_id, module in self.module._rl_modules.items():
            cfg = self.config.get_config_for_module(module_id)
            if not self.actor_updated.get(module_id, True):
                continue
            # SAC's/DQN's option, kept: at most one target move per this many sampled env steps.
            if timestep - self.last_update_ts_by_mid[module_id] < cfg.target_network_update_freq:
                continue
            unwrapped = module.unwrapped()
            if not isinstance(unwrapped, TargetNetworkAPI):
                continue
            for main_net, target_net in unwrapped.get_target_network_pairs():
                update_target_network(main_net=main_net, target_net=target_net, tau=cfg.tau)
            self.last_update_ts_by_mid[module_id] = timestep
            self.metrics.log_value((module_id, NUM_TARGET_UPDATES), 1, reduce="lifetime_sum")
