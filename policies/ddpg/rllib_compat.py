"""Every private or version-sensitive piece of RLlib this project leans on, in one place.

RLlib ships no DDPG, so ours is built from SAC's config and algorithm and DQN's learner, and a
few things it needs are reachable only through RLlib's internals. Each such reach is a named
hook here, and tests/test_rllib_compat.py holds one test per hook, so a Ray upgrade breaks that
test file, in seconds, instead of a training run an hour in.

To move the Ray pin (setup.cfg, ``ray[...]==2.60.*``): install the new version, run
``pytest tests/test_rllib_compat.py``, fix the hooks that fail here (and nowhere else), then
run the DDPG tests and ``aware-ray bench ddpg-pendulum``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Base classes DDPG subclasses: SAC's config and algorithm (actor/critic rates, tau, n-step,
# replay, training intensity; DQN's training step) and DQN's learners (target networks).
from ray.rllib.algorithms.dqn.dqn import calculate_rr_weights
from ray.rllib.algorithms.dqn.dqn_learner import DQNLearner
from ray.rllib.algorithms.dqn.torch.dqn_torch_learner import DQNTorchLearner
from ray.rllib.algorithms.sac.sac import SAC, SACConfig

__all__ = [
    "MODULE_IN_CHECKPOINT",
    "SAC",
    "DQNLearner",
    "DQNTorchLearner",
    "SACConfig",
    "calculate_rr_weights",
    "env_runner_attributes",
    "extend_model_config",
    "module_to_env_pipeline",
    "override_replay_buffer_factory",
    "sac_validate",
    "sample_episodes",
    "sub_envs",
]

MODULE_IN_CHECKPOINT = Path("learner_group", "learner", "rl_module", "default_policy")
"""Where an algorithm checkpoint keeps the default module (RLlib's checkpoint layout)."""

_AUTO_INCLUDES = "_model_config_auto_includes"
_RLLIB_EPISODE_BUFFERS = ("EpisodeReplayBuffer", "PrioritizedEpisodeReplayBuffer")


def extend_model_config(config_cls: type, extra: Callable[[Any], dict[str, Any]]) -> None:
    """Make ``config_cls`` pass ``extra(config)`` into every RLModule's ``model_config``.

    RLlib fills a module's model config from the algorithm config through the private
    ``AlgorithmConfig._model_config_auto_includes`` property (SAC adds ``twin_q`` there).
    """
    parent = getattr(config_cls.__mro__[1], _AUTO_INCLUDES)
    if not isinstance(parent, property):
        raise TypeError(f"RLlib changed: AlgorithmConfig.{_AUTO_INCLUDES} is no longer a property")

    def includes(self: Any) -> dict[str, Any]:
        return parent.fget(self) | extra(self)

    setattr(config_cls, _AUTO_INCLUDES, property(includes))


def sac_validate(config: Any) -> None:
    """SACConfig.validate for a DDPG config: quiet about the API stack, and accepting our flat
    replay buffer (SAC's check allows only RLlib's episode buffers under the new API stack)."""
    from policies.ddpg.flat_replay_buffer import FLAT_REPLAY_BUFFER

    sac_logger = logging.getLogger("ray.rllib.algorithms.sac.sac")
    level = sac_logger.level
    sac_logger.setLevel(logging.ERROR)
    rb = config.replay_buffer_config
    flat = rb.get("type") == FLAT_REPLAY_BUFFER
    try:
        if flat:
            rb["type"] = _RLLIB_EPISODE_BUFFERS[0]
        SACConfig.validate(config)
    finally:
        if flat:
            rb["type"] = FLAT_REPLAY_BUFFER
        sac_logger.setLevel(level)


_REPLAY_FACTORY = "_create_local_replay_buffer_if_necessary"


def override_replay_buffer_factory(algo_cls: type, factory: Callable[[Any, Any], Any]) -> None:
    """Make ``algo_cls`` build its ``local_replay_buffer`` with ``factory(algo, config)`` where
    that returns a buffer, and with RLlib's own ``from_config`` path where it returns None.

    RLlib builds the buffer in the private ``Algorithm._create_local_replay_buffer_if_necessary``
    from ``replay_buffer_config`` alone, so a buffer that needs the algorithm's ``n_step`` and
    ``gamma`` (returns computed at insertion) cannot be made there.
    """
    parent = getattr(algo_cls.__mro__[1], _REPLAY_FACTORY)

    def create(self: Any, config: Any) -> Any:
        buffer = factory(self, config)
        return parent(self, config) if buffer is None else buffer

    setattr(algo_cls, _REPLAY_FACTORY, create)


def sample_episodes(algo: Any) -> tuple[list[Any], list[Any]]:
    """One synchronous round of sampling from all env runners: (episodes, runner metrics)."""
    from ray.rllib.execution.rollout_ops import synchronous_parallel_sample

    return synchronous_parallel_sample(
        worker_set=algo.env_runner_group,
        concat=True,
        sample_timeout_s=algo.config.sample_timeout_s,
        _uses_new_env_runners=True,
        _return_metrics=True,
    )


def module_to_env_pipeline(env_runner: Any) -> Any:
    """An env runner's module-to-env connector pipeline (RLlib keeps it private), or None."""
    return getattr(env_runner, "_module_to_env", None)


def env_runner_attributes(env_runner: Any) -> dict[str, Any]:
    """An env runner's instance attributes, where a callback may keep per-runner records.

    The instance dict, not ``setattr``: RLlib's env runners are actors whose attribute set is
    not part of any API, so the records live beside it under a name of our own.
    """
    return env_runner.__dict__


def sub_envs(env_runner: Any) -> list[Any]:
    """The single envs inside an env runner's vector env (gymnasium's sync vector env and
    ``AutoscaleVectorEnv`` both keep them in ``envs``), under RLlib's wrappers."""
    return list(env_runner.env.unwrapped.envs)
