"""EnvConfig: everything that defines an autoscaling environment, validated on load."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envs.errors import ConfigError
from envs.guard import GuardConfig
from envs.reward import RewardWeights
from envs.rules import parse_rules
from envs.simulator import SimConfig
from envs.typed_config import from_mapping

LAYOUT_KEYS = ("max_services", "history_window", "context_span", "context_buckets")
"""The env settings that shape the observation: a learned policy acts only in an env with its own."""


def layout_needs(env: Mapping[str, Any]) -> dict[str, Any]:
    """The layout settings (``LAYOUT_KEYS``) a policy trained in `env` (a config mapping, as a policy
    exports it) names: an env it acts in must have the same."""
    return {k: env[k] for k in LAYOUT_KEYS if k in env}


def policy_needs(env: Mapping[str, Any]) -> dict[str, Any]:
    """The env settings a policy trained in `env` (a config mapping, as a policy exports it) needs
    wherever it acts, besides its layout (``LAYOUT_KEYS``): the weights of the reward its history
    rows recorded, as ``history_reward``. An env built with them records the reward the policy
    learned to read whatever reward it pays (evaluate's, a controller's), so the meta-learner sees
    in evaluation, serving and control what it saw in training. Empty for a policy whose export
    names no reward (it trained with the default weights)."""
    weights = env.get("history_reward") or env.get("reward")
    return {} if weights is None else {"history_reward": dict(weights)}


@dataclass(frozen=True)
class EnvConfig:
    """Settings of one AutoscaleEnv (a dict of these keys is what RLlib's env_config holds)."""

    app: str = "social-network"
    """Shipped app name or path to an app YAML."""
    workloads: tuple[str, ...] = ("family:diurnal",)
    """Workload specs ('family:NAME', 'trace:FILE[#column]'); one is drawn per episode."""
    peak_rps: float | None = None
    """Peak external rps workloads are scaled to; None takes the app's default_peak_rps."""
    episode_steps: int = 240
    """Control intervals per episode (240 x 15 s = one hour)."""
    interval_s: float = 15.0
    """Seconds per control interval (the HPA sync period)."""
    substeps: int = 3
    """Simulator sub-steps per interval."""
    noise: float = 0.05
    """Relative measurement noise on observed metrics (0 turns it off)."""
    arrival_noise: bool = True
    """Draw arrivals per interval from a Poisson process around the workload's rate."""
    level_prob: float = 0.0
    """Share of training episodes (drawn from ``workloads``) scaled to a lower load level (0: none)."""
    level_min: float = 0.05
    """Lowest load-level scale of such an episode (log-uniform in [level_min, 1])."""
    idle_prob: float = 0.0
    """Share of training episodes (drawn from ``workloads``) with stretches of no load at all (0: none)."""
    jitter_prob: float = 0.0
    """Share of training episodes (drawn from ``workloads``) with interval-to-interval load noise
    (``envs.workload.jitter``; 0: none)."""
    jitter_sigma: float = 1.0
    """Largest spread (log-normal sigma) of that noise; each such episode draws its own in [0, it]."""
    time_compression: float = 4.0
    """Seconds of trace replayed per simulated second (4: a 1-minute bin per 15 s step)."""
    time_compression_choices: tuple[float, ...] = ()
    """Time-scale augmentation: each training episode drawn from a trace in ``workloads`` replays it
    at one of these compressions, drawn uniformly (empty: always ``time_compression``). A policy
    trained at one compression learns that trace's ramps at one steepness, and is scored at real
    time; explicit workloads (validation, ``evaluate``) always use ``time_compression``."""
    max_services: int = 16
    """Observation and action are padded to this many services."""
    history_window: int = 0
    """Past intervals appended to the observation for the meta-learner (0: none)."""
    context_span: int = 0
    """Intervals the long load context summarises (see envs.load_context; 0: no context block)."""
    context_buckets: int = 16
    """Coarse bucket means in the long load context; ``context_span`` must be a multiple of it."""
    vertical_mode: str = "in-place"
    """How limit changes reach pods: 'in-place' resize or 'recreate' (evict and restart)."""
    reward: RewardWeights = field(default_factory=RewardWeights)
    """Reward weights (see envs.reward)."""
    history_reward: RewardWeights | None = None
    """Weights of the reward the history rows record (None: ``reward``'s). The history window is
    the meta-learner's input and holds each interval's reward, so other reward weights are another
    input: fine-tuned under a dearer CPU charge, a policy read the larger negative rewards as load
    and over-provisioned before it had learned anything (measured: validation +0.47 to -2.54 at 32
    times the charge). Set it to the weights the policy was trained with to change what it learns
    from without changing what it sees; the exported policy records it, so the endpoint and the
    controller rebuild the history the same way."""
    guard: GuardConfig = field(default_factory=GuardConfig)
    """Guard limits (see envs.guard)."""
    memory_price: float = 1.0 / 9.0
    """Cores per GiB: validation's money is CPU core-hours + memory GiB-hours x this (cloud list prices)."""
    rules: str = ""
    """Controller rules between the policy and the guard, e.g. ``"lean@0.1:stable@120"`` (see
    envs.rules): a policy trained with them meets the env it will be deployed in. Empty: none."""

    def __post_init__(self) -> None:
        if not self.workloads:
            raise ConfigError("workloads: at least one workload spec is needed")
        if not (isinstance(self.episode_steps, int) and self.episode_steps >= 1):
            raise ConfigError(f"episode_steps: must be an integer >= 1, got {self.episode_steps!r}")
        if self.peak_rps is not None and not self.peak_rps > 0:
            raise ConfigError(f"peak_rps: must be > 0, got {self.peak_rps}")
        if not 0.0 <= self.level_prob <= 1.0:
            raise ConfigError(f"level_prob: must be in [0, 1], got {self.level_prob}")
        if not 0.0 <= self.idle_prob <= 1.0:
            raise ConfigError(f"idle_prob: must be in [0, 1], got {self.idle_prob}")
        if not 0.0 <= self.jitter_prob <= 1.0:
            raise ConfigError(f"jitter_prob: must be in [0, 1], got {self.jitter_prob}")
        if not 0.0 < self.jitter_sigma <= 3.0:
            raise ConfigError(f"jitter_sigma: must be in (0, 3], got {self.jitter_sigma}")
        if not 0.0 < self.level_min <= 1.0:
            raise ConfigError(f"level_min: must be in (0, 1], got {self.level_min}")
        if not self.time_compression > 0:
            raise ConfigError(f"time_compression: must be > 0, got {self.time_compression}")
        for c in self.time_compression_choices:
            if not (math.isfinite(c) and c > 0):
                raise ConfigError(f"time_compression_choices: each must be a number > 0, got {c!r}")
        if not self.memory_price >= 0:
            raise ConfigError(f"memory_price: must be >= 0 (cores per GiB), got {self.memory_price}")
        if not (isinstance(self.max_services, int) and self.max_services >= 1):
            raise ConfigError(f"max_services: must be an integer >= 1, got {self.max_services!r}")
        if not (isinstance(self.history_window, int) and 0 <= self.history_window <= 512):
            raise ConfigError(f"history_window: must be an integer in [0, 512], got {self.history_window!r}")
        if not (isinstance(self.context_span, int) and 0 <= self.context_span <= 4096):
            raise ConfigError(f"context_span: must be an integer in [0, 4096], got {self.context_span!r}")
        if not (isinstance(self.context_buckets, int) and 1 <= self.context_buckets <= 256):
            raise ConfigError(f"context_buckets: must be an integer in [1, 256], got {self.context_buckets!r}")
        if self.context_span % self.context_buckets:
            raise ConfigError(
                f"context_span: must be a multiple of context_buckets ({self.context_buckets}), got {self.context_span}"
            )
        self.sim_config()  # checks interval_s, substeps, noise and vertical_mode
        parse_rules(self.rules)

    @property
    def history_weights(self) -> RewardWeights:
        """The weights of the reward the history rows record."""
        return self.reward if self.history_reward is None else self.history_reward

    def sim_config(self) -> SimConfig:
        """The simulator settings of this env (validated there, errors name the key)."""
        return SimConfig(
            interval_s=self.interval_s, substeps=self.substeps, noise=self.noise, vertical_mode=self.vertical_mode
        )

    @staticmethod
    def from_dict(d: dict[str, Any] | None) -> EnvConfig:
        """Build from a plain mapping (YAML, RLlib env_config); errors name the key relative to the
        env section (``reward.memroy: unknown key ...``), as every EnvConfig error does."""
        return from_mapping(EnvConfig, d)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["workloads"] = list(self.workloads)
        d["time_compression_choices"] = list(self.time_compression_choices)
        return d
