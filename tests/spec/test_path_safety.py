"""User-given names never become paths outside their folder: no ``..``, ``/`` or ``*`` as a path part.

Where a name meets the file system:
- the space's ``name`` is the experiment folder ``<storage_path>/<name>`` (and Ray Tune's run
  name): one plain part, checked by the schema (letters, digits, ``_.-``, no ``..``);
- trial folders are ``trial_<Ray trial id>``; a sheet row's EXP ID, the sheet (tab) name and the
  Model label are only MLflow tags and results.csv cells;
- write-back files are ``NAME.results[-N].xlsx`` / ``NAME.backup-<stamp>.xlsx`` beside the sheet,
  named after the sheet file alone;
- the MLflow experiment name is a row in the store, never a folder (artifacts go to
  ``<experiment folder>/mlartifacts``).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from spa_tune.cli import main
from spa_tune.errors import SpaTuneError
from spa_tune.experiment.folder import experiment_dir
from spa_tune.experiment.run import trial_dirname
from spa_tune.sheet.plan import plan_sheet
from spa_tune.sheet.write import RowResult, SheetWriteBack
from spa_tune.spec.load import load_space, validate_space

from ..sheet.sheets import build_sheet, set_cell

EVIL = "../../etc/x*"


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("name", ["../x", "..", "a/b", "/abs", "x*", "a..b", ".hidden", "a\\b", "x\n", "a b", "", "x" * 101])
def test_experiment_names_that_are_not_one_plain_folder_are_rejected(tmp_path, capsys, no_ray, name):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "ok", "storage_path": str(tmp_path / "runs")}))
    before = tree(tmp_path)
    for argv in (["validate", "--space", str(path)], ["--space", str(path)]):
        assert main([*argv, "--set", f"name={json.dumps(name)}"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("spa-tune: error: --set: name: ") and err.count("\n") == 1, err
    path.write_text(yaml.safe_dump({"name": name, "storage_path": str(tmp_path / "runs")}))
    assert main(["validate", "--space", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"spa-tune: error: {path}: name: ")
    assert tree(tmp_path) == before and not (tmp_path / "runs").exists()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=20))
def test_an_accepted_name_is_one_folder_right_under_storage_path(name):
    try:
        spec = validate_space({"name": name, "storage_path": "/srv/runs", "scheduler": {"type": "none"}}, "space.yaml")
    except SpaTuneError as err:
        assert str(err).startswith("space.yaml: name: ") and "\n" not in str(err)
        return
    folder = experiment_dir(spec)
    assert folder.parent == Path("/srv/runs") and folder.name == name
    assert ".." not in name and "/" not in name and "*" not in name and "\\" not in name


def test_trial_folders_are_named_by_ray_trial_id_only():
    assert trial_dirname(SimpleNamespace(trial_id="ab12_00003", config={"sheet_row": 5})) == "trial_ab12_00003"


@pytest.fixture
def deep_sheet(tmp_path) -> Path:
    """A sheet three folders down whose marked row 5 has the EXP ID ``../../etc/x*``."""
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    return set_cell(build_sheet(tmp_path / "a" / "b" / "c" / "hp.xlsx"), "D5", EVIL)


def test_evil_exp_id_plans_and_writes_back_nothing_outside(tmp_path, deep_sheet, capsys, no_ray):
    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump({"name": "safe", "trial": {"model": "minilm", "eval_every": 10}, "storage_path": str(tmp_path / "runs")}))
    before = tree(tmp_path)
    argv = ["--space", str(space), "--sheet", str(deep_sheet), "--rows", EVIL, "--write-back"]
    assert main(["validate", *argv]) == 0  # the EXP ID selects its own row; write-back is planned
    assert "1 trials, one per selected sheet row" in capsys.readouterr().out
    assert main(["sheet", "show", str(deep_sheet), "--rows", EVIL, "--format", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["row"] == 5 and record["exp_id"] == EVIL
    assert tree(tmp_path) == before  # planning wrote nothing anywhere

    spec = load_space(space, [f"grid_from_sheet.path={json.dumps(str(deep_sheet))}", f"grid_from_sheet.rows={json.dumps(EVIL)}"])
    plan = plan_sheet(spec, str(space))
    assert plan.origin(5)["exp_id"] == EVIL  # a tag and a results.csv cell, not a path
    writer = SheetWriteBack.plan(deep_sheet, None)
    target = writer.write([RowResult(5, "completed", 10.0, 70.0, 80.0, "http://127.0.0.1:5000/#/x", exp_id=EVIL)])
    assert target == deep_sheet.with_name("hp.results.xlsx")
    assert tree(tmp_path) == sorted(before + ["a/b/c/hp.results.xlsx"])


def test_mlflow_experiment_name_is_not_a_path(tmp_path):
    from spa_tune.tracking.mlflow_runs import start_parent_run

    folder = tmp_path / "runs" / "safe"
    folder.mkdir(parents=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    runs = start_parent_run(uri, EVIL, "safe", {"searcher": "grid"}, (folder / "mlartifacts").as_uri())
    assert runs.client().get_experiment(runs.experiment_id).name == EVIL
    assert tree(tmp_path) == ["runs", "runs/safe", "runs/safe/mlflow.db"]
