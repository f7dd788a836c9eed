"""Run folders that cannot lie: baselines fingerprinted with what shaped them, and every config or
resume error found before any work, as one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aware_ray.cli import main
from aware_ray.training.config import load_train_config
from aware_ray.training.run_folder import (
    BASELINES,
    BASELINES_META,
    baselines_mismatch,
    check_resume,
    load_or_score_baselines,
    write_baselines,
)
from envs.errors import ConfigError

TINY = Path(__file__).resolve().parent.parent / "experiments" / "configs" / "tiny.yaml"
ROWS = [{"policy": "hpa@0.5", "trace": "flash-crowd", "seed": 0}]


def test_baselines_match_only_the_settings_they_were_scored_with(tmp_path: Path) -> None:
    cfg = load_train_config(TINY)
    assert baselines_mismatch(tmp_path, cfg) == f"{BASELINES} is missing"
    write_baselines(tmp_path, cfg, ROWS)
    assert baselines_mismatch(tmp_path, cfg) is None
    assert load_or_score_baselines(tmp_path, cfg, resume=True) == ROWS
    # Training-only keys leave them valid; validation settings and the env do not.
    assert baselines_mismatch(tmp_path, load_train_config(TINY, ["ddpg.tau=0.01", "run.iterations=5"])) is None
    why = baselines_mismatch(tmp_path, load_train_config(TINY, ["run.eval_hours=0.5", "env.noise=0.2"]))
    assert why is not None and "eval_hours" in why and "env.noise" in why
    (tmp_path / BASELINES_META).unlink()
    assert "has no validation_baselines.meta.json" in baselines_mismatch(tmp_path, cfg)


def test_a_resumed_run_refuses_baselines_of_other_settings(tmp_path: Path) -> None:
    write_baselines(tmp_path, load_train_config(TINY), ROWS)
    changed = r"cannot resume: they were scored with other settings \(eval_seeds changed\)"
    with pytest.raises(ConfigError, match=changed):
        load_or_score_baselines(tmp_path, load_train_config(TINY, ["run.eval_seeds=2"]), resume=True)


def test_a_fresh_run_scores_stale_baselines_again(tmp_path: Path, capsys) -> None:
    write_baselines(tmp_path, load_train_config(TINY), ROWS)
    cfg = load_train_config(TINY, ["run.eval_hours=0.1"])
    rows = load_or_score_baselines(tmp_path, cfg, resume=False)
    assert rows != ROWS and {r["policy"] for r in rows} >= {"oracle", "hpa@0.5"}
    assert "scored again: they were scored with other settings (eval_hours changed)" in capsys.readouterr().out
    assert baselines_mismatch(tmp_path, cfg) is None
    assert json.loads((tmp_path / BASELINES).read_text()) == rows


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a directory, not a config file"),
        (lambda p: p.write_bytes(b"env:\n  app: \xff\xfe\n"), "not UTF-8 text (byte"),
        (lambda p: p.write_text(TINY.read_text() + "\nrun: [1]\n"), "section 'run' must be a mapping"),
    ],
)
def test_bad_config_files_exit_2_before_any_work(tmp_path: Path, capsys, make, message: str) -> None:
    path = tmp_path / "cfg.yaml"
    make(path)
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_out_of_range_ddpg_keys_exit_2_before_baselines(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--config", str(TINY), "--out", str(out), "--set", "ddpg.gamma=1.5"]) == 2
    assert "ddpg.gamma: must be in (0, 1], got 1.5" in capsys.readouterr().err
    assert not out.exists()


def test_resume_needs_a_checkpoint(tmp_path: Path, capsys) -> None:
    assert main(["train", "--config", str(TINY), "--out", str(tmp_path), "--resume"]) == 2
    assert "no checkpoint to resume from" in capsys.readouterr().err
    assert not (tmp_path / BASELINES).exists()


@pytest.mark.slow
def test_a_corrupt_checkpoint_or_state_is_one_line_before_any_work(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", "--config", str(TINY), "--out", str(out)]) == 0
    assert check_resume(out)["iteration"] == 1
    capsys.readouterr()
    state = out / "train_state.json"
    good = state.read_text()
    state.write_text("{")
    resume = ["train", "--config", str(TINY), "--out", str(out), "--resume", "--set", "run.iterations=2"]
    assert main(resume) == 2
    assert "train_state.json: corrupt (JSONDecodeError); the run cannot resume" in capsys.readouterr().err
    state.write_text(good)
    pkl = next((out / "checkpoints" / "latest").rglob("state.pkl"))
    pkl.write_bytes(pkl.read_bytes()[:20])
    assert main(resume) == 2
    err = capsys.readouterr().err.strip()
    assert f"{pkl}: corrupt" in err and len(err.splitlines()) == 1


def test_validation_seeds_start_where_the_config_says_and_the_baselines_know_it(tmp_path: Path) -> None:
    """A validation set on a held-out family must start past the held-out seeds; the baselines file
    names the start (only when set, so folders scored before the key keep their fingerprint)."""
    from aware_ray.training.run_folder import baselines_identity
    from aware_ray.training.validation import validation_rows

    cfg = load_train_config(TINY)
    assert "eval_seed_start" not in baselines_identity(cfg)
    later = load_train_config(TINY, ["run.eval_seed_start=100", "run.eval_seeds=2", "run.eval_hours=0.05"])
    assert baselines_identity(later)["eval_seed_start"] == 100
    rows = validation_rows(None, later, ["hpa@0.5"])
    assert [r["seed"] for r in rows] == [100, 101]
    first = validation_rows(None, load_train_config(TINY, ["run.eval_seeds=2", "run.eval_hours=0.05"]), ["hpa@0.5"])
    assert [r["seed"] for r in first] == [0, 1] and rows != first  # other instances of the family
    write_baselines(tmp_path, cfg, ROWS)
    assert "eval_seed_start" in baselines_mismatch(tmp_path, later)


def test_a_negative_validation_seed_start_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"run\.eval_seed_start: must be >= 0, got -1$"):
        load_train_config(TINY, ["run.eval_seed_start=-1"])


@pytest.mark.parametrize("command", ["train", "validation-set", "tune"])
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["run.eval_families=[ramp,bursty]"],
            r"run\.eval_families: 'bursty' is a held-out family, whose held-out instances are seeds 0-99; "
            r"set run\.eval_seed_start >= 100 to validate on others",
        ),
        (["run.eval_families=[spikes]", "run.eval_seed_start=99"], r"'spikes' is a held-out family"),
    ],
)
def test_choosing_on_held_out_episodes_is_refused(
    command: str, overrides: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`train`, `tune` and `validation-set` choose by their validation, so none may draw a held-out
    family's held-out seeds; `bench adapt` scores on held-out workloads by design and may."""
    import re

    config = TINY
    if command == "tune":
        config = tmp_path / "sweep.yaml"
        config.write_text(f"base: {TINY}\nspace:\n  ddpg.tau: {{choice: [0.005, 0.01]}}\n")
    sets = [arg for o in overrides for arg in ("--set", o)]
    rc = main([command, "--config", str(config), *sets, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and re.search(message, err) and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()
    from aware_ray.training.config import check_selection_workloads

    past = load_train_config(TINY, ["run.eval_families=[spikes]", "run.eval_seed_start=100"])
    check_selection_workloads(past.run, "x")  # past the held-out seeds: accepted


def test_bench_ddpg_quality_keeps_to_the_held_out_seeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Validation may draw a held-out family from seed 100 on, so the held-out table stops before."""
    rc = main(["bench", "ddpg-quality", "--seeds", "101", "--out", str(tmp_path / "q")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.endswith("--seeds: must be 1 to 100 (validation may use the seeds past it), got 101")
    assert len(err.splitlines()) == 1 and not (tmp_path / "q").exists()
