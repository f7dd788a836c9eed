"""``aware-ray tune``: sweep files are checked whole before any work, and a sweep runs, ranks
its trials by validation score, logs every trial for TensorBoard and resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aware_ray.training.config import build_train_config
from aware_ray.training.dashboard import LAYOUT_FILE_SUFFIX
from aware_ray.training.sweep import Sweep, results_table, with_values
from envs.errors import ConfigError

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"


def _sweep_file(tmp_path: Path, **doc) -> Path:
    body = {"base": str(CONFIGS / "tiny.yaml"), "space": {"ddpg.tau": {"choice": [0.005, 0.01]}}, **doc}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_shipped_sweeps_are_valid() -> None:
    full = Sweep(CONFIGS / "sweep.yaml")
    assert full.base.run.eval_every == 4 and full.grace_period == 4
    assert {"ddpg.actor_lr", "ddpg.tau", "env.history_window", "ddpg.twin_q", "env.rules"} <= set(full.space)
    assert Sweep(CONFIGS / "sweep-tiny.yaml").base.run.iterations == 2
    short = Sweep(CONFIGS / "sweep-short.yaml")
    assert short.base.run.iterations == 8 and short.grace_period == short.base.run.eval_every == 2


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"space": {"ddpg.tau": {"normal": [0, 1]}}}, "space.ddpg.tau: expected one of"),
        ({"space": {"ddpg.tau": {"uniform": [0.1]}}}, "space.ddpg.tau.uniform: expected [low, high]"),
        ({"space": {"ddpg.actor_lr": {"loguniform": [0.0, 1.0]}}}, "space.ddpg.actor_lr.loguniform: need 0 < low"),
        ({"space": {"ddpg.tua": {"choice": [0.1]}}}, "ddpg.tua"),
        ({"space": {"env.history_window": {"choice": [16, -1]}}}, "history_window"),
        ({"space": {"run.eval_seeds": {"choice": [1, 2]}}}, "may not vary what the validation baselines face"),
        ({"space": {"tau": {"choice": [1]}}}, "space.tau: the key must start with"),
        ({"space": {}}, "space: expected a mapping"),
        ({"num_samples": 0}, "num_samples must be an integer >= 1"),
        ({"scheduler": {"grace": 1}}, "scheduler: expected"),
        ({"samples": 3}, "unknown key 'samples'"),
        ({"base": "missing.yaml"}, "base: missing.yaml not found"),
    ],
)
def test_a_bad_sweep_is_one_line_naming_the_key(tmp_path: Path, doc: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        Sweep(_sweep_file(tmp_path, **doc))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_sweep_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_bytes(b"\xff\xfe\x00base")
    with pytest.raises(ConfigError, match="not a valid YAML sweep file"):
        Sweep(path)
    with pytest.raises(ConfigError, match="sweep file not found"):
        Sweep(tmp_path)


def test_trial_values_land_on_the_config_keys() -> None:
    raw = {"env": {"app": "chain3"}, "ddpg": {"exploration": {"sigma": 0.3}}}
    out = with_values(raw, {"ddpg.exploration.sigma": 0.1, "env.reward.violation": 3.0, "ddpg.tau": 0.01})
    assert out["ddpg"]["exploration"] == {"sigma": 0.1} and out["ddpg"]["tau"] == 0.01
    assert out["env"]["reward"] == {"violation": 3.0}
    assert raw["ddpg"]["exploration"]["sigma"] == 0.3  # a copy


@pytest.mark.slow
def test_a_sweep_runs_ranks_logs_and_resumes(tmp_path: Path) -> None:
    from aware_ray.training.sweep import sweep

    spec = Sweep(CONFIGS / "sweep-tiny.yaml", ["run.iterations=1"])
    spec.num_samples = 2
    out = tmp_path / "sweep"
    rows = sweep(spec, out)
    assert len(rows) == 2
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    for r in rows:
        trial = out / "trials" / r["trial"]
        assert (trial / "policy" / "policy.pt").exists() and (trial / "checkpoints" / "latest").is_dir()
        assert set(r["values"]) == set(spec.space)
        assert json.loads((trial / "values.json").read_text()) == r["values"]
    # TensorBoard sees every trial, and the dashboard's layout sits above them.
    logged = {p.parent for p in (out / "tune").rglob("events.out.tfevents.*")}
    assert len(logged - {out / "tune"}) == 2
    assert list((out / "tune").glob(f"*{LAYOUT_FILE_SUFFIX}"))
    best = yaml.safe_load((out / "best_config.yaml").read_text())
    cfg = build_train_config(best, "best_config.yaml", [])
    assert cfg.ddpg["tau"] == rows[0]["values"]["ddpg.tau"]
    assert "| trial |" in (out / "results.md").read_text()
    # Resuming a finished sweep runs nothing again and gives the same table.
    with pytest.raises(ConfigError, match="a sweep is already there"):
        sweep(spec, out)
    assert results_table(out) == sweep(spec, out, resume=True)
