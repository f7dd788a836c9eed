"""The algorithm side of bootstrapping in RLlib: the lifecycle, driven once per iteration.

Before an iteration the driver tells every env runner the phase (their ``BootstrapActions``
pieces act on it, and a SERVING module stops adding exploration noise) and tells the learners
how the actor learns (cloning in OFFLINE, DDPG + cloning regulariser in ONLINE). The algorithm
then trains (OFFLINE, ONLINE) or only samples into the replay buffer (SERVING: the policy is
frozen). After it, the driver pulls the reports of the episodes that finished, feeds them and
the learner's cloning loss to the ``Lifecycle``, logs every transition with its reason and
puts the ``bootstrap/*`` counters into the iteration's results (so TensorBoard plots them).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from ray.rllib.callbacks.callbacks import RLlibCallback

from policies.bootstrap.config import BootstrapConfig
from policies.bootstrap.connector import REPORTS_ATTR, episode_report, find_piece
from policies.bootstrap.lifecycle import EpisodeReport, Lifecycle, Transition
from policies.bootstrap.phase import Phase
from policies.ddpg.rllib_compat import env_runner_attributes

logger = logging.getLogger(__name__)

RESULTS_KEY = "bootstrap"
"""Results of an iteration hold the lifecycle's counters under this key."""
MAX_HANDOVERS = 1000
"""Hand-overs the driver keeps for the run's record (the latest)."""


class EpisodeReports(RLlibCallback):
    """Keeps a report of every finished episode on its env runner until the driver pulls it."""

    def on_episode_end(self, *, episode: Any, env_runner: Any = None, **kwargs: Any) -> None:
        if env_runner is None:
            return
        chunks = [*(kwargs.get("prev_episode_chunks") or []), episode]
        report = episode_report(chunks)
        if report is not None:
            env_runner_attributes(env_runner).setdefault(REPORTS_ATTR, []).append(report)


def _pop_reports(runner: Any) -> list[EpisodeReport]:
    return env_runner_attributes(runner).pop(REPORTS_ATTR, [])


def _pop_handovers(runner: Any) -> list[dict[str, Any]]:
    piece = find_piece(runner)
    return piece.pop_handovers() if piece is not None else []


def _pop_both(runner: Any) -> tuple[list[EpisodeReport], list[dict[str, Any]]]:
    return _pop_reports(runner), _pop_handovers(runner)


def pull_reports(algo: Any) -> list[EpisodeReport]:
    """Reports of the episodes finished since the last pull, from every env runner."""
    return _concat(_each_runner(algo, _pop_reports))


def pull(algo: Any) -> tuple[list[EpisodeReport], list[dict[str, Any]]]:
    """Finished episodes' reports and the arbiters' hand-overs since the last pull, in one round trip."""
    pulled = [p or ([], []) for p in _each_runner(algo, _pop_both)]
    return _concat(r for r, _ in pulled), _concat(h for _, h in pulled)


def _each_runner(algo: Any, fn: Any) -> list[Any]:
    return list(algo.env_runner_group.foreach_env_runner(fn, local_env_runner=True))


def _concat(lists: Any) -> list[Any]:
    return [x for items in lists for x in (items or [])]


class BootstrapDriver:
    """Owns the Lifecycle of a training run and keeps env runners and learners in step with it."""

    def __init__(self, cfg: BootstrapConfig):
        self.cfg = cfg
        self.lifecycle = Lifecycle(cfg)
        self.episodes: list[tuple[int, Phase, EpisodeReport]] = []
        """Every finished episode: (iteration, phase it finished in, report)."""
        self.handovers: deque[dict[str, Any]] = deque(maxlen=MAX_HANDOVERS)
        """Every fallback and hand-back with its reason: iteration, env, step in the episode, event."""
        self.lifecycle.start(0)
        for t in self.lifecycle.transitions:
            logger.info("bootstrap %s", t)

    @property
    def phase(self) -> Phase:
        return self.lifecycle.phase

    def push(self, algo: Any) -> None:
        """Tell env runners and learners the current phase."""
        phase, ref = self.phase, self.lifecycle.reference_violation_rate

        def set_runner(runner: Any) -> None:
            piece = find_piece(runner)
            if piece is not None:
                # Remote runners are numbered from 1; the local one (0) samples only without them.
                first = max(int(getattr(runner, "worker_index", 0) or 0) - 1, 0) * int(getattr(runner, "num_envs", 1))
                piece.set_phase(phase, ref, first)
            module = getattr(runner, "module", None)
            if module is not None and hasattr(module, "explore_noise"):
                module.explore_noise = phase != Phase.SERVING

        algo.env_runner_group.foreach_env_runner(set_runner, local_env_runner=True)
        mode = {Phase.OFFLINE: "offline", Phase.ONLINE: "online"}.get(phase, "off")
        weight = self.cfg.online_bc_weight

        def set_learner(learner: Any) -> None:
            learner.set_behaviour_cloning(mode, weight if mode == "online" else 0.0)

        algo.learner_group.foreach_learner(set_learner)

    def after_iteration(self, algo: Any, bc_loss: float | None) -> list[Transition]:
        """Feed the finished episodes and the cloning loss to the lifecycle; log what changed."""
        reports, handovers = pull(algo)
        it = int(algo.iteration) + 1
        for r in reports:
            self.episodes.append((it, self.phase, r))
        for h in handovers:
            self.handovers.append({"iteration": it, **h})
            logger.info("bootstrap env %d, step %d: %s", h["env"], h["t"], h["event"])
        transitions = self.lifecycle.observe(it, reports, bc_loss)
        for t in transitions:
            logger.warning("bootstrap %s", t)
        return transitions

    def record(self) -> dict[str, Any]:
        """The lifecycle's state and the latest hand-overs, as the run's ``bootstrap.json`` holds them."""
        return {**self.lifecycle.state(), "handovers": list(self.handovers)}

    def results(self) -> dict[str, float]:
        """The counters for this iteration's results (``bootstrap/phase``, ``bootstrap/fallbacks``...)."""
        return {k.split("/", 1)[1]: v for k, v in self.lifecycle.metrics().items()}
