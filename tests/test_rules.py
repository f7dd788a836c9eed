"""Controller rules inside the env (``env.rules``): parsing, one-line errors, the same decisions as
the controller's wrappers, and a learned policy acting behind the rules it trained under."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from aware_ray.training.config import load_train_config
from aware_ray.training.validation import eval_env_config
from envs.autoscale_env import AutoscaleEnv
from envs.config import EnvConfig
from envs.errors import ConfigError
from envs.rules import Rule, RuleChain, parse_rules
from policies.base import EnvContext, PolicyRule, behind_rules
from policies.ddpg.layout import autoscale_layout
from policies.ddpg.policy import DDPGPolicy, export_policy
from policies.ddpg.torch.ddpg_torch_rl_module import DDPGTorchRLModule
from policies.registry import make_policy

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("", ()),
        ("stable@120", (Rule("stable", 120.0),)),
        ("lean@0.1:stable@120", (Rule("lean", 0.1), Rule("stable", 120.0))),
        ("mem@1.3:lean@0.1", (Rule("mem", 1.3), Rule("lean", 0.1))),
        ("floor@0.7:mem@1.3:lean@0.1", (Rule("floor", 0.7), Rule("mem", 1.3), Rule("lean", 0.1))),
        (" lean@0 : stable@0 ", (Rule("lean", 0.0), Rule("stable", 0.0))),
        ("stable@120:plan@0.8", (Rule("stable", 120.0), Rule("plan", 0.8))),
        ("steady@120:floor@0.8", (Rule("steady", 120.0), Rule("floor", 0.8))),
    ],
)
def test_parse_rules(text: str, rules: tuple[Rule, ...]) -> None:
    assert parse_rules(text) == rules
    assert parse_rules(":".join(map(str, rules))) == rules  # a rule prints as it is written


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo", "rules: 'foo' is not a rule (write e.g. lean@0.1:stable@120)"),
        ("lean@0.1:", "rules: '' is not a rule"),
        ("stable@x", "rules: 'stable@x' needs a number after '@', got 'x'"),
        ("stable@-1", "rules: stabilization window must be in [0, 3600] s, got -1"),
        ("steady@4000", "rules: stabilization window must be in [0, 3600] s, got 4000"),
        ("lean@1.5", "rules: utilisation threshold must be in [0, 1], got 1.5"),
        ("mem@0.9", "rules: memory headroom must be in [1, 4] (times peak use), got 0.9"),
        ("floor@0", "rules: HPA target must be in (0, 1], got 0"),
        ("floor@1.2", "rules: HPA target must be in (0, 1], got 1.2"),
        ("plan@0", "rules: utilisation ceiling must be in (0, 1], got 0"),
        ("plan@1.5", "rules: utilisation ceiling must be in (0, 1], got 1.5"),
        (
            "safe@1",
            "rules: unknown rule 'safe' (known: stable@SECONDS, steady@SECONDS, lean@UTILISATION, mem@HEADROOM, "
            "floor@TARGET, "
            "plan@UTILISATION)",
        ),
    ],
)
def test_bad_rules_are_one_line_errors_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        EnvConfig.from_dict({"rules": text})
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


class Scripted:
    """Random asks in [-1, 1], the same sequence for the same seed: stresses every rule."""

    name = "scripted"
    vertical_mode = "in-place"

    def __init__(self, size: int, seed: int = 1):
        self.rng = np.random.default_rng(seed)
        self.size = size

    def initial_state(self) -> Any:
        return None

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        return self.rng.uniform(-1, 1, self.size).astype(np.float32), state


def _episode(rules_in_env: str, wrappers: str, steps: int = 160) -> list[tuple[float, float, int]]:
    env = AutoscaleEnv({"workloads": ["family:bursty"], "episode_steps": steps, "rules": rules_in_env})
    obs, _ = env.reset(seed=3)
    policy: Any = Scripted(env.action_space.shape[0])
    policy = behind_rules(policy, EnvContext.of(env), parse_rules(wrappers))
    state = policy.initial_state()
    out = []
    for _ in range(steps):
        action, state = policy.act(obs, state)
        obs, reward, *_ = env.step(action)
        d = env.decision
        out.append((reward, float((d.replicas * d.cpu_limit).sum()), int(d.replicas.sum())))
    return out


@pytest.mark.parametrize(
    "rules",
    [
        "stable@120",
        "lean@0.1",
        "lean@0.1:stable@120",
        "stable@60:lean@0.2",
        "mem@1.3",
        "mem@1.5:lean@0.1",
        "floor@0.7",
        "floor@0.6:mem@1.3:lean@0.1",
        "stable@120:mem@1.3",
        "stable@120:floor@0.8:mem@1.3:lean@0.1",
        "plan@0.8",
        "stable@120:plan@0.8:mem@1.3:lean@0.3",
        "steady@120:floor@0.8:mem@1.3:lean@0.3",
    ],
)
def test_rules_in_the_env_decide_as_the_controllers_wrappers(rules: str) -> None:
    """Training under ``env.rules`` and deploying behind the same wrappers give the same episode:
    the env goes through the very decode, rule and re-encode steps a controller does."""
    in_env = _episode(rules, "")
    in_controller = _episode("", rules)
    assert in_env == in_controller
    assert in_env != _episode("", "")  # and the rules change what happens


def test_overridden_asks_are_charged_when_weighted() -> None:
    """With ``reward.overridden`` the env charges how far the rules moved the policy's action; the
    scoreboard (what evaluation reads) is otherwise the same episode."""

    def run(weight: float) -> tuple[list[float], list[float]]:
        cfg = {"workloads": ["family:bursty"], "episode_steps": 60, "rules": "lean@0.3"}
        env = AutoscaleEnv({**cfg, "reward": {"overridden": weight}})
        obs, _ = env.reset(seed=4)
        policy, rewards, cores = Scripted(env.action_space.shape[0], seed=6), [], []
        for _ in range(60):
            obs, reward, *_ = env.step(policy.act(obs, None)[0])
            rewards.append(reward)
            cores.append(float((env.decision.replicas * env.decision.cpu_limit).sum()))
        return rewards, cores

    free, charged = run(0.0), run(0.5)
    assert free[1] == charged[1]
    gaps = np.subtract(free[0], charged[0])
    assert np.all(gaps >= 0) and gaps.max() > 0.1


def test_a_new_episode_forgets_the_windows_asks() -> None:
    env = AutoscaleEnv({"workloads": ["family:bursty"], "episode_steps": 40, "rules": "stable@300"})
    runs = []
    for _ in range(2):
        obs, _ = env.reset(seed=5)
        policy, trace = Scripted(env.action_space.shape[0], seed=2), []
        for _ in range(40):
            obs, reward, *_ = env.step(policy.act(obs, None)[0])
            trace.append(reward)
        runs.append(trace)
    assert runs[0] == runs[1]


def test_chain_applies_the_last_named_rule_first() -> None:
    """``lean@0:stable@S`` holds the policy's own asks in the window; the lean rule then sees the
    window's output. With no pressure, nothing may grow, whatever the window passed."""
    from envs.metrics import ScalingDecision
    from envs.observation import N_SERVICE_FEATURES

    chain = RuleChain(parse_rules("lean@0.5:stable@30"), 15.0)
    current = ScalingDecision(np.array([2, 2]), np.array([1.0, 1.0]), np.array([512.0, 512.0]))
    idle = np.zeros((2, N_SERVICE_FEATURES))
    up = ScalingDecision(np.array([4, 4]), np.array([2.0, 2.0]), np.array([512.0, 512.0]))
    down = ScalingDecision(np.array([1, 1]), np.array([0.5, 0.5]), np.array([256.0, 256.0]))
    held = chain.apply(up, current, idle)
    assert list(held.replicas) == [2, 2] and list(held.cpu_limit) == [1.0, 1.0]
    # The window remembers the (blocked) ask to grow, so the cut right after it is held too.
    cut = chain.apply(down, current, idle)
    assert list(cut.replicas) == [2, 2] and list(cut.mem_limit) == [512.0, 512.0]
    chain.reset()
    assert list(chain.apply(down, current, idle).replicas) == [1, 1]


# (current limit MiB, peak use MiB per replica, headroom) -> limit the rule lets through
@pytest.mark.parametrize(
    ("limit", "peak", "headroom", "expected"),
    [
        (512.0, 100.0, 1.3, 130.0),  # far above the need: cut to 1.3 x the peak
        (150.0, 100.0, 1.3, 150.0),  # inside [130, 162.5]: left alone (no resize every interval)
        (162.0, 100.0, 1.3, 162.0),
        (163.0, 100.0, 1.3, 130.0),  # just past the band: cut
        (120.0, 100.0, 1.3, 130.0),  # below the target: raised at once
        (256.0, float("nan"), 1.3, 256.0),  # no ready replica, no use known: kept
        (300.0, 99.2, 2.0, 199.0),  # target ceil(198.4) = 199; 300 is above 1.25 x 199: cut
    ],
)
def test_fit_memory_table(limit: float, peak: float, headroom: float, expected: float) -> None:
    from envs.metrics import ScalingDecision
    from envs.rules import fit_memory

    ask = ScalingDecision(np.array([3]), np.array([0.7]), np.array([1000.0]))
    current = ScalingDecision(np.array([2]), np.array([1.0]), np.array([limit]))
    got = fit_memory(ask, current, np.array([peak]), headroom)
    assert list(got.mem_limit) == [expected]
    assert list(got.replicas) == [3] and list(got.cpu_limit) == [0.7]  # only memory is the rule's


def test_mem_rule_takes_the_window_peak_and_forgets_it_after_the_window() -> None:
    """``mem@H`` sizes from the highest use of the last 300 s, read from the observation rows
    (use over the current limit), and forgets a peak once it has left the window."""
    from envs.metrics import ScalingDecision
    from envs.observation import N_SERVICE_FEATURES, F

    chain = RuleChain(parse_rules("mem@1.5"), 60.0)  # a 300 s window is 5 intervals of 60 s
    current = ScalingDecision(np.array([2]), np.array([1.0]), np.array([400.0]))
    rows = np.zeros((1, N_SERVICE_FEATURES))
    ask = ScalingDecision(np.array([2]), np.array([1.0]), np.array([4000.0]))
    rows[0, F["mem_util"]] = 0.5  # 200 MiB: target 300; 400 is above 1.25 x 300: cut
    assert list(chain.apply(ask, current, rows).mem_limit) == [300.0]
    current = ScalingDecision(np.array([2]), np.array([1.0]), np.array([300.0]))
    rows[0, F["mem_util"]] = 0.2  # 60 MiB now, but the 200 MiB peak is still in the window
    for _ in range(4):
        assert list(chain.apply(ask, current, rows).mem_limit) == [300.0]
    assert list(chain.apply(ask, current, rows).mem_limit) == [90.0]  # the peak has left the window
    rows[0, F["mem_util"]] = 0.0  # nothing ready: the window's known peak still counts
    assert list(chain.apply(ask, current, rows).mem_limit) == [90.0]


def test_mem_rule_keeps_memory_near_use_in_an_episode() -> None:
    """Behind ``mem@1.3`` a policy asking for the most memory ends far below the top of the range,
    and no interval is more than a band above 1.3 x what the pods use."""
    cfg = {"workloads": ["family:bursty"], "episode_steps": 80}
    env = AutoscaleEnv({**cfg, "rules": "mem@1.3"})
    bare = AutoscaleEnv(cfg)
    for e in (env, bare):
        e.reset(seed=3)
    greedy = np.tile(np.array([0.0, 0.0, 1.0], dtype=np.float32), env.action_space.shape[0] // 3)
    for _ in range(80):
        env.step(greedy)
        bare.step(greedy)
    assert env.decision.mem_limit.sum() < 0.5 * bare.decision.mem_limit.sum()
    use = env.metrics.mem_usage
    assert np.all(env.decision.mem_limit <= np.ceil(1.3 * 1.25 * np.maximum(use, 1.0)) * 1.5)


def _one_service(
    replicas: int, ready: int, util: float, limit: float, ask_replicas: int, ask_cpu: float
) -> tuple[Any, Any, np.ndarray]:
    """(ask, current settings, observation rows) of one service with 512 MiB, asked for 300 MiB."""
    from envs.metrics import ScalingDecision
    from envs.observation import N_SERVICE_FEATURES, F

    rows = np.zeros((1, N_SERVICE_FEATURES))
    rows[0, F["replicas"]], rows[0, F["ready"]] = replicas / 10, ready / 10  # scaled as the env scales them
    rows[0, F["cpu_util"]] = util
    current = ScalingDecision(np.array([replicas]), np.array([limit]), np.array([512.0]))
    ask = ScalingDecision(np.array([ask_replicas]), np.array([ask_cpu]), np.array([300.0]))
    return ask, current, rows


# (replicas, ready, utilisation of ready pods, current CPU limit, asked replicas, asked CPU limit)
# -> replicas let through by floor@0.5
@pytest.mark.parametrize(
    ("replicas", "ready", "util", "limit", "ask_replicas", "ask_cpu", "expected"),
    [
        (4, 4, 0.5, 1.0, 2, 1.0, 2),  # at the target: the HPA would not act; the cut passes
        (4, 4, 0.55, 1.0, 2, 1.0, 2),  # within the 10 % tolerance: still passes
        (4, 4, 0.6, 1.0, 2, 1.0, 5),  # 2.4 cores in use at 0.5 per pod of 1 core: ceil(4.8) = 5
        (4, 4, 0.6, 1.0, 6, 1.0, 6),  # the policy already asks for more: its ask
        (4, 4, 0.6, 1.0, 2, 2.0, 3),  # at the 2-core limit it asked for: ceil(2.4) = 3 pods
        (4, 2, 1.0, 1.0, 4, 1.0, 4),  # two pods still starting count as idle: 2 cores at 0.5 -> 4
        (4, 0, 0.0, 1.0, 1, 1.0, 1),  # nothing ready, nothing known: the ask
        (2, 2, 1.0, 0.5, 2, 0.5, 4),  # saturated (utilisation capped at 1): doubled, as the HPA would
    ],
)
def test_floor_rule_table(
    replicas: int, ready: int, util: float, limit: float, ask_replicas: int, ask_cpu: float, expected: int
) -> None:
    from envs.rules import hpa_floor

    ask, current, rows = _one_service(replicas, ready, util, limit, ask_replicas, ask_cpu)
    got = hpa_floor(ask, current, rows, 0.5)
    assert list(got.replicas) == [expected]
    assert list(got.cpu_limit) == [ask_cpu] and list(got.mem_limit) == [300.0]  # only replicas are the rule's


# (replicas, ready, utilisation of ready pods, current CPU limit, asked replicas, asked CPU limit)
# -> (replicas, CPU limit) let through by plan@0.8
@pytest.mark.parametrize(
    ("replicas", "ready", "util", "limit", "ask_replicas", "ask_cpu", "expected"),
    [
        (5, 5, 0.18, 0.5, 1, 0.5, (2, 0.5)),  # 0.45 cores in use: one pod would run at 0.9; two at 0.45
        (5, 5, 0.18, 0.5, 1, 1.0, (1, 1.0)),  # one 1-core pod runs it at 0.45: the ask
        (4, 4, 0.5, 1.0, 3, 1.0, (3, 1.0)),  # 2 cores in use on 3 pods: 0.67, below the ceiling
        (4, 4, 0.5, 1.0, 2, 1.0, (3, 1.0)),  # on 2 pods it would be 1.0: ceil(2 / 0.8) = 3
        (4, 4, 0.5, 1.0, 6, 1.0, (6, 1.0)),  # increases pass
        (4, 2, 1.0, 1.0, 2, 1.0, (3, 1.0)),  # two pods still starting count as idle: 2 cores in use
        (4, 0, 0.0, 1.0, 1, 1.0, (1, 1.0)),  # nothing ready, nothing known: the ask
        (1, 1, 0.5, 1.0, 1, 0.5, (1, 0.625)),  # a CPU cut undone as far as needed, in place: 0.5 / 0.8
        (1, 1, 0.9, 1.0, 1, 0.5, (2, 1.0)),  # undone back to the current limit, then a pod: ceil(1.125)
        (2, 2, 0.1, 0.5, 0, 0.5, (0, 0.5)),  # enough on the one pod the guard will keep: passes as asked
    ],
)
def test_plan_rule_table(
    replicas: int,
    ready: int,
    util: float,
    limit: float,
    ask_replicas: int,
    ask_cpu: float,
    expected: tuple[int, float],
) -> None:
    from envs.rules import planned_floor

    ask, current, rows = _one_service(replicas, ready, util, limit, ask_replicas, ask_cpu)
    got = planned_floor(ask, current, rows, 0.8)
    assert (int(got.replicas[0]), float(got.cpu_limit[0])) == pytest.approx(expected)
    assert list(got.mem_limit) == [300.0]  # memory is not the rule's


def test_validation_runs_baselines_without_the_training_rules() -> None:
    cfg = load_train_config(CONFIGS / "demo.yaml", ["env.rules=lean@0.1:stable@120"])
    assert cfg.env.rules == "lean@0.1:stable@120"
    assert "rules" not in eval_env_config(cfg)


ENV = {"app": "chain3", "max_services": 6, "history_window": 4, "noise": 0.0}


def _export(folder: Path, rules: str) -> None:
    e = AutoscaleEnv(ENV)
    torch.manual_seed(0)
    mc = {"layout": autoscale_layout(6, 4), "actor_hiddens": [16], "critic_hiddens": [16]}
    mc.update(embedding_dim=4, meta_hidden=8)
    m = DDPGTorchRLModule(observation_space=e.observation_space, action_space=e.action_space, model_config=mc)
    export_policy(m, folder, {**ENV, "rules": rules})


def test_a_policy_trained_under_rules_acts_behind_them(tmp_path: Path) -> None:
    _export(tmp_path / "p", "lean@0.1:stable@120")
    loaded = DDPGPolicy.load(tmp_path / "p")
    assert loaded.rules == (Rule("lean", 0.1), Rule("stable", 120.0))
    env = AutoscaleEnv(ENV)
    policy = make_policy(f"ddpg:{tmp_path / 'p'}", env, np.zeros(4))
    assert isinstance(policy, PolicyRule) and str(policy.rule) == "lean@0.1"
    assert isinstance(policy.policy, PolicyRule) and str(policy.policy.rule) == "stable@120"
    assert policy.name == f"ddpg:{tmp_path / 'p'}"  # reports keep the name the user gave
    # Rules named on the command line go in front of the trained ones.
    outer = make_policy(f"stable@30:ddpg:{tmp_path / 'p'}", env, np.zeros(4))
    assert str(outer.rule) == "stable@30" and str(outer.policy.rule) == "lean@0.1"
    # A policy trained without rules acts bare.
    _export(tmp_path / "bare", "")
    assert isinstance(make_policy(f"ddpg:{tmp_path / 'bare'}", env, np.zeros(4)), DDPGPolicy)


def test_bad_trained_rules_name_the_policy_file(tmp_path: Path) -> None:
    _export(tmp_path / "p", "stable@120")
    meta_file = tmp_path / "p" / "policy.json"
    meta = json.loads(meta_file.read_text())
    meta["env"]["rules"] = "stable@forever"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ConfigError) as err:
        DDPGPolicy.load(tmp_path / "p")
    assert str(err.value) == f"{meta_file}: env.rules: 'stable@forever' needs a number after '@', got 'forever'"


@pytest.mark.parametrize("rule", ["stable@x", "stable@-1", "lean@1.5", "lean@0.1"])
def test_the_registry_and_the_env_read_rules_with_one_parser(rule: str) -> None:
    """``env.rules`` and a policy name on the command line accept and reject the same rules alike."""
    from policies.registry import expand

    name = f"{rule}:hpa@0.6"
    try:
        EnvConfig.from_dict({"rules": rule})
    except ConfigError as env_err:
        with pytest.raises(ConfigError) as err:
            expand([name])
        assert str(err.value).removeprefix(f"policy '{name}': ") == str(env_err).removeprefix("rules: ")
    else:
        assert expand([name]) == [name]
