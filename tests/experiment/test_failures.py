"""A trial whose loss becomes NaN is final: failed with its reason in the table and in MLflow, never
retried (even with max_failures), not counted by ASHA; the other trials go on."""

from __future__ import annotations

import csv
import json

from mlflow.tracking import MlflowClient
from ray.tune import ExperimentAnalysis

from spa_tune.cli import experiment_exit_code
from spa_tune.experiment.run import run_experiment
from spa_tune.spec.load import load_space

from .conftest import write_space


def test_diverging_trial_fails_at_once_and_is_not_retried(ray_runtime, tmp_path, tiny_model_dir):
    space = write_space(
        tmp_path, tiny_model_dir, "diverge",
        trial={"num_train_epochs": 2, "method": "dense"},
        search={"learning_rate": {"type": "grid", "values": [3e-3, 1e30]}},
        searcher={"type": "grid"}, scheduler={"type": "asha", "grace_period": 1}, max_failures=2, max_concurrent_trials=2,
    )
    outcome = run_experiment(load_space(space), str(space))

    by_rate = {float(row["learning_rate"]): row for row in outcome.rows}
    assert by_rate[3e-3]["status"] == "completed"
    failed = by_rate[1e30]
    assert failed["status"] == "failed" and "training diverged" in failed["error"] and "loss is" in failed["error"]
    assert failed["f1"] is None  # it diverged before its first evaluation: no NaN in the table
    assert experiment_exit_code(outcome.rows) == 1
    with open(outcome.results_csv) as fh:
        table = {row["trial_id"]: row for row in csv.DictReader(fh)}
    assert table[failed["trial_id"]]["status"] == "failed" and "training diverged" in table[failed["trial_id"]]["error"]
    trials = {trial.trial_id: trial for trial in ExperimentAnalysis(str(outcome.folder)).trials}
    assert trials[failed["trial_id"]].num_failures == 0  # ended by itself, once: no retry despite max_failures 2
    assert trials[failed["trial_id"]].status == "TERMINATED"  # so `spa-tune resume` does not run it again either
    decisions = [json.loads(line) for line in (outcome.folder / "scheduler_decisions.jsonl").read_text().splitlines()]
    assert {d["trial_id"] for d in decisions} == {by_rate[3e-3]["trial_id"]}  # its last result is at no rung
    client = MlflowClient(tracking_uri=outcome.runs.tracking_uri)
    (run,) = client.search_runs([outcome.runs.experiment_id], filter_string=f"tags.trial_id = '{failed['trial_id']}'")
    assert run.info.status == "FAILED" and "training diverged" in run.data.tags["error"]
    assert run.data.tags["status"] == "failed"
    assert client.get_run(outcome.runs.parent_run_id).info.status == "FINISHED"
    assert client.get_run(outcome.runs.parent_run_id).data.metrics["trials_failed"] == 1
