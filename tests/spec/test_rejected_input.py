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


# --- ASHA with trials that report once -----------------------------------------------------------

ONCE = ("reports each trial once, at its end, so scheduler asha could stop nothing; "
        "evaluate every N steps (eval_every: N) or set scheduler.type: none")
ASHA = {"type": "asha"}


@pytest.mark.parametrize(
    "sections, args, where",
    [
        ({}, [], "trial.eval_every: 0 (the default)"),
        ({"trial": dict(TRIAL, eval_every=10)}, ["--set", "eval_every=0"], "--set: trial.eval_every: 0"),
        ({"search": {"eval_every": {"type": "grid", "values": [10, 0]}}}, [], "search.eval_every.values[1]: 0"),
        ({"search": {"eval_every": {"type": "randint", "low": 0, "high": 20}}, "searcher": {"type": "random"}}, [],
         "search.eval_every.low: 0"),
        ({"search": {"eval_every": {"type": "choice", "values": [10, 20]}},
          "searcher": {"type": "random", "points_to_evaluate": [{"eval_every": 0}]}}, [],
         "searcher.points_to_evaluate[0].eval_every: 0"),
    ],
)
def test_asha_over_trials_that_evaluate_only_at_their_end(capsys, tmp_path, sections, args, where):
    space = write_space(tmp_path, scheduler=ASHA, **sections)
    source = "" if where.startswith("--set") else f"{space}: "
    assert_rejected(capsys, tmp_path, space, args, f"spa-tune: error: {source}{where} {ONCE}\n")


def test_asha_over_sheet_rows_that_evaluate_only_at_their_end(capsys, tmp_path):
    """A row's own eval_every cell is named; rows that take it from the trial section name that."""
    sheet = build_sheet(tmp_path / "hp.xlsx", [*NEW_LAYOUT, "eval_every"])  # eval_every in column AE
    for cell in ("AE5", "AE7", "AE9"):  # the marked rows
        set_cell(sheet, cell, 20)
    assert main(["validate", "--space", str(write_space(tmp_path, scheduler=ASHA)), "--sheet", str(sheet)]) == 0
    assert "3 trials, one per selected sheet row" in capsys.readouterr().out
    set_cell(sheet, "AE5", 0)
    space = write_space(tmp_path, scheduler=ASHA, trial=dict(TRIAL, eval_every=10))
    assert_rejected(capsys, tmp_path, space, ["--sheet", str(sheet)], f"{LABEL} AE5: eval_every: 0 {ONCE} (row 5)\n")
    plain = build_sheet(tmp_path / "plain.xlsx")
    assert_rejected(capsys, tmp_path, write_space(tmp_path, scheduler=ASHA), ["--sheet", str(plain)],
                    f"spa-tune: error: {tmp_path / 's.yaml'}: trial.eval_every: 0 (the default) {ONCE} (sheet row 5 takes it)\n")


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


# --- finished trials as model or teacher -------------------------------------------------------

def fake_trial(folder: Path, method: str, model: str = "minilm", step: int = 4) -> Path:
    """A trial folder with one checkpoint; the checks read its trial_config.json only, never the weights."""
    checkpoint = folder / f"checkpoint_{step:06d}"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trial_state.pt").write_bytes(b"")
    (checkpoint / "trial_config.json").write_text(json.dumps({"method": method, "model": model}))
    return folder


def fake_experiment(folder: Path, trials: dict[str, tuple[str, str, str]]) -> Path:
    """An experiment folder: experiment.json, results.csv (trial id: method, f1, status) and trial folders."""
    folder.mkdir(parents=True)
    (folder / "experiment.json").write_text("{}")
    lines = ["trial_id,method,f1,status"] + [f"{tid},{method},{f1},{status}" for tid, (method, f1, status) in trials.items()]
    (folder / "results.csv").write_text("\n".join(lines) + "\n")
    for tid, (method, _, _) in trials.items():
        fake_trial(folder / f"trial_{tid}", method)
    return folder


def trial_inputs(tmp_path: Path) -> None:
    """Finished trials and experiments (relative to tmp_path, the working folder) for the cases below."""
    fake_trial(tmp_path / "old" / "trial_fp", "fine-pruning")
    fake_trial(tmp_path / "old" / "trial_sp", "splopa")
    fake_trial(tmp_path / "old" / "trial_dense", "dense")
    fake_experiment(tmp_path / "no-dense", {"a": ("fine-pruning", "80.0", "completed"), "b": ("dense", "", "failed")})
    (tmp_path / "running").mkdir()
    (tmp_path / "running" / "experiment.json").write_text("{}")
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "notes.txt").write_text("x")
    (tmp_path / "unsaved" / "checkpoint_000002.tmp").mkdir(parents=True)


RUN = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("teacher_name_or_path", "old/trial_fp", "trial.teacher_name_or_path: old/trial_fp: trial is method fine-pruning, not a dense QA model"),
        ("model", "old/trial_sp/checkpoint_000004", "trial.model: old/trial_sp/checkpoint_000004: trial is method splopa, not a dense QA model"),
        ("teacher_name_or_path", "no-dense", "trial.teacher_name_or_path: no-dense: experiment has no completed dense trial (its trials: 1 dense failed, 1 fine-pruning completed)"),
        ("teacher_name_or_path", "running", "trial.teacher_name_or_path: running: experiment has no results.csv yet (still running or interrupted); name a trial folder instead"),
        ("model", "stuff", "trial.model: model folder 'stuff' has no config.json and is no spa-tune trial, checkpoint or experiment folder"),
        ("teacher_name_or_path", "unsaved", "trial.teacher_name_or_path: unsaved: no trial checkpoint in this folder (checkpoint_*/trial_state.pt)"),
        ("teacher_name_or_path", "old/trial_gone", "trial.teacher_name_or_path: no model folder at 'old/trial_gone'"),
        ("teacher_name_or_path", RUN, f"trial.teacher_name_or_path: {RUN}: no MLflow store at sqlite:///"),
    ],
)
def test_model_or_teacher_that_is_no_finished_dense_trial(capsys, tmp_path, monkeypatch, key, value, fragment):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    trial_inputs(tmp_path)
    space = write_space(tmp_path, trial=dict(TRIAL, **{key: value}))
    line = assert_rejected(capsys, tmp_path, space, [], f"{space}: {fragment}")
    if value == RUN:
        assert line.endswith(f"{tmp_path}/mlflow.db (set MLFLOW_TRACKING_URI, or name the trial folder)\n"), line


def test_searched_teacher_sheet_cell_and_train_name_the_pruned_trial(capsys, tmp_path):
    trial_inputs(tmp_path)
    space = write_space(tmp_path, search={"teacher_name_or_path": {"type": "grid", "values": ["old/trial_dense", "old/trial_fp"]}})
    assert_rejected(capsys, tmp_path, space, [],
                    f"{space}: search.teacher_name_or_path.values[1]: old/trial_fp: trial is method fine-pruning, not a dense QA model")
    sheet = build_sheet(tmp_path / "hp.xlsx", NEW_LAYOUT)
    set_cell(sheet, "X5", "old/trial_sp")
    assert_rejected(capsys, tmp_path, write_space(tmp_path), ["--sheet", str(sheet)],
                    f"{LABEL} X5: teacher_name_or_path: old/trial_sp: trial is method splopa, not a dense QA model (row 5)")
    # spa-tune train, by --set and in --config: the same line, no output folder
    before = tree(tmp_path)
    config = tmp_path / "t.yaml"
    config.write_text(f"model: no-dense\noutput_dir: {tmp_path / 'out'}\n")
    for args, line in [
        (["--set", "teacher_name_or_path=old/trial_fp", "--set", f"output_dir={tmp_path / 'out'}"],
         "--set: teacher_name_or_path: old/trial_fp: trial is method fine-pruning, not a dense QA model"),
        (["--config", str(config)],
         f"{config}: model: no-dense: experiment has no completed dense trial (its trials: 1 dense failed, 1 fine-pruning completed)"),
    ]:
        assert main(["train", "--quiet", *args]) == 2
        assert capsys.readouterr().err == f"spa-tune: error: {line}\n"
    assert tree(tmp_path) == sorted([*before, "t.yaml"])


def test_finished_dense_trials_pass_and_become_absolute(capsys, tmp_path):
    """A dense trial folder, its checkpoint folder, an experiment with a completed dense trial: accepted."""
    from spa_tune.spec.load import load_space

    trial_inputs(tmp_path)
    fake_experiment(tmp_path / "teachers", {"x": ("dense", "71.5", "completed"), "y": ("splopa", "90", "completed")})
    for key, value in [("teacher_name_or_path", "old/trial_dense"), ("model", "old/trial_dense/checkpoint_000004"),
                       ("teacher_name_or_path", "teachers"), ("model", "teachers")]:
        space = write_space(tmp_path, trial=dict(TRIAL, **{key: value}))
        assert main(["validate", "--space", str(space)]) == 0, capsys.readouterr().err
        assert load_space(space).trial[key] == str(tmp_path / value)


# --- target density ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "sections, fragment",
    [
        ({"trial": dict(TRIAL, target_remaining_pct=0.2)},
         "trial.target_remaining_pct: 0.2 is not above 0.28 %, what the encoder's unmasked parameters"),
        ({"trial": dict(TRIAL, target_remaining_pct=0)}, "target_remaining_pct: Input should be greater than 0"),
        ({"trial": dict(TRIAL, target_remaining_pct=101)}, "target_remaining_pct: Input should be less than or equal to 100"),
        ({"trial": dict(TRIAL, method="dense", target_remaining_pct=50)},
         "target_remaining_pct: method dense prunes nothing"),
        ({"search": {"target_remaining_pct": {"type": "grid", "values": [50, 0.1]}}},
         "search.target_remaining_pct.values[1]: 0.1 is not above 0.28 %"),
    ],
)
def test_a_target_density_that_cannot_be_reached(capsys, tmp_path, sections, fragment):
    assert_rejected(capsys, tmp_path, write_space(tmp_path, **sections), [], fragment)


def test_a_target_the_tiny_model_cannot_reach_is_named_in_spa_tune_train(capsys, tmp_path, tiny_model_dir):
    # the tiny BERT's biases and LayerNorms are 2.10 % of its encoder
    assert main(["train", "--set", f"model={tiny_model_dir}", "--set", "target_remaining_pct=2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "target_remaining_pct: 2 is not above 2.10 %" in err, err


@pytest.mark.parametrize(
    "sections,args,where",
    [
        ({"trial": dict(TRIAL, precision="fp16")}, [], "trial.precision"),
        ({"search": {"precision": {"type": "grid", "values": ["bf16", "fp16"]}}}, [], "search.precision.values[1]"),
        ({}, ["--set", "trial.precision=fp16"], "trial.precision"),
    ],
)
def test_fp16_for_trials_that_get_no_gpu(capsys, tmp_path, sections, args, where):
    assert_rejected(capsys, tmp_path, write_space(tmp_path, **sections), args,
                    f"{where}: fp16 needs a CUDA GPU and this space gives its trials none (resources.gpu: 0)")
