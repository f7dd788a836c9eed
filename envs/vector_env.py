"""AutoscaleVectorEnv: ``num_envs`` AutoscaleEnvs whose simulated clusters step as one batch.

Why: one ``AutoscaleEnv`` spends about half its step in the simulator, whose numpy calls cost
the same for one cluster as for dozens (``ClusterSim`` holds a whole batch in ``(batch,
services)`` arrays). Gymnasium's ``SyncVectorEnv`` over single envs pays that cost once per
env; this vector env runs the simulator's interval once for all of its envs.

Each sub-env is a plain ``AutoscaleEnv`` (same rules, decoding, guard, observation and reward
code, nothing copied) whose backend is one copy of a shared ``SimBatch``. A step runs
``decide`` on every sub-env, applies all decisions and runs one batched interval, then
``conclude`` on every sub-env. Seeding is ``SyncVectorEnv``'s: ``reset(seed=s)`` seeds sub-env
``k`` with ``s + k``, later resets draw from each sub-env's own generator, and each copy of the
simulator draws its randomness from its own streams. So sub-env ``k`` replays a single
``AutoscaleEnv`` reset with seed ``s + k`` step for step, autoresets included.

Autoreset is Gymnasium's ``NEXT_STEP`` mode (RLlib's env runners expect it): the step after
an episode ends resets that sub-env, ignores its action and returns its first observation
with reward 0.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.app import load_app
from envs.autoscale_env import AutoscaleEnv
from envs.config import EnvConfig
from envs.sim_batch import CopyBackend, SimBatch


class AutoscaleVectorEnv(VectorEnv):
    """``num_envs`` autoscaling envs of one config over one simulator batch (see module doc)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, config: EnvConfig | dict[str, Any] | None = None):
        if not (isinstance(num_envs, int) and num_envs >= 1):
            raise ValueError(f"num_envs: must be an integer >= 1, got {num_envs!r}")
        cfg = config if isinstance(config, EnvConfig) else EnvConfig.from_dict(dict(config or {}))
        self.config = cfg
        self.num_envs = num_envs
        self.sim = SimBatch(load_app(cfg.app), num_envs, cfg.sim_config())
        self.backends = [CopyBackend(self.sim, k) for k in range(num_envs)]
        self.envs = [AutoscaleEnv(cfg, backend=b) for b in self.backends]
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._obs = np.zeros((num_envs, *self.single_observation_space.shape), dtype=np.float32)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        seeds = _seeds(seed, self.num_envs)
        infos: dict[str, Any] = {}
        for k, env in enumerate(self.envs):
            obs, info = env.reset(seed=seeds[k], options=options)
            self._obs[k] = obs
            infos = self._add_info(infos, info, k)
        self._autoreset[:] = False
        return self._obs.copy(), infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        n = self.num_envs
        pending: list[Any] = [None] * n
        replicas, cpu, mem = self.sim.replicas.copy(), self.sim.cpu_limit.copy(), self.sim.mem_limit.copy()
        rates = np.zeros(n)
        for k, env in enumerate(self.envs):
            if self._autoreset[k]:
                continue  # reset below, after the interval (which it must not see)
            pending[k] = env.decide(actions[k])
            d = self.backends[k].decision
            replicas[k], cpu[k], mem[k] = d.replicas, d.cpu_limit, d.mem_limit
            rates[k] = self.backends[k].next_rate()
            self.backends[k].advance(self.config.interval_s)
        self.sim.apply(replicas, cpu, mem)
        self.sim.advance(rates)
        rewards = np.zeros(n)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        infos: dict[str, Any] = {}
        for k, env in enumerate(self.envs):
            if self._autoreset[k]:
                obs, info = env.reset()
            else:
                obs, rewards[k], terminated[k], truncated[k], info = env.conclude(*pending[k])
            self._obs[k] = obs
            infos = self._add_info(infos, info, k)
        self._autoreset = terminated | truncated
        return self._obs.copy(), rewards, terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        for env in getattr(self, "envs", []):
            env.close()


def _seeds(seed: int | list[int | None] | None, n: int) -> list[int | None]:
    """Per sub-env seeds as ``SyncVectorEnv`` gives them: ``seed + k``, a list as given, or None."""
    if seed is None:
        return [None] * n
    if isinstance(seed, int | np.integer):
        return [int(seed) + k for k in range(n)]
    seeds = list(seed)
    if len(seeds) != n:
        raise ValueError(f"seed: a list of {n} seeds (one per sub-env) expected, got {len(seeds)}")
    return seeds


def make_autoscale_env(config: dict[str, Any] | None = None) -> gym.Env | VectorEnv:
    """Env creator for RLlib: a vector env when ``config`` holds ``num_envs``, else one env.

    RLlib's env runners call it with ``num_envs`` under ``gym_env_vectorize_mode=
    "vector_entry_point"`` and without it for single envs (evaluation, checks).
    """
    config = dict(config or {})
    num_envs = config.pop("num_envs", None)
    if num_envs is None:
        return AutoscaleEnv(config)
    return AutoscaleVectorEnv(int(num_envs), config)
