"""Read an experiment sheet: every row with an EXP ID, its cells by column name, cached values.

Formulas are never evaluated: cells are read through the values the spreadsheet program cached
when it last saved the file. openpyxl does not compute formulas, so a file it saved has none; a
needed cell that is a formula without a cached value is an error that says so.
"""

from __future__ import annotations

import difflib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import TRIAL_KEYS
from ..errors import SpaTuneError
from ..spec.space import RESERVED_TRIAL_KEYS
from .layout import (
    CODE,
    EXP_ID,
    FIRST_DATA_ROW,
    MARKER,
    RESULT_COLUMNS,
    code_column,
    header_columns,
    openpyxl_module,
    pick_sheet,
    require_columns,
    sheet_label,
)

# Header names that are not trial keys but known to the layout (labels, results, links).
KNOWN_COLUMNS = {"Model", EXP_ID, MARKER, CODE, "VLKUP Code", *RESULT_COLUMNS}


@dataclass(frozen=True)
class SheetCell:
    """One cell: its coordinate (``L14``) and its value (cached value for formulas)."""

    coordinate: str
    value: Any
    uncached_formula: str | None = None  # a formula whose value the file does not hold


@dataclass(frozen=True)
class SheetRow:
    """One row with an EXP ID: the code, the marker and the trial-key cells that are set."""

    row: int
    exp_id: str
    code: SheetCell
    marker: SheetCell | None
    cells: dict[str, SheetCell] = field(default_factory=dict)


@dataclass(frozen=True)
class Sheet:
    """A read sheet: where it came from, its header and its runnable rows."""

    path: Path
    name: str
    columns: dict[str, int]
    rows: list[SheetRow]

    @property
    def label(self) -> str:
        """``file [sheet]`` for messages."""
        return sheet_label(self.path, self.name)

    @property
    def has_marker(self) -> bool:
        """Whether the sheet has the newer ``Marker`` column."""
        return MARKER in self.columns


def uncached_formula_error(where: str, cell: SheetCell) -> SpaTuneError:
    """The error for a needed cell that is a formula the file holds no value of."""
    return SpaTuneError(
        f"{where} {cell.coordinate}: formula {cell.uncached_formula!r} has no cached value (the file was last "
        "saved by a program that does not calculate formulas; open and save it in Excel or LibreOffice)"
    )


def trial_key_columns(columns: dict[str, int], where: str) -> dict[str, int]:
    """The header's trial-key columns; a header one typo away from a trial key is an error."""
    keys = {}
    for name, column in columns.items():
        if name in RESERVED_TRIAL_KEYS:  # a trial's folder is always trial_<id> under storage_path/name
            raise SpaTuneError(f"{where}: column {name!r} in header row 2 is set by spa-tune for every trial; remove it")
        if name in TRIAL_KEYS:
            keys[name] = column
        elif name not in KNOWN_COLUMNS and (close := difflib.get_close_matches(name, TRIAL_KEYS, n=1, cutoff=0.85)):
            raise SpaTuneError(f"{where}: column {name!r} in header row 2 is not a trial key (did you mean {close[0]!r}?)")
    return keys


def _open(path: Path, data_only: bool):
    openpyxl_module(path)
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        return load_workbook(path, data_only=data_only)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as err:
        raise SpaTuneError(f"{path}: not a readable xlsx workbook ({type(err).__name__}: {err})") from None


def _cell(values_ws, formulas_ws, row: int, column: int) -> SheetCell:
    value_cell = values_ws.cell(row=row, column=column)
    value = value_cell.value
    if value is None:
        formula = formulas_ws.cell(row=row, column=column).value
        if isinstance(formula, str) and formula.startswith("="):
            return SheetCell(value_cell.coordinate, None, formula)
    return SheetCell(value_cell.coordinate, value)


def read_sheet(path: str | Path, sheet: str | None = None) -> Sheet:
    """Every row with an EXP ID of ``sheet`` (default: ``Details - SQuAD`` or the first ``Details - *``)."""
    path = Path(path)
    if not path.is_file():
        raise SpaTuneError(f"{path}: no such file")
    values_wb = _open(path, data_only=True)
    formulas_wb = _open(path, data_only=False)
    name = pick_sheet(values_wb.sheetnames, sheet, path)
    values_ws, formulas_ws = values_wb[name], formulas_wb[name]
    where = sheet_label(path, name)
    columns = header_columns(values_ws)
    require_columns(columns, (EXP_ID,), where)
    keys = trial_key_columns(columns, where)
    if not keys:
        raise SpaTuneError(f"{where}: header row 2 has no hyper-parameter columns (named like trial keys, e.g. learning_rate)")
    rows = []
    for row in range(FIRST_DATA_ROW, values_ws.max_row + 1):
        exp_id = _cell(values_ws, formulas_ws, row, columns[EXP_ID])
        if exp_id.uncached_formula:
            raise uncached_formula_error(where, exp_id)
        if exp_id.value is None or not str(exp_id.value).strip():
            continue  # not a run
        rows.append(
            SheetRow(
                row=row,
                exp_id=str(exp_id.value).strip(),
                code=_cell(values_ws, formulas_ws, row, code_column(columns)),
                marker=_cell(values_ws, formulas_ws, row, columns[MARKER]) if MARKER in columns else None,
                cells={key: _cell(values_ws, formulas_ws, row, column) for key, column in keys.items()},
            )
        )
    return Sheet(path=path, name=name, columns=columns, rows=rows)
