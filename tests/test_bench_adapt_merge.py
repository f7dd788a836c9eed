"""``aware-ray bench adapt --merge``: parts of one protocol (split by seed or by workload) join into the
result a single run would have given; parts of different protocols are refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aware_ray.bench.adapt import overall, summarize_workload
from aware_ray.bench.adapt_merge import merge_adapt
from envs.errors import ConfigError

BUDGETS = {"pretrain_steps": 32000, "specialist_steps": 8000, "finetune_steps": 300, "eval_every_steps": 100}
W1, W2 = "trace:a.csv", "family:spikes"
SPEC = {W1: [(0, -1.0), (100, 0.5)], W2: [(0, -0.6), (100, -0.2)]}
ARM_CURVES = {
    "meta_finetune": {0: [(0, 0.42), (100, 0.46)], 1: [(0, 0.42), (100, 0.3), (200, 0.47)], 2: [(0, 0.42), (100, 0.1)]},
    "flat_finetune": {0: [(0, 0.1), (100, 0.2)], 1: [(0, 0.1), (300, 0.5)], 2: [(0, 0.1), (200, 0.46)]},
    "scratch": {0: [(0, -1.0), (100, 0.0)], 1: [(0, -1.0), (100, 0.1)], 2: [(0, -1.0), (300, 0.45)]},
}


def _run(curve: list[tuple[float, float]]) -> dict[str, Any]:
    return {"curve": [{"env_steps": s, "score": v} for s, v in curve], "wall_s": 1.0}


def _part(folder: Path, workloads: list[str], seeds: list[int], **changes: Any) -> str:
    """A finished bench adapt output folder for ``workloads`` x ``seeds``."""
    spec = changes.pop("spec", SPEC)
    part = {
        "bench": "adapt",
        "config": "experiments/configs/adapt.yaml",
        "overrides": [f"adapt.seeds={seeds}", "adapt.finetune_steps=300", *changes.pop("overrides", [])],
        "app": "social-network",
        "threshold": 0.9,
        "eval_seeds": 2,
        "eval_hours": 2.0,
        "budgets": changes.pop("budgets", BUDGETS),
        "pretrained": {"meta": "m/checkpoint", "flat": "f/checkpoint", "trained_here": {}},
        "shipped_zero_shot": {w: {"policy": "policies/pretrained", "score": 0.3} for w in workloads},
        "wall_s": 10.0,
        "runs": {
            "pretrain": {},
            "specialist": {w: _run(spec[w]) for w in workloads},
            "arms": {w: {a: {str(s): _run(c[s]) for s in seeds} for a, c in ARM_CURVES.items()} for w in workloads},
            "baseline_s": {w: 1.0 for w in workloads},
        },
    }
    part.update(changes)
    folder.mkdir(parents=True)
    (folder / "adapt_bench.json").write_text(json.dumps(part))
    return str(folder)


def _whole(workloads: list[str], seeds: list[int]) -> dict[str, dict[str, Any]]:
    """What one run over all workloads and seeds summarises to."""
    adapt = {"threshold": 0.9, "finetune_steps": 300}
    return {
        w: summarize_workload(_run(SPEC[w]), {a: {s: _run(c[s]) for s in seeds} for a, c in ARM_CURVES.items()}, adapt)
        for w in workloads
    }


def test_parts_split_by_seed_give_the_single_run_result(tmp_path: Path):
    a = _part(tmp_path / "a", [W1, W2], [0, 1])
    b = _part(tmp_path / "b", [W1, W2], [2], overrides=["adapt.pretrained_flat=f/checkpoint"])
    result = merge_adapt([a, b], str(tmp_path / "out"))
    whole = _whole([W1, W2], [0, 1, 2])
    assert result["workloads"] == whole and result["goals"] == overall(whole)
    assert result["seeds"] == [0, 1, 2] and result["merged_from"] == [a, b] and result["wall_s"] == 20.0
    saved = json.loads((tmp_path / "out" / "adapt_bench.json").read_text())
    assert set(saved["runs"]["arms"][W1]["scratch"]) == {"0", "1", "2"}
    assert (tmp_path / "out" / "adapt_bench.md").read_text().startswith("# bench adapt")
    # The shipped policy's fraction is taken against the merged specialist: (0.3 - 0) / (0.5 - 0).
    assert result["shipped_zero_shot"][W1]["fraction"] == 0.6


def test_parts_split_by_workload(tmp_path: Path):
    a = _part(tmp_path / "a", [W1], [0, 1])
    b = _part(tmp_path / "b", [W2], [0, 1])
    result = merge_adapt([a, b], str(tmp_path / "out"))
    assert result["workloads"] == _whole([W1, W2], [0, 1])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"budgets": {**BUDGETS, "finetune_steps": 400}}, r"not the same protocol: budgets"),
        ({"overrides": ["ddpg.actor_lr=0.001"]}, r"not the same protocol: overrides"),
        ({"threshold": 0.8}, r"not the same protocol: threshold"),
        ({"pretrained": {"meta": "other/checkpoint", "flat": "f/checkpoint"}}, r"not the same protocol: pretrained"),
        ({"spec": {**SPEC, W1: [(0, -1.0), (100, 0.4)]}}, r"the specialist of trace:a.csv differs"),
    ],
)
def test_parts_of_different_protocols_are_refused(tmp_path: Path, change: dict[str, Any], message: str):
    a = _part(tmp_path / "a", [W1], [0, 1])
    b = _part(tmp_path / "b", [W1], [2], **change)
    with pytest.raises(ConfigError, match=message):
        merge_adapt([a, b], str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_bad_parts(tmp_path: Path):
    a = _part(tmp_path / "a", [W1], [0, 1])
    twice = _part(tmp_path / "b", [W1], [1])
    with pytest.raises(ConfigError, match=r"trace:a.csv meta_finetune seed 1 is in an earlier part too"):
        merge_adapt([a, twice], str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="at least two"):
        merge_adapt([a], str(tmp_path / "out"))
    with pytest.raises(ConfigError, match=r"no adapt_bench\.json"):
        merge_adapt([a, str(tmp_path / "nothing")], str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="is one of the parts"):
        merge_adapt([a, twice], a)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "adapt_bench.json").write_text('{"bench": "learner"}')
    with pytest.raises(ConfigError, match="not a bench adapt result"):
        merge_adapt([a, str(tmp_path / "c")], str(tmp_path / "out"))
    (tmp_path / "c" / "adapt_bench.json").write_text('{"bench": "adapt", "runs": {"specialist": {}}}')
    with pytest.raises(ConfigError, match="not a bench adapt result"):
        merge_adapt([a, str(tmp_path / "c")], str(tmp_path / "out"))
    (tmp_path / "c" / "adapt_bench.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not readable JSON"):
        merge_adapt([a, str(tmp_path / "c")], str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_cli_merge_error_is_one_line(tmp_path: Path):
    a = _part(tmp_path / "a", [W1], [0, 1])
    proc = subprocess.run(
        [sys.executable, "-m", "aware_ray.cli", "bench", "adapt", "--merge", f"{a},{tmp_path / 'x'}", "--out", "o"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and "no adapt_bench.json" in proc.stderr
