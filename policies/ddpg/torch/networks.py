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
    """GRU over the history window (and an MLP over the long load context) -> workload embedding.

    The embedding conditions actor and critic. It is trained through the critic loss and two
    auxiliary losses that ask it to encode the workload:

    - ``predict``: the next interval's app features (load, latency, drops), what it is doing now;
    - ``classify`` (with ``n_workloads`` > 0): which training workload the episode replays, a
      linear read-out, so workloads that differ become linearly separable in the embedding, and
      the policy's conditioning tells them apart. A new workload lands near the ones it
      resembles.
    """

    def __init__(
        self, n_in: int, hidden: int, embedding_dim: int, n_predict: int, n_context: int = 0, n_workloads: int = 0
    ):
        super().__init__()
        self.gru = nn.GRU(n_in, hidden, batch_first=True)
        self.context = mlp([n_context, hidden], nn.ReLU()) if n_context else None
        joined = hidden * (2 if n_context else 1)
        self.to_embedding = nn.Sequential(nn.Linear(joined, embedding_dim), nn.Tanh())
        self.predict = mlp([embedding_dim, hidden, n_predict])
        self.classify = nn.Linear(embedding_dim, n_workloads) if n_workloads else None

    def forward(self, history: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        _, h = self.gru(history)
        z = h[-1]
        if self.context is not None:
            if context is None:
                raise ValueError("this meta-learner reads a long load context, and the observation has none")
            z = torch.cat([z, self.context(context)], dim=-1)
        return self.to_embedding(z)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1)
    return (x * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class ServiceActor(nn.Module):
    """Deterministic tanh actor: per-service encoder, pooled app context, per-service action head."""

    def __init__(self, n_service: int, n_context: int, action_dims: int, hidden: list[int]):
        super().__init__()
        h = hidden[-1]
        self.encode = mlp([n_service + n_context, *hidden], nn.ReLU())
        self.head = mlp([2 * h, h, action_dims], nn.Tanh())

    def forward(self, svc: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, s, _ = svc.shape
        x = torch.cat([svc, context.unsqueeze(1).expand(b, s, context.shape[-1])], dim=-1)
        e = self.encode(x)
        pooled = _masked_mean(e, mask).unsqueeze(1).expand_as(e)
        a = self.head(torch.cat([e, pooled], dim=-1)) * mask.unsqueeze(-1)
        return a.reshape(b, -1)


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
        act = action.reshape(b, s, self.action_dims)
        x = torch.cat([svc, act, context.unsqueeze(1).expand(b, s, context.shape[-1])], dim=-1)
        pooled = _masked_mean(self.encode(x), mask)
        return self.value(torch.cat([pooled, context], dim=-1)).squeeze(-1)


class FlatActor(nn.Module):
    def __init__(self, n_obs: int, n_act: int, hidden: list[int]):
        super().__init__()
        self.net = mlp([n_obs, *hidden, n_act], nn.Tanh())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class FlatCritic(nn.Module):
    def __init__(self, n_obs: int, n_act: int, hidden: list[int]):
        super().__init__()
        self.net = mlp([n_obs + n_act, *hidden, 1])

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=-1)).squeeze(-1)
