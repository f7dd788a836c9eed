"""The acting half of the DDPG module (actor and meta-learner) in plain torch, without RLlib.

Serving, evaluation and the controller load an exported policy into this module: it builds the
same networks as ``DDPGTorchRLModule.build_networks`` with ``inference_only=True`` (parameter
names ``actor.*`` and ``meta.*`` match, so an exported state dict loads as is) and computes the
same deterministic action and embedding. RLlib is needed to train, not to act; a test checks the
two modules agree on the same weights, and another that importing this one leaves ``ray.rllib``
unimported.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from policies.ddpg.torch.networks import FlatActor, MetaLearner, ObsSplit, ServiceActor, meta_learner_of

ACTION_DIMS_PER_SERVICE = 3


class ActorModule(nn.Module):
    """Deterministic actor (and meta-learner) of an exported DDPG policy."""

    def __init__(self, model_config: dict[str, Any], n_obs: int, n_act: int):
        super().__init__()
        cfg = model_config
        actor_h = list(cfg.get("actor_hiddens", [256, 256]))
        self.layout = cfg.get("layout")
        self.meta: MetaLearner | None = None
        if self.layout:
            self.split = ObsSplit(self.layout)
            self.meta = meta_learner_of(cfg, self.split, self.layout)
            emb = 0 if self.meta is None else self.meta.out_dim
            self.actor: nn.Module = ServiceActor(self.split.F, self.split.A + emb, ACTION_DIMS_PER_SERVICE, actor_h)
        else:
            self.actor = FlatActor(n_obs, n_act, actor_h)

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic actions in [-1, 1] of a batch (padding services get 0)."""
        if not self.layout:
            return torch.tanh(self.actor.preactivation(obs))
        svc, app, hist, lctx, mask = self.split(obs)
        ctx = app if self.meta is None or hist is None else torch.cat([app, self.meta(hist, lctx)], dim=-1)
        return torch.tanh(self.actor.preactivation(svc, ctx, mask))

    def act_and_embedding(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``act`` and ``embedding`` of a batch with one pass of the meta-learner (serving needs
        both, and the meta-learner's GRU is most of a forward)."""
        if not self.layout or self.meta is None:
            return self.act(obs), None
        svc, app, hist, lctx, mask = self.split(obs)
        if hist is None:
            return self.act(obs), None
        emb = self.meta(hist, lctx)
        return torch.tanh(self.actor.preactivation(svc, torch.cat([app, emb], dim=-1), mask)), emb

    def embedding(self, obs: torch.Tensor) -> torch.Tensor:
        """Workload embeddings of a batch (its history windows and load contexts)."""
        if self.meta is None:
            raise ValueError("this policy has no meta-learner (history_window is 0)")
        _, _, hist, lctx, _ = self.split(obs)
        return self.meta(hist, lctx)
