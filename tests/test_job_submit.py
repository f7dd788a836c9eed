"""``ray job submit`` end to end: a local head node on loopback runs a tiny training as a job.

This is how experiments reach a Ray cluster (docs/training.md), so it is tested as a user runs
it: the ``ray`` CLI starts a head node, ``ray job submit --working-dir .`` uploads the repo and
runs ``aware-ray train``, and the job must succeed and leave a checkpoint and an exported policy.
The head node runs in its own process group and is killed with it, never with ``ray stop``
(which would stop every Ray instance of the user on the machine).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).with_name("ray")

pytestmark = pytest.mark.slow


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _wait_for(port: int, deadline: float) -> None:
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture()
def head_node():
    """A head node on loopback with token auth off (local development, as docs/training.md says)."""
    gcs, dash, client, agent_http, agent_grpc, metrics = _free_ports(6)
    temp = tempfile.mkdtemp(prefix="arjob")  # short: Ray's socket paths must fit in 107 bytes
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [
        str(RAY), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
        "--num-cpus=2", "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
        f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent_http}",
        f"--dashboard-agent-grpc-port={agent_grpc}", f"--metrics-export-port={metrics}",
        f"--temp-dir={temp}", "--disable-usage-stats",
    ]  # fmt: skip
    log = open(Path(temp) / "head.log", "w")  # noqa: SIM115 - closed in the teardown
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(dash, time.time() + 90)
        yield f"http://127.0.0.1:{dash}", env
    finally:
        # The whole group: `ray start --block`, GCS, raylet, dashboard and the job's workers.
        for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def test_job_submit_trains_and_exports_a_policy(head_node, tmp_path: Path) -> None:
    address, env = head_node
    out = tmp_path / "run"
    job_id = f"aware-ray-test-{os.getpid()}"
    entry = f"{sys.executable} -m aware_ray.cli train --config experiments/configs/tiny.yaml --out {out}"
    submit = subprocess.run(
        [str(RAY), "job", "submit", "--address", address, "--submission-id", job_id,
         "--working-dir", ".", "--no-wait", "--", *entry.split()],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert submit.returncode == 0, submit.stderr[-2000:]

    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    deadline = time.time() + 240
    status = client.get_job_status(job_id)
    while not status.is_terminal() and time.time() < deadline:
        time.sleep(2)
        status = client.get_job_status(job_id)
    logs = client.get_job_logs(job_id)
    assert status == JobStatus.SUCCEEDED, f"job ended {status}:\n{logs[-3000:]}"

    # What the run promises (aware_ray/training/train.py): a resumable checkpoint and the policy.
    assert (out / "checkpoints" / "latest").is_dir()
    assert any((out / "checkpoints" / "latest").iterdir())
    meta = json.loads((out / "policy" / "policy.json").read_text())
    assert (out / "policy" / "policy.pt").stat().st_size > 0
    assert meta
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["iterations"] == 1 and summary["env_steps"] >= 128

    from policies.ddpg.policy import DDPGPolicy

    policy = DDPGPolicy.load(out / "policy")
    assert policy is not None
