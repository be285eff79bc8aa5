"""The experiment sheet's layout: where the header is and which columns mean what.

Row 1 holds group headings (ignored), row 2 the column names, data start at row 3. Columns are
found by their names, in any order; the method code is column A (or a column named ``Code``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ..errors import SpaTuneError

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

HEADER_ROW = 2
FIRST_DATA_ROW = 3
EXP_ID = "EXP ID"
REMAIN = "Effective encoder remain weights %"
EM = "EM"
F1 = "F1"
MARKER = "Marker"
CODE = "Code"
# Result columns spa-tune fills on write-back.
RESULT_COLUMNS = (REMAIN, EM, F1)


def openpyxl_module(where: str | Path) -> ModuleType:
    """``openpyxl``, which only sheets need (the ``sheets`` extra); a one-line error naming ``where`` if absent."""
    try:
        return importlib.import_module("openpyxl")
    except ImportError:
        raise SpaTuneError(f"{where}: reading and writing sheets needs openpyxl: pip install 'spa-tune[sheets]'") from None


def header_columns(ws: Worksheet) -> dict[str, int]:
    """Column name (row 2, stripped) -> 1-based column index; the first of duplicate names wins."""
    columns: dict[str, int] = {}
    for cell in ws[HEADER_ROW]:
        if isinstance(cell.value, str) and cell.value.strip():
            columns.setdefault(cell.value.strip(), cell.column)
    return columns


def code_column(columns: dict[str, int]) -> int:
    """The method-code column: one named ``Code`` if present, else column A."""
    return columns.get(CODE, 1)


def require_columns(columns: dict[str, int], needed: tuple[str, ...], where: str) -> None:
    """One-line error naming every missing column of ``needed``."""
    missing = [name for name in needed if name not in columns]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise SpaTuneError(f"{where}: header row {HEADER_ROW} lacks the column(s) {names}")


def sheet_label(path: str | Path, sheet: str) -> str:
    """``file [sheet]``, the prefix of every message about a sheet."""
    return f"{path} [{sheet}]"


def pick_sheet(sheetnames: list[str], wanted: str | None, path: str | Path) -> str:
    """The sheet to read: ``wanted``, or the first ``Details - SQuAD`` / ``Details - *`` sheet."""
    if wanted is not None:
        if wanted not in sheetnames:
            raise SpaTuneError(f"{path}: no sheet {wanted!r}; sheets: {', '.join(sheetnames)}")
        return wanted
    for name in ("Details - SQuAD", *[n for n in sheetnames if n.startswith("Details - ")], *sheetnames[:1]):
        if name in sheetnames:
            return name
    raise SpaTuneError(f"{path}: the workbook has no sheets")
