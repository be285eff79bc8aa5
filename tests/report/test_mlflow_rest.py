"""A finished experiment as an MLflow tracking server shows it: runs, params, metrics, artifacts.

A real ``mlflow server`` serves a copy of the experiment's SQLite store; everything is read through
its REST API. Artifacts of a local store live at a local path (``<folder>/mlartifacts``), which the
server on the same machine lists and serves itself (``artifacts/list``, ``get-artifact``).
"""

from __future__ import annotations

import csv
import json
import shutil
import urllib.parse
import urllib.request

import pytest

from tests.servers import free_port, mlflow_server

PARENT_TAG = "mlflow.parentRunId"


@pytest.fixture(scope="module")
def server(finished_experiment, tmp_path_factory):
    """``mlflow server`` on a copy of the experiment's store; stopped by its id, its processes checked gone."""
    workdir = tmp_path_factory.mktemp("mlflow-server")
    store = shutil.copy(finished_experiment / "mlflow.db", workdir / "mlflow.db")
    server = mlflow_server(f"sqlite:///{store}", free_port(), workdir / "mlflow-server.log", cwd=workdir)
    try:
        server.wait_ready()
        yield server.base
    finally:
        left = server.stop()
    assert not left, f"mlflow server processes still running: {left}"
    assert server.process.returncode is not None


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
