"""The Arbiter driving the real simulator: who acts on each interval, and what reaches the app.

The loop is the one training and the live controller run: before each decision the arbiter
hears the previous interval's outcome (``info["scoreboard"]``), then chooses between the
heuristic's and the policy's action. The policies here are a deliberately bad one (every
service to its minimum, every interval) and a good one (a second copy of the heuristic).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby

import numpy as np
import pytest

from envs.action import ACTION_DIMS, decode, encode
from envs.autoscale_env import AutoscaleEnv, StepRecord
from envs.errors import ConfigError
from envs.guard import GuardConfig
from envs.metrics import ScalingDecision
from envs.observation import service_view
from policies.base import EnvContext, HeuristicPolicy
from policies.bootstrap import Arbiter, BootstrapConfig, Phase, Source
from policies.bootstrap.teacher import make_teacher

LIGHT = {"app": "chain3", "workloads": ["family:diurnal"], "episode_steps": 120}
"""The heuristic scales both ways here, and the VPA resizes memory."""
HEAVY = {"app": "chain3", "workloads": ["family:ramp"], "peak_rps": 400.0, "episode_steps": 300}
"""A load the heuristic serves without a violation (seed 0), far beyond what the minimum serves."""
SEED = 0

Policy = Callable[[np.ndarray], np.ndarray]


def minimum_everywhere(env: AutoscaleEnv) -> Policy:
    """The deliberately bad policy: remove the most pods and halve every limit, every interval."""
    return lambda obs: -np.ones(env.action_space.shape, dtype=np.float32)


def heuristic_copy(cfg: BootstrapConfig, env: AutoscaleEnv) -> Policy:
    """A good policy: a second, independent copy of the teacher (same decisions on the same observations)."""
    twin = make_teacher(cfg, EnvContext.of(env))
    state = {"s": twin.initial_state()}

    def act(obs: np.ndarray) -> np.ndarray:
        action, state["s"] = twin.act(obs, state["s"])
        return action

    return act


@dataclass
class Trace:
    """What happened on each interval of a run, and the arbiter afterwards."""

    arb: Arbiter
    sources: list[Source] = field(default_factory=list)
    records: list[StepRecord] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    """Fallback reasons returned by ``observe``, in order."""

    def violated(self, source: Source) -> int:
        return sum(r.violated for s, r in zip(self.sources, self.records, strict=True) if s == source)


def drive(env: AutoscaleEnv, cfg: BootstrapConfig, policy: Policy | None, reference: float = 0.0) -> Trace:
    """One episode through the arbiter, with the outcome of the last interval observed too.

    The final ``observe`` judges the last interval, so a trip on it counts as a fallback like
    any other and the per-stretch accounting below needs no special case for the end.
    """
    arb = Arbiter(cfg, make_teacher(cfg, EnvContext.of(env)))
    arb.set_reference(reference)
    obs, _ = env.reset(seed=SEED)
    arb.start_episode()
    trace = Trace(arb)
    truncated = False
    while not truncated:
        if trace.records:
            hear(trace)
        action, source = arb.choose(obs, None if policy is None else policy(obs))
        obs, _, _, truncated, info = env.step(action)
        trace.sources.append(source)
        trace.records.append(info["scoreboard"])
    hear(trace)
    return trace


def hear(trace: Trace) -> None:
    last = trace.records[-1]
    reason = trace.arb.observe(last.violated, last.reserved_cores)
    if reason is not None:
        trace.reasons.append(reason)


def runs(sources: list[Source]) -> list[tuple[Source, int, int]]:
    """Maximal runs of one source as (source, first interval, length)."""
    out, i = [], 0
    for source, group in groupby(sources):
        n = len(list(group))
        out.append((source, i, n))
        i += n
    return out


def expected_cooldowns(cfg: BootstrapConfig, n: int) -> list[int]:
    """Cooldowns of n fallbacks in a row: doubling from cooldown, capped at max_cooldown."""
    return [min(cfg.cooldown * 2**i, cfg.max_cooldown) for i in range(n)]


def same(a: ScalingDecision, b: ScalingDecision) -> bool:
    return (
        np.array_equal(a.replicas, b.replicas)
        and np.array_equal(a.cpu_limit, b.cpu_limit)
        and np.array_equal(a.mem_limit, b.mem_limit)
    )


def one_step_towards(target: ScalingDecision, current: ScalingDecision, g: GuardConfig) -> ScalingDecision:
    """The part of `target` one action can ask for: the guard's per-interval step, as ``encode`` clips to it."""
    cur = current.replicas.astype(np.float64)
    replicas = np.clip(target.replicas, cur - g.down_range(cur), cur + g.up_range(cur))
    f = g.max_limit_factor
    cpu = np.round(np.clip(target.cpu_limit, current.cpu_limit / f, current.cpu_limit * f), 3)
    mem = np.round(np.clip(target.mem_limit, current.mem_limit / f, current.mem_limit * f))
    return ScalingDecision(replicas.astype(np.int64), cpu, mem)


# ---------------------------------------------------------------------------------------- 1. round trip


def test_heuristic_decisions_reach_the_app_unchanged() -> None:
    """OFFLINE: what the heuristic decides is what the env applies, through encode, decode and the guard.

    A twin of the teacher decides on the same observations (its ``decide``, as ``act`` calls it).
    Per interval: the observation reads the current decision back exactly; the arbiter's action
    is the encoding of the twin's decision; it decodes to that decision, up to the one-interval
    step ``encode`` clips to; and where the guard clamped nothing, the env applied exactly that.
    """
    env = AutoscaleEnv(LIGHT)
    ctx = EnvContext.of(env)
    cfg = BootstrapConfig(start_phase="offline")
    arb = Arbiter(cfg, make_teacher(cfg, ctx))
    twin: HeuristicPolicy = make_teacher(cfg, ctx)
    state = twin.initial_state()
    n = ctx.app.n_services
    obs, _ = env.reset(seed=SEED)
    arb.start_episode()
    record: StepRecord | None = None
    checked = exact = 0
    replicas_changed = mem_changed = 0
    for _ in range(env.episode_steps):
        if record is not None:
            assert arb.observe(record.violated, record.reserved_cores) is None
        assert env.decision is not None
        before = env.decision.copy()
        view = service_view(obs, ctx.app, ctx.layout)
        current = ScalingDecision(view.replicas.astype(np.int64), view.cpu_limit, view.mem_limit)
        assert same(current, before), "the observation must read the running decision back exactly"
        target = twin.decide(view, current, state, state["t"])
        state["t"] += ctx.interval_s

        action, source = arb.choose(obs, minimum_everywhere(env)(obs))
        assert source is Source.HEURISTIC
        rows = action.reshape(-1, ACTION_DIMS)
        np.testing.assert_allclose(rows[:n], encode(target, current, ctx.guard), atol=1e-6)
        assert not rows[n:].any(), "padding rows stay zero"
        asked = decode(rows[:n], current, ctx.guard)
        assert same(asked, one_step_towards(target, current, ctx.guard))

        obs, _, _, _, info = env.step(action)
        record = info["scoreboard"]
        if record.guard_clamps:
            continue
        checked += 1
        assert same(env.decision, asked), f"interval {env.steps}: applied {env.decision}, asked {asked}"
        if same(asked, target):
            exact += 1
        replicas_changed += not np.array_equal(env.decision.replicas, before.replicas)
        mem_changed += not np.array_equal(env.decision.mem_limit, before.mem_limit)
    assert checked >= 50
    assert exact >= 50
    assert replicas_changed >= 5
    assert mem_changed >= 1


# ---------------------------------------------------------------------------------------- 2. bad policy


BAD_RUN = BootstrapConfig(start_phase="online", window=20, cooldown=10, max_cooldown=40)
REFERENCE = 0.02


@pytest.fixture(scope="module")
def bad_run() -> Trace:
    env = AutoscaleEnv(HEAVY)
    return drive(env, BAD_RUN, minimum_everywhere(env), REFERENCE)


@pytest.fixture(scope="module")
def good_run() -> Trace:
    env = AutoscaleEnv(HEAVY)
    return drive(env, BAD_RUN, heuristic_copy(BAD_RUN, env), REFERENCE)


def test_the_heavy_load_needs_more_than_the_minimum(bad_run: Trace, good_run: Trace) -> None:
    """The premise of the bad-policy tests: the minimum violates, the heuristic does not."""
    assert bad_run.violated(Source.POLICY) == bad_run.sources.count(Source.POLICY)
    assert sum(r.violated for r in good_run.records) == 0


def test_bad_policy_falls_back_within_a_window(bad_run: Trace) -> None:
    budget = bad_run.arb.monitor.budget()
    assert budget == 1
    first = bad_run.sources.index(Source.FALLBACK)
    assert bad_run.sources[:first].count(Source.POLICY) <= BAD_RUN.window
    assert first == budget + 1  # every interval violates: caught at the first one over the budget


def test_bad_policy_violations_are_bounded_by_the_budget(bad_run: Trace) -> None:
    budget = bad_run.arb.monitor.budget()
    policy_runs = [(i, n) for s, i, n in runs(bad_run.sources) if s is Source.POLICY]
    assert len(policy_runs) >= 5
    for i, n in policy_runs:
        violations = sum(r.violated for r in bad_run.records[i : i + n])
        assert violations <= budget + 1, f"{violations} violations in the policy's stretch from interval {i}"
    assert bad_run.arb.fallbacks == len(bad_run.reasons) >= 5
    assert bad_run.violated(Source.POLICY) <= bad_run.arb.fallbacks * (budget + 1)
    for reason in bad_run.reasons:
        assert "\n" not in reason
        assert reason.startswith(f"policy violated the SLO in {budget + 1} of its last")


def test_bad_policy_cooldown_doubles_up_to_the_cap(bad_run: Trace) -> None:
    fallbacks = [n for s, _, n in runs(bad_run.sources) if s is Source.FALLBACK]
    want = expected_cooldowns(BAD_RUN, len(fallbacks))
    assert want[:4] == [10, 20, 40, 40]
    # The last cooldown may be cut short by the end of the episode.
    assert fallbacks[:-1] == want[:-1]
    assert fallbacks[-1] <= want[-1]
    announced = [
        int(m.group(1))
        for e in bad_run.arb.events
        if (m := re.match(r"fallback to the heuristic for (\d+) intervals: ", e)) is not None
    ]
    assert announced == expected_cooldowns(BAD_RUN, bad_run.arb.fallbacks)
    assert bad_run.arb.next_cooldown == BAD_RUN.max_cooldown


def test_good_policy_never_trips(good_run: Trace) -> None:
    assert good_run.arb.fallbacks == 0
    assert good_run.reasons == []
    assert not good_run.arb.events
    assert set(good_run.sources) == {Source.POLICY}
    assert good_run.arb.next_cooldown == BAD_RUN.cooldown


# ---------------------------------------------------------------------------------------- 3. source per phase


@pytest.mark.parametrize("phase", ["initialized", "offline"])
def test_heuristic_phases_ignore_the_policy(phase: str) -> None:
    env = AutoscaleEnv({**HEAVY, "episode_steps": 40})
    cfg = BootstrapConfig(start_phase=phase, window=4, cooldown=2)
    trace = drive(env, cfg, minimum_everywhere(env), reference=0.0)
    assert set(trace.sources) == {Source.HEURISTIC}
    assert trace.arb.fallbacks == 0 and not trace.arb.events
    alone = drive(AutoscaleEnv({**HEAVY, "episode_steps": 40}), cfg, None)
    assert set(alone.sources) == {Source.HEURISTIC}
    # The policy's action never reached the app: the run is the heuristic's own, interval by interval.
    assert [(r.violated, r.reserved_cores) for r in trace.records] == [
        (r.violated, r.reserved_cores) for r in alone.records
    ]
    assert min(r.reserved_cores for r in trace.records) > 1.0


def test_online_policy_keeps_control_without_trips(good_run: Trace) -> None:
    assert good_run.arb.phase is Phase.ONLINE
    assert good_run.sources.count(Source.POLICY) == len(good_run.records) == HEAVY["episode_steps"]


def test_fallback_lasts_exactly_the_cooldown_then_the_policy_returns(bad_run: Trace) -> None:
    pattern = runs(bad_run.sources)
    assert pattern[0][0] is Source.POLICY
    cooldowns = iter(expected_cooldowns(BAD_RUN, bad_run.arb.fallbacks))
    for (source, _, n), nxt in zip(pattern, [*pattern[1:], None], strict=True):
        assert source in (Source.POLICY, Source.FALLBACK)
        if source is Source.FALLBACK:
            cooldown = next(cooldowns)
            if nxt is None:
                assert n <= cooldown
            else:
                assert n == cooldown
                assert nxt[0] is Source.POLICY


# Scripted outcomes on a real observation: one character per interval, as the arbiter hears it.
# '.' fine; 'x' violated the SLO; '$' reserved far more CPU than the heuristic asked for.
OUTCOMES: dict[str, tuple[bool, float]] = {".": (False, 0.0), "x": (True, 0.0), "$": (False, 1e3)}
SCRIPT = BootstrapConfig(start_phase="online", window=4, violation_margin=0.25, cooldown=2, max_cooldown=6)
"""Budget 1 violation per 4 intervals; cooldowns 2, 4, 6, 6, ..."""


def scripted_arbiter() -> tuple[AutoscaleEnv, np.ndarray, Arbiter]:
    """A SCRIPT arbiter at the start of an episode on the heavy load, with its env and first observation.

    The scripted tests feed it outcomes by hand; the observation only gives the heuristic
    something real to decide on.
    """
    env = AutoscaleEnv({**HEAVY, "episode_steps": 40})
    obs, _ = env.reset(seed=SEED)
    arb = Arbiter(SCRIPT, make_teacher(SCRIPT, EnvContext.of(env)))
    arb.set_reference(0.0)
    arb.start_episode()
    return env, obs, arb


@pytest.mark.parametrize(
    ("outcomes", "sources"),
    [
        pytest.param("x...x...x...x...", "PPPPPPPPPPPPPPPP", id="one-per-window"),
        pytest.param("xx", "PP", id="trip-not-yet-heard"),
        pytest.param("xxx", "PPF", id="trip"),
        pytest.param("xxxxxxxxxxxxxxxxxxxxxxx", "PPFFPPFFFFPPFFFFFFPPFFF", id="doubling-to-cap"),
        pytest.param("xx..xxx", "PPFFPPF", id="outcomes-under-fallback-ignored"),
        pytest.param("xx..x.x....", "PPFFPPPFFFF", id="two-in-a-window"),
        pytest.param("xx....xx.....", "PPFFPPPPFFFFP", id="no-reset-without-a-clean-window"),
        pytest.param("xx.....xx...", "PPFFPPPPPFFP", id="clean-window-resets-backoff"),
        pytest.param("$$$$$$", "PPPPFF", id="cost-against-the-shadow-heuristic-before-it-had-a-window"),
    ],
)
def test_sources_follow_the_script(outcomes: str, sources: str) -> None:
    """`sources[i]` is who acted on interval i, after the arbiter heard the outcome of interval i - 1."""
    env, obs, arb = scripted_arbiter()
    assert arb.monitor.budget() == 1
    assert len(outcomes) == len(sources)
    policy = minimum_everywhere(env)(obs)
    got: list[str] = []
    for i in range(len(sources)):
        if i:
            reason = arb.observe(*OUTCOMES[outcomes[i - 1]])
            assert reason is None or "\n" not in reason
        action, source = arb.choose(obs, policy)
        if source is Source.POLICY:
            np.testing.assert_array_equal(action, policy)
        else:
            assert not np.array_equal(action, policy)
        got.append("P" if source is Source.POLICY else "F" if source is Source.FALLBACK else "H")
    assert "".join(got) == sources
    assert arb.fallbacks == sources.count("PF")


def scripted_sources(cfg: BootstrapConfig, outcomes: str) -> tuple[str, Arbiter]:
    """Who acts on each interval (P: policy, F: fallback) when `cfg`'s arbiter hears `outcomes`
    (one per interval, heard before the next decision), and the arbiter afterwards."""
    env = AutoscaleEnv({**HEAVY, "episode_steps": 40})
    obs, _ = env.reset(seed=SEED)
    arb = Arbiter(cfg, make_teacher(cfg, EnvContext.of(env)))
    arb.set_reference(0.0)
    arb.start_episode()
    policy = minimum_everywhere(env)(obs)
    got = []
    for i in range(len(outcomes)):
        if i:
            arb.observe(*OUTCOMES[outcomes[i - 1]])
        got.append("P" if arb.choose(obs, policy)[1] is Source.POLICY else "F")
    return "".join(got), arb


@pytest.mark.parametrize(
    ("outcomes", "without", "with_handback"),
    [
        # A cost trip (no violation in the tripping window): the heuristic's first violation ends it.
        pytest.param("$$$$x..", "PPPPFFF", "PPPPFPP", id="cost-trip-then-heuristic-violates"),
        # An SLO trip on 2 violations: the heuristic keeps control until it has violated 3 times.
        pytest.param("xxxxxx..", "PPFFFFFF", "PPFFFPPP", id="slo-trip-then-heuristic-does-worse"),
        pytest.param("xxxx....", "PPFFFFFF", "PPFFFFFF", id="heuristic-no-worse-keeps-control"),
    ],
)
def test_handback_ends_a_cooldown_when_the_heuristic_does_worse(
    outcomes: str, without: str, with_handback: str
) -> None:
    """With ``handback``, the heuristic keeps control only while it violates the SLO in no more of its
    intervals than the policy did in the window that tripped; without it, the cooldown runs out."""
    for handback, sources in ((False, without), (True, with_handback)):
        cfg = dataclasses.replace(SCRIPT, cooldown=6, max_cooldown=12, handback=handback, handback_grace=0)
        got, arb = scripted_sources(cfg, outcomes)
        assert got == sources, handback
        early = [e for e in arb.events if "back in control early" in e]
        assert len(early) == (handback and without != with_handback)


def test_handback_spares_the_heuristic_its_grace_intervals() -> None:
    """The heuristic's first ``handback_grace`` intervals in control (undoing the policy's state) do
    not count against it: here 2 of them, then three violations to hand back, not one more."""
    cfg = dataclasses.replace(SCRIPT, cooldown=6, max_cooldown=12, handback=True, handback_grace=2)
    assert scripted_sources(cfg, "xxxxxxx..")[0] == "PPFFFFFPP"


def test_handback_hands_a_bad_policy_control_back(bad_run: Trace) -> None:
    """Why ``handback`` is off by default: the heuristic undoing the minimum policy's state on heavy
    load violates past its grace, counts as doing worse, and the bad policy gets control back
    long before its cooldown ends (here after 11 intervals, where the cooldown doubles to 20, then 40)."""
    env = AutoscaleEnv(HEAVY)
    cfg = dataclasses.replace(BAD_RUN, handback=True)
    ping_pong = drive(env, cfg, minimum_everywhere(env), REFERENCE)
    stretches = [n for s, _, n in runs(ping_pong.sources) if s is Source.FALLBACK]
    assert stretches[1] < 2 * cfg.cooldown  # the second fallback ends before its doubled cooldown
    assert ping_pong.arb.fallbacks > bad_run.arb.fallbacks
    assert any("back in control early" in e for e in ping_pong.arb.events)


def test_handback_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match=r"^bootstrap.handback: must be true or false, got 'yes'$"):
        BootstrapConfig(handback="yes")  # type: ignore[arg-type]


def test_new_episode_forgets_the_window_but_keeps_the_backoff() -> None:
    """``start_episode`` forgets the window and the last source; a running cooldown and the backoff carry over."""
    env, obs, arb = scripted_arbiter()
    policy = minimum_everywhere(env)(obs)

    def interval(violated: bool) -> tuple[Source, str | None]:
        source = arb.choose(obs, policy)[1]
        return source, arb.observe(violated, 0.0)

    assert interval(True) == (Source.POLICY, None)
    arb.start_episode()
    # The last interval of the old episode is not held against the policy in the new one.
    assert arb.observe(True, 0.0) is None
    assert len(arb.monitor.intervals) == 0
    assert interval(True) == (Source.POLICY, None)
    source, reason = interval(True)
    assert source is Source.POLICY and reason is not None
    assert (arb.cooldown_left, arb.next_cooldown) == (2, 4)
    arb.start_episode()
    assert (arb.cooldown_left, arb.next_cooldown) == (2, 4)
    assert [interval(False)[0] for _ in range(4)] == [Source.FALLBACK, Source.FALLBACK, Source.POLICY, Source.POLICY]
    assert [interval(True)[0] for _ in range(2)] == [Source.POLICY, Source.POLICY]
    assert arb.cooldown_left == 4  # the doubled cooldown: no clean window since the last fallback
    assert arb.fallbacks == 2


@pytest.mark.parametrize("canary", [True, False])
def test_only_canary_envs_let_an_online_policy_act(canary: bool) -> None:
    env, obs, arb = scripted_arbiter()
    arb.canary = canary
    policy = minimum_everywhere(env)(obs)
    assert arb.choose(obs, policy)[1] is (Source.POLICY if canary else Source.HEURISTIC)
    arb.phase = Phase.SERVING  # once proven, the policy acts everywhere
    assert arb.choose(obs, policy)[1] is Source.POLICY


@pytest.mark.parametrize(
    ("outcomes", "sources"),
    [
        pytest.param("$$$.", "PPPP", id="cost-waits-for-a-full-window"),
        pytest.param("$$$..", "PPPPF", id="cost-judged-over-the-full-window"),
        pytest.param("$$$$$$", "PPPPFF", id="cost-after-a-full-window"),
        pytest.param("......", "PPPPPP", id="at-the-heuristics-own-ratio"),
    ],
)
def test_cost_rule_uses_the_heuristics_own_ratio(outcomes: str, sources: str) -> None:
    """After a window under the heuristic (by phase), its reserved-to-rule ratio is the yardstick."""
    env, obs, arb = scripted_arbiter()
    arb.phase = Phase.OFFLINE
    rule = arb.rule_cost(obs)
    assert rule > 0
    for i in range(SCRIPT.window + 1):
        if i:
            assert arb.observe(False, 1.5 * rule) is None
        assert arb.choose(obs, None)[1] is Source.HEURISTIC
    assert arb.cost_reference == pytest.approx(1.5)
    arb.phase = Phase.ONLINE
    policy = minimum_everywhere(env)(obs)
    got: list[str] = []
    fine = {".": (False, 1.5 * rule), "$": (False, 1e3)}
    for i in range(len(sources)):
        if i:
            arb.observe(*fine[outcomes[i - 1]])
        got.append("P" if arb.choose(obs, policy)[1] is Source.POLICY else "F")
    assert "".join(got) == sources


@pytest.mark.parametrize(
    ("price", "policy_cores", "policy_gib", "trips"),
    [
        pytest.param(1 / 9, 2.4, 0.9, False, id="more-cpu-much-less-memory"),  # CPU 1.6x the heuristic's, money 1.0x
        pytest.param(0.0, 2.4, 0.9, True, id="memory-free-counts-cpu-alone"),
        pytest.param(1 / 9, 1.5, 27.0, True, id="less-cpu-much-more-memory"),  # money 1.8x
        pytest.param(1 / 9, 1.5, 9.0, False, id="the-heuristics-own-mix"),
    ],
)
def test_cost_rule_prices_memory(price: float, policy_cores: float, policy_gib: float, trips: bool) -> None:
    """The cost rule weighs reserved memory at the env's memory price, as the scoreboard does: a
    policy that holds more CPU and far less memory than the heuristic costs less, and is not the
    one to hand back. The heuristic reserves 1.5 cores and 9 GiB per interval while it controls."""
    env = AutoscaleEnv({**HEAVY, "episode_steps": 40, "memory_price": price})
    obs, _ = env.reset(seed=SEED)
    cfg = BootstrapConfig(start_phase="offline", window=4, violation_margin=0.25, cooldown=2, max_cooldown=6)
    arb = Arbiter(cfg, make_teacher(cfg, EnvContext.of(env)))
    arb.start_episode()
    for i in range(cfg.window + 1):
        if i:
            assert arb.observe(False, 1.5, 9.0) is None
        assert arb.choose(obs, None)[1] is Source.HEURISTIC
    # The rule's cost does not move (same observation), so the yardstick is the heuristic's money over it.
    assert arb.cost_reference == pytest.approx(arb.money(1.5, 9.0) / arb.rule_cost(obs))
    arb.phase = Phase.ONLINE
    policy = minimum_everywhere(env)(obs)
    reasons = []
    for i in range(cfg.window + 1):
        if i:
            reasons.append(arb.observe(False, policy_cores, policy_gib))
        arb.choose(obs, policy)
    tripped = [r for r in reasons if r is not None]
    assert bool(tripped) is trips
    if trips:
        assert "\n" not in tripped[0] and "money (CPU plus priced memory)" in tripped[0]


@pytest.mark.parametrize(
    ("logged", "seen", "expected"), [(0, 0, []), (3, 1, ["e1", "e2"]), (3, 3, []), (5, 0, ["e2", "e3", "e4"])]
)
def test_new_events_are_those_after_the_reader_left_off(logged: int, seen: int, expected: list[str]) -> None:
    """A reader that remembers ``events_total`` gets each event once; the oldest beyond memory are gone."""
    env = AutoscaleEnv({**HEAVY, "episode_steps": 4})
    arb = Arbiter(BootstrapConfig(), make_teacher(BootstrapConfig(), EnvContext.of(env)))
    arb.events = type(arb.events)(maxlen=3)
    for i in range(logged):
        arb._log(f"e{i}")
    assert arb.new_events(seen) == expected
