"""Bad sheets, data files and model names of an experiment, through ``spa-tune --space`` and ``validate``.

Each case: exit code 2, one stderr line ``spa-tune: error: `` naming the file and the field, cell,
row or example, no traceback, no Ray, and nothing written (the folder tree is unchanged, the
experiment folder ``runs/bad`` never appears). The library-level versions of the sheet and data
cases are in tests/sheet and tests/data; these prove they stop an experiment before Ray.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from spa_tune.cli import main
from spa_tune.data.squad_json import write_squad_json

from ..sheet.sheets import NEW_LAYOUT, OLD_LAYOUT, build_sheet, set_cell

TRIAL = {"model": "minilm", "num_train_epochs": 2}
GOOD = [{"id": "q1", "title": "T", "context": "Paris is in France.", "question": "Where is Paris?",
         "answers": {"text": ["France"], "answer_start": [12]}}]


def tree(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def write_space(tmp_path: Path, **sections) -> Path:
    data = {"name": "bad", "trial": dict(TRIAL), "scheduler": {"type": "none"}, "storage_path": str(tmp_path / "runs")}
    data.update(sections)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def assert_rejected(capsys, tmp_path: Path, space: Path, args: list[str], *fragments: str) -> str:
    """``spa-tune --space`` and ``spa-tune validate --space`` both refuse, alike, writing nothing."""
    before = tree(tmp_path)
    lines = []
    for command in (["--space"], ["validate", "--space"]):
        assert main([*command, str(space), *args]) == 2
        out, err = capsys.readouterr()
        assert err.count("\n") == 1 and err.startswith("spa-tune: error: ") and "Traceback" not in err, err
        for fragment in fragments:
            assert fragment in err, (fragment, err)
        lines.append(err)
    assert lines[0] == lines[1]
    assert tree(tmp_path) == before and not (tmp_path / "runs").exists()
    return lines[0]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch, no_ray):
    """Relative paths and any stray write land in tmp_path, where the tree comparison sees them."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def sheet(tmp_path) -> Path:
    return build_sheet(tmp_path / "hp.xlsx")


# --- the sheet --------------------------------------------------------------------------------

LABEL = "hp.xlsx [Details - SQuAD]"


@pytest.mark.parametrize(
    "cell, value, args, fragment",
    [
        ("L5", "fast", [], f"{LABEL} L5: learning_rate: Input should be a valid number, unable to parse string as a number (cell value 'fast', row 5)"),
        ("A9", "Z9", ["--rows", "all"], f"{LABEL} A9: unknown method code 'Z9'"),
        ("R9", "movement", [], f"{LABEL} R9: pruning_method 'movement' contradicts method code D1 in A9"),
        ("O9", 1.5, [], f"{LABEL} O9: final_threshold: 1.5 is outside [0, 1] (the kept fraction for pruning_method topK) (cell value 1.5, row 9)"),
        ("O9", "=0.15*2", [], f"{LABEL} O9: formula '=0.15*2' has no cached value"),
        ("X12", None, ["--rows", "D3", "--include-distillation"], f"{LABEL} A12: method code D3 distils from a teacher"),
    ],
)
def test_bad_sheet_cell(capsys, tmp_path, sheet, cell, value, args, fragment):
    set_cell(sheet, cell, value)
    assert_rejected(capsys, tmp_path, write_space(tmp_path), ["--sheet", str(sheet), *args], fragment)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--sheet-name", "Nope"], "hp.xlsx: no sheet 'Nope'; sheets: Details - SQuAD, HP description"),
        (["--sheet-name", "../Nope"], "hp.xlsx: no sheet '../Nope'"),
        (["--rows", "9-3"], f"{LABEL}: rows '9-3': range '9-3' runs backwards"),
        (["--rows", "3,,5"], f"{LABEL}: rows '3,,5': empty item in the selection"),
        (["--rows", "E3"], f"{LABEL}: rows 'E3' match no runnable row"),
        (["--rows", "D2"], f"{LABEL}: rows 'D2' match no runnable row (8 rows have an EXP ID; 5 are marked '*'; 1 left out as global codes"),
    ],
)
def test_bad_sheet_name_or_row_selection(capsys, tmp_path, sheet, args, fragment):
    assert_rejected(capsys, tmp_path, write_space(tmp_path), ["--sheet", str(sheet), *args], fragment)


def test_sheet_file_named_in_the_space_file_is_missing(capsys, tmp_path):
    space = write_space(tmp_path, grid_from_sheet={"path": "sheets/missing.xlsx"})
    assert_rejected(capsys, tmp_path, space, [], f"{tmp_path / 'sheets' / 'missing.xlsx'}: no such file")


@pytest.mark.parametrize("content", [b"name,learning_rate\nx,1e-4\n", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"])
def test_sheet_that_is_not_xlsx(capsys, tmp_path, content):
    (tmp_path / "hp.xlsx").write_bytes(content)  # a CSV, an old binary .xls renamed
    space = write_space(tmp_path, grid_from_sheet={"path": "hp.xlsx"})
    assert_rejected(capsys, tmp_path, space, [], f"{tmp_path / 'hp.xlsx'}: not a readable xlsx workbook")


@pytest.mark.parametrize(
    "header, args, fragment",
    [
        ([n if n != "EXP ID" else "Experiment" for n in NEW_LAYOUT], [], f"{LABEL}: header row 2 lacks the column(s) 'EXP ID'"),
        ([n if n != "learning_rate" else "learning_rat" for n in NEW_LAYOUT], [],
         f"{LABEL}: column 'learning_rat' in header row 2 is not a trial key (did you mean 'learning_rate'?)"),
        ([*NEW_LAYOUT, "output_dir"], [], f"{LABEL}: column 'output_dir' in header row 2 is set by spa-tune"),
        (OLD_LAYOUT, ["--rows", "marked"], f"{LABEL}: rows 'marked': the sheet has no Marker column"),
    ],
)
def test_bad_sheet_header(capsys, tmp_path, header, args, fragment):
    sheet = build_sheet(tmp_path / "hp.xlsx", header)
    assert_rejected(capsys, tmp_path, write_space(tmp_path), ["--sheet", str(sheet), *args], fragment)


@pytest.mark.parametrize(
    "column, value, fragment",
    [
        ("model", "models/missing", "AE5: model: no model folder at 'models/missing' (row 5)"),
        ("teacher_name_or_path", "/no/such/teacher", "X5: teacher_name_or_path: no model folder at '/no/such/teacher' (row 5)"),
        ("train_file", "data/none.json", "AE5: train_file: data/none.json: no such data file (row 5)"),
    ],
)
def test_sheet_row_naming_a_missing_model_or_data_file(capsys, tmp_path, column, value, fragment):
    (tmp_path / "models").mkdir()
    header = NEW_LAYOUT if column in NEW_LAYOUT else [*NEW_LAYOUT, column]
    sheet = build_sheet(tmp_path / "hp.xlsx", header)
    set_cell(sheet, fragment.split(":")[0], value)
    assert_rejected(capsys, tmp_path, write_space(tmp_path), ["--sheet", str(sheet)], f"{LABEL} {fragment}")


def test_sheet_row_naming_a_broken_data_file(capsys, tmp_path):
    broken = write_squad_json([dict(GOOD[0], answers={"text": ["Spain"], "answer_start": [12]})], tmp_path / "broken.json")
    sheet = build_sheet(tmp_path / "hp.xlsx", [*NEW_LAYOUT, "eval_file"])
    set_cell(sheet, "AE7", str(broken))
    assert_rejected(capsys, tmp_path, write_space(tmp_path), ["--sheet", str(sheet)],
                    f"{LABEL} AE7: eval_file: {broken}: example q1: answer 'Spain' does not match the context at offset 12",
                    "(row 7)")


# --- data files of the trial section ------------------------------------------------------------

def nested(qas: list[dict], context: str = "Paris is in France.") -> dict:
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}


QA = {"id": "q1", "question": "Where is Paris?", "answers": [{"text": "France", "answer_start": 12}]}


@pytest.mark.parametrize(
    "content, fragment",
    [
        ('{"data": [', "not valid JSON"),
        (json.dumps({"version": "1.1"}), "top level: missing field 'data'"),
        (json.dumps(nested([dict(QA, answers=[{"text": "France", "answer_start": 3}])])),
         "example q1: answer 'France' does not match the context at offset 3 ('is is ')"),
        (json.dumps(nested([dict(QA, answers=[{"text": "Germany", "answer_start": 12}])])),
         "example q1: answer 'Germany' does not match the context at offset 12"),
        (json.dumps(nested([dict(QA, answers=[])])), "example q1: no answers"),
        (json.dumps(nested([QA, dict(QA, question="Again?")])), "example q1: duplicate question id"),
        (json.dumps(nested([{k: v for k, v in QA.items() if k != "question"}])), "example q1: missing field 'question'"),
        (json.dumps({"version": "1.1", "data": []}), "no questions in the file"),
    ],
)
def test_bad_data_file_in_the_trial_section(capsys, tmp_path, content, fragment):
    good = write_squad_json(GOOD, tmp_path / "train.json")
    (tmp_path / "dev.json").write_text(content)
    space = write_space(tmp_path, trial=dict(TRIAL, train_file=str(good), eval_file="dev.json"))
    assert_rejected(capsys, tmp_path, space, [], f"{space}: trial.eval_file: {tmp_path / 'dev.json'}: {fragment}")


def test_missing_data_file_in_the_trial_section_or_set(capsys, tmp_path):
    good = write_squad_json(GOOD, tmp_path / "dev.json")
    space = write_space(tmp_path, trial=dict(TRIAL, train_file="train-v1.1.json", eval_file=str(good)))
    assert_rejected(capsys, tmp_path, space, [], f"{space}: trial.train_file: train-v1.1.json: no such data file")
    space = write_space(tmp_path, trial=dict(TRIAL, train_file=str(good), eval_file=str(good)))
    assert_rejected(capsys, tmp_path, space, ["--set", "eval_file=/no/dev.json"],
                    "spa-tune: error: --set: trial.eval_file: /no/dev.json: no such data file")


def test_a_newline_in_a_value_stays_on_the_one_error_line(capsys, tmp_path):
    space = write_space(tmp_path, trial=dict(TRIAL, train_file="train\nv1.1.json"))
    assert_rejected(capsys, tmp_path, space, [], f"{space}: trial.train_file: train\\nv1.1.json: no such data file")


def test_searched_data_file_that_is_missing(capsys, tmp_path):
    good = write_squad_json(GOOD, tmp_path / "dev.json")
    space = write_space(tmp_path, trial=dict(TRIAL, train_file=str(good)),
                        search={"eval_file": {"type": "grid", "values": [str(good), "dev-2.json"]}})
    assert_rejected(capsys, tmp_path, space, [], f"{space}: search.eval_file.values[1]: dev-2.json: no such data file")


# --- model names --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("model", "./no-such-model", "trial.model: no model folder at './no-such-model'"),
        ("model", "models/bert-small", "trial.model: no model folder at 'models/bert-small'"),
        ("model", "empty", "trial.model: model folder 'empty' has no config.json"),
        ("teacher_name_or_path", "~/no-such-teacher-folder-xyz", "trial.teacher_name_or_path: no model folder at '~/no-such-teacher"),
        ("tokenizer", "/no/such/tokenizer", "trial.tokenizer: no model folder at '/no/such/tokenizer'"),
        ("model", "~no-such-user-xyz/bert", "trial.model: no model folder at '~no-such-user-xyz/bert'"),
    ],
)
def test_model_name_that_is_a_missing_folder(capsys, tmp_path, key, value, fragment):
    (tmp_path / "models").mkdir()
    (tmp_path / "empty").mkdir()
    space = write_space(tmp_path, trial=dict(TRIAL, **{key: value}))
    assert_rejected(capsys, tmp_path, space, [], f"{space}: {fragment}")


def test_model_given_by_set_is_named_as_set(capsys, tmp_path):
    assert_rejected(capsys, tmp_path, write_space(tmp_path), ["--set", "model=../models/x"],
                    "spa-tune: error: --set: trial.model: no model folder at '../models/x'")


def test_good_names_and_files_pass(capsys, tmp_path, tiny_model_dir):
    """minilm, a hub id (not looked up), a model folder, readable data files: all accepted."""
    train, dev = write_squad_json(GOOD, tmp_path / "train.json"), write_squad_json(GOOD, tmp_path / "dev.json")
    for model in ("minilm", "bert-base-uncased", tiny_model_dir):
        space = write_space(tmp_path, trial=dict(TRIAL, model=model, train_file=str(train), eval_file="dev.json"))
        assert main(["validate", "--space", str(space)]) == 0, capsys.readouterr().err
    assert "ok: experiment bad" in capsys.readouterr().out
    sheet = build_sheet(tmp_path / "hp.xlsx", [*NEW_LAYOUT, "model", "train_file"])
    set_cell(sheet, "AE5", tiny_model_dir)
    set_cell(sheet, "AF5", str(dev))
    assert main(["validate", "--space", str(write_space(tmp_path)), "--sheet", str(sheet)]) == 0
    assert "3 trials, one per selected sheet row" in capsys.readouterr().out


def test_relative_data_files_and_model_folders_become_absolute(tmp_path, tiny_model_dir):
    """Trials run in their own folders: relative paths are resolved against the working folder first."""
    import shutil

    from spa_tune.spec.load import load_space

    (tmp_path / "data").mkdir()
    write_squad_json(GOOD, tmp_path / "data" / "dev.json")
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny")
    space = write_space(tmp_path, trial=dict(TRIAL, model="models/tiny", eval_file="data/dev.json", train_file="data/dev.json"))
    spec = load_space(space)
    assert spec.trial["model"] == str(tmp_path / "models" / "tiny")
    assert spec.trial["eval_file"] == spec.trial["train_file"] == str(tmp_path / "data" / "dev.json")
    assert load_space(space, ["trial.model=bert-base-uncased"]).trial["model"] == "bert-base-uncased"  # a hub id stays
