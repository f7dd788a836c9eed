"""``aware-ray bench adapt``: the pure pieces as tables, the config's errors, and the tiny protocol
end to end (real RLlib runs: pre-training with and without the meta-learner, a specialist, three
arms on two seeds, each scored at its checkpoints)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aware_ray.bench.adapt import (
    ARMS,
    bench_score,
    censored_mean,
    fraction_of,
    load_adapt_config,
    score_floor,
    speedup_verdict,
    steps_to_threshold,
    summarize_workload,
    zero_shot_verdict,
)
from envs.errors import ConfigError

TINY = "experiments/configs/adapt-tiny.yaml"


@pytest.mark.parametrize(
    ("curve", "target", "expected"),
    [
        ([(0, 0.1), (100, 0.5), (200, 0.9)], 0.45, 100),
        ([(0, 0.9), (100, 0.1)], 0.5, 0),  # already there at the start
        ([(0, 0.1), (100, 0.2)], 0.5, None),  # never within the budget
        ([(200, 0.6), (0, 0.1), (100, 0.5)], 0.5, 100),  # order of the points does not matter
        ([(0, 0.1), (100, 0.5)], 0.5, 100),  # reaching the target exactly counts
        ([(0, float("nan")), (100, 0.7)], 0.5, 100),
    ],
)
def test_steps_to_threshold(curve, target, expected):
    assert steps_to_threshold(curve, target) == expected


@pytest.mark.parametrize(
    ("score", "specialist", "floor", "expected"),
    [
        (0.45, 0.5, 0.0, 0.9),
        (-0.2, 0.5, 0.0, -0.4),
        (0.3, 0.0, 0.0, None),  # the specialist is not above the floor
        (-0.46, -0.4, -1.0, 0.9),  # from the charge's floor: (−0.46 + 1) / (−0.4 + 1)
        (0.3, 0.5, None, None),
        (float("nan"), 0.5, 0.0, None),
    ],
)
def test_fraction_of_the_specialist(score, specialist, floor, expected):
    got = fraction_of(score, specialist, floor)
    assert got == pytest.approx(expected) if expected is not None else got is None


@pytest.mark.parametrize(("specialist", "floor"), [(0.4, 0.0), (0.0, -1.0), (-0.3, -1.0), (-1.0, None), (-4.0, None)])
def test_score_floor(specialist, floor):
    assert score_floor(specialist) == floor


@pytest.mark.parametrize(
    ("risk", "v", "cap", "expected"),
    [
        (0.4, 0.01, 0.02, 0.4),
        (-0.3, 0.0, 0.02, -0.3),
        (121.3, 1.0, 0.02, -1.0),  # cheaper than the oracle by violating always: the floor
        (3.0, 0.01, 0.02, 1.0),  # no better than the oracle
        (0.5, 0.05, 0.06, 0.5),  # the cap is the safest heuristic's rate where that is above 2 %
        (0.5, 0.3, None, 0.5),  # no cap known: the risk-charged gap alone
    ],
)
def test_bench_score(risk, v, cap, expected):
    assert bench_score(risk, v, cap) == expected


def test_censored_mean():
    assert censored_mean([100, 300], 1000) == (200.0, False)
    assert censored_mean([100, None], 1000) == (550.0, True)
    assert censored_mean([], 1000) == (None, False)


@pytest.mark.parametrize(
    ("a", "a_bound", "b", "b_bound", "met", "speedup", "bound", "shortfall"),
    [
        (100, False, 2000, False, True, 20.0, "exact", None),
        (500, False, 2000, False, False, 4.0, "exact", 2.5),  # 4x: short by a factor 2.5
        (100, False, 4000, True, True, 40.0, "lower", None),  # (b) never reached: at least 40x
        (1000, False, 4000, True, None, 4.0, "lower", None),  # at least 4x: cannot tell
        (4000, True, 1000, False, False, 0.25, "upper", 40.0),
        (0, False, 1000, False, True, None, "infinite", None),  # zero-shot already there
        (0, False, 0, False, False, None, None, None),
        (4000, True, 4000, True, None, None, None, None),
    ],
)
def test_speedup_verdict(a, a_bound, b, b_bound, met, speedup, bound, shortfall):
    v = speedup_verdict(a, a_bound, b, b_bound)
    assert (v["met"], v["speedup"], v["bound"], v["shortfall"]) == (met, speedup, bound, shortfall)


def test_zero_shot_verdict():
    assert zero_shot_verdict(0.85) == {"fraction": 0.85, "met": True, "shortfall": None, "why": ""}
    assert zero_shot_verdict(0.5)["shortfall"] == 0.3
    assert zero_shot_verdict(None)["met"] is None


def _run(curve):
    return {"curve": [{"env_steps": s, "score": x} for s, x in curve], "wall_s": 1.0}


def test_summary_of_one_workload():
    adapt = {"threshold": 0.9, "finetune_steps": 300}
    specialist = _run([(0, -0.5), (100, 0.4), (200, 0.5)])  # best 0.5: the target is 0.45
    arms = {
        "meta_finetune": {0: _run([(0, 0.42), (100, 0.46)]), 1: _run([(0, 0.42), (100, 0.3), (200, 0.47)])},
        "flat_finetune": {0: _run([(0, 0.1), (100, 0.2)]), 1: _run([(0, 0.1), (300, 0.5)])},
        "scratch": {0: _run([(0, -1.0), (100, 0.0)]), 1: _run([(0, -1.0), (100, 0.1)])},
    }
    s = summarize_workload(specialist, arms, adapt)
    assert s["specialist_score"] == 0.5 and s["target_score"] == 0.45
    a, b = s["arms"]["meta_finetune"], s["arms"]["flat_finetune"]
    assert [a["per_seed"][k]["steps_to_threshold"] for k in ("0", "1")] == [100, 200]
    assert a["steps_to_threshold_mean"] == 150 and not a["mean_is_lower_bound"] and a["reached"] == "2/2"
    assert b["steps_to_threshold_mean"] == 300 and b["mean_is_lower_bound"] and b["reached"] == "1/2"
    assert s["zero_shot_score"] == 0.42
    assert s["goals"]["zero_shot_ge_80pct"] == {"fraction": 0.84, "met": True, "shortfall": None, "why": ""}
    speed = s["goals"]["meta_ge_10x_fewer_steps_than_transfer"]
    assert speed["speedup"] == 2.0 and speed["bound"] == "lower" and speed["met"] is None

    # A specialist below the tuned heuristics: fractions from -1, the target 90 % of the way there.
    low = summarize_workload(_run([(0, -0.5), (100, -0.1)]), arms, adapt)
    assert low["floor"] == -1.0 and low["target_score"] == pytest.approx(-0.19) and "not beat" in low["why"]
    assert low["arms"]["scratch"]["per_seed"]["0"]["steps_to_threshold"] == 100
    assert low["goals"]["zero_shot_ge_80pct"]["fraction"] == pytest.approx(1.42 / 0.9, abs=1e-3)

    none = summarize_workload(_run([(0, -1.0), (100, -2.0)]), arms, adapt)
    assert none["target_score"] is None and none["floor"] is None and "no better than the floor" in none["why"]
    assert none["goals"]["zero_shot_ge_80pct"]["met"] is None
    assert "meta_ge_10x_fewer_steps_than_transfer" not in none["goals"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["adapt.workloads=[family:diurnal]"], r"adapt.workloads: family:diurnal is a training workload"),
        (["adapt.workloads=[spikes]"], r"adapt.workloads: 'spikes' is not a 'trace:...' or 'family:...' spec"),
        (["adapt.workloads=[family:nope]"], r"adapt.workloads: .*nope"),
        (["adapt.threshold=1.5"], r"adapt.threshold: must be in \(0, 1\], got 1.5"),
        (["adapt.seeds=[0, 0]"], r"adapt.seeds: repeated seed"),
        (["adapt.finetune_steps=0"], r"adapt.finetune_steps: must be >= 1, got 0"),
        (["adapt.finetune_step=10"], r"unknown key 'adapt.finetune_step'"),
        (["adapt.eval_hours=true"], r"adapt.eval_hours: expected int or float, got True"),
        (["adapt.pretrained_meta=/nonexistent"], r"adapt.pretrained_meta: /nonexistent: not found"),
        (["adapt.shipped=experiments"], r"adapt.shipped: experiments: not a policy folder"),
        (
            ["env.history_window=0", "env.context_span=0", "ddpg.workload_loss_weight=0", "ddpg.synthetic_contexts=0"],
            r"env.history_window: the meta policy needs a meta-learner",
        ),
        (["ddpg.tau=2"], r"ddpg.tau: must be in \(0, 1\], got 2"),
        (["adapt.finetune_set=[sigma]"], r"adapt.finetune_set: must be a list of 'key=value' overrides"),
        (["adapt.finetune_set=[ddpg.actor_lr=-1]"], r"ddpg.actor_lr"),
    ],
)
def test_config_errors_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_adapt_config(TINY, overrides)


def test_finetune_set_applies_to_the_fine_tuned_arms_only():
    """A fine-tuning recipe reaches the arms that start from pre-trained weights, after target_set,
    and never the specialist or the run from random weights."""
    from aware_ray.bench.adapt import arm_config, target_config

    cfg, adapt = load_adapt_config(
        TINY,
        [
            "adapt.target_set=[ddpg.actor_lr=0.002]",
            "adapt.finetune_set=[ddpg.actor_lr=0.0001, ddpg.num_steps_sampled_before_actor_learns=64]",
        ],
    )
    w = adapt["workloads"][0]
    for flat in (False, True):
        tuned = target_config(cfg, adapt, w, 0, flat, finetune=True).ddpg
        assert tuned["actor_lr"] == 0.0001 and tuned["num_steps_sampled_before_actor_learns"] == 64
        fresh = target_config(cfg, adapt, w, 0, flat).ddpg
        assert fresh["actor_lr"] == 0.002 and "num_steps_sampled_before_actor_learns" not in fresh
    # The arms the bench runs: (a) and (b) fine-tune, (b) without the meta-learner, (c) as from scratch.
    arms = {arm: arm_config(cfg, adapt, w, 0, arm) for arm in ARMS}
    assert [arms[a].ddpg["actor_lr"] for a in ARMS] == [0.0001, 0.0001, 0.002]
    assert [arms[a].env.history_window > 0 for a in ARMS] == [True, False, True]


def test_config_needs_its_section(tmp_path: Path):
    (tmp_path / "c.yaml").write_text("env: {app: chain3}\n")
    with pytest.raises(ConfigError, match="needs an 'adapt' section"):
        load_adapt_config(str(tmp_path / "c.yaml"), [])


def test_tiny_protocol_end_to_end(tmp_path: Path):
    """The CLI, as a user runs it: one JSON line whose figures agree with its own curves."""
    out = tmp_path / "adapt"
    proc = subprocess.run(
        [sys.executable, "-m", "aware_ray.cli", "bench", "adapt", "--config", TINY, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["bench"] == "adapt" and result["seeds"] == [0, 1]
    assert set(result["goals"]) == {"zero_shot_ge_80pct", "meta_ge_10x_fewer_steps_than_transfer"}
    assert set(result["pretrained"]["trained_here"]) == {"meta", "flat"}
    saved = json.loads((out / "adapt_bench.json").read_text())
    assert (out / "adapt_bench.md").read_text().startswith("# bench adapt")
    assert (out / "pretrain_meta" / "policy" / "policy.pt").exists()
    budget = result["budgets"]["finetune_steps"]
    w = result["workloads"]["family:spikes"]
    runs = saved["runs"]["arms"]["family:spikes"]
    spec_curve = saved["runs"]["specialist"]["family:spikes"]["curve"]
    assert w["specialist_score"] == pytest.approx(max(p["score"] for p in spec_curve), abs=1e-3)
    assert set(w["arms"]) == set(ARMS)
    for arm, summary in w["arms"].items():
        assert set(summary["per_seed"]) == {"0", "1"}
        for seed, s in summary["per_seed"].items():
            curve = runs[arm][seed]["curve"]
            checkpoints = [p["env_steps"] for p in curve]
            assert s["checkpoints"] == checkpoints and checkpoints[0] == 0 and checkpoints[-1] >= budget
            assert checkpoints == sorted(checkpoints)
            if w["target_score"] is None:
                assert s["steps_to_threshold"] is None
                continue
            # Steps to the threshold: the first checkpoint at or above it, or null when none is.
            above = [p["env_steps"] for p in curve if p["score"] >= w["target_score"]]
            assert s["steps_to_threshold"] == (above[0] if above else None)
    if w["target_score"] is not None:
        zero = w["arms"]["meta_finetune"]["per_seed"]["0"]["start_fraction"]
        assert w["goals"]["zero_shot_ge_80pct"]["fraction"] == pytest.approx(zero, abs=1e-3)
        # Evaluation is deterministic: the meta policy's step-0 score is the same on every seed.
        starts = {runs["meta_finetune"][s]["curve"][0]["score"] for s in ("0", "1")}
        assert len(starts) == 1


def test_the_real_protocol_is_the_shipped_recipe():
    """adapt.yaml pre-trains as default.yaml (the shipped policy's recipe) does, and it loads whole."""
    import yaml

    real = yaml.safe_load(Path("experiments/configs/adapt.yaml").read_text())
    default = yaml.safe_load(Path("experiments/configs/default.yaml").read_text())
    assert {k: real[k] for k in ("env", "ddpg", "run")} == default
    cfg, adapt = load_adapt_config("experiments/configs/adapt.yaml", [])
    assert adapt["pretrain_steps"] == cfg.run.iterations * cfg.run.steps_per_iteration
    assert not set(adapt["workloads"]) & {f"trace:{t}" for t in cfg.run.eval_traces}
