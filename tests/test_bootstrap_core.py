"""The bootstrapping lifecycle's pure logic: config, phases, safety monitor, drift rules, state machine.

Everything here is plain Python on numbers, so each rule is stated as a table: the input, and
the decision (and, where it moves, the reason) the rule must give. The simulator-driven tests
of the arbiter are in ``test_bootstrap_arbiter.py``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from envs.errors import ConfigError
from policies.bootstrap import BootstrapConfig, Lifecycle, Phase, Transition
from policies.bootstrap.drift import (
    SPREAD_FLOOR,
    Reference,
    embedding_distance,
    embedding_drift,
    reward_drift,
)
from policies.bootstrap.lifecycle import FALLBACKS, PHASE, RETRAINS, EpisodeReport
from policies.bootstrap.monitor import Interval, SafetyMonitor


def one_line(text: str | None) -> bool:
    """A reason a CLI or a log prints as is: present, non-empty and without line breaks."""
    return bool(text) and "\n" not in text and "\r" not in text


# ---------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("d", "key", "fragment"),
    [
        pytest.param({"window": 0}, "bootstrap.window", "integer >= 1", id="window-0"),
        pytest.param({"cooldown": 0}, "bootstrap.cooldown", "integer >= 1", id="cooldown-0"),
        pytest.param({"drift_episodes": 0}, "bootstrap.drift_episodes", "integer >= 1", id="drift-episodes-0"),
        pytest.param({"offline_episodes": -1}, "bootstrap.offline_episodes", "integer >= 0", id="offline-negative"),
        pytest.param({"violation_margin": -0.01}, "bootstrap.violation_margin", ">= 0", id="violation-negative"),
        pytest.param({"violation_margin": 1.5}, "bootstrap.violation_margin", "[0, 1]", id="violation-above-1"),
        pytest.param({"serving_min_share": 1.5}, "bootstrap.serving_min_share", "[0, 1]", id="share-above-1"),
        pytest.param({"serving_min_share": "most"}, "bootstrap.serving_min_share", "number", id="share-not-a-number"),
        pytest.param({"cost_margin": -0.1}, "bootstrap.cost_margin", ">= 0", id="cost-negative"),
        pytest.param({"cost_margin": math.nan}, "bootstrap.cost_margin", ">= 0", id="cost-nan"),
        pytest.param({"bc_loss_max": -1}, "bootstrap.bc_loss_max", ">= 0", id="bc-loss-negative"),
        pytest.param({"drift_reward_k": 0}, "bootstrap.drift_reward_k", "> 0", id="drift-k-0"),
        pytest.param({"drift_spread_factor": 0.0}, "bootstrap.drift_spread_factor", "> 0", id="spread-factor-0"),
        pytest.param(
            {"cooldown": 50, "max_cooldown": 40}, "bootstrap.max_cooldown", ">= cooldown (50)", id="max-below-cooldown"
        ),
        pytest.param({"cost_window": -5}, "bootstrap.cost_window", "integer >= 0", id="cost-window-negative"),
        pytest.param({"utilization_ceiling": 1.2}, "bootstrap.utilization_ceiling", "(0, 1]", id="ceiling-above-1"),
        pytest.param({"limit_tolerance": 1.0}, "bootstrap.limit_tolerance", "[0, 1)", id="tolerance-1"),
        pytest.param({"limit_tolerance": -0.1}, "bootstrap.limit_tolerance", ">= 0", id="tolerance-negative"),
        pytest.param({"windw": 40}, "bootstrap.windw", "unknown key", id="unknown-key"),
        pytest.param(
            {"start_phase": "warm"},
            "bootstrap.start_phase",
            "unknown phase 'warm' (known: initialized, offline, online, serving)",
            id="unknown-phase",
        ),
        pytest.param({"start_phase": 2}, "bootstrap.start_phase", "expected a string", id="phase-int"),
        pytest.param({"window": "40"}, "bootstrap.window", "expected an integer", id="window-str"),
        pytest.param({"window": True}, "bootstrap.window", "expected an integer", id="window-bool"),
        pytest.param({"window": 40.0}, "bootstrap.window", "expected an integer", id="window-float"),
        pytest.param({"cost_margin": "0.2"}, "bootstrap.cost_margin", "expected a number", id="cost-str"),
        pytest.param({"cost_margin": False}, "bootstrap.cost_margin", "expected a number", id="cost-bool"),
        pytest.param({"heuristic": ["hpa@0.5"]}, "bootstrap.heuristic", "expected a string", id="heuristic-list"),
        pytest.param({"heuristic": "vpa@0.5"}, "bootstrap.heuristic", "hpa@T or hpa+vpa@T", id="heuristic-vpa"),
        pytest.param({"heuristic": "hpa@abc"}, "bootstrap.heuristic", "must be a number", id="heuristic-abc"),
        pytest.param({"heuristic": "hpa@2"}, "bootstrap.heuristic", "[0.05, 1.0]", id="heuristic-2"),
        pytest.param({"heuristic": "hpa+vpa@0.01"}, "bootstrap.heuristic", "[0.05, 1.0]", id="heuristic-0.01"),
    ],
)
def test_config_rejects(d: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        BootstrapConfig.from_dict(d)
    message = str(err.value)
    assert one_line(message)
    assert message.startswith(f"{key}:"), message
    assert fragment in message


def test_config_rejects_a_non_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^bootstrap: expected a mapping"):
        BootstrapConfig.from_dict([("window", 4)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "d",
    [
        None,
        {},
        {"heuristic": "hpa@0.7", "start_phase": "ONLINE", "window": 20, "cooldown": 10, "max_cooldown": 10},
        {"heuristic": "hpa+vpa@1", "offline_episodes": 0, "serving_episodes": 0, "violation_margin": 1},
        {"cost_margin": 0, "violation_margin": 0.0, "drift_embedding": 0, "bc_loss_max": 0.5},
    ],
    ids=["none", "empty", "online", "extremes", "zero-margins"],
)
def test_config_round_trips(d: dict[str, Any] | None) -> None:
    cfg = BootstrapConfig.from_dict(d)
    again = BootstrapConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert again.to_dict() == cfg.to_dict()
    assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()
    for key, value in (d or {}).items():
        assert getattr(cfg, key) == value


@pytest.mark.parametrize(
    ("heuristic", "teacher"),
    [
        ("hpa@0.5", ("hpa", 0.5)),
        ("hpa+vpa@0.7", ("hpa+vpa", 0.7)),
        ("hpa", ("hpa", 0.6)),
        ("hpa+vpa@1", ("hpa+vpa", 1.0)),
    ],
    ids=["hpa", "hpa+vpa", "default-target", "target-1"],
)
def test_config_teacher(heuristic: str, teacher: tuple[str, float]) -> None:
    assert BootstrapConfig(heuristic=heuristic).teacher == teacher


# ---------------------------------------------------------------------------------------- phase


@pytest.mark.parametrize(
    ("name", "phase"),
    [
        ("initialized", Phase.INITIALIZED),
        ("OFFLINE", Phase.OFFLINE),
        ("OnLine", Phase.ONLINE),
        (" serving ", Phase.SERVING),
    ],
)
def test_phase_parse_is_case_insensitive(name: str, phase: Phase) -> None:
    assert Phase.parse(name, "here") is phase
    assert BootstrapConfig(start_phase=name).phase is phase


@pytest.mark.parametrize("name", ["", "train", "online!", 2, None], ids=["empty", "train", "punct", "int", "none"])
def test_phase_parse_rejects(name: Any) -> None:
    with pytest.raises(ConfigError) as err:
        Phase.parse(name, "somewhere.phase")
    message = str(err.value)
    assert one_line(message)
    assert message.startswith("somewhere.phase: unknown phase")
    assert "initialized, offline, online, serving" in message


@pytest.mark.parametrize(
    ("phase", "heuristic_in_control", "learning"),
    [
        (Phase.INITIALIZED, True, False),
        (Phase.OFFLINE, True, True),
        (Phase.ONLINE, False, True),
        (Phase.SERVING, False, False),
    ],
    ids=lambda v: v.name if isinstance(v, Phase) else None,
)
def test_phase_roles(phase: Phase, heuristic_in_control: bool, learning: bool) -> None:
    assert phase.heuristic_in_control is heuristic_in_control
    assert phase.learning is learning


# ---------------------------------------------------------------------------------------- monitor


def monitor(reference: float = 0.0, margin: float = 0.05, window: int = 20, cost_margin: float = 0.25) -> SafetyMonitor:
    """A monitor with the reference the lifecycle would have set from the heuristic's episodes."""
    m = SafetyMonitor(window, margin, cost_margin)
    m.reference_violation_rate = reference
    return m


def clean(reserved: float = 1.0, heuristic: float = 1.0) -> Interval:
    return Interval(violated=False, reserved=reserved, rule=heuristic)


def violating() -> Interval:
    return Interval(violated=True, reserved=1.0, rule=1.0)


@pytest.mark.parametrize(
    ("reference", "margin", "window", "budget"),
    [
        (0.0, 0.05, 40, 2),
        (0.02, 0.05, 20, 1),
        (0.05, 0.05, 20, 2),
        (0.0, 0.0, 20, 0),
        (0.0, 0.05, 19, 0),
        (0.7, 0.1, 10, 8),  # 0.7 + 0.1 is 0.7999... in floating point: still 8 of 10
        (0.1, 0.2, 10, 3),  # 0.1 + 0.2 is 0.3000...04: still 3 of 10
        (0.9, 0.5, 10, 10),  # capped at a rate of 1
        (1.0, 0.0, 7, 7),
    ],
    ids=lambda v: f"{v:g}",
)
def test_monitor_budget(reference: float, margin: float, window: int, budget: int) -> None:
    assert monitor(reference, margin, window).budget() == budget


@pytest.mark.parametrize(
    ("reference", "margin", "window"),
    [(0.0, 0.05, 40), (0.02, 0.05, 20), (0.0, 0.0, 20), (0.1, 0.1, 10)],
    ids=["budget-2", "budget-1", "budget-0", "budget-2-of-10"],
)
def test_monitor_trips_at_budget_plus_one(reference: float, margin: float, window: int) -> None:
    m = monitor(reference, margin, window)
    budget = m.budget()
    for _ in range(budget):
        assert m.observe(violating()) is None
    reason = m.observe(violating())
    assert one_line(reason)
    assert f"violated the SLO in {budget + 1} of its last {budget + 1} intervals" in str(reason)
    assert f"the budget is {budget} per {window}" in str(reason)


def test_monitor_forgets_violations_that_left_the_window() -> None:
    """One violation every `window` intervals never exceeds a budget of one."""
    m = monitor(0.0, 0.05, 20)
    assert m.budget() == 1
    for i in range(200):
        assert m.observe(violating() if i % 20 == 0 else clean()) is None
    # Two inside one window do.
    for _ in range(18):
        m.observe(clean())
    assert m.observe(violating()) is None
    assert m.observe(violating()) is not None


def test_monitor_reset_forgets_the_window() -> None:
    m = monitor(0.0, 0.05, 20)
    m.observe(violating())
    m.reset()
    assert not m.intervals
    assert m.observe(violating()) is None


@pytest.mark.parametrize(
    ("reserved", "heuristic", "intervals", "trips"),
    [
        (5.0, 4.0, 10, False),  # exactly 1.25x: allowed
        (5.01, 4.0, 10, True),  # above 1.25x once the window is full
        (50.0, 4.0, 9, False),  # far above, but the window is not full yet
        (50.0, 4.0, 10, True),
        (3.0, 4.0, 10, False),  # cheaper than the heuristic
        (50.0, 0.0, 10, False),  # no reference cost: nothing to compare with
    ],
    ids=["at-margin", "above-margin", "window-not-full", "window-full", "cheaper", "no-reference"],
)
def test_monitor_cost_rule(reserved: float, heuristic: float, intervals: int, trips: bool) -> None:
    m = monitor(0.0, 0.05, 10, cost_margin=0.25)
    reasons = [m.observe(clean(reserved, heuristic)) for _ in range(intervals)]
    assert all(r is None for r in reasons[:-1])
    if trips:
        assert one_line(reasons[-1])
        assert "CPU in use over 10 intervals (the heuristic's own ratio 1.00, allowed 1.25x)" in str(reasons[-1])
    else:
        assert reasons[-1] is None


def test_monitor_cost_is_judged_over_the_whole_window() -> None:
    """One expensive interval among cheap ones is fine; the sum over the window decides."""
    m = monitor(0.0, 0.05, 10, cost_margin=0.25)
    assert all(m.observe(clean(1.0, 4.0)) is None for _ in range(9))
    assert m.observe(clean(20.0, 4.0)) is None  # 9 + 20 = 29 <= 1.25 x 40
    assert m.observe(clean(30.0, 4.0)) is not None  # 8 + 20 + 30 = 58 > 50


def test_monitor_cost_window_is_separate_from_the_violation_window() -> None:
    """Violations are judged over the last 10 intervals, cost only once 30 are in, over those 30."""
    m = SafetyMonitor(10, 0.1, 0.25, cost_window=30)
    assert all(m.observe(clean(50.0, 4.0)) is None for _ in range(29))  # 12x the rule, but not yet judged
    reason = m.observe(clean(50.0, 4.0))
    assert reason is not None and "over 30 intervals" in reason
    m.reset()
    # One violation per 10 intervals is the budget; two among the last 10 trip, whenever they came.
    outcomes = [m.observe(violating() if i in (0, 25) else clean()) for i in range(30)]
    assert all(r is None for r in outcomes)
    assert m.observe(violating()) is not None  # the 26th interval and this one are within the last 10
    m.reset()
    # Cheap early intervals leave the cost window once 30 newer ones are in.
    for _ in range(30):
        m.observe(clean(1.0, 4.0))
    results = [m.observe(clean(6.0, 4.0)) for _ in range(30)]
    # 1.5x the rule against 1.25x allowed: (30 - k) + 6k > 150 first at the 25th expensive interval.
    assert [r is not None for r in results].index(True) == 24


# ---------------------------------------------------------------------------------------- drift


@pytest.mark.parametrize(
    ("rewards", "mean", "std"),
    [
        ([1.0, 1.0, 1.0], 1.0, 0.01),  # 1 % of the mean
        ([0.0, 0.0], 0.0, SPREAD_FLOOR),
        ([-200.0], -200.0, 2.0),
        ([0.0, 2.0], 1.0, 1.0),
        ([0.0005, -0.0005], 0.0, SPREAD_FLOOR),
    ],
    ids=["relative-floor", "absolute-floor", "negative-mean", "real-spread", "tiny-spread"],
)
def test_reference_floors(rewards: list[float], mean: float, std: float) -> None:
    ref = Reference.of(rewards)
    assert ref.reward_mean == pytest.approx(mean)
    assert ref.reward_std == pytest.approx(std)
    assert ref.embedding_mean is None and ref.embedding_std is None


def test_reference_needs_an_episode() -> None:
    with pytest.raises(ValueError, match="at least one episode reward"):
        Reference.of([])


@pytest.mark.parametrize(
    ("embeddings", "mean", "std"),
    [
        ([[0.0, 0.0], [2.0, 0.0]], [1.0, 0.0], [1.0, 0.5]),  # the still dimension gets the mean spread
        ([[1.0, 1.0], [1.0, 1.0]], [1.0, 1.0], [SPREAD_FLOOR, SPREAD_FLOOR]),
        ([[0.0, 0.0], [2.0, 4.0]], [1.0, 2.0], [1.5, 2.0]),
    ],
    ids=["still-dimension", "all-still", "both-move"],
)
def test_reference_embedding_spread(embeddings: list[list[float]], mean: list[float], std: list[float]) -> None:
    ref = Reference.of([0.0] * len(embeddings), [np.array(e) for e in embeddings])
    np.testing.assert_allclose(ref.embedding_mean, mean)
    np.testing.assert_allclose(ref.embedding_std, std)
    assert json.loads(json.dumps(ref.to_dict()))["embedding_std"] == pytest.approx(std)


REF = Reference(reward_mean=1.0, reward_std=0.25)
"""Band at k=2: [0.5, 1.5]; spread limit at factor 2: 0.5 (all exact in binary)."""


@pytest.mark.parametrize(
    ("recent", "kind"),
    [
        ([1.0], None),
        ([0.5], None),  # the band is closed
        ([1.5], None),
        ([0.5, 1.5], None),  # spread exactly at the limit
        ([0.8, 1.2, 1.0], None),
        ([0.49], "mean"),
        ([1.51], "mean"),
        ([0.2, 0.4, 0.6], "mean"),
        ([2.0, 2.0], "mean"),
        ([0.4, 1.6], "spread"),  # mean inside, spread 0.6 > 2 x 0.25
        ([0.0, 2.0, 1.0, 1.0], "spread"),
    ],
    ids=str,
)
def test_reward_drift(recent: list[float], kind: str | None) -> None:
    reason = reward_drift(recent, REF, k=2.0, spread_factor=2.0)
    if kind is None:
        assert reason is None
        return
    assert one_line(reason)
    assert str(reason).startswith("reward drift:")
    assert ("outside" in str(reason)) == (kind == "mean")
    assert ("spread" in str(reason)) == (kind == "spread")


EMB_REF = Reference.of([0.0, 0.0], [np.array([0.0, 0.0]), np.array([2.0, 2.0])])
"""Embedding mean (1, 1), spread (1, 1): the distance is simply how far in units."""


@pytest.mark.parametrize(
    ("recent", "threshold", "distance", "drifts"),
    [
        ([[1.0, 1.0]], 3.0, 0.0, False),
        ([[1.5, 0.5]], 3.0, 0.5, False),
        ([[4.0, 4.0]], 3.0, 3.0, False),  # at the limit
        ([[5.0, 5.0]], 3.0, 4.0, True),
        ([[5.0, 5.0], [-3.0, -3.0]], 3.0, 0.0, False),  # the mean of the recent episodes counts
        ([[11.0, 1.0]], 3.0, math.sqrt(50.0), True),
        ([[50.0, 50.0]], 0.0, 49.0, False),  # threshold 0: off
        ([], 3.0, None, False),
    ],
    ids=["same", "near", "at-limit", "far", "far-both-ways", "one-dimension", "disabled", "no-episodes"],
)
def test_embedding_drift(recent: list[list[float]], threshold: float, distance: float | None, drifts: bool) -> None:
    embs = [np.array(e) for e in recent]
    if distance is not None:
        assert embedding_distance(embs, EMB_REF) == pytest.approx(distance)
    reason = embedding_drift(embs, EMB_REF, threshold)
    if drifts:
        assert one_line(reason)
        assert str(reason).startswith("workload drift:")
    else:
        assert reason is None


def test_embedding_drift_without_reference_embeddings() -> None:
    ref = Reference.of([1.0, 2.0])
    far = [np.array([100.0, 100.0])]
    assert embedding_distance(far, ref) == 0.0
    assert embedding_drift(far, ref, 3.0) is None


# ---------------------------------------------------------------------------------------- lifecycle


def episode(
    reward: float = 1.0,
    violation_rate: float = 0.0,
    policy_share: float = 1.0,
    fallbacks: int = 0,
    embedding: list[float] | None = None,
) -> EpisodeReport:
    """A finished episode; by default one the policy controlled throughout, cleanly."""
    emb = None if embedding is None else np.array(embedding, dtype=np.float64)
    return EpisodeReport(
        reward=reward, violation_rate=violation_rate, policy_share=policy_share, fallbacks=fallbacks, embedding=emb
    )


HEURISTIC_EPISODE = episode(policy_share=0.0)


def lifecycle(**kw: Any) -> Lifecycle:
    return Lifecycle(BootstrapConfig(**kw))


def test_lifecycle_starts_initialized_and_observe_moves_offline() -> None:
    lc = lifecycle(offline_episodes=5)
    assert lc.phase is Phase.INITIALIZED
    assert lc.transitions == []
    moved = lc.observe(0, [])
    assert [(t.source, t.target) for t in moved] == [(Phase.INITIALIZED, Phase.OFFLINE)]
    assert one_line(moved[0].reason)
    assert "hpa+vpa@0.5" in moved[0].reason
    assert lc.phase is Phase.OFFLINE
    assert lc.observe(1, []) == []
    assert lc.start(2) == []


def test_lifecycle_start_leaves_initialized_once() -> None:
    lc = lifecycle()
    assert [t.target for t in lc.start(7)] == [Phase.OFFLINE]
    assert lc.transitions[0].step == 7
    assert lc.start(8) == []
    assert lc.observe(9, [HEURISTIC_EPISODE]) == []
    assert lc.offline_episodes == 1


@pytest.mark.parametrize("start_phase", ["online", "offline", "serving"])
def test_lifecycle_start_phase_makes_no_transition(start_phase: str) -> None:
    lc = lifecycle(start_phase=start_phase)
    assert lc.phase is Phase.parse(start_phase, "test")
    assert lc.start() == []
    assert lc.observe(0, []) == []
    assert lc.transitions == []
    assert lc.reference_violation_rate == 0.0


@pytest.mark.parametrize(
    ("episodes", "bc_loss", "phase"),
    [
        (2, 0.01, Phase.OFFLINE),  # not enough episodes
        (3, None, Phase.OFFLINE),  # enough, but no cloning loss yet
        (3, 0.06, Phase.OFFLINE),  # enough, but the actor does not clone the heuristic yet
        (3, math.nan, Phase.OFFLINE),
        (3, 0.05, Phase.ONLINE),  # both met (the bound is inclusive)
        (3, 0.01, Phase.ONLINE),
        (6, 0.0, Phase.ONLINE),
    ],
    ids=["few-episodes", "no-bc-loss", "bc-loss-high", "bc-loss-nan", "bc-loss-at-max", "both-met", "more-episodes"],
)
def test_lifecycle_offline_to_online(episodes: int, bc_loss: float | None, phase: Phase) -> None:
    lc = lifecycle(offline_episodes=3, bc_loss_max=0.05)
    moved = lc.observe(4, [HEURISTIC_EPISODE] * episodes, bc_loss=bc_loss)
    assert lc.phase is phase
    assert lc.offline_episodes == episodes
    assert [t.target for t in moved] == [Phase.OFFLINE] + ([Phase.ONLINE] if phase is Phase.ONLINE else [])
    if phase is Phase.ONLINE:
        reason = moved[-1].reason
        assert one_line(reason)
        assert f"{episodes} heuristic episodes (>= 3)" in reason
        assert "(<= 0.05)" in reason


def test_lifecycle_goes_online_on_the_call_that_meets_both_criteria() -> None:
    """Episodes one call at a time; the cloning loss drops below the bound only on the 5th."""
    lc = lifecycle(offline_episodes=3, bc_loss_max=0.05)
    phases = []
    for i, loss in enumerate([0.5, 0.2, 0.1, 0.06, 0.04, 0.01]):
        lc.observe(i, [HEURISTIC_EPISODE], bc_loss=loss)
        phases.append(lc.phase)
    assert phases == [Phase.OFFLINE] * 4 + [Phase.ONLINE] * 2
    assert [t.step for t in lc.transitions] == [0, 4]
    assert lc.offline_episodes == 5  # the 6th was an online episode


def test_lifecycle_reference_violation_rate_is_the_offline_mean() -> None:
    lc = lifecycle(offline_episodes=3, bc_loss_max=0.05)
    lc.observe(0, [episode(violation_rate=v, policy_share=0.0) for v in (0.1, 0.0, 0.05)])
    assert lc.phase is Phase.OFFLINE  # no cloning loss yet
    lc.observe(1, [episode(violation_rate=0.03, policy_share=0.0)], bc_loss=0.01)
    assert lc.phase is Phase.ONLINE
    assert lc.reference_violation_rate == pytest.approx(0.045)
    assert "4.5%" in lc.transitions[-1].reason
    # Online episodes do not move the heuristic's reference.
    lc.observe(2, [episode(violation_rate=0.9)])
    assert lc.reference_violation_rate == pytest.approx(0.045)


@pytest.mark.parametrize(
    ("episodes", "serving_at"),
    [
        ("ccc", 2),
        ("cc", None),
        ("cfc", 2),  # a fallback does not disqualify a policy that mostly acted within the limit
        ("ssc", None),  # the policy acted on too few intervals (mean share 0.67 < 0.8)
        ("sscc", 3),  # the window slides past them
        ("vcc", None),  # too many violations (mean 3.3 % > 0 % + 2 % margin)
        ("vccc", 3),
        ("cncnc", 4),  # episodes outside the canary neither count nor break the window
        ("nnn", None),
        ("ssss", None),
    ],
)
def test_lifecycle_online_to_serving(episodes: str, serving_at: int | None) -> None:
    """c: clean policy episode; f: one with a fallback (policy share 0.95); s: one the heuristic mostly
    controlled (share 0.5); v: one with 10 % violations; n: one the policy did not act in (outside the canary)."""
    kinds = {
        "c": episode(),
        "f": episode(fallbacks=1, policy_share=0.95, violation_rate=0.01),
        "s": episode(policy_share=0.5),
        "v": episode(violation_rate=0.1),
        "n": episode(policy_share=0.0),
    }
    lc = lifecycle(start_phase="online", serving_episodes=3, serving_min_share=0.8, violation_margin=0.02)
    moved_at = None
    for i, k in enumerate(episodes):
        if lc.observe(i, [kinds[k]]):
            moved_at = i
    assert moved_at == serving_at
    assert lc.phase is (Phase.SERVING if serving_at is not None else Phase.ONLINE)
    assert lc.fallbacks == episodes.count("f")
    acted = len(episodes.replace("n", ""))
    assert lc.proving_episodes == (0 if serving_at is not None else min(acted, 3))
    if serving_at is not None:
        (t,) = lc.transitions
        assert (t.source, t.target, t.step) == (Phase.ONLINE, Phase.SERVING, serving_at)
        assert one_line(t.reason)
        assert "over its last 3 episodes" in t.reason


def test_lifecycle_serving_reference_is_the_judged_window() -> None:
    lc = lifecycle(start_phase="online", serving_episodes=3)
    rewards = [9.0, 9.0, 1.0, 2.0, 3.0]
    shares = [0.2, 0.2, 1.0, 1.0, 1.0]
    for i, (r, share) in enumerate(zip(rewards, shares, strict=True)):
        lc.observe(i, [episode(reward=r, policy_share=share)])
    assert lc.phase is Phase.SERVING
    assert lc.reference is not None
    assert lc.reference.reward_mean == pytest.approx(2.0)  # the window judged, not the episodes before it
    assert lc.reference.reward_std == pytest.approx(np.std([1.0, 2.0, 3.0]))
    assert lc.reference.embedding_mean is None


TRAINING_REWARDS = [1.0, 1.2, 0.8]
"""Serving reference: mean 1.0, spread 0.163; at k=3 the band is [0.51, 1.49], the spread limit 0.49."""
TRAINING_EMBEDDINGS = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]


def serving(**kw: Any) -> Lifecycle:
    """A lifecycle just frozen (SERVING) on three clean episodes, judging drift over the next two."""
    lc = lifecycle(start_phase="online", serving_episodes=3, drift_episodes=2, **kw)
    for i, (r, e) in enumerate(zip(TRAINING_REWARDS, TRAINING_EMBEDDINGS, strict=True)):
        lc.observe(i, [episode(reward=r, embedding=e)])
    assert lc.phase is Phase.SERVING
    return lc


@pytest.mark.parametrize(
    ("rewards", "embeddings", "config", "reason"),
    [
        ([1.0, 1.0], [[1.0, 1.0], [1.0, 1.0]], {}, None),
        ([0.9, 1.1], [[0.5, 1.5], [1.5, 0.5]], {}, None),
        ([0.0, 0.0], [[1.0, 1.0], [1.0, 1.0]], {}, "reward drift"),
        ([2.0, 2.0], [[1.0, 1.0], [1.0, 1.0]], {}, "reward drift"),
        ([0.4, 1.6], [[1.0, 1.0], [1.0, 1.0]], {}, "reward drift: spread"),
        ([1.0, 1.0], [[9.0, 9.0], [9.0, 9.0]], {}, "workload drift"),
        ([1.0, 1.0], [[9.0, 9.0], [9.0, 9.0]], {"drift_embedding": 0.0}, None),
        ([1.0, 1.0], [[9.0, 9.0], [9.0, 9.0]], {"drift_embedding": 20.0}, None),
        ([1.0, 1.0], [None, None], {}, None),
    ],
    ids=[
        "steady",
        "in-band",
        "reward-below",
        "reward-above",
        "reward-spread",
        "embedding-far",
        "embedding-off",
        "embedding-threshold",
        "no-embeddings",
    ],
)
def test_lifecycle_serving_to_online_on_drift(
    rewards: list[float], embeddings: list[list[float] | None], config: dict[str, Any], reason: str | None
) -> None:
    lc = serving(**config)
    moved = lc.observe(10, [episode(reward=rewards[0], embedding=embeddings[0])])
    assert moved == []  # drift is judged over drift_episodes episodes, not one
    moved = lc.observe(11, [episode(reward=rewards[1], embedding=embeddings[1])])
    if reason is None:
        assert moved == []
        assert lc.phase is Phase.SERVING
        assert lc.retrains == 0
        return
    (t,) = moved
    assert (t.source, t.target, t.step) == (Phase.SERVING, Phase.ONLINE, 11)
    assert one_line(t.reason)
    assert t.reason.startswith(f"retraining on {reason}")
    assert lc.phase is Phase.ONLINE
    assert (lc.retrains, lc.proving_episodes) == (1, 0)


def run_through_every_phase() -> Lifecycle:
    """INITIALIZED -> OFFLINE -> ONLINE -> SERVING -> ONLINE -> SERVING -> ONLINE, with a fallback."""
    lc = lifecycle(offline_episodes=2, serving_episodes=2, drift_episodes=2, bc_loss_max=0.1)
    lc.observe(0, [episode(violation_rate=0.1, policy_share=0.0)] * 2, bc_loss=0.05)
    lc.observe(1, [episode(fallbacks=2, policy_share=0.5), episode(reward=1.0), episode(reward=1.0)])
    lc.observe(2, [episode(reward=-5.0)] * 2)
    lc.observe(3, [episode(reward=1.0, embedding=[0.0, 0.0]), episode(reward=1.0, embedding=[2.0, 2.0])])
    lc.observe(4, [episode(reward=1.0, embedding=[50.0, 50.0])] * 2)
    return lc


def test_lifecycle_full_run_counts_and_reasons() -> None:
    lc = run_through_every_phase()
    hops = [(t.source, t.target) for t in lc.transitions]
    assert hops == [
        (Phase.INITIALIZED, Phase.OFFLINE),
        (Phase.OFFLINE, Phase.ONLINE),
        (Phase.ONLINE, Phase.SERVING),
        (Phase.SERVING, Phase.ONLINE),
        (Phase.ONLINE, Phase.SERVING),
        (Phase.SERVING, Phase.ONLINE),
    ]
    assert [t.step for t in lc.transitions] == [0, 0, 1, 2, 3, 4]
    for t in lc.transitions:
        assert isinstance(t, Transition)
        assert one_line(t.reason)
        assert one_line(str(t))
    assert "reward drift" in lc.transitions[3].reason
    assert "workload drift" in lc.transitions[5].reason
    assert (lc.retrains, lc.fallbacks, lc.offline_episodes) == (2, 2, 2)
    metrics = lc.metrics()
    assert metrics[PHASE] == float(Phase.ONLINE) == 2.0
    assert metrics[FALLBACKS] == 2.0
    assert metrics[RETRAINS] == 2.0
    assert all(isinstance(v, float) for v in metrics.values())


def test_lifecycle_state_is_json() -> None:
    lc = run_through_every_phase()
    state = json.loads(json.dumps(lc.state()))
    assert state["phase"] == "ONLINE"
    assert [(t["from"], t["to"]) for t in state["transitions"]][-1] == ("SERVING", "ONLINE")
    assert all(one_line(t["reason"]) for t in state["transitions"])
    assert state["reference"]["embedding_mean"] == pytest.approx([1.0, 1.0])
    assert state[RETRAINS] == 2.0
    assert state["bootstrap/reference_violation_rate"] == pytest.approx(0.1)


def test_lifecycle_restore_resumes_from_state() -> None:
    """A run resumed from ``state()`` (through JSON, as written next to a run) judges drift as the original."""
    original = serving()
    resumed = Lifecycle.restore(original.cfg, json.loads(json.dumps(original.state())))
    assert resumed.phase is Phase.SERVING
    assert resumed.transitions == original.transitions
    assert resumed.reference is not None and original.reference is not None
    assert resumed.reference.reward_mean == original.reference.reward_mean
    assert resumed.reference.reward_std == original.reference.reward_std
    np.testing.assert_array_equal(resumed.reference.embedding_mean, original.reference.embedding_mean)
    np.testing.assert_array_equal(resumed.reference.embedding_std, original.reference.embedding_std)
    for lc in (original, resumed):
        assert lc.observe(10, [episode(reward=1.0, embedding=[9.0, 9.0])]) == []
    moved = [lc.observe(11, [episode(reward=1.0, embedding=[9.0, 9.0])]) for lc in (original, resumed)]
    assert moved[0] == moved[1] != []


def test_lifecycle_restore_keeps_the_counters() -> None:
    original = run_through_every_phase()
    resumed = Lifecycle.restore(original.cfg, json.loads(json.dumps(original.state())))
    assert resumed.phase is original.phase
    assert [str(t) for t in resumed.transitions] == [str(t) for t in original.transitions]
    assert (resumed.offline_episodes, resumed.fallbacks, resumed.retrains) == (2, 2, 2)
    assert resumed.reference_violation_rate == pytest.approx(original.reference_violation_rate)
    for key in (PHASE, FALLBACKS, RETRAINS, "bootstrap/offline_episodes", "bootstrap/reference_violation_rate"):
        assert resumed.metrics()[key] == pytest.approx(original.metrics()[key])


def test_lifecycle_restore_rejects_an_unknown_phase() -> None:
    state = lifecycle().state()
    state["phase"] = "WARM"
    with pytest.raises(ConfigError, match=r"^bootstrap state: phase: unknown phase 'WARM'"):
        Lifecycle.restore(BootstrapConfig(), state)
