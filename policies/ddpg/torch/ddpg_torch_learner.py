"""DDPG's losses in torch.

Critic: ``y = r + gamma^n (1 - terminated) Q'(s', mu'(s'))`` with Q' the (min over twin) target
critic and mu' the target actor (plus clipped noise with target smoothing); loss
``mean(w (Q(s, a) - y)^2)`` with w the prioritised-replay importance weights.
Actor: ``-mean(Q(s, mu(s)))`` with the critic frozen (the module's forward takes care of it);
under bootstrapping, behaviour cloning of the replayed actions instead (OFFLINE) or in addition
(ONLINE, TD3+BC), see ``ddpg_learner.BC_MODES``.
Meta-learner: the critic loss plus ``aux_loss_weight * mse(predicted, next app features)``
plus ``workload_loss_weight * cross-entropy(which training workload)`` over labelled replayed
rows and ``synthetic_contexts`` contexts of fresh workload instances (``context_pool``).
Rows with non-finite observations, actions or rewards get weight 0 and are counted.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from ray.rllib.core.columns import Columns
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import TD_ERROR_KEY
from ray.rllib.utils.typing import ModuleID, ParamDict, TensorType

from policies.ddpg.ddpg_learner import (
    ACTOR_LOSS_KEY,
    ACTOR_UPDATED_KEY,
    AUX_LOSS_KEY,
    BC_LOSS_KEY,
    CONTEXT_INSTANCES_KEY,
    CRITIC_LOSS_KEY,
    CRITIC_TWIN_LOSS_KEY,
    NAN_ROWS_KEY,
    Q_MAX_KEY,
    Q_MEAN_KEY,
    Q_MIN_KEY,
    SATURATION_LOSS_KEY,
    TD_ERROR_MEAN_KEY,
    WORKLOAD_ACC_KEY,
    WORKLOAD_LOSS_KEY,
    DDPGLearner,
)
from policies.ddpg.default_ddpg_rl_module import (
    ACTION_MASK,
    ACTOR_ACTIONS,
    ACTOR_PREACTIVATION,
    AUX_PRED,
    AUX_TARGET,
    FINITE_ROWS,
    Q_CURR,
    Q_PREDS,
    Q_TARGET_NEXT,
    Q_TWIN_PREDS,
    WORKLOAD_LOGITS,
)
from policies.ddpg.rllib_compat import DQNTorchLearner
from policies.ddpg.workload_labels import WORKLOAD_LABEL

logger = logging.getLogger(__name__)


def critic_target(
    rewards: torch.Tensor, terminated: torch.Tensor, q_next: torch.Tensor, gamma: float, n_step: torch.Tensor
) -> torch.Tensor:
    """The n-step TD target (no gradient)."""
    return (rewards + gamma**n_step * (1.0 - terminated.float()) * q_next).detach()


def behaviour_cloning_loss(
    actor: torch.Tensor, replayed: torch.Tensor, mask: torch.Tensor, finite: torch.Tensor
) -> torch.Tensor:
    """Mean over finite rows of the mean squared error over real (unmasked) action components."""
    return _masked_mean_square(actor - replayed, mask, finite)


def saturation_loss(preactivation: torch.Tensor, mask: torch.Tensor, finite: torch.Tensor) -> torch.Tensor:
    """Mean square of the actor's pre-tanh outputs over real action components and finite rows.

    Actions are relative (a step up or down from what runs), so an actor whose tanh is pushed
    far past its bound keeps asking for the bound, the guard clamps every step, and where the
    tanh is flat no gradient from the critic can bring it back: a run was seen to stop learning
    within three iterations with every action at its bound. A small charge on the
    pre-activation keeps the actor where the tanh still has slope.
    """
    return _masked_mean_square(preactivation, mask, finite)


def _masked_mean_square(x: torch.Tensor, mask: torch.Tensor, finite: torch.Tensor) -> torch.Tensor:
    per_row = ((x**2) * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1.0)
    return (per_row * finite).sum() / finite.sum().clamp(min=1.0)


def workload_loss(
    logits: torch.Tensor, labels: torch.Tensor, finite: torch.Tensor
) -> tuple[torch.Tensor, float | None]:
    """Mean cross-entropy and accuracy over finite rows whose label is a valid workload index.

    Rows labelled -1 (no workload known) or beyond the head's classes do not count; with none
    left the loss is a zero that keeps the graph, and the accuracy None.
    """
    labels = labels.long().reshape(-1)
    valid = (labels >= 0) & (labels < logits.shape[-1]) & (finite > 0)
    if not bool(valid.any()):
        return logits.sum() * 0.0, None
    ce = torch.nn.functional.cross_entropy(logits[valid], labels[valid])
    acc = float((logits[valid].argmax(dim=-1) == labels[valid]).float().mean())
    return ce, acc


class DDPGTorchLearner(DQNTorchLearner, DDPGLearner):
    @override(DQNTorchLearner)
    def configure_optimizers_for_module(self, module_id: ModuleID, config: Any = None) -> None:
        module = self._module[module_id].unwrapped()  # under DDP (num_learners > 1) the module is wrapped
        critic_params = self.get_parameters(module.critic)
        if config.twin_q:
            critic_params += self.get_parameters(module.critic_twin)
        if module.meta is not None and config.train_meta:  # ``train_meta: false``: no optimizer steps it
            critic_params += self.get_parameters(module.meta)
        self.register_optimizer(
            module_id=module_id,
            optimizer_name="critic",
            optimizer=torch.optim.Adam(critic_params),
            params=critic_params,
            lr_or_lr_schedule=config.critic_lr,
        )
        actor_params = self.get_parameters(module.actor)
        self.register_optimizer(
            module_id=module_id,
            optimizer_name="actor",
            optimizer=torch.optim.Adam(actor_params),
            params=actor_params,
            lr_or_lr_schedule=config.actor_lr,
        )

    @override(DQNTorchLearner)
    def compute_loss_for_module(
        self, *, module_id: ModuleID, config: Any, batch: dict[str, Any], fwd_out: dict[str, TensorType]
    ) -> TensorType:
        finite = fwd_out[FINITE_ROWS].float()
        bad = int((finite == 0).sum())
        if bad:
            logger.warning(
                "DDPG: %d of %d replayed rows hold NaN/inf values; they are not trained on", bad, len(finite)
            )
        rewards = torch.nan_to_num(batch[Columns.REWARDS], nan=0.0, posinf=0.0, neginf=0.0)
        weights = batch.get("weights", torch.ones_like(rewards)) * finite
        denom = weights.sum().clamp(min=1e-8)
        y = critic_target(rewards, batch[Columns.TERMINATEDS], fwd_out[Q_TARGET_NEXT], config.gamma, batch["n_step"])
        q = fwd_out[Q_PREDS]
        td = (q - y).abs() * finite
        critic_loss = (weights * (q - y) ** 2).sum() / denom
        total = critic_loss
        if config.twin_q:
            q2 = fwd_out[Q_TWIN_PREDS]
            twin_loss = (weights * (q2 - y) ** 2).sum() / denom
            td = 0.5 * (td + (q2 - y).abs() * finite)
            total = total + twin_loss
            self.metrics.log_value((module_id, CRITIC_TWIN_LOSS_KEY), twin_loss, window=1)
        n_rows = finite.sum().clamp(min=1.0)
        q_term = -(fwd_out[Q_CURR] * finite).sum() / n_rows
        actor_loss = q_term
        if ACTOR_ACTIONS in fwd_out:
            replayed = torch.nan_to_num(batch[Columns.ACTIONS], nan=0.0, posinf=0.0, neginf=0.0)
            bc = behaviour_cloning_loss(fwd_out[ACTOR_ACTIONS], replayed, fwd_out[ACTION_MASK], finite)
            self.metrics.log_value((module_id, BC_LOSS_KEY), bc, window=1)
            if self.bc_mode == "offline":
                actor_loss = bc
            elif self.bc_mode == "online" and self.bc_weight > 0:
                scale = (fwd_out[Q_CURR].abs() * finite).sum().detach() / n_rows
                actor_loss = q_term / scale.clamp(min=1e-6) + self.bc_weight * bc
        if ACTOR_PREACTIVATION in fwd_out and config.saturation_penalty > 0:
            sat = saturation_loss(fwd_out[ACTOR_PREACTIVATION], fwd_out[ACTION_MASK], finite)
            actor_loss = actor_loss + config.saturation_penalty * sat
            self.metrics.log_value((module_id, SATURATION_LOSS_KEY), sat, window=1)
        total = total + actor_loss
        if AUX_PRED in fwd_out:
            err = ((fwd_out[AUX_PRED] - fwd_out[AUX_TARGET]) ** 2).mean(dim=-1)
            aux_loss = (err * finite).sum() / finite.sum().clamp(min=1.0)
            total = total + config.aux_loss_weight * aux_loss
            self.metrics.log_value((module_id, AUX_LOSS_KEY), aux_loss, window=1)
        if WORKLOAD_LOGITS in fwd_out and config.workload_loss_weight > 0 and WORKLOAD_LABEL in batch:
            logits, labels, rows = fwd_out[WORKLOAD_LOGITS], batch[WORKLOAD_LABEL], finite
            wl_acc = workload_loss(logits, labels, rows)[1]
            if config.synthetic_contexts > 0:
                fresh_logits, fresh_labels = self._fresh_contexts(module_id, config)
                logits = torch.cat([logits, fresh_logits])
                labels = torch.cat([labels.long().reshape(-1), fresh_labels])
                rows = torch.cat([rows, torch.ones_like(fresh_labels, dtype=rows.dtype)])
            wl_loss = workload_loss(logits, labels, rows)[0]
            total = total + config.workload_loss_weight * wl_loss
            self.metrics.log_value((module_id, WORKLOAD_LOSS_KEY), wl_loss, window=1)
            if wl_acc is not None:
                self.metrics.log_value((module_id, WORKLOAD_ACC_KEY), wl_acc, window=1)
        self.metrics.log_value(key=(module_id, TD_ERROR_KEY), value=td, reduce="item_series")
        self.metrics.log_dict(
            {
                CRITIC_LOSS_KEY: critic_loss,
                ACTOR_LOSS_KEY: actor_loss,
                Q_MEAN_KEY: q.mean(),
                Q_MAX_KEY: q.max(),
                Q_MIN_KEY: q.min(),
                TD_ERROR_MEAN_KEY: td.mean(),
                NAN_ROWS_KEY: float(bad),
            },
            key=module_id,
            window=1,
        )
        return total

    def _fresh_contexts(self, module_id: ModuleID, config: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Workload logits and labels of ``synthetic_contexts`` contexts of fresh workload instances."""
        from policies.ddpg.context_pool import ContextPool

        if module_id not in self.context_pools:
            # Each learner of a multi-learner group draws its own instances (its rank in the seed).
            seed = [int(self.config.seed or 0), learner_rank()]
            self.context_pools[module_id] = ContextPool(dict(self.config.env_config), seed=seed)
        pool = self.context_pools[module_id]
        pool.renew(config.context_renewal)
        x, y = pool.batch(config.synthetic_contexts)
        module = self._module[module_id].unwrapped()  # under DDP (num_learners > 1) the module is wrapped
        device = next(module.parameters()).device
        logits = module.meta.workload_logits(torch.as_tensor(x, device=device))
        self.metrics.log_value((module_id, CONTEXT_INSTANCES_KEY), float(pool.instances), window=1)
        return logits, torch.as_tensor(y, device=device)

    @override(DQNTorchLearner)
    def compute_gradients(self, loss_per_module: dict[ModuleID, TensorType], **kwargs) -> ParamDict:
        grads = super().compute_gradients(loss_per_module, **kwargs)
        # TD3's delayed actor and the actor's warm-up: on the other updates the actor's gradients
        # are dropped, so its optimizer does not step (a zero gradient would still move Adam's
        # momentum).
        for module_id in loss_per_module:
            if module_id not in self._module:
                continue
            cfg = self.config.get_config_for_module(module_id)
            due = self.actor_update_due(module_id, cfg.policy_delay, cfg.num_steps_sampled_before_actor_learns)
            self.metrics.log_value((module_id, ACTOR_UPDATED_KEY), float(due), window=1)
            if not due:
                for p in self._module[module_id].unwrapped().actor.parameters():
                    pid = self.get_param_ref(p)
                    grads.pop(pid, None)
                    p.grad = None
        return grads


def learner_rank() -> int:
    """This learner's rank in its torch process group (0 for a single, local learner)."""
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
