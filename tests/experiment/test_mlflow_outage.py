"""The MLflow server goes away in the middle of a trial: training goes on, every evaluation arrives later."""

from __future__ import annotations

import json
import threading
import time

from mlflow.tracking import MlflowClient

from spa_tune.experiment.run import run_experiment
from spa_tune.spec.load import load_space
from tests.servers import free_port, mlflow_server

from .conftest import write_space


def evaluated_steps(folder) -> list[int]:
    """Steps the (single) trial has evaluated so far, from its metrics log."""
    for log in folder.glob("trial_*/metrics.jsonl"):
        return [json.loads(line)["step"] for line in log.read_text().splitlines()]
    return []


def test_evaluations_logged_while_the_server_is_down_arrive_when_it_is_back(ray_runtime, tmp_path, tiny_model_dir):
    store = tmp_path / "store"
    store.mkdir()
    store_uri, port = f"sqlite:///{store / 'mlflow.db'}", free_port()
    servers = [mlflow_server(store_uri, port, tmp_path / "server.log", cwd=store)]
    servers[0].wait_ready()
    space = write_space(
        tmp_path, tiny_model_dir, "outage",
        trial={"num_train_epochs": 8, "generated_train_questions": 640},
        scheduler={"type": "none"}, mlflow={"tracking_uri": servers[0].base},
    )
    folder = tmp_path / "runs" / "outage"
    seen: dict = {}

    def outage() -> None:
        deadline = time.time() + 240
        while len(evaluated_steps(folder)) < 2 and time.time() < deadline:
            time.sleep(0.1)
        seen["left_after_stop"] = servers[0].stop()
        seen["down_after"] = evaluated_steps(folder)[-1]
        while evaluated_steps(folder)[-1] < seen["down_after"] + 30 and time.time() < deadline:
            time.sleep(0.1)
        seen["up_after"] = evaluated_steps(folder)[-1]  # three evaluations later, trained without a server
        servers.append(mlflow_server(store_uri, port, tmp_path / "server.log", cwd=store))
        servers[-1].wait_ready()

    watcher = threading.Thread(target=outage)
    watcher.start()
    try:
        outcome = run_experiment(load_space(space), str(space))
        watcher.join()
        (row,) = outcome.rows
        assert row["status"] == "completed" and row["step"] == 160
        assert seen["left_after_stop"] == [] and seen["up_after"] >= seen["down_after"] + 30
        client = MlflowClient(tracking_uri=servers[-1].base)
        (run,) = client.search_runs([outcome.runs.experiment_id], filter_string=f"tags.trial_id = '{row['trial_id']}'")
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "f1")]
        assert steps == list(range(10, 161, 10))  # the evaluations of the outage too, each once
        assert run.data.tags["status"] == "completed"
        assert not list(folder.glob("trial_*/mlflow_unsent.jsonl"))
    finally:
        watcher.join()
        left = [pid for server in servers for pid in server.stop()]
    assert not left, f"mlflow server processes still running: {left}"
