"""The bootstrap fallback as one Policy (what the live controller runs) and the bootstrap bench."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aware_ray.cli import main
from envs.autoscale_env import AutoscaleEnv
from policies import registry as policy_registry
from policies.base import EnvContext
from policies.bootstrap.arbiter import Source
from policies.bootstrap.config import BootstrapConfig
from policies.bootstrap.guarded import GuardedPolicy, outcome_of
from policies.ddpg.policy import DDPGPolicy
from policies.hpa import HPAPolicy

RAMP = {"app": "chain3", "workloads": ["family:ramp"], "episode_steps": 200, "peak_rps": 400.0, "max_services": 4}


class AlwaysMinimum:
    """The deliberately bad policy: every service to its minimum, every interval."""

    name = "minimum"
    vertical_mode = "in-place"
    push = -1.0

    def initial_state(self) -> Any:
        return None

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        return np.full(4 * 3, self.push, dtype=np.float32), state


class AlwaysMaximum(AlwaysMinimum):
    """The deliberately wasteful policy: the most pods and the largest limits the guard allows."""

    name = "maximum"
    push = 1.0


def _run(env: AutoscaleEnv, policy: Any, seed: int = 0) -> tuple[list[bool], list[Any]]:
    """Violated flags per interval, and the policy state after each decision."""
    obs, _ = env.reset(seed=seed)
    state = policy.initial_state()
    flags, states = [], []
    done = False
    while not done:
        action, state = policy.act(obs, state)
        states.append(dict(state) if isinstance(state, dict) else state)
        obs, _, term, trunc, info = env.step(action)
        flags.append(bool(info["scoreboard"].violated))
        done = term or trunc
    return flags, states


def test_outcome_read_from_the_observation_matches_the_scoreboard() -> None:
    """Without measurement noise, what the controller reads back is the scoreboard's truth."""
    env = AutoscaleEnv({**RAMP, "noise": 0.0})
    ctx = EnvContext.of(env)
    obs, _ = env.reset(seed=1)
    hpa, state = HPAPolicy(ctx, 0.9), None
    state = hpa.initial_state()
    agree = 0
    for _ in range(120):
        action, state = hpa.act(obs, state)
        obs, _, _, _, info = env.step(action)
        violated, reserved, gib = outcome_of(obs, ctx)
        rec = info["scoreboard"]
        assert reserved == pytest.approx(rec.reserved_cores, rel=1e-3)
        assert gib == pytest.approx(rec.reserved_gib, rel=1e-3)
        agree += violated == rec.violated
    assert agree >= 118


def test_guarded_bad_policy_is_caught() -> None:
    """The always-minimum policy alone violates nearly always; behind the fallback it is caught early."""
    env = AutoscaleEnv(RAMP)
    ctx = EnvContext.of(env)
    bare, _ = _run(env, AlwaysMinimum())
    cfg = BootstrapConfig(window=20, cooldown=10, violation_margin=0.05)
    guarded = GuardedPolicy(AlwaysMinimum(), ctx, cfg)
    flags, states = _run(env, guarded)
    sources = [s["last_source"] for s in states]
    budget = states[-1]["arbiter"].monitor.budget()
    assert sum(bare) > 0.8 * len(bare)
    # The policy acts from the first interval, as without the fallback.
    assert sources[0] == int(Source.POLICY)
    first_fallback = sources.index(int(Source.FALLBACK))
    assert first_fallback <= budget + 2  # an interval's reading arrives with the next observation
    assert sum(flags) < 0.5 * sum(bare)
    # Every stretch of policy control ends within the budget's violating intervals (+1 for the reading's delay).
    stretch = 0
    for src, bad in zip(sources, flags, strict=True):
        stretch = stretch + bad if src == int(Source.POLICY) else 0
        assert stretch <= budget + 2
    assert states[-1]["arbiter"].fallbacks >= 2


def test_guarded_wasteful_policy_is_caught_by_the_shadow_cost_rule() -> None:
    """A policy that never violates but reserves all it can is handed back on cost: the heuristic,
    deciding in the shadow, is the yardstick, as no heuristic-controlled window measured one."""
    env = AutoscaleEnv(RAMP)
    cfg = BootstrapConfig(window=20, cooldown=10)
    guarded = GuardedPolicy(AlwaysMaximum(), EnvContext.of(env), cfg)
    flags, states = _run(env, guarded)
    arb = states[-1]["arbiter"]
    sources = [s["last_source"] for s in states]
    assert sum(flags) == 0 and arb.cost_reference is None
    assert sources.index(int(Source.FALLBACK)) == cfg.window  # judged as soon as a whole window is in
    assert arb.fallbacks >= 2
    assert all("asked for in the shadow" in e for e in arb.events if e.startswith("fallback"))


def test_registry_builds_safe_policies() -> None:
    env = AutoscaleEnv(RAMP)
    policy = policy_registry.make_policy("safe:hpa@0.5", env, np.zeros(10))
    assert isinstance(policy, GuardedPolicy)
    assert policy.name == "safe:hpa@0.5"
    assert policy_registry.expand(["safe:hpa@0.7", "safe:ddpg:pretrained"]) == ["safe:hpa@0.7", "safe:ddpg:pretrained"]
    assert policy_registry.env_overrides(["safe:ddpg:pretrained"]) == policy_registry.env_overrides(["ddpg:pretrained"])
    with pytest.raises(ValueError, match="unknown policy 'bogus'"):
        policy_registry.expand(["safe:bogus"])
    assert policy.cfg.heuristic == BootstrapConfig().heuristic
    # safe@T: the fallback heuristic at target T, as a controller's bootstrap.heuristic: hpa+vpa@T.
    warm = policy_registry.make_policy("safe@0.7:stable@120:hpa@0.5", env, np.zeros(10))
    assert isinstance(warm, GuardedPolicy) and warm.cfg.heuristic == "hpa+vpa@0.7"
    assert policy_registry.has_fallback("stable@120:safe@0.7:ddpg:pretrained")
    assert not policy_registry.has_fallback("stable@120:ddpg:safe")  # a policy folder named safe


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("safe@x:hpa@0.5", "target utilisation must be a number, got 'x'"),
        ("safe@:hpa@0.5", "target utilisation must be a number, got ''"),
        ("safe@1.5:hpa@0.5", "must be in [0.05, 1.0], got 1.5"),
        ("safe@0:hpa@0.5", "must be in [0.05, 1.0], got 0.0"),
    ],
)
def test_safe_at_t_bad_target_is_one_line(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"policy '{name}': ")) as err:
        policy_registry.expand([name])
    assert message in str(err.value) and "\n" not in str(err.value)


BENCH_ARGS = [
    "--set",
    "env.app=chain3",
    "--set",
    "env.max_services=4",
    "--set",
    "env.history_window=8",
    "--set",
    "env.episode_steps=30",
    "--set",
    "ddpg.actor_hiddens=[32, 32]",
    "--set",
    "ddpg.critic_hiddens=[32, 32]",
    "--set",
    "ddpg.num_steps_sampled_before_learning_starts=60",
    "--set",
    "ddpg.training_intensity=4",
    "--set",
    "run.num_env_runners=0",
    "--set",
    "run.num_envs_per_env_runner=2",
    "--set",
    "run.steps_per_iteration=60",
    "--set",
    "bootstrap.offline_episodes=4",
    "--set",
    "bootstrap.serving_episodes=2",
    "--set",
    "bootstrap.window=10",
]


@pytest.mark.slow
def test_bench_bootstrap_runs_three_arms(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A tiny lifecycle: every arm sees the same episodes; while OFFLINE, bootstrapping is the heuristic."""
    sizes = ["--episodes", "8", "--switch-at", "6", "--first-n", "4", "--last-k", "2"]
    rc = main(["bench", "bootstrap", *BENCH_ARGS, *sizes, "--out", str(tmp_path)])
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["arms"]) == {"heuristic", "rl_scratch", "rl_bootstrap"}
    for arm in result["arms"].values():
        assert arm["episodes"] == 8
    detail = json.loads((tmp_path / "bootstrap_bench.json").read_text())
    h, b = detail["rows"]["heuristic"], detail["rows"]["rl_bootstrap"]
    # Same seeds, same workloads, same heuristic in control: identical offline episodes.
    for rh, rb in zip(h[:4], b[:4], strict=True):
        assert rb["phase"] == "OFFLINE"
        assert (rh["violations"], rh["cpu_core_hours"]) == (rb["violations"], pytest.approx(rb["cpu_core_hours"]))
    assert all(r["phase"] == "OFFLINE" for r in h)
    assert all(r["new_workload"] for r in b[6:])
    assert result["transitions"][0]["to"] == "OFFLINE"
    assert set(result["goals"]["met"]) == {
        "lifecycle_violations_le_1.1x_heuristic",
        "first_n_ge_10x_fewer_than_scratch",
        "cheaper_than_heuristic_at_end",
    }
    assert set(result["fallback_reasons"]) == {"slo", "cost"}
    assert isinstance(detail["handovers"], list)
    # The learning arms' final policies are exported and load as policies.
    assert sorted(p.name for p in tmp_path.glob("policy_*")) == ["policy_rl_bootstrap", "policy_rl_scratch"]
    DDPGPolicy.load(tmp_path / "policy_rl_bootstrap")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--switch-at", "0"], "--switch-at"),
        (["--set", "bootstrap.window=0"], "bootstrap.window"),
        (["--set", "bootstrap.start_phase=warmup"], "bootstrap.start_phase"),
        (["--new-workload", "family:nope"], "nope"),
        (["--arms", "heuristic,bogus"], "--arms"),
    ],
    ids=["switch-at", "window", "phase", "workload", "arms"],
)
def test_bench_bootstrap_bad_input(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["bench", "bootstrap", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert message in err and len(err.splitlines()) == 1


def _arm(violations: int, first_n: int, last_k_cost: float) -> dict[str, Any]:
    """The summary fields the goals read."""
    return {"violations": violations, "first_n_violations": first_n, "last_k_cpu_core_hours": last_k_cost}


@pytest.mark.parametrize(
    ("arms", "met"),
    [
        (
            {"heuristic": _arm(100, 20, 10.0), "rl_scratch": _arm(900, 400, 8.0), "rl_bootstrap": _arm(110, 20, 9.0)},
            {
                "lifecycle_violations_le_1.1x_heuristic": True,
                "cheaper_than_heuristic_at_end": True,
                "first_n_ge_10x_fewer_than_scratch": True,
            },
        ),
        (
            {"heuristic": _arm(100, 20, 10.0), "rl_scratch": _arm(900, 100, 8.0), "rl_bootstrap": _arm(111, 20, 10.0)},
            {
                "lifecycle_violations_le_1.1x_heuristic": False,
                "cheaper_than_heuristic_at_end": False,
                "first_n_ge_10x_fewer_than_scratch": False,
            },
        ),
        (
            {"heuristic": _arm(100, 20, 10.0), "rl_bootstrap": _arm(90, 20, 9.0)},
            {"lifecycle_violations_le_1.1x_heuristic": True, "cheaper_than_heuristic_at_end": True},
        ),
        ({"heuristic": _arm(100, 20, 10.0)}, {}),
    ],
    ids=["all-met", "none-met", "without-scratch", "heuristic-only"],
)
def test_goals_are_judged_where_their_arms_ran(arms: dict[str, dict[str, Any]], met: dict[str, bool]) -> None:
    from aware_ray.bench.bootstrap import _goals

    assert _goals(arms)["met"] == met
