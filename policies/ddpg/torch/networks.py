"""Actor, critic and meta-learner networks of DDPG for autoscaling (torch).

Per-service weight sharing: every service's features are read by the same weights, together
with the app features and the workload embedding, and pooled with a masked mean. So the
number of services is only a padding size: a policy trained on a 12-service app acts on a
3-service or a 20-service one.

``layout`` (a dict: max_services, n_service_features, n_app_features, history_window,
n_history_features, n_context, n_workloads, mask_index) tells how to cut the flat observation;
without it the networks are plain MLPs over the flat observation (used for Pendulum and other
Box envs).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def mlp(sizes: list[int], out_act: nn.Module | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class ObsSplit:
    """Cuts a flat observation batch into services (B, S, F), app (B, A), history (B, W, H),
    long load context (B, C) and mask (B, S); history and context are None when absent."""

    def __init__(self, layout: dict[str, Any]):
        self.S = int(layout["max_services"])
        self.F = int(layout["n_service_features"])
        self.A = int(layout["n_app_features"])
        self.W = int(layout.get("history_window", 0))
        self.H = int(layout.get("n_history_features", 0))
        self.C = int(layout.get("n_context", 0))
        self.mask_index = int(layout["mask_index"])

    def __call__(self, obs: torch.Tensor):
        b = obs.shape[0]
        n_svc = self.S * self.F
        h0 = n_svc + self.A
        c0 = h0 + self.W * self.H
        svc = obs[:, :n_svc].reshape(b, self.S, self.F)
        app = obs[:, n_svc:h0]
        hist = obs[:, h0:c0].reshape(b, self.W, self.H) if self.W else None
        ctx = obs[:, c0 : c0 + self.C] if self.C else None
        return svc, app, hist, ctx, svc[..., self.mask_index]


class MetaLearner(nn.Module):
    """GRU over the history window (and a workload code from the long load context) -> embedding.

    The embedding conditions actor and critic. The GRU part is trained through the critic loss
    and the auxiliary loss ``predict`` (the next interval's app features: load, latency, drops),
    which asks it to encode what the workload is doing now and how the app responds.

    With a long load context (``n_context`` > 0) the embedding also holds a workload code of
    ``code_dim`` entries read from the context alone: what the load has been doing over the last
    half hour, independent of the policy. With ``n_workloads`` > 0 the ``classify`` head (linear)
    names the training workload from the code, so workloads that differ become linearly
    separable in the embedding and a new workload lands near those it resembles. Because the
    code reads the load alone, it can be trained on contexts of fresh workload instances too
    (``envs.context_samples``), not only on the few episodes in replay.
    """

    def __init__(
        self,
        n_in: int,
        hidden: int,
        embedding_dim: int,
        n_predict: int,
        n_context: int = 0,
        n_workloads: int = 0,
        code_dim: int = 16,
    ):
        super().__init__()
        self.gru = nn.GRU(n_in, hidden, batch_first=True)
        self.to_embedding = nn.Sequential(nn.Linear(hidden, embedding_dim), nn.Tanh())
        self.code = mlp([n_context, hidden, hidden, code_dim], nn.Tanh()) if n_context else None
        self.out_dim = embedding_dim + (code_dim if n_context else 0)
        self.predict = mlp([self.out_dim, hidden, n_predict])
        self.classify = nn.Linear(code_dim, n_workloads) if n_context and n_workloads else None

    def forward(self, history: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        _, h = self.gru(history)
        emb = self.to_embedding(h[-1])
        if self.code is None:
            return emb
        if context is None:
            raise ValueError("this meta-learner reads a long load context, and the observation has none")
        return torch.cat([emb, self.code(context)], dim=-1)

    def workload_logits(self, context: torch.Tensor) -> torch.Tensor:
        """Scores of the training workloads for load contexts (needs ``n_context`` and ``n_workloads``)."""
        if self.classify is None or self.code is None:
            raise ValueError("this meta-learner has no workload head (needs a load context and n_workloads)")
        return self.classify(self.code(context))


def meta_learner_of(cfg: dict, split: ObsSplit, layout: dict) -> MetaLearner | None:
    """The meta-learner a model config asks for (None without a history window): one builder for
    the training module and the torch-only module that serves, so both hold the same network."""
    if not split.W:
        return None
    return MetaLearner(
        split.H,
        int(cfg.get("meta_hidden", 64)),
        int(cfg.get("embedding_dim", 16)),
        split.A,
        n_context=split.C,
        n_workloads=int(layout.get("n_workloads", 0)),
        code_dim=int(cfg.get("workload_code_dim", 16)),
    )


def shared_input_layers(seq: nn.Sequential, per_row: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    """``seq(cat([per_row, shared broadcast over dim 1], -1))`` without building that input.

    ``per_row`` (B, S, P) holds what differs per service, ``shared`` (B, C) what every service
    of a row sees alike (app features, embedding, pooled encoding). The first layer is linear,
    so its ``shared`` part is computed once per row instead of once per service: the same
    function and the same weights (exported policies load unchanged), with about a third less
    arithmetic in the per-service networks, where an update spends most of its time.
    """
    first = seq[0]
    p = per_row.shape[-1]
    h = F.linear(per_row, first.weight[:, :p]) + F.linear(shared, first.weight[:, p:], first.bias).unsqueeze(1)
    return seq[1:](h)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class ServiceActor(nn.Module):
    """Deterministic tanh actor: per-service encoder, pooled app context, per-service action head."""

    def __init__(self, n_service: int, n_context: int, action_dims: int, hidden: list[int]):
        super().__init__()
        h = hidden[-1]
        self.encode = mlp([n_service + n_context, *hidden], nn.ReLU())
        self.head = mlp([2 * h, h, action_dims])

    def preactivation(self, svc: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The action before the tanh (0 for padding services)."""
        e = shared_input_layers(self.encode, svc, context)
        z = shared_input_layers(self.head, e, _masked_mean(e, mask)) * mask.unsqueeze(-1)
        return z.reshape(svc.shape[0], -1)

    def forward(self, svc: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.preactivation(svc, context, mask))


class ServiceCritic(nn.Module):
    """Q(s, a): per-service encoder of (features, own action), masked-mean pooled, then a value head."""

    def __init__(self, n_service: int, n_context: int, action_dims: int, hidden: list[int]):
        super().__init__()
        h = hidden[-1]
        self.action_dims = action_dims
        self.encode = mlp([n_service + action_dims + n_context, *hidden], nn.ReLU())
        self.value = mlp([h + n_context, h, 1])

    def forward(self, svc: torch.Tensor, context: torch.Tensor, mask: torch.Tensor, action: torch.Tensor):
        b, s, _ = svc.shape
        # The action may hold more service slots than ``svc`` (padding cut by the caller).
        act = action.reshape(b, -1, self.action_dims)[:, :s]
        pooled = _masked_mean(shared_input_layers(self.encode, torch.cat([svc, act], dim=-1), context), mask)
        return self.value(torch.cat([pooled, context], dim=-1)).squeeze(-1)


class FlatActor(nn.Module):
    def __init__(self, n_obs: int, n_act: int, hidden: list[int]):
        super().__init__()
        self.net = mlp([n_obs, *hidden, n_act])

    def preactivation(self, obs: torch.Tensor) -> torch.Tensor:
        """The action before the tanh."""
        return self.net(obs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(obs))


class FlatCritic(nn.Module):
    def __init__(self, n_obs: int, n_act: int, hidden: list[int]):
        super().__init__()
        self.net = mlp([n_obs + n_act, *hidden, 1])

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)
