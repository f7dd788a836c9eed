"""One-iteration RLlib smoke tests: DDPG and TD3 train on the simulated env with 2 env runners."""

from __future__ import annotations

import numpy as np
import pytest
import ray
import torch

from envs.autoscale_env import AutoscaleEnv
from policies.ddpg import DDPGConfig
from policies.ddpg.layout import autoscale_layout

ENV = {"app": "chain3", "max_services": 4, "history_window": 4, "episode_steps": 40}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def tiny(base: DDPGConfig, env: dict, **training) -> DDPGConfig:
    """``base`` with small networks, 2 env runners and one short iteration on ``env``."""
    return (
        base.environment(AutoscaleEnv, env_config=env)
        .env_runners(
            num_env_runners=2, num_envs_per_env_runner=1, rollout_fragment_length=20, num_cpus_per_env_runner=1
        )
        .training(
            actor_hiddens=[16],
            critic_hiddens=[16],
            embedding_dim=4,
            meta_hidden=8,
            num_steps_sampled_before_learning_starts=40,
            training_intensity=32,
            train_batch_size_per_learner=32,
            **training,
        )
        .reporting(min_sample_timesteps_per_iteration=120, min_time_s_per_iteration=0)
    )


@pytest.mark.parametrize("preset", ["ddpg", "td3"])
def test_one_training_iteration_with_two_env_runners(local_ray, preset: str) -> None:
    torch.set_num_threads(1)
    base = DDPGConfig.td3() if preset == "td3" else DDPGConfig()
    cfg = tiny(base, ENV, layout=autoscale_layout(4, 4))
    algo = cfg.build_algo()
    try:
        before = {k: v.clone() for k, v in algo.get_module().state_dict().items() if k.startswith("actor.")}
        result = algo.train()
        learner = result["learners"]["default_policy"]
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 120
        assert np.isfinite(learner["losses/critic"])
        assert "losses/meta_aux" in learner
        after = algo.get_module().state_dict()
        assert any(not torch.equal(before[k], after[k]) for k in before), "the actor did not move"
        # Env runners hold the inference-only module: no critic there.
        names = algo.env_runner_group.foreach_env_runner(
            lambda r: sorted({n.split(".")[0] for n, _ in r.module.named_parameters()}), local_env_runner=False
        )
        assert names and all(n == ["actor", "meta"] for n in names)
    finally:
        algo.stop()


def test_workload_identification_trains_from_replayed_infos(local_ray) -> None:
    """With the long load context and the workload loss on, replayed steps carry their workload
    label from the env's infos to the learner, contexts of fresh instances join them, and the
    loss is trained on."""
    torch.set_num_threads(1)
    env = {
        **ENV,
        "workloads": ["family:ramp", "family:spikes", "family:step"],
        "context_span": 16,
        "context_buckets": 4,
    }
    cfg = tiny(
        DDPGConfig(),
        env,
        layout=autoscale_layout(4, 4, 16, 4, n_workloads=3),
        workload_loss_weight=1.0,
        synthetic_contexts=16,
    )
    algo = cfg.build_algo()
    try:
        result = algo.train()
        learner = result["learners"]["default_policy"]
        assert np.isfinite(learner["losses/meta_workload"]) and learner["losses/meta_workload"] > 0
        # Logged only when replayed rows carried their labels; 0 would mean no row was labelled
        # right, which random logits over three workloads and a batch of 32 miss with p < 1e-5.
        assert 0.0 < learner["meta/workload_accuracy"] <= 1.0
        # Fresh workload instances were drawn into the pool, two per update after the first fill.
        assert learner["meta/context_instances"] > 8192 // 16
        # The runners' meta-learner reads the load context with the weights the learner just trained.
        trained = {n: p.detach().numpy() for n, p in algo.get_module().named_parameters() if n.startswith("meta.code")}
        runners = algo.env_runner_group.foreach_env_runner(
            lambda r: {n: p.detach().numpy() for n, p in r.module.named_parameters() if n.startswith("meta.code")},
            local_env_runner=False,
        )
        assert trained and len(runners) == 2
        for code in runners:
            assert code.keys() == trained.keys()
            for name, weights in code.items():
                np.testing.assert_array_equal(weights, trained[name], err_msg=name)
    finally:
        algo.stop()
