"""FlatReplayBuffer: DDPG's replay as flat preallocated arrays of n-step transitions.

Why: RLlib's ``EpisodeReplayBuffer`` keeps whole episodes and, on every update, slices 256
one-step episodes out of them and runs them through the learner connector to build the train
batch: about 40 % of an update here went there (docs/performance.md has the profile). DDPG
needs none of that: it learns from ``(s, a, R, s', terminated, n)`` transitions drawn
uniformly, so this buffer turns episode chunks into those transitions once, when they are
added, with the n-step return ``R = sum_{j<n} gamma^j r_{t+j}`` and ``s' = s_{t+n}`` computed
there, and a sample is a fancy-index into arrays.

What it keeps per transition (one row of each array, a ring of ``capacity`` rows):
observation, action, n-step return, next observation, terminated, the number of steps the
return covers (shorter at the end of an episode; the critic's target discounts by
``gamma ** n_step``) and the workload label of the step (``info['workload_id']``, the
meta-learner's workload-identification target; -1 when absent).

Episodes come in chunks (an env runner returns the ongoing part of an episode each time); the
last ``n_step - 1`` steps of an unfinished chunk wait for its successor, so every transition's
return covers ``n_step`` steps unless its episode ended first. Uniform sampling over
transitions is what RLlib's uniform episode buffer does over time steps.

It answers RLlib's replay-buffer interface (``add``, ``sample``, ``__len__``, ``get_state``,
``set_state``), so RLlib checkpoints and restores it with the algorithm.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.core.columns import Columns
from ray.rllib.utils.annotations import override
from ray.rllib.utils.replay_buffers.base import ReplayBufferInterface

from policies.ddpg.workload_labels import WORKLOAD_LABEL, label_of

N_STEP = "n_step"
WEIGHTS = "weights"
FLAT_REPLAY_BUFFER = "FlatReplayBuffer"
"""The ``replay_buffer_config['type']`` that selects this buffer."""

_ARRAYS = ("obs", "actions", "returns", "next_obs", "terminated", "n_steps", "labels")


class FlatReplayBuffer(ReplayBufferInterface):
    """Uniform replay of n-step transitions held in flat preallocated arrays (see module doc)."""

    def __init__(
        self, capacity: int = 200_000, *, n_step: int = 1, gamma: float = 0.99, seed: int | None = None, **_: Any
    ):
        if not (isinstance(capacity, int) and capacity >= 1):
            raise ValueError(f"replay_buffer_config.capacity: must be an integer >= 1, got {capacity!r}")
        if not (isinstance(n_step, int) and not isinstance(n_step, bool) and n_step >= 1):
            raise ValueError(f"n_step: the flat replay buffer needs one integer >= 1, got {n_step!r}")
        self.capacity = capacity
        self.n_step = n_step
        self.gamma = float(gamma)
        self.rng = np.random.default_rng(seed)
        self.arrays: dict[str, np.ndarray] = {}
        self.size = 0
        self.next_row = 0
        self.added = 0
        """Transitions added over the buffer's life (those overwritten included)."""
        self.carry: dict[str, dict[str, np.ndarray]] = {}
        """Per unfinished episode id, its last steps still waiting for their n-step return."""

    # ------------------------------------------------------------------ RLlib's interface

    @override(ReplayBufferInterface)
    def __len__(self) -> int:
        return self.size

    def get_num_timesteps(self) -> int:
        """Transitions stored (RLlib's episode buffers answer the same question so)."""
        return self.size

    @override(ReplayBufferInterface)
    def add(self, batch: Any, **kwargs: Any) -> None:
        """Add episode chunks (a list of ``SingleAgentEpisode``) as n-step transitions."""
        for episode in batch if isinstance(batch, list | tuple) else [batch]:
            self._add_chunk(episode)

    @override(ReplayBufferInterface)
    def sample(self, num_items: int | None = None, **kwargs: Any) -> dict[str, np.ndarray]:
        """A train batch of ``num_items`` transitions drawn uniformly (with replacement)."""
        if self.size == 0:
            raise ValueError("the replay buffer is empty")
        idx = self.rng.integers(self.size, size=int(num_items or 1))
        a = self.arrays
        return {
            Columns.OBS: a["obs"][idx],
            Columns.ACTIONS: a["actions"][idx],
            Columns.REWARDS: a["returns"][idx],
            Columns.NEXT_OBS: a["next_obs"][idx],
            Columns.TERMINATEDS: a["terminated"][idx],
            N_STEP: a["n_steps"][idx],
            WEIGHTS: np.ones(len(idx), dtype=np.float32),
            WORKLOAD_LABEL: a["labels"][idx],
        }

    @override(ReplayBufferInterface)
    def get_state(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "n_step": self.n_step,
            "gamma": self.gamma,
            "size": self.size,
            "next_row": self.next_row,
            "added": self.added,
            "arrays": {k: v[: self.size].copy() for k, v in self.arrays.items()},
            "carry": {k: {n: v.copy() for n, v in c.items()} for k, c in self.carry.items()},
            "rng": self.rng.bit_generator.state,
        }

    @override(ReplayBufferInterface)
    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("n_step", self.n_step) != self.n_step:
            raise ValueError(f"replay buffer state: n_step {state['n_step']} does not match this run's {self.n_step}")
        self.gamma = float(state["gamma"])
        self.size = min(int(state["size"]), self.capacity)
        self.next_row = int(state["next_row"]) % self.capacity
        self.added = int(state["added"])
        self.arrays = {}
        for name, values in state["arrays"].items():
            full = np.empty((self.capacity, *values.shape[1:]), dtype=values.dtype)
            full[: self.size] = values[: self.size]
            self.arrays[name] = full
        if self.size < int(state["size"]):  # restored into a smaller buffer: keep the first rows
            self.next_row = 0
        self.carry = {k: dict(c) for k, c in state["carry"].items()}
        self.rng.bit_generator.state = state["rng"]

    # ------------------------------------------------------------------ n-step transitions

    def _add_chunk(self, episode: Any) -> None:
        steps = len(episode)
        done = bool(episode.is_terminated or episode.is_truncated)
        key = str(episode.id_)
        obs = np.asarray(episode.get_observations(), dtype=np.float32)
        if steps == 0:
            if done:
                self.carry.pop(key, None)
            return
        seg = {
            "obs": obs[:-1],
            "actions": np.asarray(episode.get_actions(), dtype=np.float32).reshape(steps, -1),
            "rewards": np.asarray(episode.get_rewards(), dtype=np.float64),
            "labels": np.asarray([label_of(i) for i in episode.get_infos(slice(0, steps))], dtype=np.int64),
        }
        prev = self.carry.pop(key, None)
        if prev is not None:
            seg = {k: np.concatenate([prev[k], v]) for k, v in seg.items()}
        total = len(seg["rewards"])
        all_obs = np.concatenate([seg["obs"], obs[-1:]])  # observations 0..total
        n = self.n_step
        emit = total if done else max(total - n + 1, 0)
        if emit:
            i = np.arange(emit)
            horizon = np.minimum(n, total - i)
            returns = np.zeros(emit)
            for j in range(n):
                inside = j < horizon
                returns += np.where(inside, self.gamma**j * seg["rewards"][np.minimum(i + j, total - 1)], 0.0)
            self._write(
                obs=seg["obs"][:emit],
                actions=seg["actions"][:emit],
                returns=returns.astype(np.float32),
                next_obs=all_obs[i + horizon],
                terminated=(i + horizon == total) & bool(episode.is_terminated),
                n_steps=horizon.astype(np.int64),
                labels=seg["labels"][:emit],
            )
        if not done:
            self.carry[key] = {k: v[emit:] for k, v in seg.items()}

    def _write(self, **rows: np.ndarray) -> None:
        count = len(rows["obs"])
        self.added += count
        if not self.arrays:
            self.arrays = {k: np.empty((self.capacity, *v.shape[1:]), dtype=v.dtype) for k, v in rows.items()}
        if count > self.capacity:  # more than the buffer holds: only the newest fit
            rows = {k: v[-self.capacity :] for k, v in rows.items()}
            count = self.capacity
        where = (self.next_row + np.arange(count)) % self.capacity
        for name in _ARRAYS:
            self.arrays[name][where] = rows[name]
        self.next_row = int((self.next_row + count) % self.capacity)
        self.size = min(self.size + count, self.capacity)
