"""A trial whose worker process dies is retried from its last checkpoint (``max_failures``)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

from mlflow.tracking import MlflowClient
from ray.tune import ExperimentAnalysis

from spa_tune.experiment.run import run_experiment
from spa_tune.spec.load import load_space
from spa_tune.trial.runner import run_trial

from .conftest import write_space


def trial_worker_pids(raylet: int) -> list[int]:
    """Trial actor processes (``ray::ImplicitFunc...``) of the test's own Ray runtime."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    cmdline = fh.read().decode(errors="replace")
                with open(f"/proc/{entry}/stat") as fh:
                    parent = int(fh.read().rsplit(") ", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if cmdline.startswith("ray::ImplicitFunc") and parent == raylet:
                pids.append(int(entry))
    return pids


def test_killed_worker_restarts_from_checkpoint_in_the_same_mlflow_run(ray_runtime, tmp_path, tiny_model_dir):
    space = write_space(
        tmp_path, tiny_model_dir, "retry",
        trial={"num_train_epochs": 8, "generated_train_questions": 640},
        scheduler={"type": "none"},
        max_failures=1,
    )
    folder = tmp_path / "runs" / "retry"
    node = ray_runtime._private.worker._global_node
    (raylet,) = [info.process.pid for info in node.all_processes["raylet"]]
    killed: dict = {}

    def kill_after_two_evaluations() -> None:
        deadline = time.time() + 180
        while time.time() < deadline:
            for log in folder.glob("trial_*/metrics.jsonl"):
                steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
                pids = trial_worker_pids(raylet)
                if len(steps) >= 2 and len(pids) == 1:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.update(pid=pids[0], after_step=steps[-1])
                    return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_after_two_evaluations)
    killer.start()
    outcome = run_experiment(load_space(space), str(space))
    killer.join()
    assert killed, "the trial finished before its worker could be killed"
    (row,) = outcome.rows
    assert row["status"] == "completed" and row["step"] == row["total_steps"] == 160
    (trial,) = ExperimentAnalysis(str(folder)).trials
    assert trial.num_failures == 1
    client = MlflowClient(tracking_uri=outcome.runs.tracking_uri)
    (child,) = client.search_runs([outcome.runs.experiment_id], filter_string=f"tags.trial_id = '{row['trial_id']}'")
    steps = [m.step for m in client.get_metric_history(child.info.run_id, "f1")]
    assert steps == list(range(10, 161, 10))  # every evaluation once, though some ran twice
    assert child.data.tags["status"] == "completed" and "error" not in child.data.tags
    (trial_dir,) = folder.glob("trial_*")
    reported = [json.loads(line)["step"] for line in (trial_dir / "result.json").read_text().splitlines()]
    # the retry went on from the last checkpoint Tune had: no step reported twice, none from step 0 again
    assert reported == list(range(10, 161, 10)) and killed["after_step"] in reported
    # the same trial, never interrupted: the retried trial ends where it would have
    values = {**load_space(space).trial, "output_dir": str(tmp_path / "uninterrupted")}
    uninterrupted = run_trial(values)
    assert abs(uninterrupted["f1"] - row["f1"]) <= 0.5, (uninterrupted["f1"], row["f1"])
