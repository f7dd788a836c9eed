"""The floor under the learned policy, on observations of the real simulator.

Observations come from a loaded chain3 under the heuristic (so services run near its target,
with usage the floor must respect); the actions range from "everything to the minimum" to
"the largest step up".
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.action import ACTION_DIMS, decode
from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from envs.metrics import ScalingDecision
from envs.observation import service_view
from policies.base import EnvContext
from policies.bootstrap import Arbiter, BootstrapConfig, Phase, Source
from policies.bootstrap.shield import limit_tolerance, memory_floor, utilization_floor
from policies.bootstrap.teacher import make_teacher

HEAVY = {"app": "chain3", "workloads": ["family:ramp"], "peak_rps": 400.0, "episode_steps": 120}
HEAVY_ACTION = AutoscaleEnv(HEAVY).action_space.shape[0]
CEILING = 0.75


def heuristic_observations(steps: int = 60) -> tuple[EnvContext, list[np.ndarray]]:
    env = AutoscaleEnv({**HEAVY, "episode_steps": steps})
    ctx = EnvContext.of(env)
    teacher = make_teacher(BootstrapConfig(), ctx)
    obs, _ = env.reset(seed=0)
    state, seen, truncated = teacher.initial_state(), [obs], False
    while not truncated:
        action, state = teacher.act(obs, state)
        obs, _, _, truncated, _ = env.step(action)
        seen.append(obs)
    return ctx, seen


@pytest.fixture(scope="module")
def observed() -> tuple[EnvContext, list[np.ndarray]]:
    return heuristic_observations()


def actions(ctx: EnvContext) -> dict[str, np.ndarray]:
    shape = (ctx.layout.max_services * ACTION_DIMS,)
    rng = np.random.default_rng(0)
    return {
        "minimum": -np.ones(shape, dtype=np.float32),
        "hold": np.zeros(shape, dtype=np.float32),
        "random": rng.uniform(-1, 1, shape).astype(np.float32),
        "largest step up": np.ones(shape, dtype=np.float32),
    }


def current_of(ctx: EnvContext, obs: np.ndarray) -> ScalingDecision:
    view = service_view(obs, ctx.app, ctx.layout)
    return ScalingDecision(view.replicas.astype(np.int64), view.cpu_limit, view.mem_limit)


def ratio(used: np.ndarray, reserved: np.ndarray) -> np.ndarray:
    """Planned utilisation; nothing reserved is fine only for nothing used."""
    safe = np.where(reserved > 0, reserved, 1.0)
    return np.where(reserved > 0, used / safe, np.where(used > 0, np.inf, 0.0))


@pytest.mark.parametrize("name", ["minimum", "hold", "random", "largest step up"])
def test_floor_lifts_cpu_to_the_spec_and_replicas_up_to_the_ceiling(observed, name: str) -> None:
    ctx, seen = observed
    n, lifted_any = ctx.app.n_services, False
    for obs in seen:
        action = actions(ctx)[name]
        out = utilization_floor(action, obs, ctx, CEILING)
        rows_in = action.reshape(-1, ACTION_DIMS)
        rows_out = out.reshape(-1, ACTION_DIMS)
        np.testing.assert_array_equal(rows_out[:, 2], rows_in[:, 2])  # memory untouched
        np.testing.assert_array_equal(rows_out[n:], rows_in[n:])  # padding untouched
        current = current_of(ctx, obs)
        asked = decode(rows_in[:n], current, ctx.guard)
        got = decode(rows_out[:n], current, ctx.guard)
        spec = ctx.app.column("cpu_limit_initial")
        np.testing.assert_allclose(got.cpu_limit, np.maximum(asked.cpu_limit, spec))
        cut = asked.cpu_limit < spec
        np.testing.assert_array_equal(rows_out[:n, 1][~cut], rows_in[:n, 1][~cut])
        assert (got.replicas >= asked.replicas).all()
        view = service_view(obs, ctx.app, ctx.layout)
        used = view.cpu_utilization * view.ready_replicas * view.cpu_limit
        planned = ratio(used, got.replicas * got.cpu_limit)
        at_step = rows_out[:n, 0] >= 1.0
        at_max = got.replicas >= ctx.app.column("max_replicas")
        assert ((planned <= CEILING + 1e-9) | at_step | at_max).all(), (name, planned)
        lifted = got.replicas > asked.replicas
        lifted_any |= bool(lifted.any())
        # A lifted service gets no more than the floor asks for (one pod fewer would break it).
        over = ratio(used, (got.replicas - 1) * got.cpu_limit)
        assert (~lifted | at_step | (over > CEILING - 1e-9)).all(), name
        # Services that were not lifted keep the policy's action bit for bit.
        np.testing.assert_array_equal(rows_out[:n, 0][~lifted], rows_in[:n, 0][~lifted])
    if name in ("minimum", "random"):
        assert lifted_any, f"a loaded app under the '{name}' action never needed the floor"


def test_floor_leaves_the_largest_step_up_alone(observed) -> None:
    ctx, seen = observed
    up = actions(ctx)["largest step up"]
    for obs in seen:
        np.testing.assert_array_equal(utilization_floor(up, obs, ctx, CEILING), up)


def run_online(policy, cfg: BootstrapConfig, warmup: int = 20) -> tuple[list[int], list[int], np.ndarray]:
    """Violations and intervals per source, and the final CPU limits, of ``policy`` behind an arbiter.

    The heuristic controls the first ``warmup`` intervals (usage is known when the policy starts).
    """
    env = AutoscaleEnv(HEAVY)
    arb = Arbiter(cfg, make_teacher(cfg, EnvContext.of(env)))
    obs, _ = env.reset(seed=0)
    arb.start_episode()
    violations, intervals = [0, 0, 0], [0, 0, 0]
    truncated, t = False, 0
    while not truncated:
        arb.phase = Phase.OFFLINE if t < warmup else Phase.ONLINE
        action, source = arb.choose(obs, policy(obs))
        obs, _, _, truncated, info = env.step(action)
        record = info["scoreboard"]
        arb.observe(record.violated, record.reserved_cores)
        violations[source] += record.violated
        intervals[source] += 1
        t += 1
    return violations, intervals, service_view(obs, env.app, env.layout).cpu_limit


def test_floor_keeps_the_bad_policy_from_wrecking_the_app() -> None:
    """The bad policy (everything to the minimum) behind the floor: fewer violations, longer in control.

    Unshielded, it cuts pods and CPU limits so far that the heuristic, back in control, needs
    most of the episode to recover; behind the floor it is only as low as the ceiling allows.
    """
    bad = lambda obs: -np.ones(HEAVY_ACTION, dtype=np.float32)  # noqa: E731
    bare, bare_n, _ = run_online(bad, BootstrapConfig(start_phase="offline"))
    shielded, shielded_n, _ = run_online(bad, BootstrapConfig(start_phase="offline", utilization_ceiling=0.6))
    assert sum(shielded) < sum(bare) / 2, (shielded, bare)
    assert shielded_n[Source.POLICY] > 2 * bare_n[Source.POLICY], (shielded_n, bare_n)


def test_tolerance_stops_a_small_bias_from_compounding() -> None:
    """The teacher's decisions plus 0.05 on every CPU component: the limits double every 20 intervals
    unless the tolerance drops changes that small."""
    cfg = BootstrapConfig(start_phase="offline", cost_margin=100.0)
    env = AutoscaleEnv(HEAVY)
    twin = make_teacher(cfg, EnvContext.of(env))
    state = {"s": twin.initial_state()}

    def biased(obs: np.ndarray) -> np.ndarray:
        action, state["s"] = twin.act(obs, state["s"])
        action = action.reshape(-1, ACTION_DIMS).copy()
        action[:, 1] += 0.05
        return action.ravel()

    spec = env.app.column("cpu_limit_initial")
    _, _, drifted = run_online(biased, cfg)
    state["s"] = twin.initial_state()
    _, _, held = run_online(biased, BootstrapConfig(start_phase="offline", cost_margin=100.0, limit_tolerance=0.1))
    assert (drifted >= np.minimum(4 * spec, env.app.column("cpu_limit_max"))).all(), drifted
    np.testing.assert_allclose(held, spec)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ([0.3, 0.05, -0.05], [0.3, 0.0, 0.0]),
        ([-0.3, 0.1, -0.1], [-0.3, 0.1, -0.1]),
        ([0.01, 0.099, -0.5], [0.01, 0.0, -0.5]),
        ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
    ],
)
def test_limit_tolerance_table(row: list[float], expected: list[float]) -> None:
    n, max_services = 2, 4
    action = np.tile(np.asarray(row, dtype=np.float32), max_services)
    out = limit_tolerance(action, n, 0.1).reshape(max_services, ACTION_DIMS)
    np.testing.assert_array_equal(out[:n], np.tile(np.asarray(expected, dtype=np.float32), (n, 1)))
    np.testing.assert_array_equal(out[n:], action.reshape(max_services, ACTION_DIMS)[n:])  # padding untouched


def test_floor_is_not_applied_to_the_heuristic() -> None:
    ctx, seen = heuristic_observations(steps=20)
    cfg = BootstrapConfig(start_phase="offline", utilization_ceiling=CEILING)
    arb, twin = Arbiter(cfg, make_teacher(cfg, ctx)), make_teacher(cfg, ctx)
    arb.start_episode()
    state = twin.initial_state()
    for obs in seen:
        action, source = arb.choose(obs, -np.ones(ctx.layout.max_services * ACTION_DIMS, dtype=np.float32))
        expected, state = twin.act(obs, state)
        assert source == Source.HEURISTIC and arb.phase == Phase.OFFLINE
        np.testing.assert_array_equal(action, expected)


@pytest.mark.parametrize("value", [1.5, -0.1, "high", True])
def test_bad_ceiling_names_the_key(value) -> None:
    with pytest.raises(ConfigError, match=r"^bootstrap\.utilization_ceiling: ") as err:
        BootstrapConfig.from_dict({"utilization_ceiling": value})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("policy_mem", "heuristic_mem", "expected"),
    [(-1.0, -0.2, -0.2), (0.3, -0.2, 0.3), (-0.5, 0.4, 0.4), (0.0, 0.0, 0.0)],
)
def test_memory_floor_is_the_heuristics_decision(policy_mem: float, heuristic_mem: float, expected: float) -> None:
    n, max_services = 2, 3
    action = np.tile(np.asarray([0.5, -0.5, policy_mem], dtype=np.float32), max_services)
    heuristic = np.tile(np.asarray([0.0, 0.0, heuristic_mem], dtype=np.float32), max_services)
    out = memory_floor(action, heuristic, n).reshape(max_services, ACTION_DIMS)
    np.testing.assert_array_equal(out[:n, 2], np.float32([expected] * n))
    np.testing.assert_array_equal(out[:, :2], action.reshape(max_services, ACTION_DIMS)[:, :2])
    np.testing.assert_array_equal(out[n:], action.reshape(max_services, ACTION_DIMS)[n:])


SOCIAL = {"app": "social-network", "workloads": ["family:diurnal"], "episode_steps": 240, "max_services": 12}


def serving_run(ceiling: float, cuts: int = 3) -> tuple[int, list[Source]]:
    """A frozen policy that cuts replicas and memory to the minimum on its first ``cuts`` intervals, then holds."""
    env = AutoscaleEnv(SOCIAL)
    cfg = BootstrapConfig(start_phase="serving", utilization_ceiling=ceiling, limit_tolerance=0.1)
    arb = Arbiter(cfg, make_teacher(cfg, EnvContext.of(env)))
    obs, _ = env.reset(seed=0)
    arb.start_episode()
    violations, sources, truncated, t = 0, [], False, 0
    while not truncated:
        action = np.zeros(env.action_space.shape, dtype=np.float32).reshape(-1, ACTION_DIMS)
        if t < cuts:
            action[:, 0] = action[:, 2] = -1.0
        chosen, source = arb.choose(obs, action.ravel())
        obs, _, _, truncated, info = env.step(chosen)
        arb.observe(info["scoreboard"].violated, info["scoreboard"].reserved_cores)
        violations += info["scoreboard"].violated
        sources.append(source)
        t += 1
    return violations, sources


def test_floor_stops_the_cascade_a_start_of_episode_cut_sets_off() -> None:
    """Pods and memory cut before any usage is seen: unshielded, OOM kills cascade and the heuristic,
    taking over, stays in violation for most of an hour; behind the floor the episode stays as
    clean as the heuristic keeps it."""
    bare, _ = serving_run(0.0)
    shielded, sources = serving_run(0.6)
    heuristic, _ = serving_run(0.6, cuts=0)
    assert bare > 40, bare
    assert shielded <= heuristic + 2, (shielded, heuristic)
    assert sources[0] == Source.HEURISTIC and sources[1] == Source.POLICY  # the first interval is the heuristic's
