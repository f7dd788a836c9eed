"""A linear probe on workload embeddings: do they tell the workload families apart?

Episodes of each synthetic family are run under a policy; the meta-learner's embeddings of
their history windows are collected; a ridge-regression one-vs-rest classifier is fitted on
the embeddings of all seeds but one and scored on the episodes of that seed (held out), each
seed in turn, so the accuracy measures what the embedding encodes about workload instances it
was not fitted on.

``RawWindow`` is the yardstick for that figure: the same probe on the raw history window the
GRU reads and the long load context (the HPA acting), i.e. what a linear read-out gets without
any learning.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.autoscale_env import AutoscaleEnv
from envs.synthetic import FAMILIES
from policies.base import EnvContext
from policies.given_action import GivenAction
from policies.registry import trained_behind_rules

PROBE_FAMILIES = ("diurnal", "bursty", "flash-crowd", "ramp", "spikes", "step")


class RawWindow:
    """The HPA acting, with the flattened raw history window standing in for an embedding."""

    name = "raw-window"

    def __init__(self, env_config: dict[str, Any], target: float = 0.6):
        from policies.base import EnvContext
        from policies.hpa import HPAPolicy

        self.env = AutoscaleEnv({**env_config, "workloads": ["family:diurnal"]})
        self.hpa = HPAPolicy(EnvContext.of(self.env), target)

    def initial_state(self) -> Any:
        return self.hpa.initial_state()

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        return self.hpa.act(observation, state)

    def embedding(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        hist = self.env.layout.history(obs)
        return np.concatenate([hist.reshape(len(obs), -1), self.env.layout.context(obs)], axis=1)


def collect(policy: Any, env_config: dict[str, Any], family: str, seed: int, steps: int = 160, every: int = 8):
    """Embeddings of one episode of `family` under `policy` (every `every` intervals past the first
    window)."""
    return collect_many(policy, env_config, [(family, seed)], steps, every)[0]


def collect_many(
    policy: Any, env_config: dict[str, Any], episodes: list[tuple[str, int]], steps: int = 160, every: int = 8
) -> list[np.ndarray]:
    """``collect`` of several (family, seed) episodes, stepped side by side.

    Where the policy answers a batch (``act_batch``), one forward serves the interval of every
    episode, and the rules it trained under run per episode around that action (``GivenAction``),
    as around the policy itself; each row of a batched forward is what the policy gives for it
    alone, bit for bit (``policies.ddpg.policy.ROW_BLOCK``), so the embeddings are those of the
    episodes run one by one. One observation at a time, the forwards were most of a training
    validation (30 episodes of 480 intervals)."""
    shape = {"level_prob": 0.0, "idle_prob": 0.0, "jitter_prob": 0.0}  # the probe names families, at their own level
    envs = [
        AutoscaleEnv({**env_config, "workloads": [f"family:{family}"], "episode_steps": steps, **shape})
        for family, _ in episodes
    ]
    obs = [env.reset(seed=seed)[0] for env, (_, seed) in zip(envs, episodes, strict=True)]
    batched = callable(getattr(policy, "act_batch", None))
    givens = [GivenAction.standing_in_for(policy) for _ in envs] if batched else []
    actings = [  # as it acts everywhere else: behind the rules it trained under
        trained_behind_rules(givens[i] if batched else policy, EnvContext.of(env)) for i, env in enumerate(envs)
    ]
    states = [acting.initial_state() for acting in actings]
    window = envs[0].config.history_window if envs else 0
    kept: list[list[np.ndarray]] = [[] for _ in envs]
    for t in range(steps):
        if batched:
            for given, action in zip(givens, policy.act_batch(np.stack(obs)), strict=True):
                given.action = action
        for i, (env, acting) in enumerate(zip(envs, actings, strict=True)):
            action, states[i] = acting.act(obs[i], states[i])
            obs[i], *_ = env.step(action)
            if t >= window and t % every == 0:
                kept[i].append(obs[i])
    sizes = [len(k) for k in kept]
    embedded = policy.embedding(np.concatenate([np.stack(k) for k in kept]))
    return np.split(embedded, np.cumsum(sizes)[:-1])


def trained_length(env_config: dict[str, Any]) -> int:
    """The episode length the probe uses by default: the one the policy trained on."""
    return int(env_config.get("episode_steps", 160))


PROBE_SEEDS = 5
"""Instances of each family the probe runs; each takes its turn as the held-out one."""


def probe_folds(
    policy: Any,
    env_config: dict[str, Any],
    seeds: int = PROBE_SEEDS,
    ridge: float = 1e-2,
    steps: int | None = None,
) -> list[float]:
    """Held-out accuracies of a linear probe separating PROBE_FAMILIES from embeddings, one per
    seed left out: fitted on the episodes of the other seeds, scored on that seed's episodes.

    A single held-out instance per family makes the figure depend on which instance it is: for
    one policy, 0.74 to 0.87 as the held-out seed changed. Every seed taking its turn gives a
    figure that moves less from one checkpoint or run to the next.

    Episodes last ``steps`` intervals, by default the env's ``episode_steps`` (the length the
    policy trained on): a family's pattern time scales are fractions of the episode, so a
    shorter episode is a time-compressed instance, a different workload.
    """
    if seeds < 2:
        raise ValueError(f"probe seeds: need at least 2 (one to fit, one to score), got {seeds}")
    steps = int(steps or trained_length(env_config))
    fams = [f for f in PROBE_FAMILIES if f in FAMILIES]
    runs = [(k, fam, s) for k, fam in enumerate(fams) for s in range(seeds)]
    embedded = collect_many(policy, env_config, [(fam, 1000 + 17 * s + k) for k, fam, s in runs], steps=steps)
    xs, ys, ss = [], [], []
    for (k, _, s), e in zip(runs, embedded, strict=True):
        xs.append(e)
        ys.append(np.full(len(e), k))
        ss.append(np.full(len(e), s))
    x, y, seed_of = np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)
    return [
        ridge_probe(x[seed_of != s], y[seed_of != s], x[seed_of == s], y[seed_of == s], ridge, len(fams))
        for s in range(seeds)
    ]


def probe_accuracy(
    policy: Any,
    env_config: dict[str, Any],
    seeds: int = PROBE_SEEDS,
    ridge: float = 1e-2,
    steps: int | None = None,
) -> float:
    """Mean held-out accuracy of the probe over its folds (``probe_folds``)."""
    return float(np.mean(probe_folds(policy, env_config, seeds, ridge, steps)))


def ridge_probe(
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_te: np.ndarray,
    y_te: np.ndarray,
    ridge: float = 1e-2,
    n_classes: int | None = None,
) -> float:
    """Held-out accuracy of a ridge-regression one-vs-rest linear classifier on standardised features."""
    n_classes = n_classes or int(max(y_tr.max(), y_te.max())) + 1
    mu, sd = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-6
    a = np.hstack([(x_tr - mu) / sd, np.ones((len(x_tr), 1))])
    targets = np.eye(n_classes)[y_tr]
    w = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ targets)
    pred = np.argmax(np.hstack([(x_te - mu) / sd, np.ones((len(x_te), 1))]) @ w, axis=1)
    return float((pred == y_te).mean())
