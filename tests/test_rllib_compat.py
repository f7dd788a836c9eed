"""One test per hook of policies/ddpg/rllib_compat.py: run these first on a new Ray version."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray
import torch

from aware_ray.training.config import load_train_config
from aware_ray.training.train import build_algo_config
from envs.autoscale_env import AutoscaleEnv
from envs.vector_env import AutoscaleVectorEnv
from policies.ddpg import DDPG, DDPGConfig
from policies.ddpg import rllib_compat as compat
from policies.ddpg.flat_replay_buffer import FlatReplayBuffer
from tests.tiny_training import tiny_overrides

TINY = tiny_overrides(3)


@pytest.fixture(scope="module")
def algo():
    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    cfg = load_train_config("experiments/configs/demo.yaml", TINY)
    algo = build_algo_config(cfg).training(replay_in_checkpoints=True).build_algo()
    algo.train()
    yield algo
    algo.stop()
    ray.shutdown()


def test_learner_base_classes_still_offer_the_hooks_ddpg_overrides() -> None:
    from policies.ddpg.torch.ddpg_torch_learner import DDPGTorchLearner

    assert issubclass(DDPGTorchLearner, compat.DQNTorchLearner) and issubclass(DDPGTorchLearner, compat.DQNLearner)
    for hook in ("configure_optimizers_for_module", "compute_loss_for_module", "compute_gradients"):
        assert callable(getattr(compat.DQNTorchLearner, hook))
    assert callable(compat.DQNLearner.after_gradient_based_update)
    assert issubclass(DDPG, compat.SAC) and issubclass(DDPGConfig, compat.SACConfig)
    # SAC's config still carries what DDPG's relies on.
    sac = compat.SACConfig()
    for key in ("actor_lr", "critic_lr", "tau", "n_step", "replay_buffer_config", "training_intensity", "twin_q"):
        assert hasattr(sac, key), key


def test_replay_ratio_weights() -> None:
    cfg = (
        DDPGConfig()
        .env_runners(num_envs_per_env_runner=4, rollout_fragment_length=16)
        .training(train_batch_size_per_learner=256, training_intensity=32)
    )
    # 64 steps per round (one local runner), 256 per update: 32 x 64 / 256 = 8 updates per round.
    assert compat.calculate_rr_weights(cfg) == [1, 8]
    assert compat.calculate_rr_weights(cfg.training(training_intensity=1)) == [4, 1]


def test_extend_model_config_reaches_the_module_config() -> None:
    cfg = DDPGConfig().training(embedding_dim=7, actor_hiddens=[5], twin_q=True)
    assert cfg.model_config["embedding_dim"] == 7
    assert cfg.model_config["actor_hiddens"] == [5]
    assert cfg.model_config["twin_q"] is True  # SAC's own include survives


def test_sac_validate_accepts_the_flat_buffer_and_still_checks() -> None:
    cfg = DDPGConfig().environment("Pendulum-v1")
    compat.sac_validate(cfg)
    assert cfg.replay_buffer_config["type"] == "FlatReplayBuffer"
    bad = DDPGConfig().environment("Pendulum-v1").training(replay_buffer_config={"type": "MultiAgentReplayBuffer"})
    with pytest.raises(ValueError, match="EpisodeReplayBuffer"):
        compat.sac_validate(bad)


def test_replay_buffer_factory_builds_the_flat_buffer(algo) -> None:
    assert isinstance(algo.local_replay_buffer, FlatReplayBuffer)
    assert len(algo.local_replay_buffer) > 0
    assert algo.local_replay_buffer.n_step == algo.config.n_step


def test_sample_episodes(algo) -> None:
    episodes, metrics = compat.sample_episodes(algo)
    assert sum(len(e) for e in episodes) == 3 * 8
    assert isinstance(metrics, list) and metrics


def test_module_to_env_pipeline(algo) -> None:
    pipeline = compat.module_to_env_pipeline(algo.env_runner)
    assert pipeline is not None and len(pipeline.connectors) > 0


def test_env_runner_attributes(algo) -> None:
    attrs = compat.env_runner_attributes(algo.env_runner)
    attrs["probe_key"] = 1
    assert algo.env_runner.probe_key == 1
    del attrs["probe_key"]


def test_sub_envs_are_the_vector_envs_clusters(algo) -> None:
    envs = compat.sub_envs(algo.env_runner)
    assert len(envs) == 3 and all(isinstance(e, AutoscaleEnv) for e in envs)
    assert isinstance(algo.env_runner.env.unwrapped, AutoscaleVectorEnv)


def test_module_and_replay_buffer_restore_from_a_checkpoint(algo, tmp_path: Path) -> None:
    from ray.rllib.core.rl_module.rl_module import RLModule

    algo.save_to_path(str(tmp_path / "ckpt"))
    module = RLModule.from_checkpoint(str(tmp_path / "ckpt" / compat.MODULE_IN_CHECKPOINT))
    obs = torch.zeros((1, *algo.get_module().observation_space.shape))
    with torch.no_grad():
        torch.testing.assert_close(module.act(obs), algo.get_module().act(obs))
    fresh = algo.config.copy(copy_frozen=False).build_algo()
    try:
        assert len(fresh.local_replay_buffer) == 0
        fresh.restore_from_path(str(tmp_path / "ckpt"))
        assert len(fresh.local_replay_buffer) == len(algo.local_replay_buffer) > 0
        ours, theirs = algo.local_replay_buffer.arrays, fresh.local_replay_buffer.arrays
        n = len(algo.local_replay_buffer)
        assert all((ours[k][:n] == theirs[k][:n]).all() for k in ours)
    finally:
        fresh.stop()
