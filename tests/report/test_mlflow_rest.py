"""A finished experiment as an MLflow tracking server shows it: runs, params, metrics, artifacts.

A real ``mlflow server`` serves a copy of the experiment's SQLite store; everything is read through
its REST API. Artifacts of a local store live at a local path (``<folder>/mlartifacts``), which the
server on the same machine lists and serves itself (``artifacts/list``, ``get-artifact``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

PARENT_TAG = "mlflow.parentRunId"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:  # state, ppid, pgrp
            members.append(int(entry))
    return members


def stop_group(server: subprocess.Popen) -> list[int]:
    """Stop the server and its workers by the group id (= its pid); the processes still left."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    deadline = time.time() + 20
    while group_members(server.pid) and time.time() < deadline:
        time.sleep(0.2)
    left = group_members(server.pid)
    if left:
        os.killpg(server.pid, signal.SIGKILL)
    return left


def wait_healthy(base: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert server.poll() is None, server.stdout.read()
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.read().strip() == b"OK":
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"mlflow server at {base} did not answer /health within {timeout} s")


@pytest.fixture(scope="module")
def server(finished_experiment, tmp_path_factory):
    """``mlflow server`` on a copy of the experiment's store; stopped by its id, its processes checked gone."""
    workdir = tmp_path_factory.mktemp("mlflow-server")
    store = shutil.copy(finished_experiment / "mlflow.db", workdir / "mlflow.db")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{store}",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process)
        yield base
    finally:
        left = stop_group(process)
        process.stdout.close()
    assert not left, f"mlflow server processes still running: {left}"
    assert process.returncode is not None


def get(base: str, route: str, **query) -> bytes:
    url = f"{base}{route}?{urllib.parse.urlencode(query)}" if query else f"{base}{route}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def api(base: str, endpoint: str, body: dict | None = None, **query) -> dict:
    """One REST call: POST with a JSON body, or GET with query parameters."""
    if body is None:
        return json.loads(get(base, f"/api/2.0/mlflow/{endpoint}", **query))
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/{endpoint}", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def as_dict(entries: list[dict]) -> dict:
    return {entry["key"]: entry["value"] for entry in entries}


def artifact_paths(base: str, run_id: str, path: str | None = None) -> dict[str, bool]:
    """Artifact path -> is a folder, one level of a run's artifacts."""
    query = {"run_id": run_id, **({"path": path} if path else {})}
    return {f["path"]: f.get("is_dir", False) for f in api(base, "artifacts/list", **query).get("files", [])}


def test_rest_api_shows_parent_children_params_metrics_and_artifacts(server, finished_experiment):
    state = json.loads((finished_experiment / "experiment.json").read_text())
    with open(finished_experiment / "results.csv") as fh:
        results = {line["trial_id"]: line for line in csv.DictReader(fh)}
    experiment = api(server, "experiments/get", experiment_id=state["experiment_id"])["experiment"]
    assert experiment["artifact_location"] == (finished_experiment / "mlartifacts").as_uri()

    runs = api(server, "runs/search", {"experiment_ids": [state["experiment_id"]], "max_results": 100})["runs"]
    tags = {run["info"]["run_id"]: as_dict(run["data"].get("tags", [])) for run in runs}
    parents = [run for run in runs if PARENT_TAG not in tags[run["info"]["run_id"]]]
    children = [run for run in runs if tags[run["info"]["run_id"]].get(PARENT_TAG) == state["parent_run_id"]]
    assert [p["info"]["run_id"] for p in parents] == [state["parent_run_id"]]
    assert len(children) == len(runs) - 1 == len(results) == 2
    assert parents[0]["info"]["status"] == "FINISHED"

    for child in children:
        run_id = child["info"]["run_id"]
        params, metrics, child_tags = as_dict(child["data"]["params"]), as_dict(child["data"]["metrics"]), tags[run_id]
        line = results[child_tags["trial_id"]]
        assert params["method"] == child_tags["method"] == line["method"]
        assert params["num_train_epochs"] == "2.0" and params["pruning_method"] == "topK"
        assert child_tags["status"] == line["status"] == "completed" and child["info"]["status"] == "FINISHED"
        for key in ("f1", "em", "remaining_pct", "learned_pct", "learned_params"):
            assert metrics[key] == pytest.approx(float(line[key])), key
        history = api(server, "metrics/get-history", run_id=run_id, metric_key="f1")["metrics"]
        assert max(m["step"] for m in history) == int(line["step"]) == int(line["total_steps"])
        assert artifact_paths(server, run_id) == {"layers": True, "masks.png": False}
        assert artifact_paths(server, run_id, "layers") == {"layers/density.csv": False}
        density = get(server, "/get-artifact", run_uuid=run_id, path="layers/density.csv").decode()
        assert density.splitlines()[0] == "layer,remaining_pct,learned_params,learned_pct"
        assert len(density.splitlines()) == 1 + 12  # 2 layers x 6 matrices
        assert get(server, "/get-artifact", run_uuid=run_id, path="masks.png")[:8] == b"\x89PNG\r\n\x1a\n"

    parent_id = state["parent_run_id"]
    assert artifact_paths(server, parent_id) == dict.fromkeys(
        ["pareto.png", "pareto_learned.png", "report.md", "results.csv"], False)
    for name in ("results.csv", "report.md"):
        assert get(server, "/get-artifact", run_uuid=parent_id, path=name) == (finished_experiment / name).read_bytes()
    assert get(server, "/get-artifact", run_uuid=parent_id, path="pareto_learned.png")[:4] == b"\x89PNG"
    parent_metrics = as_dict(parents[0]["data"]["metrics"])
    assert parent_metrics["trials_completed"] == 2 and parent_metrics["best_f1"] == pytest.approx(
        max(float(line["f1"]) for line in results.values()))
