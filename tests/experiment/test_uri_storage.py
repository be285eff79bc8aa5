"""storage_path as a URI: Ray Tune keeps trials and checkpoints there, spa-tune its own files on the driver."""

from __future__ import annotations

import json

import pytest
from mlflow import MlflowClient
from ray import tune

from spa_tune.errors import SpaTuneError
from spa_tune.experiment.run import resume_experiment, run_experiment
from spa_tune.spec.load import load_space

from .conftest import write_space


def test_uri_storage_keeps_trials_there_and_results_on_the_driver(ray_runtime, tmp_path, tiny_model_dir):
    # file:// goes through the same pyarrow file-system path as s3:// (no network in tests)
    store = tmp_path / "bucket"
    store.mkdir()
    path = write_space(
        tmp_path, tiny_model_dir, "uristore", trial={"num_train_epochs": 2},
        search={"final_threshold": {"type": "grid", "values": [1.0, 0.5]}}, scheduler={"type": "none"},
    )
    overrides = [f"storage_path=file://{store}", f"local_dir={tmp_path / 'driver'}"]
    outcome = run_experiment(load_space(path, overrides), str(path))
    assert outcome.folder == tmp_path / "driver" / "uristore"
    assert {p.name for p in outcome.folder.iterdir()} >= {"results.csv", "pareto.png", "experiment.json", "space.yaml"}
    assert [r["status"] for r in outcome.rows] == ["completed", "completed"]
    trials = sorted((store / "uristore").glob("trial_*"))
    assert len(trials) == 2
    for trial in trials:  # checkpoints and the trial's own files (synced artifacts) are in the store
        assert list(trial.glob("checkpoint_*/*"))
        assert (trial / "metrics.jsonl").is_file() and (trial / "result.json").is_file()
    assert not list(outcome.folder.glob("trial_*"))
    # the trials' shared features are in the store too: one entry per split, whichever trial built them
    assert len(list((store / "uristore" / "feature_cache").glob("*/manifest.json"))) == 2
    assert tune.Tuner.can_restore(f"file://{store}/uristore")
    state = json.loads((outcome.folder / "experiment.json").read_text())
    children = MlflowClient(state["tracking_uri"]).search_runs(
        [state["experiment_id"]], filter_string=f"tags.mlflow.parentRunId = '{state['parent_run_id']}'"
    )
    assert len(children) == 2
    results = {t.name: (t / "result.json").read_text() for t in trials}
    again = resume_experiment(outcome.folder)  # Tune's state is restored from the URI; nothing reruns
    assert [r["status"] for r in again.rows] == ["completed", "completed"]
    assert {t.name: (t / "result.json").read_text() for t in trials} == results
    # a new experiment of the same name elsewhere on the driver must not mix its trials into the store
    with pytest.raises(SpaTuneError, match="holds an experiment 'uristore' already"):
        run_experiment(load_space(path, [overrides[0], f"local_dir={tmp_path / 'other'}"]), str(path))
    assert not (tmp_path / "other").exists()
