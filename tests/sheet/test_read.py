"""Reading experiment sheets: layouts, cell values, method codes, row selection, and every bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from spa_tune.cli import main
from spa_tune.errors import SpaTuneError
from spa_tune.sheet.plan import plan_sheet
from spa_tune.sheet.read import read_sheet
from spa_tune.sheet.select import select_rows
from spa_tune.spec.space import SheetSpec, SpaceSpec

from .sheets import NEW_LAYOUT, OLD_LAYOUT, ROWS, SHEET, build_sheet, cache_formula_value, set_cell

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "hyperparameters.xlsx"


def trials(path: Path, rows: str | None = "all", trial: dict | None = None, **flags) -> dict[int, dict]:
    """Row number -> trial values of a selection."""
    spec = SpaceSpec(name="t", trial=trial or {}, grid_from_sheet=SheetSpec(path=str(path), rows=rows, **flags))
    return {r.row: r.values for r in plan_sheet(spec).rows}


@pytest.fixture
def sheet(tmp_path) -> Path:
    return build_sheet(tmp_path / "hp.xlsx")


def test_rows_become_trials_with_codes_dense_and_splopa(sheet):
    got = trials(sheet)
    assert sorted(got) == [3, 5, 6, 7, 9, 10]  # D2 (global) and D3 (distillation) left out
    assert got[3]["method"] == "dense" and got[3]["num_train_epochs"] == 3
    assert got[5]["method"] == "fine-pruning" and got[5]["pruning_method"] == "sigmoied_threshold"
    assert got[7]["method"] == "splopa" and got[7]["num_splopa_prototypes"] == 64
    assert got[9]["pruning_method"] == "topK" and got[9]["final_threshold"] == 0.3
    assert got[9]["regularization"] is None  # "null" means no regularization
    # whole-number floats become ints; empty cells are not set
    assert got[5]["per_gpu_train_batch_size"] == 16 and isinstance(got[5]["per_gpu_train_batch_size"], int)
    assert got[5]["teacher_type"] is None and "final_lambda" not in got[9]


def test_codes_set_global_and_distillation_when_included(sheet):
    got = trials(sheet, include_global=True, include_distillation=True)
    assert got[11]["global_topk"] is True
    assert got[12]["teacher_type"] == "bert" and got[12]["teacher_name_or_path"] == "bert-teacher"


def test_the_code_decides_local_or_global_and_distillation_over_the_space_file(sheet):
    teacher = {"global_topk": True, "teacher_type": "bert", "teacher_name_or_path": "t"}
    got = trials(sheet, rows="D1,D2,D3", trial=teacher, include_global=True, include_distillation=True)
    assert got[9]["global_topk"] is False and got[11]["global_topk"] is True  # D1 local, D2 global
    assert got[9]["teacher_name_or_path"] is None and got[12]["teacher_name_or_path"] == "bert-teacher"


def test_a_broken_row_that_is_not_selected_does_not_matter(sheet):
    set_cell(sheet, "A10", "Z9")  # unknown code
    set_cell(sheet, "O6", "=0.1*2")  # formula without a cached value
    assert sorted(trials(sheet, rows="3,5,9")) == [3, 5, 9]
    assert "A10: unknown method code 'Z9'" in _error(lambda: trials(sheet, rows="10"))
    assert "O6: formula '=0.1*2' has no cached value" in _error(lambda: trials(sheet, rows="E2"))


def test_sheet_wins_and_trial_section_fills(sheet):
    got = trials(sheet, trial={"method": "splopa", "model": "tiny", "final_lambda": 7, "learning_rate": 1.0})
    assert got[5]["model"] == "tiny" and got[5]["learning_rate"] == 3e-5  # the sheet wins where both set a key
    assert got[5]["final_lambda"] == 10 and got[9]["final_lambda"] == 7
    assert got[5]["method"] == "splopa"  # rows without SPLoPA cells take the space file's method
    assert got[3]["method"] == "dense"


def test_old_layout_and_any_column_order_read_the_same(tmp_path, sheet):
    new = trials(sheet, rows="all")
    old_rows = [(r, c, e, {k: v for k, v in cells.items() if "splopa" not in k}, m) for r, c, e, cells, m in ROWS]
    old = trials(build_sheet(tmp_path / "old.xlsx", OLD_LAYOUT, old_rows))
    assert {row: v for row, v in new.items() if row != 7} == {row: v for row, v in old.items() if row != 7}
    assert old[7]["method"] == "fine-pruning"
    shuffled = list(NEW_LAYOUT[2:])
    random.Random(3).shuffle(shuffled)
    assert trials(build_sheet(tmp_path / "shuffled.xlsx", [None, None, *shuffled])) == new


def test_formulas_read_through_cached_values_and_uncached_labels_are_fine(sheet):
    set_cell(sheet, "O9", "=0.15*2")  # final_threshold of row 9 as a formula
    with pytest.raises(SpaTuneError, match=r"O9: formula '=0.15\*2' has no cached value"):
        trials(sheet)
    cache_formula_value(sheet, "O9", "0.3")
    assert trials(sheet)[9]["final_threshold"] == 0.3  # column B's label formulas have no cache either


def test_selection_rules(sheet):
    s = read_sheet(sheet)
    pick = lambda sel, **kw: [r.row for r in select_rows(s, sel, **kw)]  # noqa: E731
    assert pick(None) == [5, 7, 9]  # marked by default; D2/D3 marked but left out
    assert pick("all") == [3, 5, 6, 7, 9, 10]
    assert pick("3,6-9") == [3, 6, 7, 9]
    assert pick("E2") == [5, 6, 7] and pick("d1, 3") == [3, 9, 10]
    assert pick("topK_1.0_*_epochs") == [9, 10] and pick("l1_*") == [5, 6, 7]
    assert pick("D2,D3", include_global=True, include_distillation=True) == [11, 12]
    assert pick("marked", include_global=True) == [5, 7, 9, 11]


def test_default_selection_without_marker_column_is_all(tmp_path):
    s = read_sheet(build_sheet(tmp_path / "old.xlsx", OLD_LAYOUT))
    assert [r.row for r in select_rows(s, None)] == [3, 5, 6, 7, 9, 10]


def _error(call) -> str:
    with pytest.raises(SpaTuneError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message
    return message


def test_bad_sheets_and_selections(tmp_path, sheet):
    assert "no such file" in _error(lambda: read_sheet(tmp_path / "missing.xlsx"))
    (tmp_path / "text.xlsx").write_text("not a workbook")
    assert "not a readable xlsx" in _error(lambda: read_sheet(tmp_path / "text.xlsx"))
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    assert "not a readable xlsx" in _error(lambda: read_sheet(tmp_path / "old.xls"))
    message = _error(lambda: read_sheet(sheet, "Details - MNLI"))
    assert "no sheet 'Details - MNLI'" in message and "Details - SQuAD, HP description" in message
    no_id = build_sheet(tmp_path / "noid.xlsx", [n if n != "EXP ID" else "Experiment" for n in NEW_LAYOUT])
    assert "lacks the column(s) 'EXP ID'" in _error(lambda: read_sheet(no_id))
    typo = build_sheet(tmp_path / "typo.xlsx", [n if n != "learning_rate" else "learning_rat" for n in NEW_LAYOUT])
    assert "column 'learning_rat' in header row 2 is not a trial key (did you mean 'learning_rate'?)" in _error(lambda: read_sheet(typo))
    s = read_sheet(sheet)
    assert "rows 'E3' match no runnable row" in _error(lambda: select_rows(s, "E3"))
    assert "1 left out as distillation codes" in _error(lambda: select_rows(s, "D3,12"))
    assert "range '9-3' runs backwards" in _error(lambda: select_rows(s, "9-3"))
    assert "empty item" in _error(lambda: select_rows(s, "3,,5"))
    old = read_sheet(build_sheet(tmp_path / "old.xlsx", OLD_LAYOUT))
    assert "has no Marker column" in _error(lambda: select_rows(old, "marked"))


@pytest.mark.parametrize(
    "cell, value, expected",
    [
        ("L5", "fast", "L5: learning_rate: Input should be a valid number"),
        ("R9", "movement", "R9: pruning_method 'movement' contradicts method code D1"),
        ("R3", "movement", "R3: pruning_method: Input should be"),
        ("A9", "Z9", "A9: unknown method code 'Z9'"),
        ("O9", 1.5, "O9: final_threshold: 1.5 is outside [0, 1]"),
        ("I5", -2.0, "I5: per_gpu_train_batch_size: Input should be greater than or equal to 1"),
        ("M5", "1e-2x", "M5: mask_scores_learning_rate: Input should be a valid number"),
        ("U5", "l3", "U5: regularization: Input should be 'l1' or 'l0'"),
    ],
)
def test_bad_cells_are_named(sheet, cell, value, expected):
    set_cell(sheet, cell, value)
    message = _error(lambda: trials(sheet))
    assert f"{sheet} [{SHEET}] {expected}" in message


def test_distillation_without_teacher_is_an_error(sheet):
    set_cell(sheet, "X12", None)
    assert "A12: method code D3 distils from a teacher" in _error(lambda: trials(sheet, include_distillation=True))


def test_sheet_show_json_and_table(sheet, capsys):
    assert main(["sheet", "show", str(sheet), "--rows", "3,E2", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["row"] for r in records] == [3, 5, 6, 7]
    assert {"row", "exp_id", "code", "method", "learning_rate"} <= set(records[1])
    assert records[0]["method"] == "dense" and records[3]["method"] == "splopa" and records[1]["code"] == "E2"
    assert main(["sheet", "show", str(sheet)]) == 0
    out = capsys.readouterr().out
    assert "3 trial(s)" in out and "l1_*_soft" in out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--rows", "E3"], "match no runnable row"),
        (["--sheet-name", "Nope"], "no sheet 'Nope'; sheets: Details - SQuAD, HP description"),
    ],
)
def test_sheet_show_errors_exit_2_with_one_line(sheet, capsys, args, expected):
    assert main(["sheet", "show", str(sheet), *args]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.skipif(not REFERENCE.is_file(), reason="../shared/reference/hyperparameters.xlsx not present")
def test_the_original_sheet():
    s = read_sheet(REFERENCE)
    assert s.name == SHEET and len(s.rows) == 46 and s.has_marker
    got = trials(REFERENCE)
    assert got[3]["method"] == "dense" and got[3]["num_train_epochs"] == 3
    assert sum(v["method"] == "splopa" for v in got.values()) == 16
    assert got[21]["regularization"] == "l0" and got[21]["pruning_method"] == "l0"
    assert "0 are marked '*'" in _error(lambda: trials(REFERENCE, rows=None))
    mnli = read_sheet(REFERENCE, "Details - MNLI")  # another column order, a VLKUP Code label column
    assert mnli.rows and "max_seq_length" in mnli.columns


def test_without_openpyxl_a_sheet_is_one_line_naming_the_extra(sheet, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openpyxl", None)  # as if the sheets extra were not installed
    with pytest.raises(SpaTuneError) as err:
        read_sheet(sheet, None)
    assert str(err.value) == f"{sheet}: reading and writing sheets needs openpyxl: pip install 'spa-tune[sheets]'"
