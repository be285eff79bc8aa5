"""spa-tune on a real multi-node Ray cluster on this machine: trials placed on GPU workers, one per GPU."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import time

import pytest
import yaml
from mlflow import MlflowClient

from ..experiment.conftest import TINY_TRIAL
from .local_cluster import start_cluster


@pytest.fixture(scope="module")
def cluster():
    """A head and two workers advertising one GPU each; every process stopped by its id afterwards."""
    local = start_cluster(workers=2)
    try:
        yield local
    finally:
        left = local.stop()
        shutil.rmtree(local.temp_dir, ignore_errors=True)
        assert not left, f"Ray processes still running after the test: {left}"


def cluster_space(tmp_path, model_dir: str, name: str, **extra) -> str:
    space = dict(
        name=name,
        trial=dict(TINY_TRIAL, model=model_dir, num_train_epochs=2),
        search={"final_threshold": {"type": "grid", "values": [1.0, 0.7, 0.5, 0.2]}},
        scheduler={"type": "none"},
        resources={"cpu": 1, "gpu": 1},
        storage_path=str(tmp_path / "runs"),
        shared_storage=True,  # every node of this cluster is on this machine
        **extra,
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(space))
    return str(path)


def spa_tune(cluster, *argv: str, timeout: float = 420) -> subprocess.CompletedProcess:
    """The spa-tune command as a separate driver process attached to the cluster."""
    return subprocess.run(
        [sys.executable, "-m", "spa_tune.cli", *argv], env=cluster.env, capture_output=True, text=True, timeout=timeout
    )


def complete_lines(path) -> list[str]:
    """Lines of a file another process is appending to, without a last line still being written."""
    text = path.read_text()
    return text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]


def intervals(trial_dir) -> tuple[float, float]:
    """When a trial ran, on its node's clock: (start, end) from its reported results."""
    last = json.loads((trial_dir / "result.json").read_text().splitlines()[-1])
    return last["timestamp"] - last["time_total_s"], last["timestamp"]


def test_trials_run_on_the_gpu_workers_one_per_gpu(cluster, tmp_path, tiny_model_dir):
    path = cluster_space(tmp_path, tiny_model_dir, "multinode")
    done = spa_tune(cluster, "--space", path, "--address", cluster.address)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    folder = tmp_path / "runs" / "multinode"
    with open(folder / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    assert {r["node_id"] for r in rows} <= set(cluster.worker_ids)  # never on the head (no GPU there)
    assert cluster.head_id not in {r["node_id"] for r in rows}
    by_node: dict[str, list] = {}
    for row in rows:
        by_node.setdefault(row["node_id"], []).append(intervals(folder / f"trial_{row['trial_id']}"))
    for spans in by_node.values():  # one trial at a time on each node's single GPU
        spans.sort()
        assert all(later[0] >= earlier[1] - 1 for earlier, later in zip(spans, spans[1:])), spans
    state = json.loads((folder / "experiment.json").read_text())
    client = MlflowClient(state["tracking_uri"])
    children = client.search_runs(
        [state["experiment_id"]], filter_string=f"tags.mlflow.parentRunId = '{state['parent_run_id']}'"
    )
    assert len(children) == 4
    assert {c.data.tags["ray_node_id"] for c in children} == {r["node_id"] for r in rows}
    assert all(c.data.metrics["f1"] >= 0 and c.data.tags["status"] == "completed" for c in children)


def test_a_local_folder_on_several_nodes_is_refused(cluster, tmp_path, tiny_model_dir):
    path = cluster_space(tmp_path, tiny_model_dir, "notshared")
    done = spa_tune(cluster, "--space", path, "--address", cluster.address, "--set", "shared_storage=false")
    assert done.returncode == 2
    assert "the Ray cluster has 3 nodes" in done.stderr and "shared_storage: true" in done.stderr
    assert done.stderr.count("spa-tune: error:") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "runs" / "notshared").exists()
    # a URI storage_path reaches every node, but the default MLflow store (a file on the driver) does not
    done = spa_tune(cluster, "--space", path, "--address", cluster.address, "--set", "shared_storage=true",
                    "--set", f"storage_path=file://{tmp_path / 'bucket'}")
    assert done.returncode == 2 and "mlflow.tracking_uri: the Ray cluster has 3 nodes" in done.stderr


def test_a_killed_worker_node_restarts_its_trial_elsewhere_from_its_checkpoint(tmp_path, tiny_model_dir):
    """Its own cluster: the node running the trial is killed (its raylet and everything under it)."""
    import psutil

    from .local_cluster import start_cluster

    local = start_cluster(workers=2)
    try:
        space = yaml.safe_load(open(cluster_space(tmp_path, tiny_model_dir, "nodeloss")))
        space["trial"].update(num_train_epochs=6, generated_train_questions=640)
        space["search"] = {"final_threshold": {"type": "grid", "values": [0.5]}}
        space["max_failures"] = 2
        path = tmp_path / "nodeloss.yaml"
        path.write_text(yaml.safe_dump(space))
        driver = subprocess.Popen(
            [sys.executable, "-m", "spa_tune.cli", "--space", str(path), "--address", local.address],
            env=local.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        folder = tmp_path / "runs" / "nodeloss"
        deadline = time.time() + 240
        results = []
        while time.time() < deadline and driver.poll() is None:
            results = list(folder.glob("trial_*/result.json"))
            if results and len(complete_lines(results[0])) >= 3:
                break
            time.sleep(0.5)
        assert results, driver.communicate()[0][-3000:] if driver.poll() is not None else "no results"
        first = [json.loads(line) for line in complete_lines(results[0])]
        assert first[-1]["step"] < first[-1]["total_steps"] / 2  # killed well before the end
        victim = first[-1]["node_id"]
        assert victim in local.worker_ids
        raylet = local.raylet_of(victim)
        node_procs = [raylet, *raylet.children(recursive=True)]
        for proc in node_procs:
            proc.kill()
        psutil.wait_procs(node_procs, timeout=20)
        output, _ = driver.communicate(timeout=420)
        assert driver.returncode == 0, output[-4000:]
        with open(folder / "results.csv") as fh:
            (row,) = list(csv.DictReader(fh))
        survivor = next(w for w in local.worker_ids if w != victim)
        assert row["status"] == "completed" and row["node_id"] == survivor
        reported = [json.loads(line) for line in results[0].read_text().splitlines()]
        steps = [r["step"] for r in reported]
        assert steps[0] == 10 and steps[-1] == reported[-1]["total_steps"]
        after = [r for r in reported if r["node_id"] == survivor]
        assert after and after[0]["step"] > 10  # went on from a checkpoint, not from step 0
        state = json.loads((folder / "experiment.json").read_text())
        (child,) = MlflowClient(state["tracking_uri"]).search_runs(
            [state["experiment_id"]], filter_string=f"tags.mlflow.parentRunId = '{state['parent_run_id']}'"
        )
        assert child.data.tags["ray_node_id"] == survivor and child.data.tags["status"] == "completed"
    finally:
        left = local.stop()
        shutil.rmtree(local.temp_dir, ignore_errors=True)
        assert not left, f"Ray processes still running after the test: {left}"


def client_server_logs(local) -> str:
    """The tails of the head's Ray Client server logs, to tell why a ``ray://`` attach failed."""
    tails = [f"{log.name}: {log.read_text(errors='replace')[-1500:]}"
             for log in sorted(local.temp_dir.glob("session_*/logs/ray_client_server*"))]
    return "\n".join(tails)


def test_a_ray_client_address_attaches_too(tmp_path, tiny_model_dir):
    """``--address ray://head:port`` (Ray Client); this cluster runs without token authentication, see start_cluster."""
    local = start_cluster(workers=2, ray_client=True)
    try:
        path = cluster_space(tmp_path, tiny_model_dir, "viaclient")
        done = spa_tune(local, "--space", path, "--address", local.client_address,
                        "--set", "search.final_threshold.values=[0.5, 0.2]")
        if done.returncode != 0:
            pytest.fail(f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}\n{client_server_logs(local)}")
        with open(tmp_path / "runs" / "viaclient" / "results.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 2 and all(r["status"] == "completed" and r["node_id"] in local.worker_ids for r in rows)
    finally:
        left = local.stop()
        shutil.rmtree(local.temp_dir, ignore_errors=True)
        assert not left, f"Ray processes still running after the test: {left}"
