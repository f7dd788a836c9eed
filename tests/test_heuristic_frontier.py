"""The heuristics users would run: HPA with an in-place VPA, the predictive HPA, and the
``heuristic-frontier`` that puts them with the HPA; none of them reads a rate from the future."""

from __future__ import annotations

import numpy as np
import pytest

from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from policies.base import EnvContext
from policies.hpa_rules import HPAController
from policies.predictive import PredictiveHPAController, PredictivePolicy
from policies.registry import FRONTIER_FAMILIES, FRONTIER_TARGETS, expand, make_policy


def quiet_env(app: str = "single", **kw) -> AutoscaleEnv:
    return AutoscaleEnv({"app": app, "noise": 0.0, "arrival_noise": False, **kw})


def decisions(env: AutoscaleEnv, name: str, rates: np.ndarray, steps: int, seed: int = 0) -> list[np.ndarray]:
    """Actions of policy `name` (built for `rates`) over the first `steps` intervals of `rates`."""
    policy = make_policy(name, env, rates)
    obs, _ = env.reset(seed=seed, options={"rates": rates})
    state = policy.initial_state()
    out = []
    for _ in range(steps):
        action, state = policy.act(obs, state)
        out.append(np.array(action))
        obs, *_ = env.step(action)
    return out


def test_heuristic_frontier_expands_to_every_family_at_every_target() -> None:
    names = expand(["heuristic-frontier"])
    assert len(names) == len(FRONTIER_FAMILIES) * len(FRONTIER_TARGETS) == 24
    assert {"hpa@0.2", "hpa+vpa-inplace@0.9", "predictive@0.5"} <= set(names)
    assert expand(["predictive", "hpa+vpa-inplace"]) == ["predictive@0.6", "hpa+vpa-inplace@0.6"]


@pytest.mark.parametrize(
    ("name", "message"),
    [("predictive@2", r"\[0.05, 1.0\]"), ("hpa+vpa-inplace@x", "must be a number"), ("predictive@", "number")],
)
def test_bad_targets_are_one_line_errors(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        expand([name])


def test_no_baseline_reads_a_rate_from_the_future() -> None:
    """Every heuristic gets the episode's whole rate series when built (the oracle needs it): a
    baseline's decisions up to t must not change when the rates from t on do. The decision of step
    t is taken before interval t's load arrives, so it is compared too. The oracle's differs there,
    which shows the check can fail."""
    env = quiet_env("chain3")
    t = np.arange(120)
    rates = env.peak_rps * (0.25 + 0.1 * np.sin(t / 12.0) + 0.001 * t)
    future = rates.copy()
    future[60:] *= 2.5
    for name in [*expand(["heuristic-frontier"])[::3], "hpa+vpa", "vpa", "hpa+vpa-inplace@0.6", "predictive@0.6"]:
        a = decisions(env, name, rates, 61)
        b = decisions(env, name, future, 61)
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), name
    a = decisions(env, "oracle", rates, 61)
    b = decisions(env, "oracle", future, 61)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_hpa_vpa_inplace_resizes_memory_without_restarts() -> None:
    """The same HPA and VPA as ``hpa+vpa``; in place, a memory change restarts no pod, so the
    ready count never drops below what the HPA keeps, unlike Recreate."""
    env = quiet_env("single")
    rates = np.full(80, 0.5 * env.peak_rps)
    inplace = make_policy("hpa+vpa-inplace@0.6", env, rates)
    assert inplace.vertical_mode == "in-place"
    assert make_policy("hpa+vpa@0.6", env, rates).vertical_mode == "recreate"
    obs, _ = env.reset(seed=0, options={"rates": rates})
    state = inplace.initial_state()
    mem0 = env.decision.mem_limit.copy()
    changed = False
    for _ in range(len(rates)):
        action, state = inplace.act(obs, state)
        obs, *_ = env.step(action)
        changed |= bool(np.any(env.decision.mem_limit != mem0))
        assert env.backend.sim.ready.sum() + env.backend.sim.starting.sum() >= env.decision.replicas.sum() - 1e-9
    assert changed, "the VPA never resized memory"
    assert env.decision.mem_limit[0] < mem0[0]  # the app's initial limit is generous; the VPA cuts it


def test_predictive_never_asks_below_the_reactive_count() -> None:
    ctl = PredictiveHPAController(0.6, horizon=2)
    for desired in [5, 4, 3, 2, 1, 1, 1]:
        assert ctl.adjust_desired(desired, 0.0) >= desired


def test_predictive_scales_ahead_of_a_ramp() -> None:
    """On a steady ramp of reactive recommendations the forecast over the horizon is ahead of it."""
    ctl = PredictiveHPAController(0.6, horizon=3, fit_every=5)
    out = [ctl.adjust_desired(d, 15.0 * i) for i, d in enumerate(range(2, 40, 2))]
    assert out[-1] >= 38 + 2 * 3 - 1
    assert ctl.last_forecast == pytest.approx(38 + 2 * 3, abs=1.0)


def test_predictive_horizon_is_one_sync_plus_the_start_up_delay() -> None:
    env = quiet_env("chain3")  # start-up delays 15, 30 and 45 s at 15 s intervals
    policy = PredictivePolicy(EnvContext.of(env), 0.6)
    assert [c.horizon for c in policy.initial_state()["hpa"]] == [2, 3, 4]
    assert all(isinstance(c, HPAController) for c in policy.initial_state()["hpa"])


def test_predictive_keeps_the_hpa_scale_down_stabilisation() -> None:
    """After a load drop the predictive HPA holds its count for the HPA's 300 s window, as the HPA does."""
    env = quiet_env("single")
    rates = np.concatenate([np.full(40, 0.8 * env.peak_rps), np.full(30, 0.1 * env.peak_rps)])
    reps = {}
    for name in ("hpa@0.6", "predictive@0.6"):
        policy = make_policy(name, env, rates)
        obs, _ = env.reset(seed=0, options={"rates": rates})
        state = policy.initial_state()
        seen = []
        for _ in range(len(rates)):
            action, state = policy.act(obs, state)
            obs, *_ = env.step(action)
            seen.append(int(env.decision.replicas[0]))
        reps[name] = seen
    for seen in reps.values():
        assert seen[40 + 19] == seen[39]  # 20 x 15 s = 300 s after the drop: still held
        assert seen[-1] < seen[39]  # then it scales down
