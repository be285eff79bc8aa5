"""What a sheet row means as a trial: cell values normalised, the method code applied.

Empty cells and ``null`` mean "not set" (the space file's trial section or the default applies);
whole-number floats (``16.0``) become ints; the method code in column A sets the pruning method,
global ranking and distillation; the dense reference row (an EXP ID without a code or pruning
method) becomes ``method: dense``; a row with SPLoPA columns set becomes ``method: splopa``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import RANKED_METHODS, trial_config_problem
from ..errors import SpaTuneError
from ..spec.inputs import absolute_input, input_problem
from ..trial_values import trial_values
from .read import Sheet, SheetCell, SheetRow, uncached_formula_error


@dataclass(frozen=True)
class MethodCode:
    """What a method code of the original sheet stands for."""

    pruning_method: str
    global_topk: bool = False
    distillation: bool = False


METHOD_CODES = {
    "B1": MethodCode("magnitude"),
    "B2": MethodCode("magnitude", global_topk=True),
    "B3": MethodCode("magnitude", distillation=True),
    "B4": MethodCode("magnitude", global_topk=True, distillation=True),
    "C2": MethodCode("l0"),
    "C4": MethodCode("l0", distillation=True),
    "D1": MethodCode("topK"),
    "D2": MethodCode("topK", global_topk=True),
    "D3": MethodCode("topK", distillation=True),
    "D4": MethodCode("topK", global_topk=True, distillation=True),
    "E2": MethodCode("sigmoied_threshold"),
    "E4": MethodCode("sigmoied_threshold", distillation=True),
}
SPLOPA_KEYS = ("num_splopa_prototypes", "splopa_prototype_rank", "splopa_init_range")
# Keys whose "not set" is None: a ``null`` cell sets them explicitly (no regularization, no teacher).
NULLABLE_KEYS = ("regularization", "teacher_type", "teacher_name_or_path", "tokenizer")
DEFAULT_TEACHER_TYPE = "bert"


@dataclass(frozen=True)
class SheetTrial:
    """One selected row as a trial: its origin and its complete, validated trial values."""

    sheet: Sheet
    row: int
    exp_id: str
    code: str | None
    values: dict[str, Any]
    sheet_keys: tuple[str, ...]

    @property
    def method(self) -> str:
        """The trial's method (dense, fine-pruning or splopa)."""
        return self.values.get("method", "fine-pruning")


def cell_value(value: Any) -> Any:
    """A cell as a trial value: strings stripped, whole-number floats as ints, empty as None."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def is_null(value: Any) -> bool:
    """The sheet's way of writing "not set"."""
    return isinstance(value, str) and value.lower() in ("null", "none")


def row_code(row: SheetRow, where: str) -> str | None:
    """The row's method code (``D1``), checked against the known codes."""
    code = cell_value(row.code.value)
    if code is None:
        return None
    code = str(code).upper()
    if code not in METHOD_CODES:
        raise SpaTuneError(
            f"{where} {row.code.coordinate}: unknown method code {row.code.value!r} (known: {', '.join(METHOD_CODES)})"
        )
    return code


def row_values(row: SheetRow) -> tuple[dict[str, Any], dict[str, str]]:
    """The trial keys the row sets, and the cell each came from."""
    values, cells = {}, {}
    for key, cell in row.cells.items():
        value = cell_value(cell.value)
        if value is None or (is_null(value) and key not in NULLABLE_KEYS):
            continue
        values[key] = None if is_null(value) else value
        cells[key] = cell.coordinate
    return values, cells


def apply_code(values: dict[str, Any], code: str | None, cells: dict[str, str], code_cell: SheetCell, where: str) -> None:
    """Set what the method code means; a pruning_method cell that contradicts it is an error."""
    if code is None:
        return
    meaning = METHOD_CODES[code]
    stated = values.get("pruning_method")
    if stated is not None and stated != meaning.pruning_method:
        raise SpaTuneError(
            f"{where} {cells['pruning_method']}: pruning_method {stated!r} contradicts method code {code} "
            f"in {code_cell.coordinate} ({meaning.pruning_method})"
        )
    values["pruning_method"] = meaning.pruning_method
    if meaning.pruning_method in RANKED_METHODS:  # the code decides local or global, not the space file
        values["global_topk"] = meaning.global_topk
        cells.setdefault("global_topk", code_cell.coordinate)
    if meaning.distillation and values.get("teacher_type") is None:
        values["teacher_type"] = DEFAULT_TEACHER_TYPE
        cells.setdefault("teacher_type", code_cell.coordinate)
    if not meaning.distillation and values.get("teacher_name_or_path") is None:
        values["teacher_type"] = values["teacher_name_or_path"] = None  # no teacher from the space file either


def row_method(values: dict[str, Any], code: str | None, fixed: dict[str, Any]) -> str:
    """dense for the reference row, splopa where SPLoPA columns are set, else the space file's method."""
    if "method" in values:
        return values["method"]
    if code is None and "pruning_method" not in values:
        return "dense"
    if any(key in values for key in SPLOPA_KEYS):
        return "splopa"
    return fixed.get("method", "fine-pruning")


def check_cached(row: SheetRow, where: str) -> None:
    """A cell the row needs that is a formula without a cached value is an error."""
    for cell in (row.code, *row.cells.values()):
        if cell.uncached_formula:
            raise uncached_formula_error(where, cell)


def check_row_inputs(values: dict[str, Any], cells: dict[str, str], where: str, row: int) -> None:
    """A data file or model a row's cell names must exist (and be readable SQuAD JSON) before any cluster work."""
    for key, cell in cells.items():
        problem = input_problem(key, values.get(key))
        if problem is not None:
            raise SpaTuneError(f"{where} {cell}: {key}: {problem} (row {row})")


def row_trial(sheet: Sheet, row: SheetRow, fixed: dict[str, Any], space_source: str) -> SheetTrial:
    """One row as a trial: the space file's trial section, then the row's cells on top."""
    where = sheet.label
    check_cached(row, where)
    code = row_code(row, where)
    values, cells = row_values(row)
    apply_code(values, code, cells, row.code, where)
    method = row_method(values, code, fixed)
    if code and METHOD_CODES[code].distillation and not (values.get("teacher_name_or_path") or fixed.get("teacher_name_or_path")):
        raise SpaTuneError(
            f"{where} {row.code.coordinate}: method code {code} distils from a teacher, but neither the row nor "
            f"{space_source} trial section sets teacher_name_or_path"
        )
    merged = trial_values(fixed, {**values, "method": method})
    problem = trial_config_problem(merged)
    if problem is not None:
        key, message = problem
        if key in cells:
            got = row.cells[key].value if key in row.cells else row.code.value
            raise SpaTuneError(f"{where} {cells[key]}: {message.split(' (got ')[0]} (cell value {got!r}, row {row.row})")
        involved = [f"{k} in {c}" for k, c in cells.items() if k in message and k != key]
        at = f"cells {', '.join(involved)}" if involved else f"with the trial section of {space_source}"
        raise SpaTuneError(f"{where} row {row.row} ({at}): {message}")
    check_row_inputs(values, cells, where, row.row)
    merged = {key: absolute_input(key, value) for key, value in merged.items()}  # trials run in their own folders
    return SheetTrial(sheet=sheet, row=row.row, exp_id=row.exp_id, code=code, values=merged, sheet_keys=tuple(values))
