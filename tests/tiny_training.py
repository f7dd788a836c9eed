"""The smallest DDPG training a test can build from demo.yaml: overrides shared by the RLlib tests."""

from __future__ import annotations


def tiny_overrides(envs_per_runner: int = 2) -> list[str]:
    """``--set`` overrides that shrink demo.yaml to seconds per iteration (one local env runner)."""
    return [
        "env.workloads=[family:diurnal, family:bursty]",
        "env.episode_steps=20",
        "env.history_window=4",
        "env.context_span=8",
        "env.context_buckets=4",
        "ddpg.actor_hiddens=[16]",
        "ddpg.critic_hiddens=[16]",
        "ddpg.meta_hidden=8",
        "ddpg.embedding_dim=4",
        "ddpg.synthetic_contexts=8",
        "ddpg.training_intensity=4",
        "ddpg.num_steps_sampled_before_learning_starts=16",
        "ddpg.train_batch_size_per_learner=16",
        "run.num_env_runners=0",
        f"run.num_envs_per_env_runner={envs_per_runner}",
        "run.rollout_fragment_length=8",
        "run.steps_per_iteration=48",
    ]
