"""Training survives faults: a killed env runner is restarted and no iteration is lost; a killed
driver resumes from its last checkpoint with ``--resume``.

Both run ``aware-ray train`` as a user does, in a process group of its own (its local Ray
included), and kill real processes: the env runner actor found among the run's own descendants,
then the driver itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "experiments" / "configs" / "tiny.yaml"

pytestmark = pytest.mark.slow


def _train(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "aware_ray.cli", "train", "--config", str(TINY), "--out", str(out), *extra]
    log = open(out.with_suffix(".log"), "a")  # noqa: SIM115 - the child holds it; closed by the OS
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the run's process group and every descendant of its driver: Ray starts some of its
    processes in sessions of their own, and a Tune trial left running would go on writing the run
    folder (a later iteration's state) after the test has read it."""
    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        kids = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for kid in kids:
        with contextlib.suppress(psutil.Error):
            kid.kill()
    psutil.wait_procs(kids, timeout=30)
    proc.wait(timeout=30)


def _wait(cond, seconds: float, what: str) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise TimeoutError(what)


def _env_runners(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        kids = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for p in kids:
        try:
            if "SingleAgentEnvRunner" in " ".join(p.cmdline()) or "SingleAgentEnvRunner" in p.name():
                found.append(p)
        except psutil.Error:
            continue
    return found


def _iterations(out: Path) -> int:
    try:
        return int(json.loads((out / "train_state.json").read_text())["iteration"])
    except (OSError, ValueError, KeyError):
        return 0


def test_a_killed_env_runner_is_restarted_and_no_iteration_is_lost(tmp_path: Path) -> None:
    out = tmp_path / "run"
    iters = 4
    proc = _train(out, "--set", "run.num_env_runners=1", "--set", f"run.iterations={iters}")
    try:
        _wait(lambda: _iterations(out) >= 1, 240, "no first iteration")
        (runner,) = _env_runners(proc)
        runner.kill()
        assert proc.wait(timeout=400) == 0, out.with_suffix(".log").read_text()[-3000:]
    finally:
        _kill_group(proc)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["iterations"] == iters
    steps = int(TINY.read_text().split("steps_per_iteration:")[1].split()[0])
    assert summary["env_steps"] >= iters * steps


def test_a_killed_driver_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # Noise decaying over 8 iterations' steps, so a schedule started again would show.
    noise = ["--set", "ddpg.exploration={type: gaussian, sigma: 0.4, final_sigma: 0.0, decay_steps: 1024}"]
    proc = _train(out, "--set", "run.iterations=50", *noise)
    try:
        _wait(lambda: _iterations(out) >= 2, 300, "no checkpoint of iteration 2")
    finally:
        _kill_group(proc)
    done = _iterations(out)
    assert done >= 2 and not (out / "train_summary.json").exists()
    resumed = _train(out, "--resume", "--set", f"run.iterations={done + 1}", *noise)
    try:
        assert resumed.wait(timeout=300) == 0, out.with_suffix(".log").read_text()[-3000:]
    finally:
        _kill_group(resumed)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["iterations"] == done + 1
    # The resumed iteration explored where the killed run's schedule had got to, not afresh.
    sigma = json.loads((out / "train_state.json").read_text())["exploration_sigma"]
    at_least = done * int(TINY.read_text().split("steps_per_iteration:")[1].split()[0])
    assert 0.0 <= sigma <= 0.4 * (1 - at_least / 1024) + 1e-6  # a fresh schedule would be at 0.4
    # One iteration's steps more than the killed run had: it went on, it did not start over.
    first = [v for v in summary["validation"] if v["iteration"] <= done]
    assert len(first) == done  # tiny validates every iteration; the history before the kill is kept
