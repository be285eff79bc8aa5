"""The trials a space's ``grid_from_sheet`` asks for, fixed before Ray starts and kept for resume.

``plan_sheet`` reads the sheet, selects rows and turns each into a checked trial configuration;
the plan is saved in the experiment folder (``sheet_rows.json``), so ``spa-tune resume`` runs the
same rows even after write-back consumed the ``*`` markers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpaTuneError
from ..spec.load import REPORTS_ONCE, eval_every_of
from ..spec.space import SpaceSpec
from ..trial_values import trial_config
from .layout import sheet_label
from .read import read_sheet
from .rows import row_trial
from .select import default_selection, select_rows

PLAN_FILE = "sheet_rows.json"


@dataclass
class PlannedRow:
    """One row as it will run: origin, method code and the trial values (trial section included)."""

    row: int
    exp_id: str
    code: str | None
    values: dict[str, Any]
    sheet_keys: list[str]
    cells: dict[str, str] = field(default_factory=dict)


@dataclass
class SheetPlan:
    """The selected rows of one sheet."""

    path: str
    sheet: str
    selection: str
    rows: list[PlannedRow]

    def by_row(self) -> dict[int, PlannedRow]:
        """Rows by sheet row number."""
        return {r.row: r for r in self.rows}

    def origin(self, row: int) -> dict[str, str]:
        """MLflow tags and results.csv columns that say where a trial came from."""
        planned = self.by_row()[row]
        return {"sheet_file": self.path, "sheet_name": self.sheet, "sheet_row": str(row), "exp_id": planned.exp_id}

    def varying_keys(self) -> list[str]:
        """Trial keys whose value differs between the rows (the sheet's own "searched" keys)."""
        keys: list[str] = []
        for planned in self.rows:
            keys += [k for k in planned.values if k not in keys]
        return [k for k in keys if len({repr(r.values.get(k)) for r in self.rows}) > 1]

    def values(self) -> dict[int, dict[str, Any]]:
        """Row number -> trial values."""
        return {r.row: r.values for r in self.rows}

    def origins(self) -> dict[int, dict[str, str]]:
        """Row number -> origin tags."""
        return {r.row: self.origin(r.row) for r in self.rows}

    def to_json(self) -> str:
        """The plan as JSON."""
        return json.dumps(asdict(self), indent=1, default=str)

    @classmethod
    def from_json(cls, text: str) -> SheetPlan:
        """Read a plan written by ``to_json``."""
        data = json.loads(text)
        return cls(**{**data, "rows": [PlannedRow(**row) for row in data["rows"]]})


def plan_sheet(spec: SpaceSpec, source: str = "space file") -> SheetPlan | None:
    """The rows of ``spec.grid_from_sheet`` as trials, checked against the space; None without a sheet."""
    settings = spec.grid_from_sheet
    if settings is None:
        return None
    sheet = read_sheet(settings.path, settings.sheet)
    selection = str(settings.rows) if settings.rows is not None else default_selection(sheet)
    rows = select_rows(sheet, selection, settings.include_distillation, settings.include_global)
    planned = []
    for row in rows:
        trial = row_trial(sheet, row, dict(spec.trial), source)
        cells = {key: cell.coordinate for key, cell in row.cells.items() if key in trial.sheet_keys}
        planned.append(PlannedRow(row.row, row.exp_id, trial.code, trial.values, list(trial.sheet_keys), cells))
    plan = SheetPlan(str(sheet.path), sheet.name, selection, planned)
    check_plan(plan, spec, sheet.label, source)
    return plan


def check_plan(plan: SheetPlan, spec: SpaceSpec, where: str, source: str = "space file") -> None:
    """Rows seeding a search must lie inside its domains, and the search must have room for them."""
    if spec.searcher.type != "optuna":
        return
    if spec.num_samples < len(plan.rows):
        raise SpaTuneError(
            f"{source}: num_samples: {spec.num_samples} is fewer than the {len(plan.rows)} sheet rows that seed the search"
        )
    for planned in plan.rows:
        for key, value in row_point(planned, spec).items():
            problem = outside(spec.search[key], value)
            if problem:
                cell = planned.cells.get(key)
                at = f"{where} {cell}" if cell else f"{where} row {planned.row} ({key} from the trial section or default)"
                raise SpaTuneError(f"{at}: {key} {value!r} is outside search.{key} ({problem})")


def row_point(planned: PlannedRow, spec: SpaceSpec) -> dict[str, Any]:
    """The row's value of every searched key (trial section and defaults fill empty cells)."""
    full = trial_config(planned.values, {}).model_dump()
    return {key: full[key] for key in spec.search}


def row_points(plan: SheetPlan, spec: SpaceSpec) -> dict[int, dict[str, Any]]:
    """``{row: point}`` for seeding a searcher."""
    return {planned.row: row_point(planned, spec) for planned in plan.rows}


def outside(domain, value: Any) -> str | None:
    """Why ``value`` lies outside a search domain, or None."""
    if domain.type in ("grid", "choice"):
        return None if value in domain.values else f"one of {domain.values}"
    if domain.type in ("randint", "lograndint"):
        return None if domain.low <= value < domain.high else f"{domain.low} <= x < {domain.high}"
    return None if domain.low <= value <= domain.high else f"{domain.low} <= x <= {domain.high}"


def save_plan(folder: Path, plan: SheetPlan) -> None:
    """Keep the plan in the experiment folder."""
    (folder / PLAN_FILE).write_text(plan.to_json())


def load_plan(folder: Path) -> SheetPlan | None:
    """The plan saved with an experiment, if it ran sheet rows."""
    path = folder / PLAN_FILE
    return SheetPlan.from_json(path.read_text()) if path.exists() else None


def check_rows_report(plan, spec: SpaceSpec, source: str) -> None:
    """The rows of a ``SheetPlan`` that would run under ASHA must evaluate during training too.

    Called where an experiment is checked (``spa-tune --space``, ``validate``), after its sheet was
    read. A row's own ``eval_every`` cell is named by its cell; a row that takes the value from the
    trial section (or its default) names the trial section of ``source``, the space file.
    """
    if plan is None or spec.scheduler.type != "asha" or "eval_every" in spec.search:
        return  # searched: the search's values were checked with the space
    for planned in plan.rows:
        if eval_every_of(planned.values) != 0:
            continue
        cell = planned.cells.get("eval_every")
        if cell:
            raise SpaTuneError(f"{sheet_label(plan.path, plan.sheet)} {cell}: eval_every: 0 {REPORTS_ONCE} (row {planned.row})")
        default = "" if "eval_every" in spec.trial else " (the default)"
        raise SpaTuneError(f"{source}: trial.eval_every: 0{default} {REPORTS_ONCE} (sheet row {planned.row} takes it)")
