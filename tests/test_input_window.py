"""``smooth@S:POLICY``: the policy sees its load averaged over a window; pressure, settings and the
meta-learner's input pass as measured, and the rules in front read the observation as measured."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from envs.input_window import smoothed_observation
from envs.observation import A, F, ObservationLayout
from policies.base import EnvContext
from policies.registry import expand, inner_name, make_policy
from policies.smoothed_input import SmoothedInputPolicy, input_window

LAYOUT = ObservationLayout(max_services=2, history_window=2)


def _row(rates: tuple[float, float], cpu_util: float, load: float, external: float, latency: float = 0.5) -> np.ndarray:
    """One observation of a two-slot layout with one real service (slot 1 is padding)."""
    obs = np.zeros(LAYOUT.size, dtype=np.float64)
    svc = LAYOUT.services(obs)
    svc[0, F["log_rate"]] = np.log1p(rates[0]) / 10
    svc[0, F["cpu_util"]] = cpu_util
    svc[0, F["load"]] = load
    svc[0, F["latency"]] = latency
    svc[0, F["replicas"]] = 0.2
    svc[0, F["mask"]] = 1.0
    svc[1, F["log_rate"]] = np.log1p(rates[1]) / 10  # padding: must stay as it is
    app = LAYOUT.app(obs)
    app[A["log_external"]] = np.log1p(external) / 10
    app[A["e2e_latency"]] = latency
    LAYOUT.history(obs)[:] = 0.25
    return obs


def _rate(obs: np.ndarray) -> float:
    return float(np.expm1(LAYOUT.services(obs)[0, F["log_rate"]] * 10))


def _external(obs: np.ndarray) -> float:
    return float(np.expm1(LAYOUT.app(obs)[A["log_external"]] * 10))


def test_a_single_high_interval_moves_the_input_by_a_fraction_of_itself() -> None:
    """Three intervals at 100 rps, then one at 200 (a chance high): over a window of four the policy
    sees 125 rps, utilisation and offered load scaled by 125/200 at the settings that run now, and
    the latency it measures now."""
    rows = np.stack(
        [_row((100, 0), 0.4, 0.4, 100), _row((100, 0), 0.4, 0.4, 100), _row((100, 0), 0.4, 0.4, 100),
         _row((200, 0), 0.8, 0.8, 200, latency=1.5)]
    )  # fmt: skip
    out = smoothed_observation(rows, LAYOUT, n_services=1, window=4)
    assert out.dtype == np.float32
    svc = LAYOUT.services(out)
    assert _rate(out) == pytest.approx(125.0, rel=1e-5)
    assert svc[0, F["cpu_util"]] == pytest.approx(0.8 * 125 / 200, rel=1e-5)
    assert svc[0, F["load"]] == pytest.approx(0.8 * 125 / 200, rel=1e-5)
    assert svc[0, F["latency"]] == pytest.approx(1.5) and LAYOUT.app(out)[A["e2e_latency"]] == pytest.approx(1.5)
    assert svc[0, F["replicas"]] == pytest.approx(0.2)
    assert _external(out) == pytest.approx(125.0, rel=1e-5)
    # Padding, the history window and the context are the newest row's, bit for bit.
    assert svc[1, F["log_rate"]] == np.float32(LAYOUT.services(rows[-1])[1, F["log_rate"]])
    np.testing.assert_array_equal(LAYOUT.history(out), np.float32(0.25))


@pytest.mark.parametrize(
    ("rates", "window", "expected_rate"),
    [
        ((100.0,), 4, 100.0),  # one row: unchanged
        ((50.0, 100.0, 150.0), 1, 150.0),  # window 1: unchanged
        ((50.0, 100.0, 150.0), 2, 125.0),  # the last two only
        ((100.0, 300.0), 8, 200.0),  # fewer rows than the window: all of them
        ((80.0, 120.0, 100.0, 100.0), 4, 100.0),  # the mean is the current rate: scale 1
    ],
)
def test_window_table(rates: tuple[float, ...], window: int, expected_rate: float) -> None:
    rows = np.stack([_row((r, 0), 0.5, 0.5, r) for r in rates])
    out = smoothed_observation(rows, LAYOUT, n_services=1, window=window)
    assert _rate(out) == pytest.approx(expected_rate, rel=1e-5)
    assert LAYOUT.services(out)[0, F["cpu_util"]] == pytest.approx(min(1.0, 0.5 * expected_rate / rates[-1]), rel=1e-5)


def test_clips_and_idle_services() -> None:
    """Scaled features stay within the observation's bounds, and a service with no arrivals now
    keeps its own utilisation (no rate to scale from)."""
    high = smoothed_observation(np.stack([_row((400, 0), 0.9, 3.0, 400), _row((100, 0), 0.9, 3.0, 100)]), LAYOUT, 1, 2)
    assert LAYOUT.services(high)[0, F["cpu_util"]] == pytest.approx(1.0)
    assert LAYOUT.services(high)[0, F["load"]] == pytest.approx(4.0)
    idle = smoothed_observation(np.stack([_row((400, 0), 0.9, 3.0, 400), _row((0, 0), 0.1, 0.0, 0)]), LAYOUT, 1, 2)
    assert LAYOUT.services(idle)[0, F["cpu_util"]] == pytest.approx(0.1)
    assert _rate(idle) == pytest.approx(0.0)


def test_trend_is_the_averaged_rates_trend() -> None:
    """With one row more than the window, ``external_trend`` compares the averaged rate with the
    window before (here 150 over 125: +0.2), not the newest interval with the one before it."""
    rows = np.stack([_row((r, 0), 0.5, 0.5, r) for r in (100.0, 150.0, 100.0, 200.0)])
    out = smoothed_observation(rows, LAYOUT, n_services=1, window=3)
    assert LAYOUT.app(out)[A["external_trend"]] == pytest.approx(150.0 / (350.0 / 3) - 1.0, rel=1e-5)


class Recorder:
    """Asks for nothing, and keeps what it was shown."""

    name = "recorder"
    vertical_mode = "in-place"

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def initial_state(self) -> Any:
        return None

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        self.seen.append(np.array(observation))
        return np.zeros(3, dtype=np.float32), state


def test_in_the_env_the_policy_sees_the_mean_and_a_new_episode_starts_afresh() -> None:
    """On load that alternates 100 and 300 rps, behind ``smooth@60`` (four 15 s intervals) the policy
    sees about 200 rps every interval once the window is full; a new episode's state holds no row of
    the last one."""
    env = AutoscaleEnv({"app": "single", "noise": 0.0, "arrival_noise": False, "max_services": 1})
    recorder = Recorder()
    policy = SmoothedInputPolicy(recorder, EnvContext.of(env), 60.0)
    assert policy.new_window().window == 4
    rates = np.tile([100.0, 300.0], 10)
    measured = []
    obs, _ = env.reset(seed=0, options={"rates": rates})
    state = policy.initial_state()
    for _ in range(12):
        measured.append(obs)
        action, state = policy.act(obs, state)
        obs, *_ = env.step(action)
    seen_rates = [float(np.expm1(env.layout.services(o)[0, F["log_rate"]] * 10)) for o in recorder.seen]
    raw_rates = [float(np.expm1(env.layout.services(o)[0, F["log_rate"]] * 10)) for o in measured]
    assert max(raw_rates[4:]) / min(raw_rates[4:]) > 2.5
    assert max(seen_rates[4:]) / min(seen_rates[4:]) < 1.05
    assert seen_rates[0] == pytest.approx(raw_rates[0], rel=1e-5)
    state = policy.initial_state()
    assert len(state["window"].rows) == 0


def test_registry_builds_smooth_inside_rules_and_rejects_bad_windows() -> None:
    env = AutoscaleEnv({"app": "single", "max_services": 1})
    policy = make_policy("stable@120:smooth@30:hpa@0.6", env, np.full(10, 100.0))
    assert policy.name == "stable@120:smooth@30:hpa@0.6"
    inner = policy.policy
    assert isinstance(inner, SmoothedInputPolicy) and inner.new_window().window == 2
    assert inner_name("smooth@30:ddpg:pretrained") == "ddpg:pretrained"
    assert input_window(policy).window == 2 and len(input_window(policy).rows) == 0
    assert input_window(make_policy("stable@120:hpa@0.6", env, np.full(10, 100.0))) is None
    for bad, message in [
        ("smooth@x:hpa@0.6", "needs a window in seconds"),
        ("smooth@0:hpa@0.6", r"input window must be in \(0, 3600\] s, got 0"),
        ("smooth@60", "write smooth@SECONDS:POLICY"),
        ("smooth@60:stable@120:hpa@0.6", "smooth@60 goes directly in front of the policy it feeds"),
    ]:
        with pytest.raises(ConfigError, match=message):
            expand([bad])
