"""Writing results back into the experiment sheet: right cells, everything else kept, never over a changed file."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import openpyxl
import pytest
from openpyxl.styles import Font, PatternFill

from spa_tune.errors import SpaTuneError
from spa_tune.sheet.write import RowResult, SheetWriteBack, marker_text

SHEET = "Details - SQuAD"
HP = ["per_gpu_train_batch_size", "warmup_steps", "num_train_epochs", "learning_rate", "final_threshold",
      "pruning_method", "regularization", "final_lambda"]
SPLOPA = ["num_splopa_prototypes", "splopa_prototype_rank", "splopa_init_range"]
REFERENCE = Path(__file__).resolve().parents[3] / "shared/reference/hyperparameters.xlsx"
LINK4 = "http://mlflow:5000/#/experiments/1/runs/aaa"
LINK5 = "http://mlflow:5000/#/experiments/1/runs/bbb"


def make_sheet(path: Path, marker: bool = True, columns: tuple[str, ...] = ("EM", "F1")) -> Path:
    """A small sheet like the real one: headings row 1, names row 2, formulas in B, styles, a second sheet."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = SHEET
    names = [None, None, "Model", "EXP ID", "Effective encoder remain weights %", *columns, None, *HP]
    if marker:
        names += [*SPLOPA, "Marker"]
    ws["I1"], ws["M1"] = "Learning Rate", "Pruning"
    for col, name in enumerate(names, start=1):
        cell = ws.cell(2, col, name)
        cell.font = Font(bold=True)
    rows = [("", "bert-base-uncased", 100, 80.41, 88.07, 16, 5400, 3, 3e-5, None, None, None, None),
            ("B1", "magnitude_*", None, None, None, 16, 5400, 10, 3e-5, 0.9, "magnitude", None, None),
            ("D1", "topK_*", 50.0, 70.0, 80.0, 16, 5400, 10, 3e-5, 0.5, "topK", "l1", 0.1),
            ("E2", "sigmoied_*", None, None, None, 16, 5400, 10, 3e-5, 0.1, "sigmoied_threshold", "l1", 10.0)]
    for r, (code, exp_id, remain, em, f1, *hp) in enumerate(rows, start=3):
        ws.cell(r, 1, code)
        ws.cell(r, 2, f'=IF(E{r}<>"", ROUND(E{r},0)&A{r}, "")')
        ws.cell(r, 4, exp_id)
        for col, value in zip((5, 6, 7), (remain, em, f1)):
            ws.cell(r, col, value).number_format = "0.00"
        for col, value in enumerate(hp, start=9):
            ws.cell(r, col, value)
        if marker:
            ws.cell(r, len(names), "*" if r > 3 else None)
    ws["C3"].fill = PatternFill("solid", fgColor="FFFF00")
    other = wb.create_sheet("HP description")
    other["A1"], other["B1"], other["A2"] = "flag", "meaning", "=1+1"
    wb.save(path)
    return path


def done(row: int, link: str | None = LINK4, remain: float = 10.12345, em: float = 75.456, f1: float = 84.999):
    return RowResult(row, "completed", remain, em, f1, link)


def cells(path: Path, sheet: str = SHEET) -> list[list]:
    """Every value of a sheet, formulas as their text."""
    return [[c.value for c in row] for row in openpyxl.load_workbook(path)[sheet].iter_rows()]


def col(path: Path, name: str) -> int:
    ws = openpyxl.load_workbook(path)[SHEET]
    return next(c.column for c in ws[2] if c.value == name)


@pytest.fixture
def hp(tmp_path) -> Path:
    return make_sheet(tmp_path / "hp.xlsx")


def test_marker_text_for_every_status():
    assert marker_text(done(3)) == LINK4
    assert marker_text(done(3, link=None)) == ""
    stopped = RowResult(4, "stopped_early", None, None, None, LINK5, "ASHA:\n  F1 below the median")
    assert marker_text(stopped) == f"stopped early: ASHA: F1 below the median {LINK5}"
    failed = RowResult(4, "failed", None, None, None, None, "CUDA out of memory")
    assert marker_text(failed) == "failed: CUDA out of memory"
    assert marker_text(RowResult(4, "failed", None, None, None, LINK5)) == f"failed {LINK5}"


def test_copy_mode_fills_the_rows_and_leaves_the_source_alone(hp):
    before = hp.read_bytes()
    wb_back = SheetWriteBack.plan(hp, SHEET)
    assert wb_back.target == hp.with_name("hp.results.xlsx") and not wb_back.target.exists()
    written = wb_back.write([done(4)])
    assert written == hp.with_name("hp.results.xlsx")
    assert hp.read_bytes() == before
    ws = openpyxl.load_workbook(written)[SHEET]
    assert (ws["E4"].value, ws["F4"].value, ws["G4"].value) == (10.1235, 75.456, 84.999)
    marker = ws.cell(4, col(written, "Marker"))
    assert marker.value == LINK4 and marker.hyperlink.target == LINK4  # the "*" is consumed
    assert ws.cell(6, col(written, "Marker")).value == "*"


def test_formulas_styles_formats_and_other_sheets_are_kept(hp):
    written = SheetWriteBack.plan(hp, SHEET).write([done(4), done(6)])
    ws = openpyxl.load_workbook(written)[SHEET]
    assert [ws.cell(r, 2).value for r in range(3, 7)] == [f'=IF(E{r}<>"", ROUND(E{r},0)&A{r}, "")' for r in range(3, 7)]
    assert ws["D2"].font.bold and ws["C3"].fill.fgColor.rgb.endswith("FFFF00")
    assert ws["F4"].number_format == "0.00" and ws["E3"].number_format == "0.00"
    assert ws["I1"].value == "Learning Rate" and ws["F3"].value == 80.41
    assert cells(written, "HP description") == cells(hp, "HP description")
    original, now = cells(hp), cells(written)
    changed = {(r, c) for r, row in enumerate(original) for c, v in enumerate(row) if now[r][c] != v}
    marker = col(hp, "Marker") - 1
    assert changed == {(r - 1, c) for r in (4, 6) for c in (4, 5, 6, marker)}


def test_rewrite_with_the_growing_list_is_idempotent(hp):
    back = SheetWriteBack.plan(hp, SHEET)
    back.write([done(4)])
    first = back.write([done(4), done(5, LINK5)])
    again = back.write([done(4), done(5, LINK5)])
    assert first == again == hp.with_name("hp.results.xlsx")
    assert not hp.with_name("hp.results-2.xlsx").exists()
    expected = cells(again)
    back.write([done(4), done(5, LINK5)])
    assert cells(again) == expected and expected[4][4:7] == [10.1235, 75.456, 84.999]


def test_stopped_and_failed_rows_are_emptied_with_the_reason(hp):
    back = SheetWriteBack.plan(hp, SHEET)
    results = [RowResult(5, "stopped_early", 50.0, 70.0, 80.0, LINK5, "ASHA stopped it at step 40"),
               RowResult(6, "failed", None, None, None, None, "CUDA out of memory")]
    ws = openpyxl.load_workbook(back.write(results))[SHEET]
    marker = col(hp, "Marker")
    assert [ws.cell(5, c).value for c in (5, 6, 7)] == [None, None, None]  # the old result is removed
    assert ws.cell(5, marker).value == f"stopped early: ASHA stopped it at step 40 {LINK5}"
    assert ws.cell(6, marker).value == "failed: CUDA out of memory" and ws.cell(6, marker).hyperlink is None
    assert ws["B5"].value == '=IF(E5<>"", ROUND(E5,0)&A5, "")'


def test_old_layout_without_marker_gets_a_marker_column(tmp_path):
    old = make_sheet(tmp_path / "old.xlsx", marker=False)
    written = SheetWriteBack.plan(old, SHEET).write([done(4)])
    ws = openpyxl.load_workbook(written)[SHEET]
    last = 8 + len(HP)
    assert ws.cell(2, last + 1).value == "Marker" and ws.cell(2, last + 1).font.bold
    assert ws.cell(4, last + 1).value == LINK4 and ws.cell(2, last + 2).value is None


def test_in_place_backs_up_the_original_once(hp):
    original = hp.read_bytes()
    back = SheetWriteBack.plan(hp, SHEET, in_place=True)
    assert back.write([done(4)]) == hp
    backups = sorted(hp.parent.glob("hp.backup-*.xlsx"))
    assert len(backups) == 1 and re.fullmatch(r"hp\.backup-\d{8}-\d{6}\.xlsx", backups[0].name)
    assert backups[0].read_bytes() == original and back.backup == backups[0]
    back.write([done(4), done(5)])
    assert sorted(hp.parent.glob("hp.backup-*")) == backups
    assert openpyxl.load_workbook(hp)[SHEET]["F5"].value == 75.456
    assert sorted(p.name for p in hp.parent.iterdir()) == sorted(["hp.xlsx", backups[0].name])  # no temp files left


def test_earlier_results_file_is_not_overwritten(hp):
    hp.with_name("hp.results.xlsx").write_bytes(b"an earlier experiment")
    back = SheetWriteBack.plan(hp, SHEET)
    assert back.target.name == "hp.results-2.xlsx"
    back.write([done(4)])
    assert hp.with_name("hp.results.xlsx").read_bytes() == b"an earlier experiment"
    hp.with_name("hp.results-3.xlsx").touch()
    assert SheetWriteBack.plan(hp, SHEET).target.name == "hp.results-4.xlsx"


def test_changed_target_is_never_overwritten(hp, caplog):
    back = SheetWriteBack.plan(hp, SHEET)
    first = back.write([done(4)])
    wb = openpyxl.load_workbook(first)  # the user edits the results file meanwhile
    wb[SHEET]["C6"] = "my note"
    wb.save(first)
    edited = first.read_bytes()
    with caplog.at_level(logging.WARNING, logger="spa_tune.sheet"):
        diverted = back.write([done(4), done(5, LINK5)])
    assert diverted == hp.with_name("hp.results-2.xlsx") and first.read_bytes() == edited
    message = caplog.records[-1].getMessage()
    assert "changed since" in message and str(first) in message and str(diverted) in message and "\n" not in message
    ws = openpyxl.load_workbook(diverted)[SHEET]
    assert ws["F4"].value == 75.456 and ws["F5"].value == 75.456 and ws["C6"].value is None
    assert back.write([done(4), done(5, LINK5), done(6)]) == diverted  # continues in the new copy


def test_in_place_source_changed_before_the_first_write_goes_to_a_copy(hp, caplog):
    back = SheetWriteBack.plan(hp, SHEET, in_place=True)
    wb = openpyxl.load_workbook(hp)
    wb[SHEET]["C6"] = "edited"
    wb.save(hp)
    edited = hp.read_bytes()
    with caplog.at_level(logging.WARNING, logger="spa_tune.sheet"):
        written = back.write([done(4)])
    assert written == hp.with_name("hp.results.xlsx") and hp.read_bytes() == edited
    assert any("changed since" in r.getMessage() for r in caplog.records)
    ws = openpyxl.load_workbook(written)[SHEET]
    assert ws["F4"].value == 75.456 and ws["C6"].value == "edited"  # built from the current source


def test_in_place_change_after_a_write_diverts_from_the_backup(hp):
    back = SheetWriteBack.plan(hp, SHEET, in_place=True)
    back.write([done(4)])
    wb = openpyxl.load_workbook(hp)
    wb[SHEET]["C6"] = "edited"
    wb.save(hp)
    edited = hp.read_bytes()
    written = back.write([done(4), done(5)])
    assert written == hp.with_name("hp.results.xlsx") and hp.read_bytes() == edited
    ws = openpyxl.load_workbook(written)[SHEET]
    assert ws["F4"].value == ws["F5"].value == 75.456 and ws["C6"].value is None


def test_target_opened_in_a_spreadsheet_program_is_not_overwritten(hp, caplog):
    back = SheetWriteBack.plan(hp, SHEET)
    first = back.write([done(4)])
    before = first.read_bytes()
    hp.with_name(".~lock.hp.results.xlsx#").write_text("user,host")
    with caplog.at_level(logging.WARNING, logger="spa_tune.sheet"):
        assert back.write([done(4), done(5)]) == hp.with_name("hp.results-2.xlsx")
    assert "is open in a spreadsheet program" in caplog.records[-1].getMessage()
    assert first.read_bytes() == before


def test_failure_mid_write_leaves_the_previous_target(hp, monkeypatch):
    back = SheetWriteBack.plan(hp, SHEET)
    target = back.write([done(4)])
    before = target.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        back.write([done(4), done(5)])
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(p.name for p in hp.parent.iterdir()) == ["hp.results.xlsx", "hp.xlsx"]
    assert back.write([done(4), done(5)]) == target  # the state is still consistent


def test_state_round_trip_continues_the_same_target(hp):
    back = SheetWriteBack.plan(hp, SHEET, in_place=True)
    back.write([done(4)])
    state = json.loads(json.dumps(back.to_dict()))
    resumed = SheetWriteBack.from_dict(state)
    assert resumed == back and resumed.to_dict() == state
    assert resumed.write([done(4), done(5)]) == hp
    assert sorted(p.name for p in hp.parent.iterdir()) == sorted(["hp.xlsx", back.backup.name])
    fresh = SheetWriteBack.plan(hp, SHEET)
    again = SheetWriteBack.from_dict(json.loads(json.dumps(fresh.to_dict())))
    assert again.target_sha256 is None and again.write([done(6)]) == hp.with_name("hp.results.xlsx")


def plan_error(folder: Path, *args, **kwargs) -> str:
    """The one-line message of the error ``plan`` raises; checks that nothing was written."""
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(SpaTuneError) as info:
        SheetWriteBack.plan(*args, **kwargs)
    assert sorted(p.name for p in folder.iterdir()) == before
    message = str(info.value)
    assert "\n" not in message
    return message


def test_plan_errors_name_the_file_and_write_nothing(tmp_path, hp):
    assert str(tmp_path / "nope.xlsx") in plan_error(tmp_path, tmp_path / "nope.xlsx", SHEET)
    message = plan_error(tmp_path, hp, "Details - MNLI")
    assert str(hp) in message and "Details - MNLI" in message and "Details - SQuAD, HP description" in message
    bad = make_sheet(tmp_path / "bad.xlsx", columns=("Exact match",))
    message = plan_error(tmp_path, bad, SHEET)
    assert f"{bad} [{SHEET}]" in message and "'EM'" in message and "'F1'" in message
    (tmp_path / "junk.xlsx").write_text("not a workbook")
    assert str(tmp_path / "junk.xlsx") in plan_error(tmp_path, tmp_path / "junk.xlsx", SHEET)


@pytest.mark.parametrize("lock", ["~$hp.xlsx", ".~lock.hp.xlsx#"])
def test_plan_refuses_a_sheet_open_in_a_spreadsheet_program_in_place(hp, lock):
    hp.with_name(lock).write_text("")
    message = plan_error(hp.parent, hp, SHEET, in_place=True)
    assert str(hp) in message and lock in message
    assert SheetWriteBack.plan(hp, SHEET).target.name == "hp.results.xlsx"  # a copy is fine


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions")
def test_plan_refuses_read_only_file_and_folder(hp):
    hp.chmod(0o444)
    assert "read-only" in plan_error(hp.parent, hp, SHEET, in_place=True)
    hp.parent.chmod(0o555)
    try:
        assert "not writable" in plan_error(hp.parent, hp, SHEET)
    finally:
        hp.parent.chmod(0o755)


def test_plan_refuses_unwritable_targets_also_as_root(hp, monkeypatch):
    real_access = os.access
    denied = {hp}
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) not in denied and real_access(path, mode))
    message = plan_error(hp.parent, hp, SHEET, in_place=True)
    assert str(hp) in message and "read-only" in message
    denied = {hp.parent}
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) not in denied and real_access(path, mode))
    message = plan_error(hp.parent, hp, SHEET)
    assert str(hp.with_name("hp.results.xlsx")) in message and "not writable" in message


@pytest.mark.skipif(not REFERENCE.is_file(), reason="../shared/reference/hyperparameters.xlsx not present")
def test_reference_sheet_keeps_formulas_and_other_sheets(tmp_path):
    copy = tmp_path / "hyperparameters.xlsx"
    shutil.copyfile(REFERENCE, copy)
    written = SheetWriteBack.plan(copy, SHEET).write([done(7)])
    wb = openpyxl.load_workbook(written)
    assert wb.sheetnames == openpyxl.load_workbook(REFERENCE, read_only=True).sheetnames
    ws = wb[SHEET]
    assert ws["B7"].value == '=IF(E7<>"", ROUND(E7,0)&A7, "")' and ws["B8"].value == '=IF(E8<>"", ROUND(E8,0)&A8, "")'
    assert (ws["E7"].value, ws["F7"].value, ws["AD7"].value) == (10.1235, 75.456, LINK4)
    assert ws["F6"].value == pytest.approx(78.8363292336802)
    assert copy.read_bytes() == REFERENCE.read_bytes()


def test_copy_mode_source_edited_before_the_first_write_is_used_with_a_warning(hp, caplog):
    back = SheetWriteBack.plan(hp, SHEET)
    wb = openpyxl.load_workbook(hp)
    wb[SHEET]["C6"] = "edited"
    wb.save(hp)
    with caplog.at_level(logging.WARNING, logger="spa_tune.sheet"):
        written = back.write([done(4)])
    assert written == hp.with_name("hp.results.xlsx")
    assert [r.getMessage() for r in caplog.records] == [
        f"{hp} changed since spa-tune read it; the results copy starts from its current content"]
    assert openpyxl.load_workbook(written)[SHEET]["C6"].value == "edited"


def test_target_edited_while_spa_tune_writes_is_not_overwritten(hp, monkeypatch):
    import spa_tune.sheet.write as write_module

    back = SheetWriteBack.plan(hp, SHEET)
    first = back.write([done(4)])
    real_fill, edits = write_module._fill, []

    def fill_and_edit(ws, columns, result):
        if not edits:  # the user saves the file between spa-tune's read and its replace
            edits.append(first.read_bytes() + b"\0")
            first.write_bytes(edits[0])
        real_fill(ws, columns, result)

    monkeypatch.setattr(write_module, "_fill", fill_and_edit)
    assert back.write([done(4), done(5)]) == hp.with_name("hp.results-2.xlsx")
    assert first.read_bytes() == edits[0]
    assert openpyxl.load_workbook(back.target)[SHEET]["F5"].value == 75.456


def test_a_row_that_no_longer_holds_its_exp_id_is_not_written(hp, caplog):
    wb = openpyxl.load_workbook(hp)
    wb[SHEET].insert_rows(4)  # someone inserted a row: the trial's row 4 moved to 5
    wb.save(hp)
    writer = SheetWriteBack.plan(hp, SHEET)
    moved = RowResult(4, "completed", 10.0, 70.0, 80.0, LINK4, exp_id="magnitude_*")
    with caplog.at_level(logging.WARNING, logger="spa_tune.sheet"):
        target = writer.write([moved, RowResult(6, "completed", 1.0, 2.0, 3.0, LINK5, exp_id="topK_*")])
    ws = openpyxl.load_workbook(target)[SHEET]
    assert ws["F4"].value is None and ws["F5"].value is None and ws["F6"].value == 2.0
    assert "holds EXP ID None, not 'magnitude_*'" in caplog.text
