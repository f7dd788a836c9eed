"""DDPG beyond one local learner: two CPU learners (RLlib's LearnerGroup), and a GPU learner."""

from __future__ import annotations

import pytest
import ray
import torch

from aware_ray.training.config import load_train_config
from aware_ray.training.train import build_algo_config
from tests.tiny_training import tiny_overrides

TINY = tiny_overrides(2)


def _values(results) -> list:
    """Plain values of a ``foreach_learner`` answer (remote learners answer with call results)."""
    return [r.get() if hasattr(r, "get") else r for r in results]


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def test_two_cpu_learners_train_and_stay_in_step(local_ray) -> None:
    torch.set_num_threads(1)

    def _actor_state(learner) -> dict[str, torch.Tensor]:  # nested: shipped to the learner actors by value
        actor = learner.module["default_policy"].unwrapped().actor
        return {k: v.detach().cpu().clone() for k, v in actor.state_dict().items()}

    cfg = load_train_config("experiments/configs/demo.yaml", TINY)
    algo = build_algo_config(cfg).learners(num_learners=2, num_cpus_per_learner=1).build_algo()
    try:
        before = _values(algo.learner_group.foreach_learner(_actor_state))
        result = algo.train()
        assert result["learners"]["default_policy"]["num_module_steps_trained"] > 0
        after = _values(algo.learner_group.foreach_learner(_actor_state))
        assert len(after) == 2
        # Data-parallel: each learner trained on its shard, gradients averaged, so both hold the
        # same weights, and those moved.
        for key in after[0]:
            torch.testing.assert_close(after[0][key], after[1][key])
        assert any(not torch.equal(before[0][k], after[0][k]) for k in after[0])
        # The env runner acts with the learners' weights.
        local = algo.get_module().actor.state_dict()
        for key, value in after[0].items():
            torch.testing.assert_close(local[key].cpu(), value)
    finally:
        algo.stop()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here; the GPU learner path runs where one is")
def test_gpu_learner_trains_and_the_module_comes_back_to_cpu(local_ray) -> None:
    cfg = load_train_config("experiments/configs/demo.yaml", TINY)
    algo = build_algo_config(cfg).learners(num_learners=0, num_gpus_per_learner=1).build_algo()
    try:
        result = algo.train()
        assert result["learners"]["default_policy"]["num_module_steps_trained"] > 0
        devices = _values(
            algo.learner_group.foreach_learner(
                lambda learner: str(next(learner.module["default_policy"].unwrapped().parameters()).device)
            )
        )
        assert all(d.startswith("cuda") for d in devices)
        module = algo.get_module()  # the env runner's copy, on CPU
        obs = torch.zeros((1, *module.observation_space.shape))
        with torch.no_grad():
            assert module.act(obs).shape == (1, *module.action_space.shape)
    finally:
        algo.stop()
