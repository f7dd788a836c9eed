"""aware-ray train: config validation, --set overrides, and a tiny end-to-end run with evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aware_ray.cli import main
from aware_ray.training.config import apply_overrides, build_train_config, load_train_config
from aware_ray.training.rank import ranking_key

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"


@pytest.mark.parametrize("name", ["demo.yaml", "default.yaml", "bootstrap.yaml"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_train_config(CONFIGS / name)
    assert cfg.env.history_window > 0 and cfg.run.iterations >= 1


def test_set_overrides_are_typed() -> None:
    raw = apply_overrides(
        {"run": {"iterations": 5}},
        ["run.iterations=7", "ddpg.tau=0.01", "ddpg.exploration.type=ou", "env.workloads=[family:ramp]"],
    )
    assert raw == {
        "run": {"iterations": 7},
        "ddpg": {"tau": 0.01, "exploration": {"type": "ou"}},
        "env": {"workloads": ["family:ramp"]},
    }


@pytest.mark.parametrize(
    ("raw", "overrides", "message"),
    [
        ({"ddpg": {"taus": 0.1}}, [], "unknown key 'ddpg.taus'"),
        ({"ddpg": {"tau": "fast"}}, [], "ddpg.tau: expected"),
        ({"ddpg": {"tau": 2.0}}, [], "ddpg.tau: must be in (0, 1]"),
        ({"ddpg": {"exploration": {"kind": "ou"}}}, [], "ddpg.exploration.kind: unknown key"),
        ({"run": {"iterations": 0}}, [], "run.iterations: must be >= 1"),
        ({"run": {"iteration": 3}}, [], "run.iteration: unknown key"),
        ({"env": {"app": 3}}, [], "env.app: expected a string"),
        ({"env": {"apps": "x"}}, [], "env.apps: unknown key (known: "),
        ({}, ["env.reward.memroy=1"], "env.reward.memroy: unknown key (known: cost, flapping, memory, "),
        ({}, ["env.reward.memory=-1"], "env.reward.memory: must be a finite number >= 0"),
        ({"env": {"history_window": -1}}, [], "history_window"),
        ({"ddpg": {"workload_loss_weight": 1.0}}, [], "ddpg.workload_loss_weight needs a meta-learner"),
        (
            {"env": {"history_window": 4, "context_span": 16}, "ddpg": {"synthetic_contexts": 8}},
            [],
            "ddpg.synthetic_contexts needs ddpg.workload_loss_weight > 0",
        ),
        ({"ddpg": {"synthetic_contexts": -1}}, [], "ddpg.synthetic_contexts: must be an integer >= 0"),
        ({"ddpg": {"workload_loss_weight": -1.0}}, [], "ddpg.workload_loss_weight: must be a number >= 0"),
        (
            {
                "env": {"history_window": 4, "context_span": 16},
                "ddpg": {"replay_buffer_config": {"type": "PrioritizedEpisodeReplayBuffer"}},
            },
            ["ddpg.workload_loss_weight=0.5"],
            "ddpg.workload_loss_weight needs replayed infos",
        ),
        ({"env": {"context_span": 10}}, [], "env.context_span: must be a multiple of context_buckets"),
        ({"model": {}}, [], "unknown section 'model'"),
        ({}, ["iterations=3"], "the key must start with env., ddpg., run. or bootstrap."),
        ({}, ["run.iterations"], "expected key=value"),
    ],
)
def test_bad_config_names_the_key(raw: dict, overrides: list[str], message: str) -> None:
    from envs.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        build_train_config(raw, "cfg.yaml", overrides)
    assert message in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_train_cli_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("ddpg: {taus: 1}\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run")]) == 2
    assert "unknown key 'ddpg.taus'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _tiny() -> dict:
    """A training config that runs in seconds on 2 cores."""
    return {
        "env": {
            "app": "chain3",
            "workloads": ["family:diurnal", "family:step"],
            "episode_steps": 60,
            "max_services": 4,
            "history_window": 4,
            "context_span": 8,
            "context_buckets": 4,
            "level_prob": 0.5,
        },
        "ddpg": {
            "workload_loss_weight": 0.5,
            "synthetic_contexts": 16,
            "actor_hiddens": [16],
            "critic_hiddens": [16],
            "embedding_dim": 4,
            "meta_hidden": 8,
            "num_steps_sampled_before_learning_starts": 60,
            "training_intensity": 16,
            "train_batch_size_per_learner": 32,
        },
        "run": {
            "iterations": 2,
            "steps_per_iteration": 120,
            "num_env_runners": 1,
            "num_envs_per_env_runner": 1,
            "eval_every": 1,
            "checkpoint_every": 1,
            "eval_traces": [],
            "eval_families": ["ramp"],
            "eval_hours": 0.1,
        },
    }


@pytest.mark.slow
def test_tiny_training_run_then_evaluate(tmp_path: Path) -> None:
    cfg = _tiny()
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out)]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["iterations"] == 2 and summary["env_steps"] >= 240
    assert summary["best"]["iteration"] in (1, 2)
    assert len(summary["validation"]) == 2 and "probe_accuracy" in summary["validation"][0]
    for f in ["policy/policy.pt", "policy/policy.json", "checkpoints/latest", "checkpoints/iter_2", "config.yaml"]:
        assert (out / f).exists(), f
    assert list((out / "tune").rglob("events.out.tfevents.*")), "no TensorBoard event files"
    # A finished run is not overwritten; --resume with more iterations continues it.
    assert main(["train", "--config", str(path), "--out", str(out)]) == 2
    assert main(["train", "--config", str(path), "--out", str(out), "--resume", "--set", "run.iterations=3"]) == 0
    resumed = json.loads((out / "train_summary.json").read_text())
    assert resumed["iterations"] == 3
    # Resuming a run that has no iteration left to do changes nothing and still reports its steps.
    assert main(["train", "--config", str(path), "--out", str(out), "--resume", "--set", "run.iterations=3"]) == 0
    assert json.loads((out / "train_summary.json").read_text())["env_steps"] == resumed["env_steps"]
    # Reselecting with the same scoreboard repeats the validation rollouts of training exactly.
    trained = {v["iteration"]: v["score"] for v in json.loads((out / "validation.json").read_text())}
    assert main(["reselect", str(out)]) == 0
    again = json.loads((out / "train_summary.json").read_text())
    assert again["reselected"] and {v["iteration"]: v["score"] for v in again["validation"]} == pytest.approx(trained)
    assert again["best"]["score"] == pytest.approx(max(trained.values()))
    assert (out / "validation_before_reselect.json").exists()
    info = json.loads((out / "policy" / "policy.json").read_text())["info"]
    assert info["iteration"] == again["best"]["iteration"]
    # Ranking on the run's own validation gives its best policy the score it was kept by, and
    # the final policy no more than that.
    ranked = tmp_path / "rank" / "rank.json"
    kept = out / "checkpoints" / f"iter_{again['best']['iteration']}"
    names = [str(out / "policy_final"), f"ddpg:{out}", f"stable@0:{out}", f"stable@300:ddpg:{out}", str(kept)]
    assert main(["rank", str(out), *names, "--out", str(ranked)]) == 0
    rows = json.loads(ranked.read_text())["ranking"]
    assert [ranking_key(r) for r in rows] == sorted((ranking_key(r) for r in rows), reverse=True)
    assert sorted(r["policy"] for r in rows) == sorted(names)
    for r in rows:  # each workload's seeds meeting the goal, counted against that seed's frontier
        assert set(r["seeds_goal_met"]) == set(r["goal_met"]) == set(r["seeds_run"])
        assert all(0 <= n <= r["seeds_run"][t] for t, n in r["seeds_goal_met"].items())
        assert r["seed_goal_count"] == sum(r["seeds_goal_met"].values())
    best_row = next(r for r in rows if r["policy"] == f"ddpg:{out}")
    assert best_row["score"] == pytest.approx(again["best"]["score"])
    assert next(r for r in rows if r["policy"] == names[0])["score"] <= best_row["score"] + 1e-9
    # The kept checkpoint, ranked as it is (unexported), scores what its export does.
    assert next(r for r in rows if r["policy"] == str(kept))["score"] == pytest.approx(best_row["score"], abs=1e-6)
    # A validation set built from the same config stores the same baselines, so a policy ranks
    # there with the score it has on the run's own validation.
    vset = tmp_path / "vset"
    assert main(["validation-set", "--config", str(path), "--out", str(vset)]) == 0
    assert json.loads((vset / "validation_baselines.json").read_text()) == json.loads(
        (out / "validation_baselines.json").read_text()
    )
    assert main(["rank", str(vset), f"ddpg:{out}", "--out", str(tmp_path / "vrank.json")]) == 0
    vrow = json.loads((tmp_path / "vrank.json").read_text())["ranking"][0]
    assert vrow["score"] == pytest.approx(best_row["score"])
    # Ranked over two sets at once, a candidate is scored on each and judged on all their workloads;
    # two sets naming the same workload are refused before any scoring.
    vstep = tmp_path / "vstep"
    step_only = ["--set", "run.eval_families=[step]"]
    assert main(["validation-set", "--config", str(path), *step_only, "--out", str(vstep)]) == 0
    assert main(["rank", f"{out},{vstep}", f"ddpg:{out}", "--out", str(tmp_path / "both.json")]) == 0
    both = json.loads((tmp_path / "both.json").read_text())
    assert both["validation_of"] == [str(out), str(vstep)]
    (brow,) = both["ranking"]
    assert set(brow["goal_met"]) == {"ramp", "step"} and set(brow["sets"]) == {str(out), str(vstep)}
    assert brow["sets"][str(out)]["score"] == pytest.approx(best_row["score"])
    assert brow["score"] == pytest.approx((brow["risk_gap"]["ramp"] + brow["risk_gap"]["step"]) / 2)
    assert sum(brow["seeds_run"].values()) == 2
    assert main(["rank", f"{out},{vset}", f"ddpg:{out}"]) == 2
    # A window of no length holds nothing: the wrapped policy acts as the policy itself.
    unheld = next(r for r in rows if r["policy"] == names[2])
    assert unheld["score"] == pytest.approx(best_row["score"], abs=1e-6)
    assert unheld["violation_rate"] == pytest.approx(best_row["violation_rate"], abs=1e-6)
    ev = tmp_path / "ev"
    rc = main(
        [
            "evaluate",
            "--policies",
            f"ddpg:{out / 'policy'},hpa@0.6,oracle",
            "--app",
            "chain3",
            "--family",
            "step",
            "--max-hours",
            "0.1",
            "--seeds",
            "1",
            "--workers",
            "1",
            "--out",
            str(ev),
            "--quiet",
        ]
    )
    assert rc == 0
    rows = json.loads((ev / "summary.json").read_text())["results"]
    assert {r["policy"] for r in rows} == {f"ddpg:{out / 'policy'}", "hpa@0.6", "oracle"}


@pytest.mark.slow
def test_bootstrapped_training_logs_its_lifecycle(tmp_path: Path) -> None:
    """With a bootstrap section, the run moves through the lifecycle and TensorBoard gets its counters."""
    cfg = _tiny()
    cfg["run"].update({"iterations": 3, "eval_every": 0, "checkpoint_every": 1})
    cfg["bootstrap"] = {"offline_episodes": 1, "bc_loss_max": 10.0, "window": 10, "serving_episodes": 1}
    path = tmp_path / "boot.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out)]) == 0
    state = json.loads((out / "bootstrap.json").read_text())
    steps = [(t["from"], t["to"]) for t in state["transitions"]]
    assert steps[:2] == [("INITIALIZED", "OFFLINE"), ("OFFLINE", "ONLINE")]
    assert all(t["reason"] and "\n" not in t["reason"] for t in state["transitions"])
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["bootstrap"]["phase"] in ("ONLINE", "SERVING")
    assert "bootstrap/phase" in summary["final_metrics"] and "bootstrap/fallbacks" in summary["final_metrics"]
    events = b"".join(p.read_bytes() for p in (out / "tune").rglob("events.out.tfevents.*"))
    assert b"bootstrap/phase" in events and b"bootstrap/fallbacks" in events
    # Resuming keeps the lifecycle where it was (no second INITIALIZED -> OFFLINE).
    assert main(["train", "--config", str(path), "--out", str(out), "--resume", "--set", "run.iterations=4"]) == 0
    again = json.loads((out / "bootstrap.json").read_text())
    assert [(t["from"], t["to"]) for t in again["transitions"]][: len(steps)] == steps
    assert sum(t["to"] == "OFFLINE" for t in again["transitions"]) == 1
    # The hand-overs logged before the resume are kept, and new ones follow them.
    assert isinstance(state["handovers"], list)
    assert again["handovers"][: len(state["handovers"])] == state["handovers"]


def test_evaluate_rejects_a_missing_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["evaluate", "--policies", f"ddpg:{tmp_path / 'nope'}", "--family", "step", "--out", str(tmp_path / "o")])
    assert rc == 2
    assert f"{tmp_path / 'nope'}: not a policy folder" in capsys.readouterr().err


def test_reselect_needs_a_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reselect", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("config.yaml: missing (reselect needs a finished training run)") and "\n" not in err
    for name in ("config.yaml", "validation_baselines.json", "train_summary.json"):
        (tmp_path / name).write_text("{}")
    assert main(["reselect", str(tmp_path)]) == 2
    assert "validation_baselines.json: must hold a list of scoreboard rows" in capsys.readouterr().err
    (tmp_path / "validation_baselines.json").write_text("[")
    assert main(["reselect", str(tmp_path)]) == 2
    assert "validation_baselines.json: unreadable (JSONDecodeError" in capsys.readouterr().err
    (tmp_path / "validation_baselines.json").write_text("[]")
    assert main(["reselect", str(tmp_path)]) == 2
    assert "checkpoints: no iter_N checkpoints to score" in capsys.readouterr().err


def test_rank_needs_a_finished_run_and_matching_observations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rank", str(tmp_path), "ddpg:pretrained"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("config.yaml: missing (rank needs a finished training run or a validation set)")
    assert "\n" not in err
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(_tiny()))
    (tmp_path / "validation_baselines.json").write_text("[]")
    (tmp_path / "train_summary.json").write_text(json.dumps({"config": "tiny.yaml"}))
    # The shipped policy reads 16 service slots and a 32-interval window; the tiny run has 4 and 4.
    assert main(["rank", str(tmp_path), "ddpg:pretrained", "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # Ray may warn while the policy loads
    assert "rank: error: policy 'ddpg:pretrained': its observations need max_services=16" in err
    assert not (tmp_path / "r.json").exists()
    assert main(["rank", str(tmp_path), str(tmp_path / "nope")]) == 2
    assert f"{tmp_path / 'nope'}: not a policy folder" in capsys.readouterr().err
    assert main(["rank", str(tmp_path), "stable@x:ddpg:pretrained"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("policy 'stable@x:ddpg:pretrained': 'stable@x' needs a number after '@', got 'x'")
    # Several sets: each is checked before anything is scored, and named once.
    assert main(["rank", f"{tmp_path},{tmp_path / 'gone'}", "ddpg:pretrained"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        f"{tmp_path / 'gone' / 'config.yaml'}: missing (rank needs a finished training run or a validation set)"
    )
    assert main(["rank", f"{tmp_path},{tmp_path}", "ddpg:pretrained"]) == 2
    assert capsys.readouterr().err.strip().endswith(f"rank: '{tmp_path}' is named twice (RUN[,RUN...])")


def test_validation_set_writes_the_baselines_whole_or_not_at_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(_tiny()))
    out = tmp_path / "sets" / "v"
    assert main(["validation-set", "--config", str(path), "--set", "run.eval_seeds=2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "validation_baselines.json",
        "validation_baselines.meta.json",
    ]
    assert sorted(p.name for p in out.parent.iterdir()) == ["v"]  # no temporary folder left
    rows = json.loads((out / "validation_baselines.json").read_text())
    from aware_ray.training.validation import VALIDATION_BASELINES

    assert sorted({r["policy"] for r in rows}) == sorted(VALIDATION_BASELINES)
    assert len(rows) == len(VALIDATION_BASELINES) * 2 and {r["seed"] for r in rows} == {0, 1}
    assert yaml.safe_load((out / "config.yaml").read_text())["run"]["eval_seeds"] == 2
    capsys.readouterr()
    # An existing folder is never overwritten; bad input leaves nothing behind.
    assert main(["validation-set", "--config", str(path), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{out}: already exists; choose another --out")
    for bad, message in [
        (["--set", "run.eval_seedz=2"], "run.eval_seedz: unknown key"),
        (["--set", "run.eval_families=[]"], "run.eval_traces and run.eval_families are both empty"),
    ]:
        other = tmp_path / "sets" / "w"
        assert main(["validation-set", "--config", str(path), *bad, "--out", str(other)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
        assert not other.exists()


def test_a_checkpoint_outside_its_run_is_refused(tmp_path: Path) -> None:
    """A checkpoint acts in its run's env (the observation layout): without the run's config.yaml
    it is refused in one line; a folder of the right shape holding no module is refused as such."""
    from aware_ray.training.reselect import checkpoint_policy, is_checkpoint
    from envs.errors import ConfigError
    from policies.ddpg.rllib_compat import MODULE_IN_CHECKPOINT

    ckpt = tmp_path / "run" / "checkpoints" / "iter_4"
    assert not is_checkpoint(ckpt)
    (ckpt / MODULE_IN_CHECKPOINT).mkdir(parents=True)
    assert is_checkpoint(ckpt)
    with pytest.raises(ConfigError, match=r"config\.yaml: missing \(a checkpoint is scored in its run's env\)$"):
        checkpoint_policy(ckpt)
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(_tiny()))
    with pytest.raises(ConfigError, match="not a loadable RLModule checkpoint"):
        checkpoint_policy(ckpt)
