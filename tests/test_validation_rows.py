"""Validation steps its episodes side by side with one forward per interval: the same rows, bit for
bit, as the episodes run one by one (``rollout.run_episodes``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aware_ray.evaluation.rollout import EpisodeRun, run_episode, run_episodes
from aware_ray.training.config import load_train_config
from aware_ray.training.validation import validation_rows
from envs.autoscale_env import AutoscaleEnv
from policies import registry
from policies.base import EnvContext
from policies.ddpg.policy import DDPGPolicy
from policies.given_action import GivenAction


class OneByOne:
    """A policy's ``act`` without its ``act_batch``: validation then runs episodes one at a time."""

    def __init__(self, policy: DDPGPolicy):
        self.policy = policy
        self.name = policy.name
        self.rules = policy.rules
        self.vertical_mode = policy.vertical_mode

    def initial_state(self) -> Any:
        return self.policy.initial_state()

    def history_needs(self) -> dict[str, Any]:
        return self.policy.history_needs()

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        return self.policy.act(observation, state)


def _policy(tmp_path: Path, rules: str) -> DDPGPolicy:
    folder = tmp_path / "policy"
    shutil.copytree(registry.PRETRAINED_DIR, folder)
    meta = json.loads((folder / "policy.json").read_text())
    meta["env"]["rules"] = rules  # as if trained behind them: the policy then acts behind them
    (folder / "policy.json").write_text(json.dumps(meta))
    return DDPGPolicy.load(folder)


@pytest.mark.parametrize(
    ("rules", "wrapped"),
    [("", ""), ("floor@0.8:mem@1.3", "stable@120:lean@0.1:"), ("", "stable@120:lean@0.3:smooth@60:")],
)
def test_validation_rows_side_by_side_equal_one_by_one(rules: str, wrapped: str, tmp_path: Path) -> None:
    policy = _policy(tmp_path, rules)
    cfg = load_train_config(
        "experiments/configs/default.yaml",
        ["run.eval_hours=0.25", "run.eval_families=[ramp, step+jitter]", "run.eval_seeds=2"],
    )
    wrap = None
    if wrapped:
        chain = registry.wrap_chain(wrapped + "ddpg:pretrained")[1]
        wrap = lambda p, env: chain(p, EnvContext.of(env))  # noqa: E731
    together = validation_rows(policy, cfg, wrap=wrap)
    alone = validation_rows(OneByOne(policy), cfg, wrap=wrap)
    assert len(together) == 4
    assert [r["policy"] for r in together] == [r["policy"] for r in alone]
    assert together == alone


def test_a_window_on_the_input_reaches_the_batched_forward(tmp_path: Path) -> None:
    """Behind ``smooth@60`` the batched forward is asked with the averaged observation: the rows
    differ from the same chain without the window (they equal the one-by-one rows, above)."""
    policy = _policy(tmp_path, "")
    cfg = load_train_config(
        "experiments/configs/default.yaml",
        ["run.eval_hours=0.25", "run.eval_families=[step+jitter]", "run.eval_seeds=1"],
    )
    rows = {}
    for wrapped in ("stable@120:", "stable@120:smooth@60:"):
        chain = registry.wrap_chain(wrapped + "ddpg:pretrained")[1]
        rows[wrapped] = validation_rows(policy, cfg, wrap=lambda p, env, c=chain: c(p, EnvContext.of(env)))[0]
    assert rows["stable@120:"]["cpu_core_hours"] != rows["stable@120:smooth@60:"]["cpu_core_hours"]


def test_a_given_action_refuses_an_observation_it_was_not_computed_for() -> None:
    given = GivenAction("p")
    given.action, given.observation = np.zeros(3, np.float32), np.ones(4, np.float32)
    assert given.act(np.ones(4), None)[0] is given.action
    with pytest.raises(RuntimeError, match="computed for another observation"):
        given.act(np.full(4, 2.0), None)


def test_episodes_of_different_lengths_step_together_as_alone() -> None:
    """An episode that ends early leaves the batch; the others go on as they would alone."""
    policy = DDPGPolicy.load(registry.PRETRAINED_DIR)
    cfg = {**policy.env_overrides(), "app": "social-network"}
    rng = np.random.default_rng(0)
    series = [rng.uniform(50, 400, n) for n in (30, 55, 42)]
    alone = [
        run_episode(policy, AutoscaleEnv(cfg), rates, 7, f"w{k}", "test").summary for k, rates in enumerate(series)
    ]
    runs = []
    for k, rates in enumerate(series):
        given = GivenAction(policy.name)
        runs.append(EpisodeRun(given, AutoscaleEnv(cfg), rates, 7, f"w{k}", "test", given=given))
    together = [res.summary for res in run_episodes(runs, policy.act_batch)]
    assert [r["steps"] for r in together] == [30, 55, 42]
    assert together == alone


def test_every_place_a_learned_policy_acts_records_the_reward_it_trained_on(tmp_path: Path) -> None:
    """The history rows hold each interval's reward, an input of the meta-learner: evaluate, the
    endpoint and the controller record it with the weights the policy's history was trained with,
    whatever reward they score with themselves (evaluate's default charges a violation 2, the
    shipped policy trained at 4)."""
    from aware_ray.control.loop import policy_facts
    from aware_ray.evaluation.evaluate import EvalPlan, _episode_run
    from aware_ray.serving.runtime import PolicyRuntime
    from envs.reward import RewardWeights

    trained = RewardWeights(**json.loads((registry.PRETRAINED_DIR / "policy.json").read_text())["env"]["reward"])
    assert trained != RewardWeights()
    folder = tmp_path / "tuned"
    shutil.copytree(registry.PRETRAINED_DIR, folder)
    meta = json.loads((folder / "policy.json").read_text())
    meta["env"]["reward"] = {"violation": 4.0, "cost": 16.0}
    meta["env"]["history_reward"] = {"violation": 4.0, "cost": 2.0}
    (folder / "policy.json").write_text(json.dumps(meta))
    tuned = RewardWeights(violation=4.0, cost=2.0)
    for name, want in [("ddpg:pretrained", trained), (f"stable@120:ddpg:{folder}", tuned)]:
        needs = registry.history_needs(name)
        plan = EvalPlan(policies=[name], app="chain3", max_hours=0.1)
        make = lambda env, rates, n=name: registry.make_policy(n, env, rates)  # noqa: E731
        env = _episode_run(plan, "family:ramp", 0, make, needs).env.config
        assert env.history_weights == want and env.reward == RewardWeights()  # evaluate scores with its own
        served = PolicyRuntime(name, ["chain3"]).apps["chain3"].env.config
        assert served.history_weights == want
        assert RewardWeights(**policy_facts(name)[0]["history_reward"]) == want
    assert registry.history_needs("hpa@0.5") == {}
