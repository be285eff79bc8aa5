"""Sheet rows as Ray Tune trials: exactly the rows with grid, the first points with Optuna, results written back."""

from __future__ import annotations

import csv

import openpyxl
import optuna
import pytest
from mlflow import MlflowClient

from spa_tune.experiment.run import run_experiment
from spa_tune.search.build import optuna_storage_url
from spa_tune.spec.load import load_space

from ..sheet.sheets import NEW_LAYOUT, build_sheet
from .conftest import write_space

# Tiny-model rows: only the cells that differ; the space's trial section fills the rest.
GRID_ROWS = [
    (3, None, "tiny-dense", {}, "*"),
    (5, "D1", "topK_*", {"final_threshold": 0.5, "learning_rate": 3e-3}, "*"),
    (6, "D1", "topK_*", {"final_threshold": 0.2, "learning_rate": 3e-3}, "*"),
    # same density as row 5 but cannot learn: stratified ASHA stops it at the epoch-2 rung
    (7, "D1", "topK_*", {"final_threshold": 0.5, "learning_rate": 1e-7}, "*"),
    (8, "D1", "topK_*", {"final_threshold": 0.1, "learning_rate": 3e-3}, None),
]


def _column(ws, name: str) -> int:
    return next(c.column for c in ws[2] if c.value == name)


def test_grid_runs_exactly_the_marked_rows_and_writes_them_back(ray_runtime, tmp_path, tiny_model_dir):
    sheet = build_sheet(tmp_path / "hp.xlsx", NEW_LAYOUT, GRID_ROWS)
    before = sheet.read_bytes()
    asha = {"type": "asha", "time_attr": "epoch", "grace_period": 2, "reduction_factor": 2}
    path = write_space(
        tmp_path, tiny_model_dir, "sheetgrid", trial={"num_train_epochs": 4}, scheduler=asha,
        max_concurrent_trials=1, grid_from_sheet={"path": "hp.xlsx", "write_back": True},
    )
    outcome = run_experiment(load_space(path), str(path))
    rows = {int(r["sheet_row"]): r for r in outcome.rows}
    assert sorted(rows) == [3, 5, 6, 7]  # marked rows only, each once
    assert rows[3]["method"] == "dense" and rows[6]["density"] == "fine-pruning final_threshold=0.2"
    assert rows[7]["status"] == "stopped_early" and rows[5]["status"] == "completed"
    assert all(r["exp_id"] and r["sheet_name"] == "Details - SQuAD" and r["sheet_file"] == str(sheet) for r in rows.values())
    with open(outcome.results_csv) as fh:
        assert sorted(int(r["sheet_row"]) for r in csv.DictReader(fh)) == [3, 5, 6, 7]

    client = MlflowClient(outcome.runs.tracking_uri)
    children = client.search_runs(
        [outcome.runs.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{outcome.runs.parent_run_id}'"
    )
    by_row = {int(run.data.tags["sheet_row"]): run for run in children}
    assert sorted(by_row) == [3, 5, 6, 7]
    assert by_row[6].data.params["final_threshold"] == "0.2" and by_row[6].data.tags["exp_id"] == "topK_*"
    assert by_row[3].data.tags["sheet_file"] == str(sheet)

    assert sheet.read_bytes() == before  # the copy is written, never the original
    ws = openpyxl.load_workbook(tmp_path / "hp.results.xlsx")["Details - SQuAD"]
    remain, em, f1, marker = (_column(ws, n) for n in ("Effective encoder remain weights %", "EM", "F1", "Marker"))
    for row in (3, 5, 6):
        assert ws.cell(row, f1).value == pytest.approx(rows[row]["f1"], abs=0.01)
        assert ws.cell(row, em).value == pytest.approx(rows[row]["em"], abs=0.01)
        assert ws.cell(row, remain).value == pytest.approx(rows[row]["remaining_pct"], abs=0.01)
        assert by_row[row].info.run_id in ws.cell(row, marker).value  # the * is consumed by the run link
    assert ws.cell(3, remain).value == 100
    assert ws.cell(7, f1).value is None and ws.cell(7, marker).value.startswith("stopped early")
    assert ws.cell(8, marker).value is None and ws.cell(8, f1).value is None  # not selected, untouched
    assert ws["B5"].value.startswith("=IF(E5")  # formulas kept


def test_optuna_evaluates_the_rows_first_and_goes_on(ray_runtime, tmp_path, tiny_model_dir):
    sheet = build_sheet(tmp_path / "hp.xlsx", NEW_LAYOUT, GRID_ROWS[1:3])
    path = write_space(
        tmp_path, tiny_model_dir, "sheetoptuna", trial={"num_train_epochs": 2},
        search={
            "final_threshold": {"type": "choice", "values": [0.2, 0.5, 1.0]},
            "learning_rate": {"type": "loguniform", "low": 1e-5, "high": 1e-2},
        },
        searcher={"type": "optuna", "seed": 1}, num_samples=3, scheduler={"type": "none"},
        max_concurrent_trials=1, grid_from_sheet={"path": str(sheet)},
    )
    outcome = run_experiment(load_space(path), str(path))
    study = optuna.load_study(study_name="sheetoptuna", storage=optuna_storage_url(outcome.folder))
    assert len(study.trials) == 3
    assert study.trials[0].params == pytest.approx({"final_threshold": 0.5, "learning_rate": 3e-3})
    assert study.trials[1].params == pytest.approx({"final_threshold": 0.2, "learning_rate": 3e-3})
    origins = sorted(str(r["sheet_row"]) for r in outcome.rows)
    assert origins == ["", "5", "6"]  # the third trial is Optuna's own proposal
    assert all(r["status"] == "completed" for r in outcome.rows)
