"""The model card is written from a run's summary and the quality benchmark, and counts the goal as the bench does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aware_ray.evaluation.scoreboard import goal_met
from aware_ray.release.model_card import refresh_card, write_card


def _row(gap: float | None, red: float | None) -> dict:
    return {"gap_closed": gap, "violation_reduction": red, "slo_violation_rate": 0.01, "cpu_core_hours": 10.0}


def test_goal_counts_either_criterion() -> None:
    assert goal_met(_row(0.5, None)) and goal_met(_row(-1.0, 0.5))
    assert not goal_met(_row(0.49, 0.49)) and not goal_met(_row(None, None))


def _run(tmp_path: Path) -> tuple[Path, dict, dict]:
    """A finished training run folder, its summary and a quality benchmark of its policy."""
    run = tmp_path / "run"
    (run / "policy").mkdir(parents=True)
    for f in ("policy.pt", "policy.json"):
        (run / "policy" / f).write_text("x")
    cfg = {
        "env": {
            "app": "social-network",
            "workloads": ["family:ramp", "trace:a.csv"],
            "history_window": 32,
            "context_span": 128,
            "level_prob": 0.25,
            "level_min": 0.02,
            "idle_prob": 0.15,
            "jitter_prob": 0.25,
            "reward": {"violation": 4.0},
            "rules": "lean@0.1:stable@120",
        },
        "ddpg": {"workload_loss_weight": 0.5},
    }
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    summary = {
        "config": "experiments/configs/default.yaml",
        "iterations": 24,
        "env_steps": 49152,
        "wall_s": 3000.0,
        "best": {"iteration": 12, "score": 0.6},
        "validation": [{"iteration": 12, "violation_rate": 0.02, "probe_accuracy": 0.85}],
        "reselected": True,
    }
    (run / "train_summary.json").write_text(json.dumps(summary))
    quality = {
        "seeds": 3,
        "max_hours": 4.0,
        "probe_accuracy_held_out": 0.83,
        "probe_accuracy_raw_window": 0.5,
        "results": {"social-network": {"a": _row(0.7, None), "b": _row(0.1, 0.2)}, "chain3": {"a": _row(None, 0.6)}},
    }
    return run, summary, quality


def test_card_from_a_run(tmp_path: Path) -> None:
    run, summary, quality = _run(tmp_path)
    card = " ".join(write_card(run, quality, tmp_path / "out").read_text().split())
    assert "a summary of the load over the last 128" in card
    assert "trained to tell the training workloads apart" in card
    assert "25 % of training episodes scaled down" in card
    assert "15 % of training episodes have stretches of no load" in card
    assert "25 % of training episodes have interval-to-interval noise (log-normal, spread drawn in [0, 1.0])" in card
    assert "Reward weights changed from the defaults (`envs/reward.py`): violation 4.0." in card
    assert "Trained under the controller rules `lean@0.1:stable@120` (`envs/rules.py`)" in card
    assert "met on 1 of 2 on social-network, 1 of 1 on chain3" in card
    assert "Selected: iteration 12 by validation gap closed (0.60)" in card  # validated before the risk charge
    assert "on the six synthetic families: 0.83 on episodes of the trained length" in card
    assert "fitted on two seeds per family and scored on a third" in card  # no folds given
    quality["probe_accuracy_folds"] = [0.74, 0.91, 0.84]
    card = " ".join(write_card(run, quality, tmp_path / "out2").read_text().split())
    assert "fitted on 2 seeds per family and scored on the remaining one, each of the 3 in turn; folds" in card
    assert "folds from 0.74 to 0.91" in card
    assert "peaked at iteration 12 of 24" in card
    assert "Selection redone after training by `aware-ray reselect`" in card
    summary["validation"][0]["risk_gap"] = {"a": 0.6}
    (run / "train_summary.json").write_text(json.dumps(summary))
    assert "Benchmarked as" not in card  # a bare policy
    quality["policy"] = "lean@0.1:ddpg:runs/x/policy"
    card = " ".join(write_card(run, quality, tmp_path / "out3", "Chosen with the table in view.").read_text().split())
    assert "by validation score (gap closed, charged for risk past the HPA frontier) (0.60)" in card
    assert "Benchmarked as `lean@0.1:ddpg:pretrained` (the policy behind those rules)." in card
    assert "neither in training nor in selection. Chosen with the table in view." in card
    assert (tmp_path / "out" / "policy.pt").exists() and (tmp_path / "out" / "train_config.yaml").exists()
    assert "goal met on seeds" not in card  # benchmarks before the per-seed count
    quality["results"]["social-network"]["a"]["seeds_goal_met"] = 2
    card = (write_card(run, quality, tmp_path / "out4").read_text()).splitlines()
    assert any(line.endswith("| fewer violations than frontier at same cost | goal met on seeds |") for line in card)
    assert any(line.startswith("| social-network | a |") and line.endswith("| 2 of 3 |") for line in card)
    assert any(line.startswith("| chain3 | a |") and line.endswith("| ? of 3 |") for line in card)
    assert "memory GiB-h" not in " ".join(card)  # benchmarks before memory was reported
    quality["results"]["social-network"]["a"].update(mem_gib_hours=123.44, oracle_mem_gib_hours=11.81)
    card = (write_card(run, quality, tmp_path / "out5").read_text()).splitlines()
    assert any(line.endswith("| goal met on seeds | memory GiB-h (oracle) |") for line in card)
    assert any(
        line.startswith("| social-network | a |") and line.endswith("| 2 of 3 | 123.4 (11.8) |") for line in card
    )
    assert any(line.startswith("| chain3 | a |") and line.endswith("| ? of 3 | – (–) |") for line in card)


def test_refresh_rewrites_only_the_scoreboard_and_goal(tmp_path: Path) -> None:
    run, _, quality = _run(tmp_path)
    card_dir = tmp_path / "card"
    before = write_card(run, quality, card_dir).read_text().splitlines()
    again = json.loads(json.dumps(quality))
    again["policy"] = "lean@0.6:ddpg:pretrained"
    again["results"]["social-network"]["b"] = _row(0.8, None)
    refresh_card(card_dir, again, "after the rule changed.")
    after = (card_dir / "MODEL_CARD.md").read_text().splitlines()
    training = before[: before.index("## Held-out scoreboard (`aware-ray bench ddpg-quality`)")]
    assert after[: len(training)] == training  # what training wrote stays
    text = " ".join(after)
    assert (
        "Benchmarked as `lean@0.6:ddpg:pretrained`" in text and "| social-network | b | 1.00 % | 10.00 | 0.80 |" in text
    )
    assert "met on 2 of 2 on social-network, 1 of 1 on chain3" in text
    assert "- Re-benchmarked: after the rule changed." in text
    assert after[-3:] == before[-3:]  # the bullets after the goal stay
    assert json.loads((card_dir / "quality.json").read_text()) == again
    refresh_card(card_dir, again, "once more.")
    text = (card_dir / "MODEL_CARD.md").read_text()
    assert text.count("Re-benchmarked") == 1 and "once more." in text
    refresh_card(card_dir, again)  # no new note: the last one stays
    assert (card_dir / "MODEL_CARD.md").read_text() == text
    assert sorted(p.name for p in card_dir.iterdir()) == [
        "MODEL_CARD.md",
        "policy.json",
        "policy.pt",
        "quality.json",
        "train_config.yaml",
    ]


def test_refresh_refuses_a_file_that_is_not_a_card(tmp_path: Path) -> None:
    run, _, quality = _run(tmp_path)
    card_dir = tmp_path / "card"
    write_card(run, quality, card_dir)
    (card_dir / "MODEL_CARD.md").write_text("# notes\n")
    with pytest.raises(ValueError, match=r"MODEL_CARD.md: not a model card written by write_card"):
        refresh_card(card_dir, quality)
    assert (card_dir / "MODEL_CARD.md").read_text() == "# notes\n"
    assert not (card_dir / "quality.json").exists()
