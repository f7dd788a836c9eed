"""AWARE's lifecycle for one app: INITIALIZED -> OFFLINE -> ONLINE -> SERVING (-> ONLINE on drift).

The lifecycle reads finished episodes (who acted, how it went, the workload embedding) and the
learner's behaviour-cloning loss, and moves when a criterion of ``BootstrapConfig`` is met:

- INITIALIZED -> OFFLINE at the start: the heuristic acts, its data fills the replay buffer;
- OFFLINE -> ONLINE after ``offline_episodes`` heuristic episodes once the actor clones the
  heuristic to ``bc_loss_max``; the heuristic's violation rate over those episodes becomes the
  monitor's reference;
- ONLINE -> SERVING when, over the last ``serving_episodes`` episodes the policy acted in
  (episodes outside the canary envs do not count), it acted on at least ``serving_min_share``
  of the intervals (fallbacks took the rest) and the violation rate stayed within the
  heuristic's reference + ``violation_margin``; their rewards and embeddings become the drift
  reference. Judged on the whole stretch, not on "no fallback N times in a row": with a tight
  monitor budget, a policy exactly as safe as the heuristic trips now and then by chance, and
  would never string N clean episodes together;
- SERVING -> ONLINE when the drift rules fire (retraining).

Every transition is kept with its reason; ``metrics()`` gives the counters for TensorBoard.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from policies.bootstrap.config import BootstrapConfig
from policies.bootstrap.drift import Reference, embedding_drift, reward_drift
from policies.bootstrap.phase import Phase

PHASE = "bootstrap/phase"
FALLBACKS = "bootstrap/fallbacks"
RETRAINS = "bootstrap/retrains"
POLICY_SHARE = "bootstrap/policy_share"
OFFLINE_EPISODES = "bootstrap/offline_episodes"
PROVING_EPISODES = "bootstrap/proving_episodes"
REFERENCE_VIOLATION_RATE = "bootstrap/reference_violation_rate"


@dataclass(frozen=True)
class EpisodeReport:
    """One finished episode, as the lifecycle needs it."""

    reward: float
    """Mean reward per interval."""
    violation_rate: float
    policy_share: float
    """Share of intervals the policy acted on (0 while the heuristic controls)."""
    fallbacks: int
    violations: int = 0
    """Violating intervals."""
    cpu_core_hours: float = 0.0
    embedding: np.ndarray | None = None
    """Mean workload embedding over the episode (None without a meta-learner)."""


@dataclass(frozen=True)
class Transition:
    """A phase change and why it happened."""

    step: int
    """The lifecycle's clock when it happened (training iteration, or controller tick)."""
    source: Phase
    target: Phase
    reason: str

    def to_dict(self) -> dict:
        return {"step": self.step, "from": self.source.name, "to": self.target.name, "reason": self.reason}

    def __str__(self) -> str:
        return f"[{self.step}] {self.source.name} -> {self.target.name}: {self.reason}"


@dataclass
class Lifecycle:
    """The state machine; ``observe`` it after every batch of finished episodes."""

    cfg: BootstrapConfig
    phase: Phase = field(init=False)
    transitions: list[Transition] = field(default_factory=list)
    offline_episodes: int = 0
    fallbacks: int = 0
    retrains: int = 0
    proving_episodes: int = 0
    """Episodes the policy acted in since ONLINE began (or since the last freeze), up to serving_episodes."""
    reference: Reference | None = None
    _offline_violations: list[float] = field(default_factory=list)
    _proving: deque = field(init=False)
    _recent: deque = field(init=False)
    _policy_share: float = 0.0

    def __post_init__(self) -> None:
        self.phase = self.cfg.phase
        self._proving = deque(maxlen=max(self.cfg.serving_episodes, 1))
        self._recent = deque(maxlen=self.cfg.drift_episodes)

    # ------------------------------------------------------------------ what the arbiters need

    @property
    def reference_violation_rate(self) -> float:
        """The heuristic's mean violation rate over its OFFLINE episodes (0 before any)."""
        return float(np.mean(self._offline_violations)) if self._offline_violations else 0.0

    # ------------------------------------------------------------------ transitions

    def _move(self, step: int, target: Phase, reason: str) -> Transition:
        t = Transition(step, self.phase, target, reason)
        self.transitions.append(t)
        self.phase = target
        return t

    def start(self, step: int = 0) -> list[Transition]:
        """Leave INITIALIZED: the heuristic takes control and its data starts filling the buffer."""
        if self.phase != Phase.INITIALIZED:
            return []
        return [self._move(step, Phase.OFFLINE, f"started: {self.cfg.heuristic} in control, filling the replay buffer")]

    def observe(self, step: int, episodes: list[EpisodeReport], bc_loss: float | None = None) -> list[Transition]:
        """Account finished episodes (in order) and the latest cloning loss; returns the transitions made."""
        out = self.start(step)
        if episodes:
            self._policy_share = float(np.mean([e.policy_share for e in episodes]))
        for ep in episodes:
            self.fallbacks += ep.fallbacks
            if self.phase == Phase.OFFLINE:
                self.offline_episodes += 1
                self._offline_violations.append(ep.violation_rate)
            elif self.phase == Phase.ONLINE:
                out += self._online(step, ep)
            elif self.phase == Phase.SERVING:
                out += self._serving(step, ep)
        if self.phase == Phase.OFFLINE:
            out += self._offline(step, bc_loss)
        return out

    def _offline(self, step: int, bc_loss: float | None) -> list[Transition]:
        n, need = self.offline_episodes, self.cfg.offline_episodes
        if n < need or bc_loss is None or not bc_loss <= self.cfg.bc_loss_max:
            return []
        return [
            self._move(
                step,
                Phase.ONLINE,
                f"{n} heuristic episodes (>= {need}) and behaviour-cloning loss {bc_loss:.4f} "
                f"(<= {self.cfg.bc_loss_max:g}); heuristic reference violation rate "
                f"{100 * self.reference_violation_rate:.1f}%",
            )
        ]

    def _online(self, step: int, ep: EpisodeReport) -> list[Transition]:
        if ep.policy_share == 0.0 and ep.fallbacks == 0:
            return []  # an env outside the canary (or a cooldown carried over): says nothing of the policy
        self._proving.append(ep)
        self.proving_episodes = len(self._proving)
        if len(self._proving) < self.cfg.serving_episodes:
            return []
        judged = list(self._proving)
        share = float(np.mean([e.policy_share for e in judged]))
        rate = float(np.mean([e.violation_rate for e in judged]))
        limit = self.reference_violation_rate + self.cfg.violation_margin
        if share < self.cfg.serving_min_share or rate > limit:
            return []
        embs = [e.embedding for e in judged if e.embedding is not None]
        self.reference = Reference.of([e.reward for e in judged], embs or None)
        self._recent.clear()
        self._proving.clear()
        self.proving_episodes = 0
        return [
            self._move(
                step,
                Phase.SERVING,
                f"over its last {len(judged)} episodes the policy acted on {100 * share:.0f}% of intervals "
                f"(>= {100 * self.cfg.serving_min_share:.0f}%) with {100 * rate:.1f}% violations "
                f"(<= {100 * limit:.1f}%); frozen with reference reward "
                f"{self.reference.reward_mean:.3f} +- {self.reference.reward_std:.3f}",
            )
        ]

    def _serving(self, step: int, ep: EpisodeReport) -> list[Transition]:
        self._recent.append(ep)
        if len(self._recent) < self.cfg.drift_episodes or self.reference is None:
            return []
        recent = list(self._recent)
        reason = reward_drift(
            [e.reward for e in recent], self.reference, self.cfg.drift_reward_k, self.cfg.drift_spread_factor
        )
        if reason is None:
            embs = [e.embedding for e in recent if e.embedding is not None]
            reason = embedding_drift(embs, self.reference, self.cfg.drift_embedding)
        if reason is None:
            return []
        self.retrains += 1
        self.proving_episodes = 0
        self._proving.clear()
        self._recent.clear()
        return [self._move(step, Phase.ONLINE, f"retraining on {reason}")]

    # ------------------------------------------------------------------ reporting

    def metrics(self) -> dict[str, float]:
        return {
            PHASE: float(int(self.phase)),
            FALLBACKS: float(self.fallbacks),
            RETRAINS: float(self.retrains),
            POLICY_SHARE: self._policy_share,
            OFFLINE_EPISODES: float(self.offline_episodes),
            PROVING_EPISODES: float(self.proving_episodes),
            REFERENCE_VIOLATION_RATE: self.reference_violation_rate,
        }

    def state(self) -> dict:
        """JSON-able record of where the lifecycle stands (written next to a run; ``restore`` reads it)."""
        return {
            "phase": self.phase.name,
            "transitions": [t.to_dict() for t in self.transitions],
            "reference": None if self.reference is None else self.reference.to_dict(),
            "offline_violations": list(self._offline_violations),
            **self.metrics(),
        }

    @staticmethod
    def restore(cfg: BootstrapConfig, state: dict) -> Lifecycle:
        """The lifecycle a ``state()`` record describes (to resume a run where it stopped)."""
        lc = Lifecycle(cfg)
        lc.phase = Phase.parse(state["phase"], "bootstrap state: phase")
        where = "bootstrap state: transitions"
        lc.transitions = [
            Transition(int(t["step"]), Phase.parse(t["from"], where), Phase.parse(t["to"], where), t["reason"])
            for t in state.get("transitions", [])
        ]
        lc._offline_violations = [float(v) for v in state.get("offline_violations", [])]
        lc.offline_episodes = int(state.get(OFFLINE_EPISODES, len(lc._offline_violations)))
        lc.fallbacks = int(state.get(FALLBACKS, 0))
        lc.retrains = int(state.get(RETRAINS, 0))
        lc.proving_episodes = int(state.get(PROVING_EPISODES, 0))
        lc._policy_share = float(state.get(POLICY_SHARE, 0.0))
        ref = state.get("reference")
        if ref:
            emb_mean, emb_std = (
                None if ref[k] is None else np.asarray(ref[k], dtype=np.float64)
                for k in ("embedding_mean", "embedding_std")
            )
            lc.reference = Reference(float(ref["reward_mean"]), float(ref["reward_std"]), emb_mean, emb_std)
        return lc
