"""Bootstrapping inside RLlib: the lifecycle end to end, the env runner's connector, the learner.

A tiny DDPG (chain3, 4 service slots, 20-interval episodes, one local env runner with two
envs) runs through every phase: the heuristic in OFFLINE (its actions fill the replay buffer,
the actor clones them), the policy in ONLINE, frozen in SERVING, and back to ONLINE on drift.
Around it: the per-episode report over chunks, the cloning loss by hand, and config errors.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from itertools import pairwise
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import ray
import torch
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from aware_ray.training.callbacks import (
    CPU_CORE_HOURS,
    CPU_UTIL,
    EPISODE_WINDOW,
    GUARD_CLAMPS,
    MEM_GIB_HOURS,
    SCALING_ACTIONS,
    SLO_VIOLATION_RATE,
    ScoreboardCallbacks,
)
from aware_ray.training.config import build_train_config
from aware_ray.training.train import build_algo_config
from envs.autoscale_env import AutoscaleEnv, StepRecord
from envs.errors import ConfigError
from policies.base import EnvContext
from policies.bootstrap import BootstrapConfig, Phase, Source
from policies.bootstrap.connector import EMBEDDING_KEY, REPORTS_ATTR, SOURCE_KEY, episode_report, find_piece
from policies.bootstrap.driver import EpisodeReports
from policies.bootstrap.lifecycle import EpisodeReport
from policies.bootstrap.teacher import make_teacher
from policies.ddpg import DDPGConfig
from policies.ddpg.ddpg_learner import BC_LOSS_KEY, DDPGLearner
from policies.ddpg.default_ddpg_rl_module import (
    ACTION_MASK,
    ACTOR_ACTIONS,
    FINITE_ROWS,
    Q_CURR,
    Q_PREDS,
    Q_TARGET_NEXT,
)
from policies.ddpg.layout import autoscale_layout
from policies.ddpg.torch.ddpg_torch_learner import behaviour_cloning_loss

ENV = {"app": "chain3", "max_services": 4, "history_window": 8, "episode_steps": 20}
"""Episodes of 20 intervals; with 2 envs x 10 steps per iteration, both envs finish one every 2 iterations."""

THROUGH_EVERY_PHASE = {
    "offline_episodes": 2,
    "bc_loss_max": 1.0,
    "serving_episodes": 2,
    "violation_margin": 1.0,
    "cost_margin": 100.0,
    "drift_episodes": 2,
    "drift_reward_k": 1e-6,
    "drift_spread_factor": 1e-6,
    "window": 10,
    "cooldown": 5,
}
"""The monitor never trips (a budget of every interval, 101x the heuristic's CPU) and any reward change is drift."""

BC_MODE_OF = {Phase.OFFLINE: "offline", Phase.ONLINE: "online", Phase.SERVING: "off"}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def tiny_config(bootstrap: dict[str, Any]) -> DDPGConfig:
    """A DDPG under bootstrapping small enough to run a whole lifecycle in seconds.

    One sampling round (2 envs x 10 steps) per iteration, two updates per round once 50
    steps are in, so an episode spans two iterations (one of them ends no episode: the
    lifecycle stays put, which is what lets an iteration start and end in SERVING).
    """
    return (
        DDPGConfig()
        .environment(AutoscaleEnv, env_config=ENV)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=2, rollout_fragment_length=10)
        .training(
            layout=autoscale_layout(4, 8),
            actor_hiddens=[32, 32],
            critic_hiddens=[32, 32],
            embedding_dim=4,
            meta_hidden=8,
            num_steps_sampled_before_learning_starts=50,
            training_intensity=3.2,
            train_batch_size_per_learner=32,
            bootstrap=bootstrap,
        )
        .callbacks(ScoreboardCallbacks)
        .reporting(min_sample_timesteps_per_iteration=20, min_time_s_per_iteration=0)
        .debugging(seed=0, log_level="ERROR")
    )


def learner_weights(algo: Any) -> dict[str, np.ndarray]:
    """Every parameter of the learner's module (actor, critic, meta-learner), copied."""
    return {k: np.array(v, copy=True) for k, v in algo.learner_group.get_weights()["default_policy"].items()}


def runner_actor(algo: Any) -> dict[str, torch.Tensor]:
    """The acting module's actor parameters on the local env runner, copied."""
    return {k: v.clone() for k, v in algo.get_module().state_dict().items() if k.startswith("actor.")}


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


def bc_modes(algo: Any) -> list[str]:
    return [r.get() for r in algo.learner_group.foreach_learner(lambda learner: learner.bc_mode)]


# ---------------------------------------------------------------------------------- end to end


def test_a_run_goes_through_every_phase(local_ray: None) -> None:
    torch.set_num_threads(1)
    algo = tiny_config(THROUGH_EVERY_PHASE).build_algo()
    try:
        results: list[dict[str, Any]] = []
        frozen_iterations = actor_moved_online = 0
        for _ in range(30):
            before_phase = algo.bootstrap.phase
            weights, actor = learner_weights(algo), runner_actor(algo)
            buffered = algo.local_replay_buffer.get_num_timesteps()
            result = algo.train()
            results.append(result)
            after_phase = algo.bootstrap.phase
            boot = result["bootstrap"]
            assert boot["phase"] == float(int(after_phase))
            assert boot["fallbacks"] == 0, "the monitor was configured never to trip"
            # What the driver pushed before the iteration: noise off only while serving; the
            # actor's objective follows the phase.
            assert algo.env_runner.module.explore_noise is (before_phase != Phase.SERVING)
            assert bc_modes(algo) == [BC_MODE_OF[before_phase]]
            if before_phase == after_phase == Phase.SERVING:
                frozen_iterations += 1
                assert same(learner_weights(algo), weights), "a serving policy must not be updated"
                assert same(runner_actor(algo), actor)
                assert algo.local_replay_buffer.get_num_timesteps() > buffered, "serving still fills the buffer"
            if before_phase == Phase.ONLINE and not same(runner_actor(algo), actor):
                actor_moved_online += 1
            if algo.bootstrap.lifecycle.retrains >= 1:
                break
        transitions = algo.bootstrap.lifecycle.transitions
        assert [(t.source, t.target) for t in transitions] == [
            (Phase.INITIALIZED, Phase.OFFLINE),
            (Phase.OFFLINE, Phase.ONLINE),
            (Phase.ONLINE, Phase.SERVING),
            (Phase.SERVING, Phase.ONLINE),
        ], "\n".join(map(str, transitions))
        steps = [t.step for t in transitions]
        assert steps == sorted(steps)
        for t in transitions:
            assert t.reason.strip() and "\n" not in t.reason, str(t)
        assert "retraining on reward drift" in transitions[-1].reason
        assert frozen_iterations >= 1, "no iteration started and ended in SERVING"
        assert actor_moved_online >= 1, "the actor never learned online (the frozen check proves nothing)"
        assert results[-1]["bootstrap"]["retrains"] >= 1
        assert results[-1]["bootstrap"]["phase"] == float(Phase.ONLINE)
        # Every finished episode was recorded, in the phase it finished in: the heuristic's
        # alone in OFFLINE, the policy's alone in SERVING (an episode spans two iterations).
        phases = {phase for _, phase, _ in algo.bootstrap.episodes}
        assert {Phase.OFFLINE, Phase.ONLINE, Phase.SERVING} <= phases
        for _, phase, report in algo.bootstrap.episodes:
            if phase == Phase.OFFLINE:
                assert report.policy_share == 0.0
            if phase == Phase.SERVING:
                assert report.policy_share == 1.0
    finally:
        algo.stop()


TRIPS_OFTEN = {
    "start_phase": "online",
    "window": 5,
    "violation_margin": 0.0,
    "cost_margin": 0.0,
    "cooldown": 2,
    "max_cooldown": 4,
    "utilization_ceiling": 0.8,
    "limit_tolerance": 0.1,
}
"""An untrained policy judged on a window of 5 against the heuristic's own cost: it trips all the time."""

HANDOVER = re.compile(
    r"^(fallback to the heuristic for \d+ intervals: policy (violated the SLO|reserved [\d.]+x the money) .+"
    r"|policy back in control after the cooldown)$"
)


def test_every_handover_reaches_the_driver_with_its_reason(local_ray: None) -> None:
    """Fallbacks happen in the env runners' arbiters; the driver logs each with its env and reason."""
    torch.set_num_threads(1)
    algo = tiny_config(TRIPS_OFTEN).build_algo()
    try:
        for _ in range(6):
            algo.train()
        handovers = list(algo.bootstrap.handovers)
        fallbacks = [h for h in handovers if h["event"].startswith("fallback")]
        assert fallbacks, "an untrained policy against a zero margin never tripped"
        for h in handovers:
            assert HANDOVER.match(h["event"]), h
            assert h["env"] in (0, 1) and h["iteration"] >= 1 and h["t"] >= 0
        for env in (0, 1):
            # Per env, control alternates: a fallback, then the hand-back, then a fallback...
            kinds = [h["event"].startswith("fallback") for h in handovers if h["env"] == env]
            assert all(a != b for a, b in pairwise(kinds)), kinds
        assert algo.bootstrap.record()["handovers"] == handovers
        assert algo.bootstrap.lifecycle.fallbacks <= len(fallbacks)
        # Nothing is logged twice: the runners' queues are empty after the pull.
        assert find_piece(algo.env_runner).handovers == []
    finally:
        algo.stop()


# ------------------------------------------------------------------ the heuristic fills the replay


def teacher_actions(cfg: BootstrapConfig, observations: np.ndarray) -> np.ndarray:
    """What a fresh teacher does on an episode's observations from its reset, in order.

    The connector's arbiter starts the teacher afresh on every new episode, so a second copy
    fed the same observations must reproduce every stored action.
    """
    teacher = make_teacher(cfg, EnvContext.of(AutoscaleEnv(ENV)))
    state = teacher.initial_state()
    out = []
    for obs in observations:
        action, state = teacher.act(np.asarray(obs, dtype=np.float32), state)
        out.append(action)
    return np.stack(out)


def check_heuristic_episode(cfg: BootstrapConfig, episode: SingleAgentEpisode, policy: Any) -> bool:
    """Assert an episode chunk from reset holds the teacher's actions; True if the policy would differ."""
    assert episode.t_started == 0
    n = len(episode)
    obs = np.asarray(episode.get_observations())[:n]
    stored = np.asarray(episode.get_actions())
    assert np.allclose(stored, teacher_actions(cfg, obs).reshape(stored.shape), atol=1e-6)
    assert np.array_equal(np.asarray(episode.get_extra_model_outputs(SOURCE_KEY)).ravel(), [Source.HEURISTIC] * n)
    with torch.no_grad():
        mine = policy.forward_inference({Columns.OBS: torch.as_tensor(obs)})[Columns.ACTIONS].numpy()
    return not np.allclose(mine, stored, atol=1e-3)


def test_offline_replay_holds_the_heuristics_actions(local_ray: None) -> None:
    torch.set_num_threads(1)
    boot = {"offline_episodes": 10**6}
    cfg = BootstrapConfig.from_dict(boot)
    # RLlib's episode buffer, which keeps whole episodes to read back (the flat buffer keeps
    # transitions, whose actions come from the same episodes).
    episodes = {"type": "EpisodeReplayBuffer", "capacity": 100_000}
    algo = tiny_config(boot).training(replay_buffer_config=episodes).build_algo()
    try:
        differs = []
        for _ in range(3):
            assert algo.train()["bootstrap"]["phase"] == float(Phase.OFFLINE)
        # What the training iterations stored (chunks of one episode are concatenated there).
        stored = [e for e in algo.local_replay_buffer.episodes if e.t_started == 0 and len(e) > 0]
        assert len(stored) >= 2
        differs += [check_heuristic_episode(cfg, e, algo.get_module()) for e in stored]
        # And whole fresh episodes straight from the env runner.
        sampled = algo.env_runner.sample(num_episodes=2, random_actions=False)
        whole = [e for e in sampled if e.t_started == 0 and e.is_done]
        assert len(whole) >= 2
        for e in whole:
            assert len(e) == ENV["episode_steps"]
            differs.append(check_heuristic_episode(cfg, e, algo.get_module()))
        assert any(differs), "the policy acts like the teacher: this test cannot tell them apart"
    finally:
        algo.stop()


# ------------------------------------------------------------------------ episode reports over chunks

REWARDS = [-1.0, -0.5, 0.0, -2.0, -1.5, 0.5, -0.25, -3.0, 1.0]
VIOLATED = [False, True, False, False, True, True, False, False, True]
SOURCES = [Source.HEURISTIC, Source.HEURISTIC, Source.POLICY]
SOURCES += [Source.FALLBACK, Source.FALLBACK, Source.POLICY]
SOURCES += [Source.POLICY, Source.FALLBACK, Source.POLICY]
"""POLICY -> FALLBACK twice: across the boundary at 3 and inside the last third."""
EMBEDDINGS = [np.array([float(i), -2.0 * i], dtype=np.float32) for i in range(9)]

EXPECTED = {
    "reward": -6.75 / 9,
    "violations": 4,
    "violation_rate": 4 / 9,
    "cpu_core_hours": 0.45,
    "policy_share": 4 / 9,
    "fallbacks": 2,
    "embedding": [4.0, -8.0],
}
EXPECTED_METRICS = {
    SLO_VIOLATION_RATE: 4 / 9,
    CPU_CORE_HOURS: 0.45,
    MEM_GIB_HOURS: 0.9,
    CPU_UTIL: (4 * 0.3 + 5 * 0.7) / 9,
    GUARD_CLAMPS: 4,
    SCALING_ACTIONS: 9,
}


def record(i: int) -> StepRecord | dict[str, Any]:
    """Interval i's scoreboard: a StepRecord on even intervals, its dict on odd ones (both reach infos)."""
    rec = StepRecord(
        t_seconds=15.0 * (i + 1),
        external_rps=100.0,
        e2e_p99_ms=50.0,
        violated=VIOLATED[i],
        dropped=0.0,
        cpu_core_hours=0.01 * (i + 1),
        mem_gib_hours=0.02 * (i + 1),
        cpu_utilization=0.3 if i % 2 else 0.7,
        scaling_actions=1,
        guard_clamps=i % 2,
        reward=REWARDS[i],
        reserved_cores=2.0,
    )
    return dataclasses.asdict(rec) if i % 2 else rec


def chunked_episode(cuts: list[int], lookback: int) -> list[SingleAgentEpisode]:
    """The 9-interval episode above, cut after the given intervals (as an env runner hands it over)."""
    obs = [np.full(2, float(i), dtype=np.float32) for i in range(10)]
    chunks = [SingleAgentEpisode(observations=[obs[0]], infos=[{}])]
    for i in range(9):
        if i in cuts:
            chunks.append(chunks[-1].cut(len_lookback_buffer=lookback))
        chunks[-1].add_env_step(
            obs[i + 1],
            np.zeros(3, dtype=np.float32),
            REWARDS[i],
            infos={"scoreboard": record(i)},
            truncated=i == 8,
            extra_model_outputs={SOURCE_KEY: int(SOURCES[i]), EMBEDDING_KEY: EMBEDDINGS[i]},
        )
    assert [len(c) for c in chunks] == [b - a for a, b in zip([0, *cuts], [*cuts, 9], strict=True)]
    return chunks


CHUNKINGS = [([], 0), ([3, 6], 0), ([3, 6], 1), ([4], 2), ([1, 3, 8], 1)]


def check_report(report: EpisodeReport | None) -> None:
    assert report is not None
    assert report.reward == pytest.approx(EXPECTED["reward"])
    assert report.violations == EXPECTED["violations"]
    assert report.violation_rate == pytest.approx(EXPECTED["violation_rate"])
    assert report.cpu_core_hours == pytest.approx(EXPECTED["cpu_core_hours"])
    assert report.policy_share == pytest.approx(EXPECTED["policy_share"])
    assert report.fallbacks == EXPECTED["fallbacks"]
    assert report.embedding is not None
    assert np.allclose(report.embedding, EXPECTED["embedding"])


@pytest.mark.parametrize(("cuts", "lookback"), CHUNKINGS)
def test_episode_report_over_chunks(cuts: list[int], lookback: int) -> None:
    chunks = chunked_episode(cuts, lookback)
    check_report(episode_report(chunks))


def test_episode_report_of_nothing() -> None:
    assert episode_report([]) is None
    assert episode_report([SingleAgentEpisode(observations=[np.zeros(2)], infos=[{}])]) is None


def test_episode_report_without_sources_counts_the_policy() -> None:
    """Episodes sampled without the bootstrap connector (no source output) are the policy's."""
    ep = SingleAgentEpisode(observations=[np.zeros(2)], infos=[{}])
    for i in range(3):
        ep.add_env_step(np.zeros(2), np.zeros(3), REWARDS[i], infos={"scoreboard": record(i)})
    report = episode_report([ep])
    assert report is not None
    assert (report.policy_share, report.fallbacks, report.violations) == (1.0, 0, 1)
    assert report.embedding is None


@pytest.mark.parametrize(("cuts", "lookback"), CHUNKINGS)
def test_scoreboard_callbacks_total_the_whole_episode(cuts: list[int], lookback: int) -> None:
    chunks = chunked_episode(cuts, lookback)
    logger = MetricsLogger()
    runner = SimpleNamespace()
    ScoreboardCallbacks().on_episode_end(
        episode=chunks[-1], prev_episode_chunks=chunks[:-1], metrics_logger=logger, env_runner=runner
    )
    for key, value in EXPECTED_METRICS.items():
        assert logger.peek(key) == pytest.approx(value), key
    # The base class kept the lifecycle's report on the runner for the driver to pull.
    reports = runner.__dict__[REPORTS_ATTR]
    assert len(reports) == 1
    check_report(reports[0])


def test_scoreboard_callbacks_average_the_recent_episodes() -> None:
    """Training metrics follow the policy: after EPISODE_WINDOW episodes that all violate, the
    violation rate reads 1, whatever the episodes before (RLlib's default EMA would still read
    about 0.2 after 20 such episodes following many clean ones)."""
    logger = MetricsLogger()
    callbacks = ScoreboardCallbacks()

    def episode(violated: bool) -> SingleAgentEpisode:
        ep = SingleAgentEpisode(observations=[np.zeros(2, dtype=np.float32)], infos=[{}])
        rec = dataclasses.replace(record(0), violated=violated)
        ep.add_env_step(np.zeros(2, dtype=np.float32), np.zeros(3, dtype=np.float32), 0.0, infos={"scoreboard": rec})
        return ep

    for violated in [False] * 50 + [True] * EPISODE_WINDOW:
        callbacks.on_episode_end(episode=episode(violated), metrics_logger=logger, env_runner=SimpleNamespace())
    assert logger.peek(SLO_VIOLATION_RATE) == pytest.approx(1.0)


# ------------------------------------------------------------------------ behaviour cloning by hand

ACTOR = [[0.5, -0.5, 1.0, 0.2], [0.0, 0.0, 0.0, 0.0], [3.0, 3.0, 3.0, 3.0]]
REPLAYED = [[0.0, 0.0, 0.0, 0.9], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
MASK = [[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
"""Row 0: (0.25 + 0.25 + 1) / 3 = 0.5 (the padded 4th component ignored); row 1: (1 + 1) / 2 = 1;
row 2 (9 per component) is non-finite and left out: (0.5 + 1) / 2 = 0.75."""


@pytest.mark.parametrize(
    ("finite", "expected"),
    [
        ([1.0, 1.0, 0.0], 0.75),
        ([1.0, 0.0, 0.0], 0.5),
        ([1.0, 1.0, 1.0], (0.5 + 1.0 + 9.0) / 3),
        ([0.0, 0.0, 0.0], 0.0),
    ],
)
def test_behaviour_cloning_loss_by_hand(finite: list[float], expected: float) -> None:
    actor = torch.tensor(ACTOR, requires_grad=True)
    loss = behaviour_cloning_loss(actor, torch.tensor(REPLAYED), torch.tensor(MASK), torch.tensor(finite))
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    # Padded components and non-finite rows get no gradient.
    assert actor.grad is not None
    assert actor.grad[0, 3].item() == 0.0 and actor.grad[1, 2:].abs().sum().item() == 0.0
    if finite[2] == 0.0:
        assert actor.grad[2].abs().sum().item() == 0.0


def hand_learner(**training: Any) -> tuple[Any, DDPGConfig]:
    """A built DDPG learner without Ray (as tests/test_ddpg.py builds one), to call its loss directly."""
    env = AutoscaleEnv(ENV)
    cfg = (
        DDPGConfig()
        .environment(observation_space=env.observation_space, action_space=env.action_space)
        .training(
            layout=autoscale_layout(4, 8),
            actor_hiddens=[16],
            critic_hiddens=[16],
            embedding_dim=4,
            meta_hidden=8,
            **training,
        )
    )
    spaces = {
        "__env__": (env.observation_space, env.action_space),
        "default_policy": (env.observation_space, env.action_space),
    }
    learner = cfg.build_learner(env=None, spaces=spaces)
    learner.build()
    return learner, cfg


@pytest.mark.parametrize(
    ("mode", "weight", "expected"),
    [
        # critic: y = [1 + 0.5 * 4, 0, 0], rows 0-1 finite: ((2-3)^2 + (1-0)^2) / 2 = 1; -Q: -(3 + 5) / 2 = -4.
        ("off", 0.0, 1.0 - 4.0),
        ("offline", 0.0, 1.0 + 0.75),
        # TD3+BC: -Q / mean|Q| + w x bc = -4 / 4 + 0.5 x 0.75.
        ("online", 0.5, 1.0 - 1.0 + 0.375),
        ("online", 0.0, 1.0 - 4.0),
    ],
)
def test_actor_objective_per_cloning_mode(mode: str, weight: float, expected: float) -> None:
    learner, cfg = hand_learner(gamma=0.5, aux_loss_weight=0.0)
    assert (learner.bc_mode, learner.bc_weight) == ("off", 0.0)
    learner.set_behaviour_cloning(mode, weight)
    batch = {
        Columns.REWARDS: torch.tensor([1.0, 0.0, 0.0]),
        Columns.TERMINATEDS: torch.tensor([False, True, False]),
        Columns.ACTIONS: torch.tensor([REPLAYED[0], REPLAYED[1], [float("nan")] * 4]),
        "n_step": torch.tensor([1, 1, 1]),
        "weights": torch.tensor([1.0, 1.0, 1.0]),
    }
    fwd = {
        Q_PREDS: torch.tensor([2.0, 1.0, 5.0]),
        Q_TARGET_NEXT: torch.tensor([4.0, 10.0, 0.0]),
        Q_CURR: torch.tensor([3.0, 5.0, 100.0]),
        FINITE_ROWS: torch.tensor([True, True, False]),
        ACTOR_ACTIONS: torch.tensor([ACTOR[0], ACTOR[1], [0.0] * 4]),
        ACTION_MASK: torch.tensor(MASK),
    }
    total = learner.compute_loss_for_module(module_id="default_policy", config=cfg, batch=batch, fwd_out=fwd)
    assert total.item() == pytest.approx(expected)
    assert learner.metrics.peek(("default_policy", BC_LOSS_KEY)) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("mode", "weight", "fragment"),
    [("bogus", 0.0, "mode"), ("OFFLINE", 0.0, "mode"), ("online", -0.1, "weight"), ("online", float("nan"), "weight")],
)
def test_set_behaviour_cloning_rejects(mode: str, weight: float, fragment: str) -> None:
    target = SimpleNamespace(bc_mode="off", bc_weight=0.0)
    with pytest.raises(ValueError, match=fragment):
        DDPGLearner.set_behaviour_cloning(target, mode, weight)  # type: ignore[arg-type]
    assert (target.bc_mode, target.bc_weight) == ("off", 0.0), "a rejected call must change nothing"


# ----------------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    ("section", "overrides", "key"),
    [
        ({"window": 0}, [], "bootstrap.window"),
        ({"violation_margin": -0.1}, [], "bootstrap.violation_margin"),
        ({"start_phase": "warmup"}, [], "bootstrap.start_phase"),
        ({"windw": 10}, [], "bootstrap.windw"),
        ({"window": "10"}, [], "bootstrap.window"),
        ({"heuristic": "oracle@0.5"}, [], "bootstrap.heuristic"),
        ({}, ["bootstrap.window=0"], "bootstrap.window"),
        ({"window": 40}, ["bootstrap.cooldown=0"], "bootstrap.cooldown"),
    ],
)
def test_bad_bootstrap_section_names_file_and_key(section: dict[str, Any], overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_train_config({"bootstrap": section}, "x.yaml", overrides)
    message = str(err.value)
    assert message.startswith("x.yaml: ") and key in message, message
    assert "\n" not in message


def test_set_into_an_empty_bootstrap_section_is_a_config_error() -> None:
    """An empty `bootstrap:` line reads as None: it means the defaults, and --set still names the key."""
    with pytest.raises(ConfigError, match=r"bootstrap\.window"):
        build_train_config({"bootstrap": None}, "x.yaml", ["bootstrap.window=0"])
    assert build_train_config({"bootstrap": None}, "x.yaml", []).bootstrap == BootstrapConfig()
    with pytest.raises(ConfigError, match="section 'run' is not a mapping"):
        build_train_config({"run": 3}, "x.yaml", ["run.iterations=2"])


def test_bootstrap_section_reaches_the_algorithm_config() -> None:
    cfg = build_train_config({"env": dict(ENV), "bootstrap": {"window": 12}}, "x.yaml", ["bootstrap.cooldown=3"])
    assert cfg.bootstrap == BootstrapConfig(window=12, cooldown=3)
    algo_cfg = build_algo_config(cfg)
    assert algo_cfg.bootstrap == cfg.bootstrap.to_dict()
    algo_cfg.validate()  # ScoreboardCallbacks keeps the episode reports
    assert build_train_config({"env": dict(ENV)}, "x.yaml", []).bootstrap is None


def test_ddpg_config_validates_the_bootstrap_section() -> None:
    with pytest.raises(ConfigError, match=r"bootstrap\.window"):
        DDPGConfig().training(bootstrap={"window": 0}).callbacks(ScoreboardCallbacks).validate()


@pytest.mark.parametrize(
    ("callbacks", "ok"),
    [
        (None, False),
        (RLlibCallback, False),
        ([RLlibCallback], False),
        (ScoreboardCallbacks, True),
        (EpisodeReports, True),
        ([RLlibCallback, EpisodeReports], True),
    ],
)
def test_bootstrap_needs_the_episode_reports_callback(callbacks: Any, ok: bool) -> None:
    cfg = DDPGConfig().training(bootstrap={})
    if callbacks is not None:
        cfg = cfg.callbacks(callbacks)
    if ok:
        cfg.validate()
        return
    with pytest.raises(ValueError, match="EpisodeReports"):
        cfg.validate()


@pytest.mark.parametrize(
    ("canary_envs", "first_env", "expected"),
    [(0, 0, [True, True]), (1, 0, [True, False]), (2, 0, [True, True]), (2, 2, [False, False]), (3, 2, [True, False])],
    ids=["everywhere", "first-only", "both", "other-runner", "straddles-runners"],
)
def test_canary_envs_are_counted_across_runners(canary_envs: int, first_env: int, expected: list[bool]) -> None:
    """The driver numbers envs globally (runner offset + slot); only the first `canary_envs` let the policy act."""
    from policies.bootstrap.connector import BootstrapActions

    piece = BootstrapActions(env_config=dict(ENV), bootstrap={"canary_envs": canary_envs})
    arbiters = [piece._arbiter(slot) for slot in range(2)]
    piece.set_phase(Phase.ONLINE, 0.01, first_env)
    assert [a.canary for a in arbiters] == expected
    assert all(a.phase is Phase.ONLINE and a.monitor.reference_violation_rate == 0.01 for a in arbiters)
    assert piece._arbiter(2).canary is (canary_envs == 0 or first_env + 2 < canary_envs)
