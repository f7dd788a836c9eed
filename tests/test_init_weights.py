"""Fine-tuning from earlier weights (``run.init_from``): the merge rules, and a real RLlib algorithm
started from a checkpoint and from an exported policy."""

from __future__ import annotations

from pathlib import Path

import pytest
import ray
import torch

from aware_ray.training.config import load_train_config
from aware_ray.training.init_weights import load_initial_weights, merged_state, resolve_source
from aware_ray.training.train import build_algo_config
from envs.errors import ConfigError
from policies.ddpg.policy import export_policy
from tests.tiny_training import tiny_overrides

DEMO = "experiments/configs/demo.yaml"


def _t(*shape: int, fill: float = 0.0) -> torch.Tensor:
    return torch.full(shape, fill)


def test_merge_checkpoint_loads_everything_and_drops_heads_the_model_lacks():
    own = {"actor.w": _t(2, 2), "critic.w": _t(3), "target_actor.w": _t(2, 2), "meta.g": _t(4)}
    src = {**{k: v + 1 for k, v in own.items()}, "meta.classify.weight": _t(12, 16, fill=1)}
    out, what = merged_state(own, src, "checkpoint")
    assert all(torch.equal(out[k], own[k] + 1) for k in own)
    assert what["dropped"] == ["meta.classify.weight"] and what["fresh"] == []
    assert sorted(what["loaded"]) == sorted(own)


def test_merge_policy_seeds_targets_and_keeps_critics_fresh():
    own = {
        "actor.w": _t(2),
        "meta.g": _t(3),
        "critic.w": _t(2),
        "target_actor.w": _t(2),
        "target_meta.g": _t(3),
        "target_critic.w": _t(2),
    }
    src = {"actor.w": _t(2, fill=5), "meta.g": _t(3, fill=7)}
    out, what = merged_state(own, src, "policy")
    assert torch.equal(out["target_actor.w"], _t(2, fill=5)) and torch.equal(out["target_meta.g"], _t(3, fill=7))
    assert torch.equal(out["critic.w"], _t(2)) and sorted(what["fresh"]) == ["critic.w", "target_critic.w"]


@pytest.mark.parametrize(
    ("own", "src", "message"),
    [
        ({"actor.w": _t(4)}, {"actor.w": _t(5)}, "weight 'actor.w' has shape (5,), the model's is (4,)"),
        ({"actor.w": _t(2), "meta.g": _t(2)}, {"actor.w": _t(2)}, "the source has no weight 'meta.g'"),
        ({"critic.w": _t(2), "critic_twin.w": _t(2)}, {"critic.w": _t(2)}, "no weight 'critic_twin.w'"),
    ],
)
def test_merge_refuses_other_layouts(own, src, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        merged_state(own, src, "checkpoint")


def test_resolve_source_names_what_it_needs(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"run.init_from: .*: not found"):
        resolve_source(tmp_path / "nope")
    with pytest.raises(ConfigError, match="not an RLlib checkpoint, a training run folder or an exported policy"):
        resolve_source(tmp_path)
    assert resolve_source("policies/pretrained")[0] == "policy"


def test_bad_init_from_type_is_one_line():
    with pytest.raises(ConfigError, match=r"run.init_from: expected a string, got 3"):
        load_train_config(DEMO, ["run.init_from=3"])


def _weights(algo) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in algo.get_module().state_dict().items()}


def _runner_actor(algo) -> dict[str, torch.Tensor]:
    module = algo.env_runner.module
    return {k: v.detach().clone() for k, v in module.state_dict().items() if k.startswith("actor.")}


def test_algorithm_starts_from_a_checkpoint_and_from_an_exported_policy(tmp_path: Path):
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        cfg = load_train_config(DEMO, tiny_overrides())
        src = build_algo_config(cfg).build_algo()
        src.train()
        src.save_to_path(str(tmp_path / "ckpt"))
        export_policy(src.get_module(), tmp_path / "policy", cfg.env.to_dict())
        trained = _weights(src)
        src.stop()

        # Fine-tuning on other workloads without the workload head: the head is dropped, the rest loads.
        ft = load_train_config(
            DEMO,
            [
                *tiny_overrides(),
                "env.workloads=[family:spikes]",
                "ddpg.workload_loss_weight=0",
                "ddpg.synthetic_contexts=0",
            ],
        )
        algo = build_algo_config(ft).build_algo()
        fresh = _weights(algo)
        report = load_initial_weights(algo, tmp_path / "ckpt")
        now = _weights(algo)
        assert report["kind"] == "checkpoint" and report["dropped"] >= 1 and report["fresh"] == 0
        assert all(torch.equal(now[k], trained[k]) for k in now)
        assert any(not torch.equal(fresh[k], trained[k]) for k in now)
        runner = _runner_actor(algo)  # the env runner acts with the loaded actor from the first step
        assert runner and all(torch.equal(runner[k], trained[k]) for k in runner)
        algo.train()  # and trains on from there
        algo.stop()

        algo = build_algo_config(ft).build_algo()
        fresh = _weights(algo)
        report = load_initial_weights(algo, tmp_path / "policy")
        now = _weights(algo)
        assert report["kind"] == "policy" and report["fresh"] > 0
        assert all(torch.equal(now[k], trained[k]) for k in now if k.startswith(("actor.", "target_actor.")))
        assert all(torch.equal(now[k], fresh[k]) for k in now if k.startswith("critic."))
        algo.stop()

        # A model without the meta-learner cannot start from one with it (the actor's inputs differ).
        flat = load_train_config(
            DEMO,
            [
                *tiny_overrides(),
                "env.history_window=0",
                "env.context_span=0",
                "ddpg.workload_loss_weight=0",
                "ddpg.synthetic_contexts=0",
                "ddpg.aux_loss_weight=0",
            ],
        )
        algo = build_algo_config(flat).build_algo()
        with pytest.raises(ConfigError, match=r"run.init_from: weight 'actor.encode.0.weight' has shape"):
            load_initial_weights(algo, tmp_path / "ckpt")
        algo.stop()
    finally:
        ray.shutdown()
