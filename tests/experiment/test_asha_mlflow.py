"""A real Ray Tune experiment of four tiny trials: stratified ASHA decisions, MLflow runs, results."""

from __future__ import annotations

import csv
import json

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from spa_tune.experiment.run import run_experiment
from spa_tune.spec.load import load_space

from .conftest import write_space

# Run in this order (one at a time): a dense-ish and a sparse setting that learn, then one of each
# that cannot learn (learning rates of 1e-7). At the epoch-2 rung the sparse learner scores below
# the dense learner, but it is the best of its own density.
POINTS = [
    {"final_threshold": 1.0, "learning_rate": 3e-3},
    {"final_threshold": 0.2, "learning_rate": 3e-3},
    {"final_threshold": 0.2, "learning_rate": 1e-7},
    {"final_threshold": 1.0, "learning_rate": 1e-7},
]
SEARCH = {
    "final_threshold": {"type": "choice", "values": [0.2, 1.0]},
    "learning_rate": {"type": "choice", "values": [3e-3, 1e-7]},
}


def asha_space(tmp_path, model_dir, name, stratify_by):
    return write_space(
        tmp_path, model_dir, name,
        search=SEARCH,
        searcher={"type": "random", "points_to_evaluate": POINTS},
        num_samples=len(POINTS),
        scheduler={"type": "asha", "metric": "f1", "mode": "max", "time_attr": "epoch", "grace_period": 2,
                   "reduction_factor": 2, "stratify_by": stratify_by},
        resources={"cpu": 1, "gpu": 0},
        max_concurrent_trials=1,
    )


@pytest.fixture(scope="module")
def stratified(ray_runtime, tmp_path_factory, tiny_model_dir):
    folder = tmp_path_factory.mktemp("stratified")
    path = asha_space(folder, tiny_model_dir, "stratified", "auto")
    return run_experiment(load_space(path), str(path))


def by_point(rows):
    """Rows keyed by their index in POINTS."""
    keyed = {}
    for row in rows:
        point = {"final_threshold": row["final_threshold"], "learning_rate": row["learning_rate"]}
        keyed[POINTS.index(point)] = row
    return keyed


def test_stratified_asha_stops_weak_settings_only_within_their_density(stratified):
    rows = by_point(stratified.rows)
    assert [rows[i]["status"] for i in range(4)] == ["completed", "completed", "stopped_early", "stopped_early"]
    assert rows[1]["f1"] < rows[0]["f1"]  # sparse learner: weaker than the dense one, yet kept
    decisions = [json.loads(line) for line in (stratified.folder / "scheduler_decisions.jsonl").read_text().splitlines()]
    at_rung = {d["trial_id"]: d for d in decisions if d["epoch"] == 2}
    assert at_rung[rows[1]["trial_id"]]["decision"] == "continue"
    assert at_rung[rows[1]["trial_id"]]["stratum"] == "fine-pruning final_threshold=0.2"
    assert at_rung[rows[2]["trial_id"]]["decision"] == "stop"
    assert at_rung[rows[2]["trial_id"]]["stratum"] == "fine-pruning final_threshold=0.2"
    assert at_rung[rows[3]["trial_id"]] == {**at_rung[rows[3]["trial_id"]], "decision": "stop", "stratum": "fine-pruning final_threshold=1.0"}
    assert rows[2]["step"] < rows[2]["total_steps"] == rows[1]["step"]


def test_plain_asha_stops_the_sparse_setting_for_being_sparse(ray_runtime, tmp_path, tiny_model_dir):
    path = asha_space(tmp_path, tiny_model_dir, "plain", "none")
    rows = by_point(run_experiment(load_space(path), str(path)).rows)
    assert rows[0]["status"] == "completed"
    assert rows[1]["status"] == "stopped_early"  # compared with the dense learner


def test_mlflow_holds_one_parent_and_one_child_per_trial(stratified):
    runs = stratified.runs
    client = MlflowClient(tracking_uri=runs.tracking_uri)
    assert runs.tracking_uri == f"sqlite:///{stratified.folder / 'mlflow.db'}"
    every = client.search_runs([runs.experiment_id])
    parents = [r for r in every if MLFLOW_PARENT_RUN_ID not in r.data.tags]
    children = [r for r in every if r.data.tags.get(MLFLOW_PARENT_RUN_ID) == runs.parent_run_id]
    assert [p.info.run_id for p in parents] == [runs.parent_run_id]
    assert len(children) == len(every) - 1 == len(POINTS)
    rows = {row["trial_id"]: row for row in stratified.rows}
    for child in children:
        row = rows[child.data.tags["trial_id"]]
        params, tags = child.data.params, child.data.tags
        assert float(params["final_threshold"]) == row["final_threshold"]
        assert params["method"] == "fine-pruning" and params["num_train_epochs"] == "4.0"
        assert tags["method"] == "fine-pruning" and tags["pruning_method"] == "topK"
        assert params["density"] == tags["density"] == row["density"] == f"fine-pruning final_threshold={row['final_threshold']}"
        assert child.info.run_name.startswith(f"fine-pruning topK final_threshold={row['final_threshold']} #")
        assert tags["status"] == row["status"]
        history = client.get_metric_history(child.info.run_id, "f1")
        steps = [m.step for m in history]
        assert steps == sorted(set(steps)) and steps[-1] == row["step"]
        assert history[-1].value == pytest.approx(row["f1"])
        assert child.data.metrics["remaining_pct"] == pytest.approx(row["remaining_pct"])
        if row["status"] == "stopped_early":
            assert int(tags["stopped_early_at"]) == row["step"]
            assert len(steps) == 2  # epochs 1 and 2 (10 steps per epoch, eval_every 10)
        else:
            assert len(steps) == 4
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"layers", "masks.png"} <= artifacts
        table = client.download_artifacts(child.info.run_id, "layers/density.csv")
        with open(table) as fh:
            assert len(list(csv.DictReader(fh))) == 12  # 2 layers x 6 matrices
        assert child.info.status == "FINISHED"
    parent = client.get_run(runs.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_stopped_early"] == 2
    assert {a.path for a in client.list_artifacts(runs.parent_run_id)} == {
        "results.csv", "pareto.png", "report.md", "pareto_learned.png"}


def test_results_csv_matches_the_trials(stratified):
    client = MlflowClient(tracking_uri=stratified.runs.tracking_uri)
    logged = client.download_artifacts(stratified.runs.parent_run_id, "results.csv")
    with open(logged) as fh:
        assert fh.read() == stratified.results_csv.read_text()
    with open(stratified.results_csv) as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(POINTS)
    for line in table:
        child = client.search_runs(
            [stratified.runs.experiment_id], filter_string=f"tags.trial_id = '{line['trial_id']}'"
        )[0]
        assert float(line["f1"]) == pytest.approx(child.data.metrics["f1"])
        assert line["status"] == child.data.tags["status"]
        last_step = client.get_metric_history(child.info.run_id, "f1")[-1].step
        assert int(line["step"]) == last_step == int(child.data.tags.get("stopped_early_at", line["total_steps"]))
    assert stratified.pareto_png.stat().st_size > 10_000
    front_ids = {r["trial_id"] for r in stratified.front}
    assert by_point(stratified.rows)[0]["trial_id"] in front_ids


def test_trials_share_worker_processes_and_keep_their_own_files(stratified):
    pids = set()
    for row in stratified.rows:
        trial_dir = stratified.folder / f"trial_{row['trial_id']}"
        results = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
        pids.update(r["pid"] for r in results)
        steps = [json.loads(line)["step"] for line in (trial_dir / "metrics.jsonl").read_text().splitlines()]
        assert steps == [r["step"] for r in results]  # its own evaluations only
    assert len(pids) < len(stratified.rows)  # Tune reused trial actors
