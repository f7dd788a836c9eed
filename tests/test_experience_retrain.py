"""Retraining from recorded experience: controller records -> replay buffer -> one DDPG iteration ->
an exported policy that acts; the learner's replayed actions are the records' applied actions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import ray
import torch
from ray.rllib.core.columns import Columns

from aware_ray.control.config import load_control_config
from aware_ray.control.experience_reader import read_records, seed_replay, transitions
from aware_ray.control.loop import Controller, policy_facts
from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from policies.ddpg import DDPGConfig
from policies.ddpg.flat_replay_buffer import FlatReplayBuffer
from policies.ddpg.layout import autoscale_layout
from policies.ddpg.policy import DDPGPolicy, export_policy

SPEC = "lean@0.1:ddpg:pretrained"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exp")
    cfg = {
        "endpoint": "http://127.0.0.1:9",  # down: the heuristic acts, as in a bootstrap's first days
        "timeout_ms": 50,
        "speed": "max",
        "policy": SPEC,
        "apps": [{"app": "chain3", "family": "spikes", "seed": 0, "max_hours": 0.25}],
        "experience": {"file": str(tmp / "exp.jsonl")},
        "out": str(tmp / "c"),
    }
    Controller(load_control_config(None, cfg)).run()
    return tmp / "exp.jsonl"


def test_transitions_chain_consecutive_records(recorded):
    records = read_records(str(recorded))
    (run,) = transitions(records, len(records[0]["observation"]))
    assert len(run["actions"]) == len(records) - 1
    assert np.array_equal(run["observations"][1], np.asarray(records[1]["observation"], np.float32))
    assert np.array_equal(run["actions"][0], np.asarray(records[0]["applied_action"], np.float32))
    gap = [r for r in records if r["interval"] != 10]
    assert [len(r["actions"]) for r in transitions(gap, len(records[0]["observation"]))] == [9, len(records) - 12]


def test_bad_experience_sources_are_one_line_errors(tmp_path, recorded):
    with pytest.raises(ConfigError, match="cannot read"):
        read_records(str(tmp_path / "missing.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{}\nnot json\n")
    with pytest.raises(ConfigError, match="line 2"):
        read_records(str(bad))
    with pytest.raises(ConfigError, match="observation size"):
        transitions(read_records(str(recorded)), 10)


@pytest.mark.slow
def test_fine_tuned_from_experience_runs_and_learner_sees_the_records_actions(recorded, tmp_path):
    records = read_records(str(recorded))
    overrides, _, _ = policy_facts(SPEC)
    env = {"app": "chain3", **overrides, "episode_steps": 40, "workloads": ["family:spikes"]}
    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        cfg = (
            DDPGConfig()
            .environment(AutoscaleEnv, env_config=env)
            .env_runners(num_env_runners=0, rollout_fragment_length=20)
            .training(
                actor_hiddens=[16],
                critic_hiddens=[16],
                embedding_dim=4,
                meta_hidden=8,
                num_steps_sampled_before_learning_starts=20,
                training_intensity=32,
                train_batch_size_per_learner=32,
                layout=autoscale_layout(16, 32, 128, 16),
            )
            .reporting(min_sample_timesteps_per_iteration=20, min_time_s_per_iteration=0)
        )
        algo = cfg.build_algo()
        try:
            added = seed_replay(algo, str(recorded))
            assert added == len(records) - 1
            recorded_actions = {np.asarray(r["applied_action"], np.float32).tobytes() for r in records}
            recorded_obs = {np.asarray(r["observation"], np.float32).tobytes() for r in records}
            buffer = algo.local_replay_buffer
            if isinstance(buffer, FlatReplayBuffer):  # its sample is the learner's train batch itself
                batch = buffer.sample(num_items=64)
                actions, observations = list(batch[Columns.ACTIONS]), list(batch[Columns.OBS])
            else:
                sampled = buffer.sample(num_items=64, n_step=1, sample_episodes=True)
                actions = [a for ep in sampled for a in ep.get_actions()]
                observations = [o for ep in sampled for o in ep.get_observations()[:-1]]
            assert actions and all(np.asarray(a, np.float32).tobytes() in recorded_actions for a in actions)
            assert all(np.asarray(o, np.float32).tobytes() in recorded_obs for o in observations)
            result = algo.train()
            assert np.isfinite(result["learners"]["default_policy"]["losses/critic"])
            export_policy(algo.get_module(), tmp_path / "policy", env, {"experience": str(recorded)})
        finally:
            algo.stop()
    finally:
        ray.shutdown()
    policy = DDPGPolicy.load(tmp_path / "policy")
    action, _ = policy.act(np.asarray(records[-1]["observation"], np.float32), None)
    assert action.shape == (48,) and np.isfinite(action).all()
    assert json.loads((tmp_path / "policy" / "policy.json").read_text())["observation_schema"]["layout"]["size"] == 768
