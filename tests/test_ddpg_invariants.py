"""What each DDPG/TD3 update may and may not move: actor vs critic and meta-learner, TD3's delay."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

from envs.autoscale_env import AutoscaleEnv
from policies.ddpg import DDPGConfig
from policies.ddpg.default_ddpg_rl_module import Q_CURR
from policies.ddpg.layout import autoscale_layout

ENV = {"app": "chain3", "max_services": 6, "history_window": 4, "noise": 0.0}
MODULE = "default_policy"


def _learner(cfg: DDPGConfig):
    e = AutoscaleEnv(ENV)
    cfg = cfg.environment(observation_space=e.observation_space, action_space=e.action_space).training(
        layout=autoscale_layout(6, 4), actor_hiddens=[16], critic_hiddens=[16], embedding_dim=4, meta_hidden=8
    )
    torch.manual_seed(0)
    learner = cfg.build_learner(
        env=None,
        spaces={"__env__": (e.observation_space, e.action_space), MODULE: (e.observation_space, e.action_space)},
    )
    learner.build()
    return learner


def _batch(n: int = 32) -> dict[str, np.ndarray]:
    """Real transitions of the env under random actions."""
    e = AutoscaleEnv(ENV)
    rng = np.random.default_rng(0)
    obs, _ = e.reset(seed=0)
    rows: dict[str, list] = {k: [] for k in (Columns.OBS, Columns.ACTIONS, Columns.REWARDS, Columns.NEXT_OBS)}
    for _ in range(n):
        a = rng.uniform(-1, 1, e.action_space.shape).astype(np.float32)
        nxt, r, *_ = e.step(a)
        for k, v in zip(rows, (obs, a, r, nxt), strict=True):
            rows[k].append(v)
        obs = nxt
    out = {k: np.asarray(v, dtype=np.float32) for k, v in rows.items()}
    out[Columns.TERMINATEDS] = np.zeros(n, dtype=bool)
    out["n_step"] = np.ones(n, dtype=np.int64)
    out["weights"] = np.ones(n, dtype=np.float32)
    return out


def _update(learner, batch: dict[str, np.ndarray]) -> None:
    n = len(batch[Columns.REWARDS])
    learner.update(
        batch=MultiAgentBatch({MODULE: SampleBatch(batch)}, env_steps=n),
        timesteps={"num_env_steps_sampled_lifetime": 1000},
    )


def _weights(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_actor_objective_moves_neither_critic_nor_meta_learner() -> None:
    learner = _learner(DDPGConfig())
    m = learner.module[MODULE]
    batch = {k: torch.as_tensor(v) for k, v in _batch().items()}
    out = m.forward_train(batch)
    actor_loss = -out[Q_CURR].mean()
    actor_loss.backward()
    for name in ("critic", "meta"):
        grads = [p.grad for p in getattr(m, name).parameters()]
        assert all(g is None or not g.any() for g in grads), f"the actor's loss reached the {name}"
    assert any(p.grad is not None and p.grad.any() for p in m.actor.parameters())


def test_td3_delayed_step_leaves_actor_and_targets_unchanged() -> None:
    learner = _learner(DDPGConfig.td3())
    m = learner.module[MODULE]
    batch = _batch()
    nets = ("actor", "critic", "target_actor", "target_critic", "target_critic_twin", "target_meta")
    before = {k: _weights(getattr(m, k)) for k in nets}
    _update(learner, batch)  # update 1: the actor's turn, targets follow
    first = {k: _weights(getattr(m, k)) for k in nets}
    assert all(not _same(before[k], first[k]) for k in nets), "everything moves on an actor step"
    _update(learner, batch)  # update 2: critic only
    second = {k: _weights(getattr(m, k)) for k in nets}
    assert not _same(first["critic"], second["critic"])
    for k in ("actor", "target_actor", "target_critic", "target_critic_twin", "target_meta"):
        assert _same(first[k], second[k]), f"{k} moved on a delayed step"
    _update(learner, batch)  # update 3: the actor's turn again
    third = {k: _weights(getattr(m, k)) for k in nets}
    assert all(not _same(second[k], third[k]) for k in nets)


@pytest.mark.parametrize("delay", [1, 3])
def test_targets_move_once_per_actor_step(delay: int) -> None:
    learner = _learner(DDPGConfig().training(policy_delay=delay))
    m = learner.module[MODULE]
    batch = _batch()
    moved = []
    for _ in range(6):
        before = _weights(m.target_critic)
        _update(learner, batch)
        moved.append(not _same(before, _weights(m.target_critic)))
    assert moved == [i % delay == 0 for i in range(6)]
