"""The framework-neutral part of DDPG's RLModule: which APIs it offers and which nets it holds.

Structure (``layout`` given: the autoscaling observation; otherwise flat MLPs):

    history -> [meta GRU] -> embedding ---------------------------+
    services, app --------------------------------------------+  |
                                                              v  v
    actor:  per-service encoder (shared weights) + pooled context -> tanh action per service
    critic: per-service encoder of (features, own action) -> masked mean -> Q
    target copies of actor, critic(s) and meta-learner, moved by Polyak averaging

Env runners only hold what acting needs (actor and meta-learner): critics, target networks
and the auxiliary prediction head are left out of the inference-only module.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis import InferenceOnlyAPI, QNetAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override
from ray.rllib.utils.typing import NetworkType

Q_PREDS = "q_preds"
Q_TWIN_PREDS = "q_twin_preds"
Q_CURR = "q_curr"
Q_TARGET_NEXT = "q_target_next"
AUX_PRED = "aux_pred"
AUX_TARGET = "aux_target"
FINITE_ROWS = "finite_rows"
ACTOR_ACTIONS = "actor_actions"
ACTOR_PREACTIVATION = "actor_preactivation"
ACTION_MASK = "action_mask"
WORKLOAD_LOGITS = "workload_logits"


class DefaultDDPGRLModule(RLModule, InferenceOnlyAPI, TargetNetworkAPI, QNetAPI):
    """DDPG's module: deterministic actor, Q critic(s), optional meta-learner, target networks."""

    @override(RLModule)
    def setup(self) -> None:
        self.twin_q = bool(self.model_config.get("twin_q", False))
        self.build_networks()

    @abstractmethod
    def build_networks(self) -> None:
        """Create ``actor`` (and ``meta`` when the observation has a history window); unless
        inference-only, also ``critic`` (and ``critic_twin``)."""

    @override(TargetNetworkAPI)
    def make_target_networks(self) -> None:
        self.target_actor = make_target_network(self.actor)
        self.target_critic = make_target_network(self.critic)
        if self.twin_q:
            self.target_critic_twin = make_target_network(self.critic_twin)
        if self.meta is not None:
            self.target_meta = make_target_network(self.meta)

    @override(TargetNetworkAPI)
    def get_target_network_pairs(self) -> list[tuple[NetworkType, NetworkType]]:
        pairs = [(self.actor, self.target_actor), (self.critic, self.target_critic)]
        if self.twin_q:
            pairs.append((self.critic_twin, self.target_critic_twin))
        if self.meta is not None:
            pairs.append((self.meta, self.target_meta))
        return pairs

    @override(InferenceOnlyAPI)
    def get_non_inference_attributes(self) -> list[str]:
        out = ["critic", "target_critic", "target_actor"]
        if self.twin_q:
            out += ["critic_twin", "target_critic_twin"]
        if self.model_config.get("layout") and self.model_config["layout"].get("history_window"):
            out += ["target_meta"]
        return out

    @override(RLModule)
    def get_initial_state(self) -> dict[str, Any]:
        return {}
