"""The env-runner side of bootstrapping in RLlib: a module-to-env connector piece.

RLlib computes the policy's (noisy) action; this piece, one ``Arbiter`` per env of the
runner, replaces it with the heuristic's action whenever the phase or the safety monitor
says so. It rewrites ``Columns.ACTIONS``, which is what the env runner both sends to the env
and stores in the episode, so the replay buffer holds the actions that were actually applied
and the learner trains on them either way. It also records, per interval, who acted
(``SOURCE_KEY``) and the workload embedding (``EMBEDDING_KEY``), as extra model outputs that
``episode_report`` turns into the lifecycle's per-episode view.

The driver sets the phase and the monitor's reference on every runner before each iteration
(``set_phase``); the arbiter's own fallbacks happen here, interval by interval.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.utils.annotations import override

from policies.base import EnvContext
from policies.bootstrap.arbiter import Arbiter, Source
from policies.bootstrap.config import BootstrapConfig
from policies.bootstrap.lifecycle import EpisodeReport
from policies.bootstrap.phase import Phase
from policies.bootstrap.teacher import make_teacher
from policies.ddpg.rllib_compat import module_to_env_pipeline

SOURCE_KEY = "bootstrap_source"
EMBEDDING_KEY = "bootstrap_embedding"
REPORTS_ATTR = "_bootstrap_reports"
"""Attribute of the env runner where finished episodes' reports wait for the driver."""
MAX_PENDING_HANDOVERS = 1000
"""Hand-overs a runner keeps for the driver between two pulls (the oldest go first)."""


class BootstrapActions(ConnectorV2):
    """Chooses, per env and interval, between the policy's and the heuristic's action."""

    def __init__(
        self,
        input_observation_space: Any = None,
        input_action_space: Any = None,
        *,
        env_config: dict[str, Any],
        bootstrap: dict[str, Any],
        **kwargs: Any,
    ):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        from envs.autoscale_env import AutoscaleEnv

        self.cfg = BootstrapConfig.from_dict(bootstrap)
        self.ctx = EnvContext.of(AutoscaleEnv(env_config))
        self.phase = self.cfg.phase
        self.reference_violation_rate = 0.0
        self.arbiters: dict[int, Arbiter] = {}
        self.first_env = 0
        """Global index of this runner's first env (for canary_envs); set by the driver."""
        self._episode_of: dict[int, str] = {}
        self._seen_t: dict[int, int] = {}
        self._events_seen: dict[int, int] = {}
        self.handovers: list[dict[str, Any]] = []
        """Fallbacks and hand-backs since the driver last pulled: env (global index), step, event."""

    def set_phase(self, phase: Phase, reference_violation_rate: float, first_env: int | None = None) -> None:
        self.phase = Phase(phase)
        self.reference_violation_rate = float(reference_violation_rate)
        if first_env is not None:
            self.first_env = int(first_env)
        for slot, arb in self.arbiters.items():
            self._configure(slot, arb)

    def _configure(self, slot: int, arb: Arbiter) -> None:
        arb.phase = self.phase
        arb.set_reference(self.reference_violation_rate)
        arb.canary = self.cfg.canary_envs == 0 or self.first_env + slot < self.cfg.canary_envs

    def _arbiter(self, slot: int) -> Arbiter:
        if slot not in self.arbiters:
            arb = Arbiter(self.cfg, make_teacher(self.cfg, self.ctx))
            self._configure(slot, arb)
            self.arbiters[slot] = arb
        return self.arbiters[slot]

    @override(ConnectorV2)
    def __call__(self, *, rl_module: Any, batch: dict[str, Any], episodes: list[Any], **kwargs: Any) -> Any:
        actions = batch[Columns.ACTIONS]
        sources: dict[Any, list[int]] = {}
        observed: dict[Any, np.ndarray] = {}
        for slot, key in enumerate(list(actions.keys())):
            episode = episodes[slot] if slot < len(episodes) else None
            if episode is None or (episode.id_,) != key or len(episode.get_observations()) == 0:
                # The vector env is resetting this slot: the env ignores this action and the
                # episode does not store it.
                sources[key] = [int(Source.HEURISTIC)]
                continue
            arb = self._arbiter(slot)
            if self._episode_of.get(slot) != episode.id_:
                self._episode_of[slot] = episode.id_
                arb.start_episode()
            elif episode.t > self._seen_t.get(slot, -1):
                record = scoreboard_of(episode.get_infos(-1))
                if record is not None:
                    cores, gib = float(record["reserved_cores"]), float(record.get("reserved_gib", 0.0))
                    arb.observe(bool(record["violated"]), cores, gib)
            self._seen_t[slot] = episode.t
            obs = np.asarray(episode.get_observations(-1), dtype=np.float32)
            action, source = arb.choose(obs, np.asarray(actions[key][0], dtype=np.float32))
            self._collect_events(slot, arb, int(episode.t))
            actions[key] = [action]
            sources[key] = [int(source)]
            observed[key] = obs
        batch[SOURCE_KEY] = sources
        # Every interval gets an embedding when the module has a meta-learner (an episode's
        # extra outputs must carry the same keys on every step): one forward pass for all envs.
        if getattr(rl_module, "meta", None) is not None:
            emb = _embeddings(rl_module, list(observed.values()))
            zero = np.zeros(rl_module.meta.to_embedding[0].out_features, dtype=np.float32)
            rows = dict(zip(observed, emb, strict=True))
            batch[EMBEDDING_KEY] = {key: [rows.get(key, zero)] for key in actions}
        return batch

    def _collect_events(self, slot: int, arb: Arbiter, t: int) -> None:
        for event in arb.new_events(self._events_seen.get(slot, 0)):
            self.handovers.append({"env": self.first_env + slot, "t": t, "event": event})
        self._events_seen[slot] = arb.events_total
        del self.handovers[:-MAX_PENDING_HANDOVERS]

    def pop_handovers(self) -> list[dict[str, Any]]:
        """The hand-overs since the last call (the driver logs them)."""
        out, self.handovers = self.handovers, []
        return out


def scoreboard_of(info: Any) -> dict[str, Any] | None:
    """The env's per-interval scoreboard record in an info dict, as a dict (None if there is none)."""
    if not isinstance(info, dict):
        return None
    sb = info.get("scoreboard")
    if dataclasses.is_dataclass(sb):
        return dataclasses.asdict(sb)
    return sb if isinstance(sb, dict) else None


def scoreboard_records(chunks: list[Any]) -> list[dict[str, Any]]:
    """Every interval's scoreboard record of an episode handed over in chunks, in order.

    The first info of a chunk repeats the last of the chunk before (or is the reset's), so it
    is skipped.
    """
    infos = (i for c in chunks if len(c) for i in c.get_infos()[1:])
    return [r for r in map(scoreboard_of, infos) if r is not None]


def _embeddings(module: Any, observations: list[np.ndarray]) -> list[np.ndarray]:
    """Workload embeddings of a batch of observations (an empty batch gives none)."""
    if not observations:
        return []
    import torch

    with torch.no_grad():
        out = module.embedding(torch.as_tensor(np.stack(observations))).numpy().astype(np.float32)
    return list(out)


def find_piece(env_runner: Any) -> BootstrapActions | None:
    """The runner's BootstrapActions piece, if its module-to-env pipeline has one."""
    pipeline = module_to_env_pipeline(env_runner)
    for piece in getattr(pipeline, "connectors", []) or []:
        if isinstance(piece, BootstrapActions):
            return piece
    return None


def episode_report(chunks: list[Any]) -> EpisodeReport | None:
    """The lifecycle's view of a finished episode, from all its chunks (in order)."""
    rewards: list[float] = []
    sources: list[int] = []
    embs: list[np.ndarray] = []
    records = scoreboard_records(chunks)
    violated = [bool(r["violated"]) for r in records]
    core_hours = float(sum(r["cpu_core_hours"] for r in records))
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        rewards.extend(float(r) for r in chunk.get_rewards())
        if SOURCE_KEY in chunk.extra_model_outputs:
            sources.extend(int(s) for s in np.asarray(chunk.get_extra_model_outputs(SOURCE_KEY)).ravel())
        if EMBEDDING_KEY in chunk.extra_model_outputs:
            embs.extend(np.asarray(chunk.get_extra_model_outputs(EMBEDDING_KEY)))
    if not rewards:
        return None
    src = np.asarray(sources if sources else [int(Source.POLICY)] * len(rewards))
    fallbacks = int(np.sum((src[1:] == Source.FALLBACK) & (src[:-1] == Source.POLICY)))
    return EpisodeReport(
        reward=float(np.mean(rewards)),
        violation_rate=float(np.mean(violated)) if violated else 0.0,
        policy_share=float(np.mean(src == Source.POLICY)),
        fallbacks=fallbacks,
        violations=int(np.sum(violated)),
        cpu_core_hours=core_hours,
        embedding=np.mean(np.stack(embs), axis=0) if embs else None,
    )
