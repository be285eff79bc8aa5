"""``spa-tune ui`` serves an experiment's MLflow store on 127.0.0.1, and is stopped by its id."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from spa_tune.experiment.folder import create_experiment_dir, save_state
from spa_tune.experiment.run import open_tracking
from spa_tune.spec.load import validate_space
from spa_tune.tracking.mlflow_runs import experiment_page


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ui_serves_the_experiment_on_localhost(tmp_path):
    spec = validate_space({"name": "ui-check", "storage_path": str(tmp_path / "runs"), "scheduler": {"type": "none"}}, "test")
    folder = create_experiment_dir(spec)
    runs = open_tracking(spec, folder)
    save_state(folder, runs, "test")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "spa_tune.cli", "ui", str(folder), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/get-by-name?experiment_name=ui-check"
        deadline, body = time.time() + 90, None
        while time.time() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, server.stdout.read() if server.poll() is not None else "no answer"
        assert body["experiment"]["experiment_id"] == runs.experiment_id
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
        bound = [line.split()[3] for line in listening.splitlines() if f":{port} " in line]
        assert bound and all(addr.startswith("127.0.0.1:") for addr in bound), bound
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    first_line = server.stdout.readline().strip()
    assert first_line == f"MLflow UI for {folder} at http://127.0.0.1:{port}/{experiment_page(runs.experiment_id)} (Ctrl-C stops it)"
    assert group_gone(server.pid), "mlflow ui processes outlived the test"


def group_gone(pgid: int, timeout: float = 20.0) -> bool:
    """Wait for every process of a process group to exit (SIGKILL after ``timeout``)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        members = [p for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == pgid and not _zombie(int(p))]
        if not members:
            return True
        time.sleep(0.2)
    os.killpg(pgid, signal.SIGKILL)
    return False


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(") ", 1)[1][0] == "Z"
    except OSError:
        return True
