"""Export a trial of a finished Ray Tune experiment by its MLflow run id or its trial folder."""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient

from spa_tune.cli import main
from spa_tune.export.source import find_checkpoint


def trial_runs(folder) -> tuple[str, dict[str, str]]:
    """Tracking URI of the experiment and its child runs' ids by method."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    state = json.loads((folder / "experiment.json").read_text())
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs(
        [state["experiment_id"]], filter_string=f"tags.`mlflow.parentRunId` = '{state['parent_run_id']}'"
    )
    return uri, {run.data.tags["method"]: run.info.run_id for run in runs}


def test_run_id_and_trial_folder_name_the_same_checkpoint(finished_experiment):
    uri, runs = trial_runs(finished_experiment)
    client = MlflowClient(tracking_uri=uri)
    for run_id in runs.values():
        trial_id = client.get_run(run_id).data.tags["trial_id"]
        by_id = find_checkpoint(run_id, uri)
        assert by_id == find_checkpoint(str(finished_experiment / f"trial_{trial_id}"))
        assert by_id.parent.name == f"trial_{trial_id}"


def test_export_by_run_id_on_the_command_line(finished_experiment, tmp_path, capsys):
    uri, runs = trial_runs(finished_experiment)
    out = tmp_path / "model"
    assert main(["export", runs["fine-pruning"], "--out", str(out), "--tracking-uri", uri, "--latency-runs", "2"]) == 0
    printed = capsys.readouterr().out
    assert "parameters: dense" in printed and "latency (CPU, batch 1" in printed
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()

    adapter = tmp_path / "task.safetensors"
    assert main(["export", runs["splopa"], "--adapter-only", "--out", str(adapter), "--tracking-uri", uri]) == 0
    assert adapter.is_file() and "learned parameters:" in capsys.readouterr().out


def test_unknown_run_id_in_an_existing_store(finished_experiment, tmp_path, capsys):
    uri, _ = trial_runs(finished_experiment)
    assert main(["export", "f" * 32, "--out", str(tmp_path / "x"), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such MLflow run" in err
