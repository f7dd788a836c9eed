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


SECTIONS = ["What it is", "Training", "Held-out scoreboard (`aware-ray bench ddpg-quality`)", "Limits"]


def _sections(text: str) -> dict[str, str]:
    """The card's ``## `` sections by heading, each body on one line (wrapping removed)."""
    out: dict[str, str] = {}
    for block in text.split("\n## ")[1:]:
        heading, _, body = block.partition("\n")
        out[heading] = " ".join(body.split())
    return out


def _table(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """The scoreboard's rows by (app, workload): column heading -> cell."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [dict(zip(head, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[1:]]
    return {(r["app"], r["workload"]): r for r in rows}


def _goal_counts(quality: dict) -> str:
    return ", ".join(
        f"{sum(goal_met(r) for r in rows.values())} of {len(rows)} on {app}" for app, rows in quality["results"].items()
    )


def _check_scoreboard(text: str, quality: dict) -> None:
    """Every benchmarked row is in the table with its figures, and the goal count is the bench's."""
    table = _table(text)
    assert set(table) == {(app, w) for app, rows in quality["results"].items() for w in rows}
    for app, rows in quality["results"].items():
        for workload, r in rows.items():
            cells = table[(app, workload)]
            if "memory_price" in quality:  # scored in money: violations beside their cap, money beside the oracle's
                assert cells["violations (cap)"].startswith(f"{100 * r['slo_violation_rate']:.2f} % (")
                assert cells["money (oracle)"].startswith(f"{r['money']:.2f} (")
            else:
                assert cells["violations"] == f"{100 * r['slo_violation_rate']:.2f} %"
            assert cells["CPU core-h"] == f"{r['cpu_core_hours']:.2f}"
            assert cells["gap closed"] == ("–" if r["gap_closed"] is None else f"{r['gap_closed']:.2f}")
    assert f"is met on {_goal_counts(quality)} " in _sections(text)["Limits"]


def test_card_from_a_run(tmp_path: Path) -> None:
    run, summary, quality = _run(tmp_path)
    text = write_card(run, quality, tmp_path / "out").read_text()
    card = _sections(text)
    assert list(card) == SECTIONS
    assert "last 32 intervals" in card["What it is"] and "last 128" in card["What it is"]
    training = card["Training"]
    for fact in ("`family:ramp`", "`trace:a.csv`", "25 %", "0.02", "15 %", "violation 4.0", "`lean@0.1:stable@120`"):
        assert fact in training, fact
    assert "Iterations: 24; env steps: 49,152; wall time 50.0 min" in training
    assert "iteration 12" in training and "(0.60)" in training and "2.00 %" in training
    assert "`aware-ray reselect`" in training and "charged for risk" not in training  # validated before the charge
    _check_scoreboard(text, quality)
    assert _goal_counts(quality) == "1 of 2 on social-network, 1 of 1 on chain3"
    probe = card["Held-out scoreboard (`aware-ray bench ddpg-quality`)"]
    assert "0.83" in probe and "0.50" in probe and "0.17" in probe
    assert "peaked at iteration 12 of 24" in card["Limits"]
    assert (tmp_path / "out" / "policy.pt").read_text() == "x"
    assert yaml.safe_load((tmp_path / "out" / "train_config.yaml").read_text())["env"]["history_window"] == 32
    assert "Benchmarked as" not in text  # a bare policy

    # Later benchmarks add figures; each lands in the card.
    quality["probe_accuracy_folds"] = [0.74, 0.91, 0.84]
    summary["validation"][0]["risk_gap"] = {"a": 0.6}
    (run / "train_summary.json").write_text(json.dumps(summary))
    quality["policy"] = "lean@0.1:ddpg:runs/x/policy"
    quality["results"]["social-network"]["a"].update(seeds_goal_met=2, mem_gib_hours=123.44, oracle_mem_gib_hours=11.81)
    text = write_card(run, quality, tmp_path / "out2", "Chosen with the table in view.").read_text()
    card = _sections(text)
    assert list(card) == SECTIONS
    scoreboard = card["Held-out scoreboard (`aware-ray bench ddpg-quality`)"]
    assert "0.74 to 0.91" in scoreboard and "3 in turn" in scoreboard
    assert "`lean@0.1:ddpg:pretrained`" in scoreboard  # the benchmarked deployment, named as shipped
    assert "Deployed as `lean@0.1:ddpg:pretrained`" in card["What it is"]
    assert "Chosen with the table in view." in card["Limits"]
    assert "charged for risk" in card["Training"]
    _check_scoreboard(text, quality)
    table = _table(text)
    assert table[("social-network", "a")]["goal met on seeds"] == "2 of 3"
    assert table[("chain3", "a")]["goal met on seeds"] == "? of 3"
    assert table[("social-network", "a")]["memory GiB-h (oracle)"] == "123.4 (11.8)"
    assert table[("chain3", "a")]["memory GiB-h (oracle)"] == "– (–)"


def test_the_shipped_card_states_its_benchmark() -> None:
    """policies/pretrained/MODEL_CARD.md carries the figures of the quality.json beside it."""
    from policies.registry import PRETRAINED_DIR

    text = (PRETRAINED_DIR / "MODEL_CARD.md").read_text()
    quality = json.loads((PRETRAINED_DIR / "quality.json").read_text())
    assert list(_sections(text)) == SECTIONS
    _check_scoreboard(text, quality)
    table = _table(text)
    for app, rows in quality["results"].items():
        for workload, r in rows.items():
            assert table[(app, workload)]["goal met on seeds"] == f"{r['seeds_goal_met']} of {quality['seeds']}"
    train_config = yaml.safe_load((PRETRAINED_DIR / "train_config.yaml").read_text())
    policy = json.loads((PRETRAINED_DIR / "policy.json").read_text())
    for key in ("history_window", "context_span", "max_services"):
        assert policy["env"][key] == train_config["env"][key], key


def test_card_names_the_held_out_load_selection_saw(tmp_path: Path) -> None:
    """The Limits bullet counts only selection workloads that are held-out load: held-out traces (and
    their variants) and held-out families drawn at the held-out table's seeds."""
    run, _, quality = _run(tmp_path)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cases = [
        (["nasa_http_1995-08_1min.csv+counts@8", "trace:nasa_http_1995-07_1min.csv"], ["ramp", "bursty"], 0, 2),
        (["nasa_http_1995-08_1min.csv"], ["ramp", "bursty"], 100, 1),
        ([], ["ramp", "step+jitter"], 0, 0),
    ]
    for i, (traces, families, start, held) in enumerate(cases):
        cfg["run"] = {"eval_traces": traces, "eval_families": families, "eval_seed_start": start, "eval_seeds": 3}
        (run / "config.yaml").write_text(yaml.safe_dump(cfg))
        limits = _sections(write_card(run, quality, tmp_path / f"out{i}").read_text())["Limits"]
        if held:
            assert f"Model selection used {held} of the held-out workloads" in limits, limits
        else:
            assert "Model selection used none of the held-out workloads: training's validation scored ramp, " in limits
        assert "3 seed(s)" in limits
    # the benchmark travels with the card
    assert json.loads((tmp_path / "out0" / "quality.json").read_text()) == quality


def test_card_of_a_run_validated_in_money_is_not_relabelled(tmp_path: Path) -> None:
    """A run whose validation already scored money at real time says so, and a refresh in money does not
    label its selection figures as CPU-only ones."""
    run, summary, quality = _run(tmp_path)
    summary["validation"][0].update(risk_gap={"a": 0.6}, money=20.0, time_compression=1.0)
    (run / "train_summary.json").write_text(json.dumps(summary))
    card_dir = tmp_path / "card"
    write_card(run, quality, card_dir)
    money = dict(quality, memory_price=1 / 9)
    for rows in money["results"].values():
        for r in rows.values():
            r.update(money=12.0, oracle_money=8.0, mem_gib_hours=18.0)
    refresh_card(card_dir, money, "in money.")
    training = _sections((card_dir / "MODEL_CARD.md").read_text())["Training"]
    assert "gap closed in money, charged for risk past the heuristic frontier, traces at time compression 1" in training
    assert "CPU core-hours" not in training
    # Written in money from the start: the lower-bound bullet speaks of heuristic points and money too.
    limits = _sections(write_card(run, money, tmp_path / "money").read_text())["Limits"]
    assert "safer than every heuristic point" in limits and "HPA target" not in limits
    assert "Deployed as" not in (tmp_path / "money" / "MODEL_CARD.md").read_text()  # a bare policy


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
        refresh_card(card_dir, dict(quality, policy="lean@0.6:ddpg:pretrained"))
    assert (card_dir / "MODEL_CARD.md").read_text() == "# notes\n"
    assert json.loads((card_dir / "quality.json").read_text()) == quality  # write_card's, untouched


def _money_row(gap: float | None, v: float, mem_ratio: float) -> dict:
    return {
        "gap_closed": gap,
        "violation_reduction": None,
        "slo_violation_rate": v,
        "violation_cap": 0.02,
        "money": 12.5,
        "cpu_core_hours": 10.0,
        "mem_gib_hours": 22.5,
        "oracle_money": 5.0,
        "memory_reference_gib_hours": 20.0,
        "memory_ratio": mem_ratio,
        "gap_closed_hpa": 0.9,
        "goal_met": gap is not None and gap >= 0.5 and v <= 0.02,
        "memory_met": mem_ratio <= 1.5,
        "seeds_goal_met": 2,
    }


def test_refresh_in_money_labels_the_cpu_figures_and_counts_memory(tmp_path: Path) -> None:
    """A card written from a CPU-only benchmark (4x, the HPA alone) refreshed from one in money: the
    table shows money, memory against the in-place VPA and the gap against the HPA alone; the
    goal counts memory; the training section's selection figures are labelled with their compression."""
    run, _, quality = _run(tmp_path)
    card_dir = tmp_path / "card"
    write_card(run, quality, card_dir)
    assert "traces at 4× time compression" in (card_dir / "MODEL_CARD.md").read_text()
    money = {
        "policy": "lean@0.1:ddpg:pretrained",
        "seeds": 3,
        "max_hours": 4.0,
        "time_compression": 1.0,
        "memory_price": 1 / 9,
        "results": {
            "social-network": {"a": _money_row(0.7, 0.01, 1.1), "b": _money_row(0.7, 0.01, 2.0)},
            "chain3": {"a": _money_row(0.3, 0.01, 1.0)},
        },
    }
    refresh_card(card_dir, money, "in money at real time.")
    text = (card_dir / "MODEL_CARD.md").read_text()
    assert (
        "| social-network | a | 1.00 % (2.0 %) | 12.50 (5.00) | 10.00 | 22.5 (20.0) | 0.70 | 0.90 | – | 2 of 3 |"
        in text
    )
    assert "time compression 1 (1: real time)" in text and "memory GiB-hours × 1/9" in text
    assert "met on 1 of 2 on social-network, 0 of 1 on chain3" in text  # b fails memory, chain3 the gap
    selected = next(line for line in text.splitlines() if line.startswith("- Selected: iteration"))
    assert selected.endswith("(validated in CPU core-hours against the HPA frontier, traces at 4× time compression)")
    assert "safer than every heuristic point" in text
    refresh_card(card_dir, money)
    assert (card_dir / "MODEL_CARD.md").read_text() == text  # labels are not added twice
