"""Actor, critic and meta-learner networks of DDPG for autoscaling (torch).

Per-service weight sharing: every service's features are read by the same weights, together
with the app features and the workload embedding, and pooled with a masked mean. So the
number of services is only a padding size: a policy trained on a 12-service app acts on a
3-service or a 20-service one.

``layout`` (a dict: max_services, n_service_features, n_app_features, history_window,
n_history_features, mask_index) tells how to cut the flat observation; without it the
networks are plain MLPs over the flat observation (used for Pendulum and other Box envs).
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
    """Cuts a flat observation batch into services (B, S, F), app (B, A), history (B, W, H), mask (B, S)."""

    def __init__(self, layout: dict[str, Any]):
        self.S = int(layout["max_services"])
        self.F = int(layout["n_service_features"])
        self.A = int(layout["n_app_features"])
        self.W = int(layout.get("history_window", 0))
        self.H = int(layout.get("n_history_features", 0))
        self.mask_index = int(layout["mask_index"])

    def __call__(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        b = obs.shape[0]
        n_svc = self.S * self.F
        svc = obs[:, :n_svc].reshape(b, self.S, self.F)
        app = obs[:, n_svc : n_svc + self.A]
        hist = obs[:, n_svc + self.A :].reshape(b, self.W, self.H) if self.W else None
        return svc, app, hist, svc[..., self.mask_index]


class MetaLearner(nn.Module):
    """GRU over the history window -> workload embedding, plus a head predicting the next row.

    The embedding conditions actor and critic. It is trained through the critic loss and the
    auxiliary loss of predicting the next interval's app features (load, latency, drops) from
    the embedding, which forces it to encode what the workload is doing.
    """

    def __init__(self, n_in: int, hidden: int, embedding_dim: int, n_predict: int):
        super().__init__()
        self.gru = nn.GRU(n_in, hidden, batch_first=True)
        self.to_embedding = nn.Sequential(nn.Linear(hidden, embedding_dim), nn.Tanh())
        self.predict = mlp([embedding_dim, hidden, n_predict])

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(history)
        return self.to_embedding(h[-1])


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
