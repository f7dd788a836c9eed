"""DDPG's RLModule in torch: the forward passes for acting, exploring and training."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.apis import QNetAPI, TargetNetworkAPI
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.core.rl_module.torch.torch_rl_module import TorchRLModule
from ray.rllib.utils.annotations import override

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
    DefaultDDPGRLModule,
)
from policies.ddpg.noise import ExplorationNoise
from policies.ddpg.torch.networks import (
    FlatActor,
    FlatCritic,
    ObsSplit,
    ServiceActor,
    ServiceCritic,
    meta_learner_of,
)

ACTION_DIMS_PER_SERVICE = 3


class DDPGTorchRLModule(TorchRLModule, DefaultDDPGRLModule):
    framework: str = "torch"

    @override(DefaultDDPGRLModule)
    def build_networks(self) -> None:
        cfg = self.model_config
        actor_h = list(cfg.get("actor_hiddens", [256, 256]))
        critic_h = list(cfg.get("critic_hiddens", [256, 256]))
        n_act = int(np.prod(self.action_space.shape))
        self.layout = cfg.get("layout")
        self.meta = None
        if self.layout:
            self.split = ObsSplit(self.layout)
            self.meta = meta_learner_of(cfg, self.split, self.layout)
            emb = 0 if self.meta is None else self.meta.out_dim
            n_ctx = self.split.A + emb
            self.actor = ServiceActor(self.split.F, n_ctx, ACTION_DIMS_PER_SERVICE, actor_h)
            make_critic = lambda: ServiceCritic(self.split.F, n_ctx, ACTION_DIMS_PER_SERVICE, critic_h)  # noqa: E731
        else:
            n_obs = int(np.prod(self.observation_space.shape))
            self.actor = FlatActor(n_obs, n_act, actor_h)
            make_critic = lambda: FlatCritic(n_obs, n_act, critic_h)  # noqa: E731
        if not self.inference_only:
            self.critic = make_critic()
            if self.twin_q:
                self.critic_twin = make_critic()
        self.noise = ExplorationNoise.from_config(cfg.get("exploration", {}))
        self.explore_noise = True
        """Off while a bootstrapped policy serves frozen: it then acts deterministically."""
        self.target_noise = float(cfg.get("target_noise", 0.0))
        self.target_noise_clip = float(cfg.get("target_noise_clip", 0.5))

    # ------------------------------------------------------------------ building blocks

    def _context(
        self,
        obs: torch.Tensor,
        meta: torch.nn.Module | None,
        detach: bool = False,
        emb: torch.Tensor | None = None,
        keep: int | None = None,
    ):
        """(services, context, mask, embedding) of a batch; context = app features + embedding.

        ``emb``: the embedding of ``obs`` when the caller already has it (the meta-learner's GRU
        is the costliest part of an update, so a training pass runs it once per network).
        ``keep``: only the first ``keep`` service slots (``services_in_use``), the rest being padding.
        """
        svc, app, hist, lctx, mask = self.split(obs)
        if keep is not None:
            svc, mask = svc[:, :keep], mask[:, :keep]
        if emb is None and meta is not None and hist is not None:
            emb = meta(hist, lctx)
        if emb is not None:
            if detach:
                emb = emb.detach()
            ctx = torch.cat([app, emb], dim=-1)
        else:
            ctx = app
        return svc, ctx, mask, emb

    def act(self, obs: torch.Tensor, actor=None, meta=None) -> torch.Tensor:
        """Deterministic action in [-1, 1] (padding services get 0)."""
        return torch.tanh(self.preactivation(obs, actor, meta))

    def preactivation(self, obs: torch.Tensor, actor=None, meta=None, emb=None, keep=None) -> torch.Tensor:
        """The deterministic action before the actor's tanh (padding services get 0); ``keep`` as
        in ``_context``, the slots past it filled with those zeros."""
        actor = actor or self.actor
        if not self.layout:
            return actor.preactivation(obs)
        svc, ctx, mask, _ = self._context(obs, meta if meta is not None else self.meta, detach=True, emb=emb, keep=keep)
        z = actor.preactivation(svc, ctx, mask)
        if keep is not None and keep < self.split.S:
            z = torch.nn.functional.pad(z, (0, (self.split.S - keep) * ACTION_DIMS_PER_SERVICE))
        return z

    def q_value(self, obs: torch.Tensor, action: torch.Tensor, critic, meta=None, emb=None, keep=None) -> torch.Tensor:
        if not self.layout:
            return critic(obs, action)
        svc, ctx, mask, _ = self._context(obs, meta if meta is not None else self.meta, emb=emb, keep=keep)
        return critic(svc, ctx, mask, action)

    def services_in_use(self, *observations: torch.Tensor) -> int | None:
        """How many leading service slots hold a real service in any row of ``observations`` (None
        without a layout, or when all do).

        Observations pad the app's services to ``max_services`` slots, and every per-service
        network runs on each slot: on a 12-service app with 16 slots, a quarter of an update's
        arithmetic went to padding that the masked pooling then multiplied by zero. Trailing
        slots that are padding in every row of the batch are cut before the networks run; the
        masks already keep padding out of every output, so the losses are the same function.
        """
        if not self.layout:
            return None
        used = torch.zeros(self.split.S, dtype=torch.bool, device=observations[0].device)
        for obs in observations:
            used |= (self.split(obs)[-1] != 0).any(dim=0)
        idx = torch.nonzero(used)
        keep = int(idx.max()) + 1 if len(idx) else 1
        return None if keep >= self.split.S else keep

    def _embeddings(self, obs: torch.Tensor, meta) -> torch.Tensor | None:
        """The workload embedding of ``obs`` by ``meta`` (None without a meta-learner)."""
        if not self.layout or meta is None:
            return None
        _, _, hist, lctx, _ = self.split(obs)
        return None if hist is None else meta(hist, lctx)

    def embedding(self, obs: torch.Tensor) -> torch.Tensor:
        """Workload embedding of each observation's history window (serving and analysis use it)."""
        if self.meta is None:
            raise ValueError("this module has no meta-learner (history_window is 0)")
        _, _, hist, lctx, _ = self.split(obs)
        return self.meta(hist, lctx)

    # ------------------------------------------------------------------ RLModule API

    @override(RLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return {Columns.ACTIONS: self.act(batch[Columns.OBS])}

    @override(RLModule)
    def _forward_exploration(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        with torch.no_grad():
            a = self.act(batch[Columns.OBS])
            if self.explore_noise:
                a = torch.clamp(a + self.noise.sample(a), -1.0, 1.0)
            if self.layout:
                mask = self.split(batch[Columns.OBS])[-1]
                a = (a.reshape(a.shape[0], -1, ACTION_DIMS_PER_SERVICE) * mask.unsqueeze(-1)).reshape(a.shape)
        return {Columns.ACTIONS: a}

    @override(RLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        raw_obs, raw_next = batch[Columns.OBS], batch[Columns.NEXT_OBS]
        raw_act = batch[Columns.ACTIONS]
        finite = (
            torch.isfinite(raw_obs).all(dim=-1)
            & torch.isfinite(raw_next).all(dim=-1)
            & torch.isfinite(raw_act).all(dim=-1)
            & torch.isfinite(batch[Columns.REWARDS])
        )
        obs = torch.nan_to_num(raw_obs, nan=0.0, posinf=0.0, neginf=0.0)
        nxt = torch.nan_to_num(raw_next, nan=0.0, posinf=0.0, neginf=0.0)
        act = torch.nan_to_num(raw_act, nan=0.0, posinf=0.0, neginf=0.0)
        out: dict[str, Any] = {FINITE_ROWS: finite}
        # One pass of the meta-learner serves the critic(s) and the auxiliary head (through
        # which it learns) and, detached, the actor's objective: the same values and gradients
        # as one pass per use, at a third of the GRU time.
        emb = self._embeddings(obs, self.meta)
        keep = self.services_in_use(obs, nxt)
        out[Q_PREDS] = self.q_value(obs, act, self.critic, emb=emb, keep=keep)
        if self.twin_q:
            out[Q_TWIN_PREDS] = self.q_value(obs, act, self.critic_twin, emb=emb, keep=keep)

        # Actor objective: Q of the actor's action with the critic frozen, so its loss moves
        # only the actor (and the embedding is detached: the meta-learner learns from the
        # critic and auxiliary losses).
        critic_params = list(self.critic.parameters())
        if self.meta is not None:
            critic_params += list(self.meta.parameters())
        for p in critic_params:
            p.requires_grad_(False)
        try:
            frozen = None if emb is None else emb.detach()
            out[ACTOR_PREACTIVATION] = self.preactivation(obs, emb=frozen, keep=keep)
            out[ACTOR_ACTIONS] = torch.tanh(out[ACTOR_PREACTIVATION])
            out[Q_CURR] = self.q_value(obs, out[ACTOR_ACTIONS], self.critic, emb=frozen, keep=keep)
        finally:
            for p in critic_params:
                p.requires_grad_(True)

        # Which action components are real (padding services' are not): behaviour cloning
        # averages over these only.
        if self.layout:
            mask = self.split(obs)[-1]
            out[ACTION_MASK] = mask.unsqueeze(-1).expand(-1, -1, ACTION_DIMS_PER_SERVICE).reshape(act.shape)
        else:
            out[ACTION_MASK] = torch.ones_like(act)
        with torch.no_grad():
            out[Q_TARGET_NEXT] = self.forward_target({Columns.OBS: nxt}, keep=keep)
        if self.meta is not None:
            out[AUX_PRED] = self.meta.predict(emb)
            out[AUX_TARGET] = self.split(nxt)[1]
            if self.meta.classify is not None:
                out[WORKLOAD_LOGITS] = self.meta.workload_logits(self.split(obs)[3])
        return out

    @override(TargetNetworkAPI)
    def forward_target(self, batch: dict[str, Any], keep: int | None = None, **kwargs) -> torch.Tensor:
        """min-over-critics target Q of the target actor's (optionally smoothed) next action;
        ``keep`` as in ``_context``."""
        obs = batch[Columns.OBS]
        meta = getattr(self, "target_meta", None)
        emb = self._embeddings(obs, meta)
        a = torch.tanh(self.preactivation(obs, actor=self.target_actor, meta=meta, emb=emb, keep=keep))
        if self.target_noise > 0:
            eps = torch.clamp(torch.randn_like(a) * self.target_noise, -self.target_noise_clip, self.target_noise_clip)
            a = torch.clamp(a + eps, -1.0, 1.0)
            if self.layout:
                mask = self.split(obs)[-1]
                a = (a.reshape(a.shape[0], -1, ACTION_DIMS_PER_SERVICE) * mask.unsqueeze(-1)).reshape(a.shape)
        q = self.q_value(obs, a, self.target_critic, meta=meta, emb=emb, keep=keep)
        if self.twin_q:
            q = torch.minimum(q, self.q_value(obs, a, self.target_critic_twin, meta=meta, emb=emb, keep=keep))
        return q

    @override(QNetAPI)
    def compute_q_values(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.q_value(batch[Columns.OBS], batch[Columns.ACTIONS], self.critic)
