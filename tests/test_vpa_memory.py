"""``vpa-mem:POLICY``: POLICY's replicas and CPU limits, the VPA's memory limits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from policies.base import EnvContext
from policies.registry import expand, inner_name, make_policy
from policies.vpa_memory import VPAMemoryPolicy


class AlwaysUp:
    """Asks for one more pod and the most memory the action allows, every interval."""

    name = "up"
    vertical_mode = "in-place"

    def initial_state(self) -> Any:
        return None

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        a = np.zeros((1, 3), dtype=np.float32)
        a[0, 0], a[0, 1], a[0, 2] = 0.3, 0.0, 1.0
        return a.ravel(), state


def _run(policy: Any, env: AutoscaleEnv, steps: int) -> tuple[list[float], list[tuple[int, float]]]:
    """Memory limits, and (replicas, CPU limit), after each interval."""
    obs, _ = env.reset(seed=0, options={"rates": np.full(steps, 150.0)})
    state = policy.initial_state()
    mem, rest = [], []
    for _ in range(steps):
        action, state = policy.act(obs, state)
        obs, *_ = env.step(action)
        mem.append(float(env.decision.mem_limit[0]))
        rest.append((int(env.decision.replicas[0]), float(env.decision.cpu_limit[0])))
    return mem, rest


def _env() -> AutoscaleEnv:
    return AutoscaleEnv({"app": "single", "noise": 0.0, "arrival_noise": False, "max_services": 1})


def test_memory_follows_the_vpa_while_replicas_and_cpu_pass_untouched() -> None:
    """Bare, asking for more memory every interval reaches the service's maximum (4096 MiB); behind
    vpa-mem: the limit comes down towards the pods' use and stays there, and replicas and CPU
    limits are what the policy asked for, interval by interval."""
    env = _env()
    bare_mem, bare_rest = _run(AlwaysUp(), env, 40)
    assert bare_mem[-1] == 4096.0
    mem, rest = _run(VPAMemoryPolicy(AlwaysUp(), EnvContext.of(env)), env, 40)
    assert rest == bare_rest
    usage = float(env.metrics.mem_usage[0])
    assert usage * env.config.guard.mem_headroom <= mem[-1] < 512  # below the initial limit
    assert len(set(mem[-10:])) == 1  # held between the VPA's bounds, not moved every interval


def test_registry_builds_vpa_mem_around_any_policy() -> None:
    env = _env()
    policy = make_policy("vpa-mem:lean@0.1:hpa@0.6", env, np.full(10, 100.0))
    assert isinstance(policy, VPAMemoryPolicy)
    assert policy.name == "vpa-mem:lean@0.1:hpa@0.6"
    assert inner_name("vpa-mem:stable@60:hpa@0.6") == "hpa@0.6"
    with pytest.raises(ConfigError, match="unknown policy 'nope'"):
        expand(["vpa-mem:nope"])
