"""Money and real time through the command line and validation: the flags, their defaults, their
errors, and stored baselines that no longer compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aware_ray.cli import main


@pytest.mark.parametrize("command", ["evaluate", "rank", "bench"])
def test_help_shows_time_compression_and_memory_price(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "--time-compression" in text and "--memory-price" in text
    assert "real time" in text


def test_evaluate_replays_at_real_time_and_scores_money(tmp_path: Path) -> None:
    out = tmp_path / "ev"
    args = ["evaluate", "--policies", "hpa@0.6,hpa+vpa-inplace@0.6,predictive@0.6,oracle", "--app", "single"]
    args += ["--trace", "nasa_http_1995-08_1min.csv", "--max-hours", "0.25", "--seeds", "1", "--workers", "1"]
    assert main([*args, "--out", str(out), "--quiet", "--timeseries", "none"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["time_compression"] == 1.0
    assert summary["memory_price"] == pytest.approx(1 / 9)
    assert {r["time_compression"] for r in summary["results"]} == {1.0}
    for s in summary["scores"]:
        assert s["money"] == pytest.approx(s["cpu_core_hours"] + s["mem_gib_hours"] / 9)
    assert "money" in (out / "report.md").read_text()
    # The same window at 4x covers four times the trace: other arrivals, other figures.
    out4 = tmp_path / "ev4"
    assert main([*args, "--out", str(out4), "--quiet", "--timeseries", "none", "--time-compression", "4"]) == 0
    s4 = json.loads((out4 / "summary.json").read_text())
    assert s4["time_compression"] == 4.0
    assert s4["results"][0]["cpu_core_hours"] != summary["results"][0]["cpu_core_hours"]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--time-compression", "0", "--time-compression: must be"), ("--memory-price", "-1", "--memory-price: must be")],
)
def test_bad_flags_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    out = tmp_path / "out"
    rc = main(["evaluate", "--family", "diurnal", "--policies", "hpa", flag, value, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and err.count("\n") == 1
    assert not out.exists()


def test_stored_baselines_at_another_compression_or_without_the_frontier_are_stale() -> None:
    from aware_ray.training.config import load_train_config
    from aware_ray.training.validation import VALIDATION_BASELINES, stale_baselines, validate
    from envs.errors import ConfigError

    cfg = load_train_config("experiments/configs/default.yaml")
    assert cfg.env.time_compression == 4.0  # training compresses; validation must not
    fresh = [{"policy": p, "time_compression": 1.0} for p in VALIDATION_BASELINES]
    assert stale_baselines(fresh, cfg) is None
    old = [{"policy": p} for p in VALIDATION_BASELINES]  # recorded at the training env's 4x
    assert "time compression 4" in stale_baselines(old, cfg)
    hpa_only = [r for r in fresh if r["policy"].startswith(("hpa@", "oracle"))]
    assert stale_baselines(hpa_only, cfg).startswith("without hpa+vpa-inplace@")
    assert stale_baselines(old, cfg, time_compression=4.0) is None
    with pytest.raises(ConfigError, match="validation baselines recorded at time compression 4"):
        validate(None, cfg, old)


def test_env_config_takes_a_memory_price() -> None:
    from aware_ray.evaluation.scoreboard import DEFAULT_MEMORY_PRICE
    from envs.config import EnvConfig
    from envs.errors import ConfigError

    assert EnvConfig().memory_price == pytest.approx(DEFAULT_MEMORY_PRICE)
    assert EnvConfig.from_dict({"memory_price": 0.25}).memory_price == 0.25
    with pytest.raises(ConfigError, match="memory_price"):
        EnvConfig.from_dict({"memory_price": -1})
