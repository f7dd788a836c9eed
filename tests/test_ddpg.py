"""DDPG/TD3 on RLlib's new API stack: losses by hand, Polyak, TD3 flags, module shapes, export."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from envs.observation import F
from policies.ddpg import DDPGConfig
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
)
from policies.ddpg.layout import autoscale_layout
from policies.ddpg.noise import ExplorationNoise
from policies.ddpg.policy import ROW_BLOCK, DDPGPolicy, export_policy
from policies.ddpg.torch.ddpg_torch_learner import critic_target, saturation_loss
from policies.ddpg.torch.ddpg_torch_rl_module import DDPGTorchRLModule

ENV = {"app": "chain3", "max_services": 6, "history_window": 4, "noise": 0.0}


def _block(o: np.ndarray) -> np.ndarray:
    """`o` as a batch of ROW_BLOCK rows: exported policies always forward whole blocks (bit-identical rows)."""
    return np.repeat(np.asarray(o, dtype=np.float32)[None], ROW_BLOCK, axis=0)


def env() -> AutoscaleEnv:
    return AutoscaleEnv(ENV)


def module(twin_q: bool = False, inference_only: bool = False, **extra) -> DDPGTorchRLModule:
    e = env()
    torch.manual_seed(0)
    mc = {
        "layout": autoscale_layout(6, 4),
        "actor_hiddens": [16],
        "critic_hiddens": [16],
        "twin_q": twin_q,
        "embedding_dim": 4,
        "meta_hidden": 8,
        **extra,
    }
    return DDPGTorchRLModule(
        observation_space=e.observation_space,
        action_space=e.action_space,
        inference_only=inference_only,
        model_config=mc,
    )


def observations(n: int = 5) -> torch.Tensor:
    e = env()
    obs, _ = e.reset(seed=0)
    out = [obs]
    rng = np.random.default_rng(0)
    for _ in range(n - 1):
        obs, *_ = e.step(rng.uniform(-0.5, 0.5, e.action_space.shape))
        out.append(obs)
    return torch.as_tensor(np.stack(out))


@pytest.mark.parametrize(
    ("r", "term", "q_next", "gamma", "n", "expected"),
    [
        (1.0, 0.0, 2.0, 0.9, 1, 1.0 + 0.9 * 2.0),
        (1.0, 1.0, 2.0, 0.9, 1, 1.0),
        (0.5, 0.0, -1.0, 0.5, 3, 0.5 - 0.125),
    ],
)
def test_critic_target_by_hand(r: float, term: float, q_next: float, gamma: float, n: int, expected: float) -> None:
    y = critic_target(torch.tensor([r]), torch.tensor([term]), torch.tensor([q_next]), gamma, torch.tensor([n]))
    assert y.item() == pytest.approx(expected)
    assert not y.requires_grad


def _learner(cfg: DDPGConfig):
    e = env()
    cfg = cfg.environment(observation_space=e.observation_space, action_space=e.action_space).training(
        layout=autoscale_layout(6, 4), actor_hiddens=[16], critic_hiddens=[16], embedding_dim=4, meta_hidden=8
    )
    learner = cfg.build_learner(
        env=None,
        spaces={
            "__env__": (e.observation_space, e.action_space),
            "default_policy": (e.observation_space, e.action_space),
        },
    )
    learner.build()
    return learner, cfg


def _hand_batch() -> tuple[dict, dict]:
    """Two rows whose losses are worked out by hand below (gamma 0.5): critic 1, actor -4."""
    batch = {
        Columns.REWARDS: torch.tensor([1.0, 0.0]),
        Columns.TERMINATEDS: torch.tensor([False, True]),
        "n_step": torch.tensor([1, 1]),
        "weights": torch.tensor([1.0, 1.0]),
    }
    fwd = {
        Q_PREDS: torch.tensor([2.0, 1.0]),
        Q_TARGET_NEXT: torch.tensor([4.0, 10.0]),
        Q_CURR: torch.tensor([3.0, 5.0]),
        FINITE_ROWS: torch.tensor([True, True]),
    }
    return batch, fwd


def test_losses_on_a_hand_batch() -> None:
    learner, cfg = _learner(DDPGConfig().training(gamma=0.5, aux_loss_weight=0.0))
    batch, fwd = _hand_batch()
    # y = [1 + 0.5 * 4, 0 + 0] = [3, 0]; critic = mean((2-3)^2, (1-0)^2) = 1; actor = -mean(3, 5) = -4.
    total = learner.compute_loss_for_module(module_id="default_policy", config=cfg, batch=batch, fwd_out=fwd)
    assert total.item() == pytest.approx(1.0 - 4.0)


def test_saturation_loss_by_hand() -> None:
    z = torch.tensor([[3.0, -1.0, 9.0], [2.0, 2.0, 2.0], [50.0, 50.0, 50.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])  # row 0: last entry is padding
    finite = torch.tensor([1.0, 1.0, 0.0])  # row 2 is not trained on
    # row 0: (9 + 1) / 2 = 5; row 1: 4; mean over finite rows 4.5
    assert saturation_loss(z, mask, finite).item() == pytest.approx(4.5)


def test_saturation_penalty_adds_to_the_actor_loss_only_when_on() -> None:
    batch, fwd = _hand_batch()
    fwd[ACTOR_PREACTIVATION] = torch.tensor([[2.0, 0.0], [0.0, 4.0]])
    fwd[ACTION_MASK] = torch.ones(2, 2)
    # As in test_losses_on_a_hand_batch: 1 - 4; the saturation term is mean(2^2/2, 4^2/2) = 5.
    off, cfg = _learner(DDPGConfig().training(gamma=0.5, aux_loss_weight=0.0))
    total = off.compute_loss_for_module(module_id="default_policy", config=cfg, batch=batch, fwd_out=fwd)
    assert total.item() == pytest.approx(1.0 - 4.0)
    on, cfg = _learner(DDPGConfig().training(gamma=0.5, aux_loss_weight=0.0, saturation_penalty=0.1))
    total = on.compute_loss_for_module(module_id="default_policy", config=cfg, batch=batch, fwd_out=fwd)
    assert total.item() == pytest.approx(1.0 - 4.0 + 0.1 * 5.0)


def test_the_penalty_pulls_a_saturated_actor_back_where_the_critic_cannot() -> None:
    """An actor driven far past its tanh bound gets almost no gradient from Q, and a clear one
    from the saturation penalty, towards smaller pre-activations."""
    m = module()
    m.make_target_networks()
    obs = observations(4)
    with torch.no_grad():
        m.actor.head[-1].bias.fill_(20.0)  # every action at +1, deep in the flat end of the tanh
    out = m._forward_train(
        {
            Columns.OBS: obs,
            Columns.NEXT_OBS: obs,
            Columns.ACTIONS: torch.zeros(4, m.action_space.shape[0]),
            Columns.REWARDS: torch.zeros(4),
        }
    )
    assert torch.allclose(out[ACTOR_ACTIONS], torch.tanh(out[ACTOR_PREACTIVATION]))
    bias = m.actor.head[-1].bias
    (q_grad,) = torch.autograd.grad(-out[Q_CURR].mean(), bias, retain_graph=True)
    pen = saturation_loss(out[ACTOR_PREACTIVATION], out[ACTION_MASK], torch.ones(4))
    (pen_grad,) = torch.autograd.grad(pen, bias)
    assert q_grad.abs().max() < 1e-6
    assert (pen_grad > 1.0).all()  # gradient descent lowers every bias


def test_nonfinite_rows_are_not_trained_on() -> None:
    learner, cfg = _learner(DDPGConfig().training(gamma=0.5, aux_loss_weight=0.0))
    batch = {
        Columns.REWARDS: torch.tensor([1.0, float("nan")]),
        Columns.TERMINATEDS: torch.tensor([False, False]),
        "n_step": torch.tensor([1, 1]),
        "weights": torch.tensor([1.0, 1.0]),
    }
    fwd = {
        Q_PREDS: torch.tensor([2.0, 100.0]),
        Q_TARGET_NEXT: torch.tensor([4.0, 4.0]),
        Q_CURR: torch.tensor([3.0, 100.0]),
        FINITE_ROWS: torch.tensor([True, False]),
    }
    total = learner.compute_loss_for_module(module_id="default_policy", config=cfg, batch=batch, fwd_out=fwd)
    # Only row 0: critic (2 - 3)^2 = 1, actor -3.
    assert torch.isfinite(total)
    assert total.item() == pytest.approx(1.0 - 3.0)


def test_module_forward_train_flags_nan_rows() -> None:
    m = module()
    m.make_target_networks()
    obs = observations(3)
    obs[1, 0] = float("nan")
    batch = {
        Columns.OBS: obs,
        Columns.NEXT_OBS: observations(3),
        Columns.ACTIONS: torch.zeros(3, 18),
        Columns.REWARDS: torch.zeros(3),
    }
    out = m._forward_train(batch)
    assert out[FINITE_ROWS].tolist() == [True, False, True]
    assert torch.isfinite(out[Q_PREDS]).all()
    assert out[AUX_PRED].shape == out[AUX_TARGET].shape


def _train_outputs_and_grads(m: DDPGTorchRLModule, batch: dict) -> tuple[dict, dict]:
    out = m._forward_train(batch)
    keys = (Q_PREDS, Q_TWIN_PREDS, Q_CURR, Q_TARGET_NEXT, ACTOR_PREACTIVATION, ACTOR_ACTIONS, ACTION_MASK, AUX_PRED)
    m.zero_grad()
    sum(out[k].float().pow(2).sum() for k in keys if out[k].requires_grad).backward()
    grads = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    return {k: out[k].detach() for k in keys}, grads


def test_cutting_padding_slots_leaves_the_training_forward_and_its_gradients_unchanged(monkeypatch) -> None:
    """chain3 in 6 slots: the training forward runs its networks on the 3 real ones only, with the
    same outputs (padding slots' actions 0) and the same gradients as over all 6."""
    m = module(twin_q=True)
    m.make_target_networks()
    obs, nxt = observations(6), observations(6).flip(0)
    batch = {
        Columns.OBS: obs,
        Columns.NEXT_OBS: nxt,
        Columns.ACTIONS: torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, (6, 18)), dtype=torch.float32),
        Columns.REWARDS: torch.zeros(6),
    }
    assert m.services_in_use(obs, nxt) == 3
    cut, cut_grads = _train_outputs_and_grads(m, batch)
    monkeypatch.setattr(m, "services_in_use", lambda *o: None)
    full, full_grads = _train_outputs_and_grads(m, batch)
    assert cut[ACTOR_PREACTIVATION].shape == (6, 18) and not cut[ACTOR_PREACTIVATION][:, 9:].any()
    for k in full:
        torch.testing.assert_close(cut[k], full[k], rtol=1e-5, atol=1e-6)
    assert cut_grads.keys() == full_grads.keys()
    for n in full_grads:
        torch.testing.assert_close(cut_grads[n], full_grads[n], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("masks", "expected"),
    [
        ([[1, 1, 1, 0, 0, 0]], 3),
        ([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], 5),  # the widest row decides
        ([[1, 0, 0, 0, 1, 0]], 5),  # a gap is kept: only trailing padding is cut
        ([[1, 1, 1, 1, 1, 1]], None),  # nothing to cut
        ([[0, 0, 0, 0, 0, 0]], 1),
    ],
)
def test_services_in_use_by_hand(masks: list[list[int]], expected: int | None) -> None:
    m = module()
    obs = observations(len(masks)).clone()
    split = m.split
    for row, mask in enumerate(masks):
        for slot, on in enumerate(mask):
            obs[row, slot * split.F + split.mask_index] = float(on)
    assert m.services_in_use(obs) == expected


def test_twin_critic_changes_the_target() -> None:
    m = module(twin_q=True)
    m.make_target_networks()
    obs = observations(4)
    with torch.no_grad():
        a = m.act(obs, actor=m.target_actor, meta=m.target_meta)
        q1 = m.q_value(obs, a, m.target_critic, meta=m.target_meta)
        q2 = m.q_value(obs, a, m.target_critic_twin, meta=m.target_meta)
        target = m.forward_target({Columns.OBS: obs})
    torch.testing.assert_close(target, torch.minimum(q1, q2))
    out = m._forward_train(
        {Columns.OBS: obs, Columns.NEXT_OBS: obs, Columns.ACTIONS: a, Columns.REWARDS: torch.zeros(4)}
    )
    assert Q_TWIN_PREDS in out


def test_target_smoothing_adds_noise_only_when_on() -> None:
    obs = observations(4)
    plain = module()
    plain.make_target_networks()
    t1, t2 = (plain.forward_target({Columns.OBS: obs}) for _ in range(2))
    torch.testing.assert_close(t1, t2)
    smooth = module(target_noise=0.5, target_noise_clip=0.5)
    smooth.make_target_networks()
    s1, s2 = (smooth.forward_target({Columns.OBS: obs}) for _ in range(2))
    assert not torch.allclose(s1, s2)


def test_policy_delay_skips_actor_updates() -> None:
    learner, _ = _learner(DDPGConfig().training(policy_delay=2))
    assert [learner.actor_update_due("m", 2) for _ in range(5)] == [True, False, True, False, True]
    assert [learner.actor_update_due("x", 1) for _ in range(3)] == [True, True, True]


def test_the_actor_waits_for_its_warm_up_while_the_targets_keep_their_schedule() -> None:
    """``num_steps_sampled_before_actor_learns``: no actor step before that many env steps were
    sampled (RLlib's lifetime counter, which a checkpoint restores), TD3's delay after; the target
    networks' schedule (``actor_updated``) runs through the warm-up."""
    learner, _ = _learner(DDPGConfig().training(policy_delay=2, num_steps_sampled_before_actor_learns=100))
    due, schedule = [], []
    for sampled in (0, 50, 99, 99, 100, 100, 150, 150):
        learner.before_gradient_based_update(timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: sampled})
        due.append(learner.actor_update_due("m", 2, 100))
        schedule.append(learner.actor_updated["m"])
    assert due == [False, False, False, False, True, False, True, False]
    assert schedule == [True, False, True, False, True, False, True, False]


def test_bc_weight_puts_the_learner_in_td3_bc_from_the_start() -> None:
    """``ddpg.bc_weight`` > 0: the learner starts in "online" cloning with that weight; 0 keeps DDPG."""
    learner, _ = _learner(DDPGConfig().training(bc_weight=0.4))
    assert (learner.bc_mode, learner.bc_weight) == ("online", 0.4)
    plain, _ = _learner(DDPGConfig())
    assert (plain.bc_mode, plain.bc_weight) == ("off", 0.0)


@pytest.mark.parametrize("train_meta", [True, False])
def test_train_meta_false_leaves_the_meta_learner_to_no_optimizer(train_meta: bool) -> None:
    """``ddpg.train_meta: false`` keeps a loaded meta-learner as it is: no optimizer holds its
    weights (the critic's still holds the critic's)."""
    learner, _ = _learner(DDPGConfig().training(train_meta=train_meta))
    module = learner.module["default_policy"].unwrapped()
    stepped = {id(p) for opt in learner._named_optimizers.values() for g in opt.param_groups for p in g["params"]}
    assert bool({id(p) for p in module.meta.parameters()} & stepped) is train_meta
    assert {id(p) for p in module.critic.parameters()} <= stepped


def test_td3_preset() -> None:
    cfg = DDPGConfig.td3()
    assert (cfg.twin_q, cfg.policy_delay, cfg.target_noise, cfg.target_noise_clip) == (True, 2, 0.2, 0.5)
    plain = DDPGConfig()
    assert (plain.twin_q, plain.policy_delay, plain.target_noise) == (False, 1, 0.0)


def test_polyak_update() -> None:
    learner, _ = _learner(DDPGConfig().training(tau=0.1))
    m = learner.module["default_policy"]
    with torch.no_grad():
        for p in m.actor.parameters():
            p.fill_(1.0)
        for p in m.target_actor.parameters():
            p.fill_(0.0)
    learner.after_gradient_based_update(timesteps={"num_env_steps_sampled_lifetime": 10})
    for p in m.target_actor.parameters():
        torch.testing.assert_close(p, torch.full_like(p, 0.1))


def test_shapes_masks_and_size_transfer() -> None:
    m = module()
    obs = observations(3)
    a = m.act(obs)
    assert a.shape == (3, 18)
    # chain3 has 3 services: padding rows 3..5 act 0.
    assert torch.all(a.reshape(3, 6, 3)[:, 3:] == 0)
    assert torch.all(a.abs() <= 1)
    # The same weights act on single (1 service) through the same layout.
    single = AutoscaleEnv({**ENV, "app": "single"})
    o, _ = single.reset(seed=1)
    a1 = m.act(torch.as_tensor(o)[None])
    assert torch.all(a1.reshape(6, 3)[1:] == 0) and a1.reshape(6, 3)[0].abs().sum() > 0


def test_inference_module_holds_no_critic() -> None:
    m = module(inference_only=True)
    names = {n.split(".")[0] for n, _ in m.named_parameters()}
    assert names == {"actor", "meta"}
    assert not hasattr(m, "critic")
    assert "critic" in m.get_non_inference_attributes()


def test_export_round_trip_gives_identical_actions(tmp_path: Path) -> None:
    m = module()
    export_policy(m, tmp_path / "p", ENV, {"note": "test"})
    loaded = DDPGPolicy.load(tmp_path / "p")
    obs = observations(4).numpy()
    for o in obs:
        np.testing.assert_array_equal(loaded.act(o, None)[0], m.act(torch.as_tensor(_block(o)))[0].detach().numpy())
    assert loaded.env_overrides() == {"max_services": 6, "history_window": 4}
    assert loaded.embedding(obs).shape == (4, 4)


@pytest.mark.parametrize("damage", ["missing", "garbage", "wrong_shape"])
def test_bad_policy_folder_names_the_path(tmp_path: Path, damage: str) -> None:
    m = module()
    folder = tmp_path / "p"
    export_policy(m, folder, ENV)
    if damage == "missing":
        (folder / "policy.pt").unlink()
    elif damage == "garbage":
        (folder / "policy.pt").write_bytes(b"not a torch file")
    else:
        state = torch.load(folder / "policy.pt", weights_only=True)
        state = {k: v[..., :1] for k, v in state.items()}
        torch.save(state, folder / "policy.pt")
    with pytest.raises(ConfigError) as err:
        DDPGPolicy.load(folder)
    assert str(folder) in str(err.value) and "\n" not in str(err.value)


def test_exploration_noise_schedule() -> None:
    n = ExplorationNoise(type="gaussian", sigma=0.4, final_sigma=0.1, decay_steps=100)
    assert n.scale() == pytest.approx(0.4)
    n.sample(torch.zeros(50, 3))
    assert n.scale() == pytest.approx(0.25)
    n.sample(torch.zeros(100, 3))
    assert n.scale() == pytest.approx(0.1)
    ou = ExplorationNoise(type="ou", sigma=0.2, final_sigma=0.2, decay_steps=0, ou_theta=0.15)
    xs = torch.stack([ou.sample(torch.zeros(1000, 1)) for _ in range(50)])
    # OU noise is correlated in time: consecutive samples are far more alike than independent ones.
    corr = np.corrcoef(xs[:-1].flatten().numpy(), xs[1:].flatten().numpy())[0, 1]
    assert corr > 0.7
    with pytest.raises(ValueError, match=r"exploration\.type"):
        ExplorationNoise(type="uniform")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"policy_delay": 0}, "policy_delay"),
        ({"tau": 0.0}, "tau"),
        ({"actor_hiddens": []}, "actor_hiddens"),
        ({"exploration": {"sigma": -1}}, "exploration.sigma"),
        ({"aux_loss_weight": -1.0}, "aux_loss_weight"),
        ({"saturation_penalty": -0.1}, "saturation_penalty"),
        ({"saturation_penalty": "high"}, "saturation_penalty"),
        ({"num_steps_sampled_before_actor_learns": -1}, "num_steps_sampled_before_actor_learns"),
        ({"num_steps_sampled_before_actor_learns": 0.5}, "num_steps_sampled_before_actor_learns"),
        ({"bc_weight": -1.0}, "bc_weight"),
        ({"train_meta": "no"}, "train_meta: must be true or false"),
        ({"bc_weight": 1.0, "bootstrap": {"heuristic": "hpa@0.5"}}, "bc_weight: bootstrapping sets"),
    ],
)
def test_config_validate(kwargs: dict, message: str) -> None:
    cfg = DDPGConfig().environment("Pendulum-v1").training(**kwargs)
    with pytest.raises(ValueError, match=message):
        cfg.validate()


def test_flat_mlp_for_other_box_envs() -> None:
    e = gym.make("Pendulum-v1")
    m = DDPGTorchRLModule(
        observation_space=e.observation_space,
        action_space=e.action_space,
        model_config={"actor_hiddens": [8], "critic_hiddens": [8]},
    )
    out = m._forward_exploration({Columns.OBS: torch.zeros(2, 3)})
    assert out[Columns.ACTIONS].shape == (2, 1)
    assert F["mask"] == autoscale_layout(4, 0)["mask_index"]


def test_shipped_pretrained_policy_acts_on_its_app_and_others() -> None:
    from policies.registry import PRETRAINED_DIR

    policy = DDPGPolicy.load(PRETRAINED_DIR, "ddpg:pretrained")
    need = policy.env_overrides()
    assert need["history_window"] > 0
    assert (PRETRAINED_DIR / "MODEL_CARD.md").exists()
    for app in ("social-network", "chain3", "ecommerce"):
        e = AutoscaleEnv({"app": app, **need, "noise": 0.0})
        obs, _ = e.reset(seed=0)
        state = policy.initial_state()
        for _ in range(3):
            action, state = policy.act(obs, state)
            assert action.shape == e.action_space.shape and np.all(np.abs(action) <= 1.0)
            obs, *_ = e.step(action)


CTX_ENV = {**ENV, "context_span": 8, "context_buckets": 2, "workloads": ["family:ramp", "family:spikes"]}


def ctx_module(inference_only: bool = False) -> DDPGTorchRLModule:
    e = AutoscaleEnv(CTX_ENV)
    torch.manual_seed(0)
    return DDPGTorchRLModule(
        observation_space=e.observation_space,
        action_space=e.action_space,
        inference_only=inference_only,
        model_config={
            "layout": autoscale_layout(6, 4, 8, 2, n_workloads=2),
            "actor_hiddens": [16],
            "critic_hiddens": [16],
            "embedding_dim": 4,
            "meta_hidden": 8,
        },
    )


def ctx_observations(n: int = 12) -> torch.Tensor:
    e = AutoscaleEnv(CTX_ENV)
    obs, _ = e.reset(seed=1)
    out = [obs]
    for _ in range(n - 1):
        obs, *_ = e.step(np.zeros(e.action_space.shape))
        out.append(obs)
    return torch.as_tensor(np.stack(out))


def test_the_embedding_reads_the_load_context() -> None:
    m = ctx_module()
    obs = ctx_observations()
    split = m.split
    assert AutoscaleEnv(CTX_ENV).layout.context_size == split.C
    _, _, hist, ctx, _ = split(obs)
    np.testing.assert_array_equal(ctx.numpy(), AutoscaleEnv(CTX_ENV).layout.context(obs.numpy()))
    assert hist.shape == (len(obs), 4, 13)
    changed = obs.clone()
    changed[:, -split.C :] += 1.0
    with torch.no_grad():
        assert not torch.allclose(m.embedding(obs), m.embedding(changed))
        with pytest.raises(ValueError, match="load context"):
            m.meta(hist, None)


def test_workload_head_trains_and_its_loss_by_hand() -> None:
    from policies.ddpg.torch.ddpg_torch_learner import workload_loss

    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0], [1.0, 1.0]])
    labels = torch.tensor([0, 0, -1, 1])
    finite = torch.tensor([1.0, 1.0, 1.0, 0.0])
    # Rows 0 and 1 count (row 2 unlabelled, row 3 not finite).
    expected = 0.5 * (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(1.0)))
    loss, acc = workload_loss(logits, labels, finite)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert acc == pytest.approx(0.5)
    none, acc = workload_loss(logits, torch.full((4,), -1), finite)
    assert none.item() == 0.0 and acc is None
    out_of_range, _ = workload_loss(logits, torch.tensor([7, 7, 7, 7]), finite)
    assert out_of_range.item() == 0.0
    obs = ctx_observations(6)
    assert module().meta.classify is None, "no head without n_workloads"
    m = ctx_module()
    with torch.no_grad():
        assert m.meta.workload_logits(m.split(obs)[3]).shape == (6, 2)
        assert m.embedding(obs).shape == (6, 4 + 16), "trajectory embedding and workload code"


def test_workload_labels_follow_their_rows_through_the_learner_connector() -> None:
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    from policies.ddpg.workload_labels import WORKLOAD_LABEL, label_of

    e = AutoscaleEnv(CTX_ENV)
    cfg = (
        DDPGConfig()
        .environment(observation_space=e.observation_space, action_space=e.action_space)
        .training(layout=autoscale_layout(6, 4, 8, 2, n_workloads=2), workload_loss_weight=1.0)
    )
    pipeline = cfg.build_learner_connector(e.observation_space, e.action_space)
    episodes = []
    for k, (label, n) in enumerate([(1, 3), (0, 2), (-1, 2)]):
        obs = [np.full(e.observation_space.shape, 10 * k + t, np.float32) for t in range(n + 1)]
        infos = [{"workload_id": label} if label >= 0 else {} for _ in range(n + 1)]
        episodes.append(
            SingleAgentEpisode(
                observations=obs,
                infos=infos,
                actions=[np.zeros(e.action_space.shape, np.float32)] * n,
                rewards=[0.0] * n,
                observation_space=e.observation_space,
                action_space=e.action_space,
                len_lookback_buffer=0,
            )
        )
    m = ctx_module()
    batch = pipeline(rl_module=m, batch={}, episodes=episodes, explore=False)
    rows = batch[Columns.OBS][:, 0].long().tolist()
    labels = batch[WORKLOAD_LABEL].tolist()
    assert len(rows) == len(labels) == 7
    expected = {0: 1, 1: 0, 2: -1}
    assert labels == [expected[r // 10] for r in rows]
    assert label_of({"workload_id": True}) == -1 and label_of(None) == -1


def test_export_round_trip_with_context_and_workload_head(tmp_path: Path) -> None:
    m = ctx_module()
    export_policy(m, tmp_path / "p", {k: v for k, v in CTX_ENV.items() if k != "workloads"})
    loaded = DDPGPolicy.load(tmp_path / "p")
    obs = ctx_observations(5).numpy()
    for o in obs:
        np.testing.assert_array_equal(loaded.act(o, None)[0], m.act(torch.as_tensor(_block(o)))[0].detach().numpy())
    padded = np.concatenate([obs, np.zeros((ROW_BLOCK - len(obs), obs.shape[1]), np.float32)])
    np.testing.assert_array_equal(
        loaded.embedding(obs), m.embedding(torch.as_tensor(padded))[: len(obs)].detach().numpy()
    )
    assert loaded.env_overrides() == {"max_services": 6, "history_window": 4, "context_span": 8, "context_buckets": 2}


@pytest.mark.parametrize(
    ("layout", "buffer", "message"),
    [
        (autoscale_layout(6, 4), "EpisodeReplayBuffer", r"workload_loss_weight: needs layout\['n_workloads'\]"),
        (autoscale_layout(6, 4, n_workloads=3), "PrioritizedEpisodeReplayBuffer", "workload_loss_weight: needs"),
    ],
)
def test_workload_loss_needs_labels(layout: dict, buffer: str, message: str) -> None:
    cfg = (
        DDPGConfig()
        .environment("Pendulum-v1")
        .training(layout=layout, workload_loss_weight=1.0, replay_buffer_config={"type": buffer, "capacity": 100})
    )
    with pytest.raises(ValueError, match=message):
        cfg.validate()
