"""The aware-ray command line: evaluate's outputs, bad input handling, bench and demo."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from aware_ray.cli import main
from aware_ray.demo import RECOMMENDED
from aware_ray.evaluation.rollout import SUMMARY_FIELDS, TIMESERIES_FIELDS


def test_evaluate_writes_the_scoreboard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ev"
    rc = main(
        [
            "evaluate",
            "--policies",
            "hpa@0.6,hpa@0.8,oracle,static",
            "--app",
            "chain3",
            "--family",
            "step",
            "--trace",
            "nasa_http_1995-08_1min.csv",
            "--max-hours",
            "0.25",
            "--seeds",
            "2",
            "--workers",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["results"]
    assert len(rows) == 4 * 2 * 2
    for r in rows:
        assert set(SUMMARY_FIELDS) <= set(r)
        assert r["steps"] == 60
        assert 0.0 <= r["slo_violation_rate"] <= 1.0
        assert r["cpu_core_hours"] > 0
    # Every policy saw the same arrivals for a (workload, seed): the same external load per step.
    with open(out / "summary.csv") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
    with open(out / "timeseries.csv") as fh:
        reader = csv.reader(fh)
        assert tuple(next(reader)) == TIMESERIES_FIELDS
        ts = list(reader)
    # First seed only: 4 policies x 2 workloads x 60 steps x 3 services.
    assert len(ts) == 4 * 2 * 60 * 3
    oracle = [s for s in summary["scores"] if s["policy"] == "oracle"]
    assert all(s["slo_violation_rate"] <= 0.02 for s in oracle)
    for name in ["frontier.png", "report.md", "timeseries_step.png", "timeseries_nasa_http_1995-08_1min.png"]:
        assert (out / name).stat().st_size > 0
    printed = capsys.readouterr().out
    assert "oracle" in printed and "gap" in printed


def test_same_arrivals_for_every_policy(tmp_path: Path) -> None:
    """Every policy replays the same arrival series of a (workload, seed): the rates each saw at
    every step are those ``episode_rates`` draws, not merely the same timestamps."""
    from aware_ray.evaluation.evaluate import EvalPlan, _env, episode_rates
    from envs.workload import make_workload

    out = tmp_path / "ev"
    args = ["--app", "single", "--family", "bursty", "--max-hours", "0.1", "--seeds", "1", "--workers", "1"]
    main(["evaluate", "--policies", "hpa@0.5,static,vpa", *args, "--out", str(out), "--quiet"])
    with open(out / "timeseries.csv") as fh:
        rows = list(csv.DictReader(fh))
    rates: dict[str, list[float]] = {}
    times: dict[str, list[float]] = {}
    for r in rows:
        rates.setdefault(r["policy"], []).append(float(r["requests_per_second"]))
        times.setdefault(r["policy"], []).append(float(r["t_seconds"]))
    assert times["hpa@0.5"] == times["static"] == times["vpa"]
    assert rates["hpa@0.5"] == rates["static"] == rates["vpa"]
    plan = EvalPlan(policies=["static"], app="single", families=["bursty"], max_hours=0.1, seeds=1)
    env = _env(plan, "in-place")
    drawn = episode_rates(make_workload("family:bursty", env.peak_rps, env.config.time_compression), 0, env, 0.1)
    np.testing.assert_allclose(rates["static"], drawn, atol=1e-4)
    assert np.std(drawn) > 0  # a varying series, so equal columns mean equal arrivals
    other = episode_rates(make_workload("family:bursty", env.peak_rps, env.config.time_compression), 1, env, 0.1)
    assert not np.allclose(drawn, other)  # and another seed is another series


def test_two_workers_give_the_same_summary_as_one(tmp_path: Path) -> None:
    """Parallel evaluation changes nothing but the wall time: same rows, same scores, same order."""
    args = ["--policies", "hpa@0.5,hpa@0.8,vpa,oracle", "--app", "chain3", "--family", "step"]
    args += ["--family", "bursty", "--max-hours", "0.1", "--seeds", "2", "--quiet"]
    summaries = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        assert main(["evaluate", *args, "--workers", workers, "--out", str(out)]) == 0
        summary = json.loads((out / "summary.json").read_text())
        summary.pop("wall_s")
        summaries.append(summary)
        assert len(summary["results"]) == 4 * 2 * 2
    assert summaries[0] == summaries[1]
    for name in ("summary.csv", "timeseries.csv"):
        assert (tmp_path / "w1" / name).read_text() == (tmp_path / "w2" / name).read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "BAD"], "bad.csv:3: non-numeric value 'x'"),
        (["--family", "diurnal", "--app", "nope"], "unknown app 'nope'"),
        (["--family", "diurnal", "--policies", "hpa,ppo"], "unknown policy 'ppo'"),
        (["--family", "sawtooth"], "sawtooth"),
        (["--family", "diurnal", "--seeds", "0"], "--seeds: must be >= 1"),
        ([], "give at least one --trace or --family"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("t_seconds,requests_per_second\n0,1\n60,x\n")
    args = [str(bad) if a == "BAD" else a for a in args]
    out = tmp_path / "out"
    rc = main(["evaluate", *args, "--out", str(out), "--quiet", "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err, err
    assert err.count("\n") == 1
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_bench_sim_prints_one_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "sim", "--seconds", "0.2", "--batch", "16"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["env_steps_per_s"] > 0
    assert result["service_steps_per_s_batched"] > 0
    assert result["batch"] == 16 and result["cores"] >= 1
    assert sorted(result["vector_env_steps_per_cpu_s"], key=int) == ["1", "8", "32", "128"]
    sizes = result["step_cost_by_app"]
    assert sizes["generated-64"]["services"] == 64 and sizes["chain3"]["services"] == 3
    assert all(v["vector32_env_steps_per_cpu_s"] > 0 for v in sizes.values())


@pytest.mark.slow
def test_demo_quick(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--no-train", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"oracle", "static", "vpa", "hpa+vpa", "hpa@0.6", "ddpg:pretrained"} <= set(summary["policies"])
    assert summary["policies"][0] == RECOMMENDED
    report = (out / "report.md").read_text()
    assert report.startswith("# aware-ray demo") and "## Scoreboard: social-network" in report
    n = len(summary["workloads"])
    row = next(line for line in report.splitlines() if line.startswith(f"| `{RECOMMENDED}` |"))
    assert "recommended deployment" in row and row.endswith(f" of {n} |")


def test_evaluate_a_custom_app_file(tmp_path: Path) -> None:
    app = tmp_path / "my-api.yaml"
    app.write_text(
        "name: my-api\nslo_ms: 300\ndefault_peak_rps: 100\nnode: {cores: 16, mem_gib: 64}\nservices:\n"
        "  - {name: api, cpu_ms: {mean: 10, cv: 1.0}, memory_mib: {base: 100, per_inflight: 0.5}, startup_s: 20,\n"
        "     replicas: {min: 1, max: 20, initial: 2}, cpu_limit: {min: 0.1, max: 2.0, initial: 0.5},\n"
        "     mem_limit: {min: 128, max: 2048, initial: 512}}\n"
    )
    out = tmp_path / "ev"
    rc = main(
        [
            "evaluate",
            "--policies",
            "hpa@0.6,oracle",
            "--app",
            str(app),
            "--family",
            "step",
            "--max-hours",
            "0.1",
            "--seeds",
            "1",
            "--workers",
            "1",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["app"] == "my-api" and summary["slo_ms"] == 300.0
    assert (out / "timeseries_step.png").exists()
