"""From ``spa-tune report --format json`` to ``spa-tune export`` without guessing folder names: each
trial's ``trial_folder`` and ``run_id`` in the report, ``export`` taking either of them or the
experiment folder with ``--trial``, and its ONNX file run by onnxruntime alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForQuestionAnswering

from spa_tune.cli import main
from tests.conftest import FINISHED_NAME
from tests.onnx_alone import logits_in_plain_onnxruntime, question_batch


def _report(capsys, *args) -> list[dict]:
    assert main(["report", *map(str, args), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)["trials"]


def _logits(folder) -> torch.Tensor:
    model = AutoModelForQuestionAnswering.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([[101, 2054, 2003, 1996, 3007, 102, 1996, 3007, 2003, 102]])).start_logits


def test_the_json_report_names_each_trials_folder_and_run(capsys, finished_experiment, tmp_path):
    trials = _report(capsys, finished_experiment, "--plot-dir", tmp_path)
    assert len(trials) == 2
    for trial in trials:
        assert trial["trial_folder"] == str(finished_experiment / f"trial_{trial['trial_id']}")
        assert len(trial["run_id"]) == 32
    uri = f"sqlite:///{finished_experiment / 'mlflow.db'}"
    by_name = {t["trial_id"]: t for t in _report(capsys, FINISHED_NAME, "--tracking-uri", uri, "--plot-dir", tmp_path)}
    for trial in trials:  # the MLflow form of the report names the same folder and run
        assert by_name[trial["trial_id"]]["run_id"] == trial["run_id"]
        assert by_name[trial["trial_id"]]["trial_folder"] == trial["trial_folder"]


def test_export_takes_the_reports_trial_folder_run_id_or_experiment_and_trial(capsys, finished_experiment, tmp_path):
    trial = next(t for t in _report(capsys, finished_experiment, "--plot-dir", tmp_path) if t["method"] == "fine-pruning")
    uri = f"sqlite:///{finished_experiment / 'mlflow.db'}"
    ways = {
        "folder": [trial["trial_folder"]],
        "run": [trial["run_id"], "--tracking-uri", uri],
        "experiment": [str(finished_experiment), "--trial", trial["trial_id"]],
    }
    for name, args in ways.items():
        assert main(["export", *args, "--out", str(tmp_path / name), "--latency-runs", "0"]) == 0, name
    capsys.readouterr()
    reference = _logits(tmp_path / "folder")
    for name in ("run", "experiment"):
        torch.testing.assert_close(_logits(tmp_path / name), reference)


@pytest.mark.slow
def test_from_the_json_report_to_an_onnxruntime_session(capsys, finished_experiment, tmp_path):
    trial = next(t for t in _report(capsys, finished_experiment, "--plot-dir", tmp_path) if t["method"] == "fine-pruning")
    assert main(["export", trial["trial_folder"], "--format", "onnx", "--out", str(tmp_path / "onnx"),
                 "--latency-runs", "0"]) == 0
    assert main(["export", trial["trial_folder"], "--out", str(tmp_path / "hf"), "--latency-runs", "0"]) == 0
    capsys.readouterr()
    inputs = question_batch()
    alone = logits_in_plain_onnxruntime(tmp_path / "onnx" / "model.onnx", inputs, tmp_path)
    model = AutoModelForQuestionAnswering.from_pretrained(tmp_path / "hf", trust_remote_code=True).eval()
    with torch.no_grad():
        reference = model(**inputs)
    np.testing.assert_allclose(alone["start"], reference.start_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(alone["end"], reference.end_logits.numpy(), atol=1e-4)


@pytest.mark.parametrize("trial", ["nope", "00000"])
def test_an_experiment_without_that_trial_is_one_line(capsys, finished_experiment, tmp_path, trial):
    assert main(["export", str(finished_experiment), "--trial", trial, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"spa-tune: error: --trial: {finished_experiment} has no trial {trial!r} (its trials: ")
    assert len(err.splitlines()) == 1 and not (tmp_path / "x").exists()
