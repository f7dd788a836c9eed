"""The baseline policies driving the env: HPA, VPA, HPA+VPA, static, through act()."""

from __future__ import annotations

import numpy as np
import pytest

from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from policies.base import EnvContext
from policies.hpa import HPAPolicy, pods_of
from policies.registry import expand, make_policy
from policies.static import StaticPolicy, peak_replicas


def run(env: AutoscaleEnv, policy, rates: np.ndarray) -> list:
    obs, _ = env.reset(seed=0, options={"rates": rates})
    state = policy.initial_state()
    out = []
    for _ in range(len(rates)):
        action, state = policy.act(obs, state)
        assert action.shape == env.action_space.shape
        assert np.all(np.abs(action) <= 1.0)
        obs, _, _, _, info = env.step(action)
        out.append((env.decision.copy(), info["scoreboard"]))
    return out


def quiet_env(app: str = "single", **kw) -> AutoscaleEnv:
    return AutoscaleEnv({"app": app, "noise": 0.0, "arrival_noise": False, **kw})


def test_pods_of_lists_ready_and_pending() -> None:
    pods = pods_of("api", replicas=5, ready=3, cpu_utilization=0.5, cpu_limit=2.0)
    assert [p.ready for p in pods] == [True, True, True, False, False]
    assert [p.usage for p in pods] == [1.0, 1.0, 1.0, None, None]
    assert all(p.request == 2.0 for p in pods)


def test_hpa_scales_to_the_kubernetes_count() -> None:
    # single: 20 ms per request, 1 core per replica, 4 replicas. At 150 rps they use 3 cores:
    # 75 % against a 50 % target -> desired = ceil(4 * 0.75 / 0.5) = 6, one sync later.
    env = quiet_env()
    hpa = HPAPolicy(EnvContext.of(env), target_utilization=0.5)
    steps = run(env, hpa, np.full(4, 150.0))
    assert [int(d.replicas[0]) for d, _ in steps] == [4, 6, 6, 6]


def test_hpa_holds_scale_down_for_the_stabilisation_window() -> None:
    # Load drops to a tenth: the HPA may not scale down before 300 s (20 intervals) have passed.
    env = quiet_env()
    hpa = HPAPolicy(EnvContext.of(env), target_utilization=0.5)
    steps = run(env, hpa, np.full(30, 10.0))
    replicas = [int(d.replicas[0]) for d, _ in steps]
    assert replicas[:20] == [4] * 20
    assert replicas[-1] == 1


def test_vpa_recreate_mode_and_memory_floor() -> None:
    env = quiet_env(vertical_mode="recreate")
    vpa = make_policy("vpa", env, np.full(80, 100.0))
    assert vpa.vertical_mode == "recreate"
    steps = run(env, vpa, np.full(80, 100.0))
    last, _ = steps[-1]
    # Memory was right-sized from the initial 512 MiB towards use (about 200 MiB), never under it.
    assert last.mem_limit[0] < 512
    assert last.mem_limit[0] >= 200 * env.config.guard.mem_headroom
    assert all(int(d.replicas[0]) == 4 for d, _ in steps)


def test_hpa_vpa_leaves_cpu_limits_alone() -> None:
    env = quiet_env("chain3", vertical_mode="recreate")
    pol = make_policy("hpa+vpa", env, np.full(60, 120.0))
    steps = run(env, pol, np.full(60, 120.0))
    for d, _ in steps:
        np.testing.assert_array_equal(d.cpu_limit, env.app.column("cpu_limit_initial"))


def test_static_meets_the_slo_at_its_peak() -> None:
    env = quiet_env("chain3")
    r = peak_replicas(EnvContext.of(env), 200.0)
    steps = run(env, StaticPolicy(EnvContext.of(env), 200.0), np.full(12, 200.0))
    np.testing.assert_array_equal(steps[-1][0].replicas, r)
    assert not any(sb.violated for _, sb in steps[4:])


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["hpa-frontier"], [f"hpa@{t}" for t in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)]),
        (["hpa@0.55", "vpa", "hpa@0.55"], ["hpa@0.55", "vpa"]),
        (["hpa+vpa@0.7", "oracle", "static"], ["hpa+vpa@0.7", "oracle", "static"]),
        # A bare hpa is named by its target, as its results are (evaluate matched rows by it).
        (["hpa", "hpa@0.6", "oracle"], ["hpa@0.6", "oracle"]),
    ],
)
def test_expand(names: list[str], expected: list[str]) -> None:
    assert expand(names) == expected


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("hpa@x", "policy 'hpa@x': target utilisation must be a number"),
        ("hpa@1.5", "policy 'hpa@1.5': target utilisation must be in [0.05, 1.0]"),
        ("ppo", "unknown policy 'ppo'"),
        ("hpa+vpa@", "policy 'hpa+vpa@': target utilisation must be a number"),
    ],
)
def test_expand_rejects(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        expand([name])
    assert message in str(err.value)
    assert "\n" not in str(err.value)
