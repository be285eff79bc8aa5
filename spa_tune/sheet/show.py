"""``spa-tune sheet show``: the trials a sheet selection would create, without running anything."""

from __future__ import annotations

import json
from typing import Any

from ..text_table import format_table
from .plan import PlannedRow, SheetPlan

TABLE_FIRST = ("row", "exp_id", "code", "method")


def trial_records(plan: SheetPlan) -> list[dict[str, Any]]:
    """One object per trial: ``row``, ``exp_id``, ``code``, ``method`` and the trial's config keys."""
    return [_record(planned) for planned in plan.rows]


def _record(planned: PlannedRow) -> dict[str, Any]:
    values = {k: v for k, v in planned.values.items() if k != "method"}
    return {"row": planned.row, "exp_id": planned.exp_id, "code": planned.code, "method": planned.values["method"], **values}


def format_trials(plan: SheetPlan, form: str = "table") -> str:
    """The plan as JSON, or as a table of the columns that tell the rows apart."""
    records = trial_records(plan)
    if form == "json":
        return json.dumps(records, indent=2)
    columns = list(TABLE_FIRST) + [k for k in plan.varying_keys() if k not in TABLE_FIRST]
    header = f"{plan.path} [{plan.sheet}]: {len(records)} trial(s) from rows {plan.selection!r}"
    return header + "\n" + format_table(records, columns)
