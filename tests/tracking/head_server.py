"""The head node's MLflow server as cluster/gpu.yaml starts it (cluster/mlflow_server.sh), on 127.0.0.1 for tests."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from tests.servers import Server, free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "cluster" / "mlflow_server.sh"


def gpu_yaml_server_command() -> str:
    """The head setup command of cluster/gpu.yaml that starts the tracking server."""
    config = yaml.safe_load((ROOT / "cluster" / "gpu.yaml").read_text())
    (command,) = [cmd for cmd in config["head_setup_commands"] if SCRIPT.name in cmd]
    return command


def start_head_server(folder: Path) -> Server:
    """Run cluster/mlflow_server.sh on a free port, store in ``folder/mlflow``, artifacts in ``folder/artifacts``.

    Fails when cluster/gpu.yaml no longer starts its server with that script, so the two cannot drift.
    """
    assert f"/home/ray/spa-tune/cluster/{SCRIPT.name}" in gpu_yaml_server_command().split("||")[1]
    port = free_port()
    command = ["env", f"PYTHON={sys.executable}", "sh", str(SCRIPT), "127.0.0.1", str(port),
               str(folder / "mlflow"), str(folder / "artifacts")]
    return Server(command, port, folder / "server.log")
