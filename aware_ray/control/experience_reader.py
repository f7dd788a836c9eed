"""Production experience back into training: records -> episodes -> the replay buffer.

``aware-ray train --experience SOURCE`` (``redis://host:port/db`` reads every app's stream, or a
JSONL export) turns the controller's records into RLlib episodes and adds them to the algorithm's
replay buffer before training starts, the same call the bootstrap's SERVING phase makes for the
episodes its frozen policy sampled (``DDPG._sample_into_replay``). The learner then replays them as
offline data beside what the env runners sample: AWARE's retraining from production.

Each record holds the observation the decision was made on, the action applied (after rules and
guard, whoever decided: policy or heuristic) and the reward; the next record of the same app holds
the next observation. A run of consecutive intervals becomes one episode; a gap (an interval held
for stale metrics, a lost record) ends it. Records of another observation schema are refused.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np

from envs.errors import ConfigError
from envs.observation_schema import SCHEMA_VERSION

MIN_EPISODE = 2
"""Intervals an episode needs to hold at least one transition."""


def read_records(source: str) -> list[dict[str, Any]]:
    """Every experience record of `source` (a redis:// URL: all ``aware:experience:*`` streams; else a JSONL file)."""
    if source.startswith(("redis://", "rediss://")):
        from aware_ray.control.experience import STREAM_PREFIX
        from cluster.metric_store import MetricStore, StoreUnavailable

        store = MetricStore.from_url(source)
        try:
            keys = sorted(store._call(lambda: store._redis.keys(f"{STREAM_PREFIX}:*")))
            out: list[dict[str, Any]] = []
            for key in keys:
                after = "-"
                while True:
                    batch = store.read_records(key, after_id=after, count=1000)
                    if not batch:
                        break
                    out.extend(r.record for r in batch)
                    after = batch[-1].entry_id
            return out
        except StoreUnavailable as exc:
            raise ConfigError(f"--experience: {exc}") from None
        finally:
            store.close()
    path = Path(source)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"--experience: {source}: cannot read ({exc.strerror})") from None
    records = []
    for i, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                raise ConfigError(f"--experience: {source}: line {i} is not JSON") from None
    return records


def transitions(records: list[dict[str, Any]], obs_size: int) -> list[dict[str, np.ndarray]]:
    """Runs of consecutive intervals per app: ``observations`` (T+1), ``actions`` and ``rewards`` (T)."""
    by_app: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("schema_version") != SCHEMA_VERSION:
            raise ConfigError(
                f"--experience: record schema {r.get('schema_version')!r}, this code reads {SCHEMA_VERSION}"
            )
        if r.get("observation") is None or len(r["observation"]) != obs_size:
            raise ConfigError(
                f"--experience: app {r.get('app')!r}: observation size differs from the policy's {obs_size}"
            )
        by_app.setdefault(str(r["app"]), []).append(r)
    runs = []
    for recs in by_app.values():
        recs.sort(key=lambda r: r["interval"])
        run: list[dict[str, Any]] = []
        for r in recs:
            if r.get("applied_action") is None or (run and r["interval"] != run[-1]["interval"] + 1):
                runs.append(run)  # a held interval (stale metrics) or a lost record ends the run
                run = []
            if r.get("applied_action") is not None:
                run.append(r)
        runs.append(run)
    out = []
    for run in runs:
        # Transition t: observation of record t, its applied action and reward, the observation of record t+1.
        pairs = list(itertools.pairwise(run))
        if len(run) < MIN_EPISODE:
            continue
        out.append(
            {
                "observations": np.asarray(
                    [a["observation"] for a, _ in pairs] + [pairs[-1][1]["observation"]], np.float32
                ),
                "actions": np.asarray([a["applied_action"] for a, _ in pairs], np.float32),
                "rewards": np.asarray([a["reward"] for a, _ in pairs], np.float32),
            }
        )
    return out


def to_episodes(runs: list[dict[str, np.ndarray]], observation_space: Any, action_space: Any) -> list[Any]:
    """RLlib ``SingleAgentEpisode``s of the runs (truncated: autoscaling never terminates)."""
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    episodes = []
    for run in runs:
        t = len(run["actions"])
        ep = SingleAgentEpisode(
            observations=list(run["observations"]),
            actions=list(run["actions"]),
            rewards=list(run["rewards"].astype(float)),
            infos=[{} for _ in range(t + 1)],
            terminated=False,
            truncated=True,
            observation_space=observation_space,
            action_space=action_space,
            len_lookback_buffer=0,
        )
        episodes.append(ep.to_numpy())
    return episodes


def seed_replay(algo: Any, source: str) -> int:
    """Add the experience of `source` to `algo`'s replay buffer; returns the transitions added."""
    module = algo.get_module()
    size = int(np.prod(module.observation_space.shape))
    runs = transitions(read_records(source), size)
    if not runs:
        raise ConfigError(f"--experience: {source}: no usable records (need two consecutive intervals of an app)")
    algo.local_replay_buffer.add(to_episodes(runs, module.observation_space, module.action_space))
    return sum(len(r["actions"]) for r in runs)
