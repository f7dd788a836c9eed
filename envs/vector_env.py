"""AutoscaleVectorEnv: ``num_envs`` autoscaling envs whose whole step runs as numpy over the batch.

Why: one ``AutoscaleEnv`` step is a few hundred microseconds of Python around a few dozen of
simulator; the simulator (``ClusterSim``) already steps a whole batch of clusters in one numpy
computation. Here the rest of the step is batched too: decoding, the guard, scoring, reward and
the observations (history windows and load contexts included) run once for all sub-envs, as
``(num_envs, ...)`` arrays, through the same functions the single env calls with a batch of one
(``envs.action.decode_batch``, ``envs.guard.guard_batch``, ``envs.interval_scores``,
``envs.observation_builder.ObservationBatch``). What stays per sub-env: drawing an episode
(``AutoscaleEnv.reset`` of sub-env ``k``, on its own generator, over copy ``k`` of a shared
``SimBatch``), each copy's random draws (OOM kills, measurement noise), the controller rules
where the config has them (each sub-env's ``RuleChain``), and the ``info`` records.

Seeding is ``SyncVectorEnv``'s: ``reset(seed=s)`` seeds sub-env ``k`` with ``s + k``, later
resets draw from each sub-env's own generator, and each copy of the simulator draws from its
own streams. So sub-env ``k`` replays a single ``AutoscaleEnv`` reset with seed ``s + k`` step
for step, autoresets included (``tests/test_vector_env.py``).

Autoreset is Gymnasium's ``NEXT_STEP`` mode (RLlib's env runners expect it): the step after
an episode ends resets that sub-env, ignores its action and returns its first observation
with reward 0. The sub-envs in ``envs`` hold each sub-env's episode (workload, rates, rules);
their own observation state is that of their last reset, as the vector steps them in batch.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.action import ACTION_DIMS, clean_actions, decode_batch
from envs.app import load_app
from envs.autoscale_env import AutoscaleEnv, step_record
from envs.config import EnvConfig
from envs.guard import REASONS, guard_batch
from envs.interval_scores import score_intervals
from envs.metrics import ScalingDecision
from envs.metrics_batch import MetricsBatch
from envs.observation_builder import ObservationBatch
from envs.sim_batch import CopyBackend, SimBatch


class AutoscaleVectorEnv(VectorEnv):
    """``num_envs`` autoscaling envs of one config, stepped as one batch (see module doc)."""

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
        self.app = self.envs[0].app
        self.layout = self.envs[0].layout
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        n, s = num_envs, self.app.n_services
        self.state = ObservationBatch(self.app, self.layout, cfg.interval_s, n)
        self.metrics = MetricsBatch.zeros(n, s)
        self.replicas = np.zeros((n, s), dtype=np.int64)
        """Per sub-env, the replicas that run now (what the next action is relative to)."""
        self.cpu_limit = np.zeros((n, s))
        self.mem_limit = np.zeros((n, s))
        self.steps = np.zeros(n, dtype=np.int64)
        self.episode_steps = np.zeros(n, dtype=np.int64)
        self.workload_id = np.full(n, -1, dtype=np.int64)
        self._autoreset = np.zeros(n, dtype=bool)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        seeds = _seeds(seed, self.num_envs)
        rows = np.arange(self.num_envs)
        infos = self._reset_rows(rows, seeds, options)
        self._autoreset[:] = False
        return self.state.observations(), infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        n, s, cfg = self.num_envs, self.app.n_services, self.config
        resetting = np.flatnonzero(self._autoreset)
        active = ~self._autoreset
        a = clean_actions(np.asarray(actions).reshape(n, self.layout.max_services, ACTION_DIMS))
        overridden = self._rules(a, np.flatnonzero(active)) if self.envs[0].rule_chain is not None else np.zeros(n)
        want = decode_batch(a[:, :s], self.replicas, self.cpu_limit, self.mem_limit, cfg.guard)
        g = guard_batch(
            *want, self.replicas, self.cpu_limit, self.mem_limit, self.metrics.mem_usage, self.app, cfg.guard
        )

        # One interval of the simulator for all; a sub-env about to reset keeps its settings and
        # gets no load (it is reset below, after the interval, which it must not see).
        keep = self._autoreset[:, None]
        rates = np.zeros(n)
        for k in np.flatnonzero(active):
            backend = self.backends[k]
            rates[k] = backend.next_rate()
            backend.step_index += 1
        self.sim.apply(
            np.where(keep, self.sim.replicas, g.replicas),
            np.where(keep, self.sim.cpu_limit, g.cpu_limit),
            np.where(keep, self.sim.mem_limit, g.mem_limit),
        )
        self.sim.advance(rates)
        reset_infos = self._reset_copies(resetting)

        m = self.sim.observe_all()
        changed = (
            (m.replicas.astype(np.int64) != self.replicas)
            | (m.cpu_limit != self.cpu_limit)
            | (m.mem_limit != self.mem_limit)
        ).sum(axis=1)
        self._take_settings(m)
        scores = score_intervals(
            m, self.sim.truth, self.replicas, self.cpu_limit, self.mem_limit, self.app, cfg.interval_s, cfg.reward,
            changed, overridden, cfg.history_weights,
        )  # fmt: skip
        self.state.step(m, a, scores.history_reward)
        if resetting.size:
            self.state.reset(m.take(resetting), resetting)
        self.steps += active
        rewards = np.where(active, scores.reward, 0.0)
        terminated = np.zeros(n, dtype=bool)
        truncated = active & (self.steps >= self.episode_steps)
        labels = np.where(self.state.partly_idle(), -1, self.workload_id)
        infos = self._step_infos(active, scores, m, changed, g.clamped(), g.counts(), labels)
        if resetting.size:
            _merge_reset_infos(infos, reset_infos, resetting, n)
        self._autoreset = terminated | truncated
        return self.state.observations(), rewards, terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        for env in getattr(self, "envs", []):
            env.close()

    # ------------------------------------------------------------------------------ helpers

    def _rules(self, a: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Each sub-env's controller rules on its action, in place (as ``AutoscaleEnv.decide``);
        per sub-env, how far they moved it."""
        s = self.app.n_services
        overridden = np.zeros(self.num_envs)
        for k in rows:
            ask = a[k, :s].copy()
            current = ScalingDecision(
                replicas=self.replicas[k].copy(), cpu_limit=self.cpu_limit[k].copy(), mem_limit=self.mem_limit[k].copy()
            )
            a[k, :s] = self.envs[k].rule_chain.effective_action(
                a[k, :s], current, self.state.services(k), self.config.guard, self.state.e2e_latency(k)
            )
            overridden[k] = float(np.abs(ask - a[k, :s]).sum(axis=1).mean())
        return overridden

    def _reset_copies(self, rows: np.ndarray, seeds: list[int | None] | None = None, options: Any = None) -> list:
        """Draw a new episode for each sub-env in `rows` (its copy of the simulator reset)."""
        infos = []
        for i, k in enumerate(rows):
            env = self.envs[k]
            _, info = env.reset(seed=None if seeds is None else seeds[i], options=options)
            self.steps[k] = 0
            self.episode_steps[k] = env.episode_steps
            self.workload_id[k] = env.workload_id
            infos.append(info)
        return infos

    def _reset_rows(self, rows: np.ndarray, seeds: list[int | None], options: Any) -> dict[str, Any]:
        infos = self._reset_copies(rows, seeds, options)
        m = self.sim.observe_all()
        self._take_settings(m)
        self.state.reset(m.take(rows), rows)
        out: dict[str, Any] = {}
        _merge_reset_infos(out, infos, rows, self.num_envs)
        return out

    def _take_settings(self, m: MetricsBatch) -> None:
        """What runs now, after an interval or a reset: the next decision starts from it."""
        self.metrics = m
        self.replicas = m.replicas.astype(np.int64)
        self.cpu_limit = m.cpu_limit.copy()
        self.mem_limit = m.mem_limit.copy()

    def _step_infos(self, active, scores, m, changed, clamped, counts, labels) -> dict[str, Any]:
        """The infos of the sub-envs that stepped, as ``VectorEnv._add_info`` would merge them."""
        n = self.num_envs
        rows = np.flatnonzero(active)
        if not rows.size:
            return {}
        boards = np.full(n, None, dtype=object)
        for k in rows:
            boards[k] = step_record(scores, k, m.t_seconds[k], changed[k], clamped[k])
        reasons: dict[str, Any] = {}
        for i, name in enumerate(REASONS):
            reasons[name] = np.where(active, counts[i], 0)
            reasons[f"_{name}"] = active.copy()
        return {
            "scoreboard": boards,
            "_scoreboard": active.copy(),
            "guard_reasons": reasons,
            "_guard_reasons": active.copy(),
            "workload_id": np.where(active, labels, 0),
            "_workload_id": active.copy(),
        }


def _merge_reset_infos(infos: dict[str, Any], reset_infos: list[dict[str, Any]], rows: np.ndarray, n: int) -> None:
    """Add reset infos (workload, family, workload_id) of sub-envs `rows` as ``_add_info`` does."""
    for k, info in zip(rows, reset_infos, strict=True):
        for key, value in info.items():
            if key not in infos:
                if isinstance(value, int | float | bool | np.number):
                    infos[key] = np.zeros(n, dtype=type(value))
                else:
                    infos[key] = np.full(n, None, dtype=object)
                infos[f"_{key}"] = np.zeros(n, dtype=bool)
            infos[key][k] = value
            infos[f"_{key}"][k] = True


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
