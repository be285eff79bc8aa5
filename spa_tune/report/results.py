"""The results table of an experiment: one row per trial, its Pareto front, CSV and terminal forms."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..strata import stratum_label, stratum_of
from ..trial_values import SHEET_ROW, default_of, trial_values
from .values import number

SHEET_COLUMNS = ("sheet_file", "sheet_name", "sheet_row", "exp_id")
RESULT_METRICS = ("em", "f1", "remaining_pct", "learned_pct", "learned_params", "step", "total_steps")


def trial_status(ray_status: str, metrics: dict[str, Any]) -> str:
    """How a trial ended, from Ray's status and its last result.

    ``completed`` (all planned steps), ``stopped_early`` (terminated by the scheduler before its
    last step), ``failed`` (error after its retries) or ``unfinished`` (pending, running or paused
    when the experiment stopped; ``spa-tune resume`` continues it).
    """
    if ray_status == "ERROR":
        return "failed"
    if ray_status != "TERMINATED" or not metrics or "step" not in metrics:
        return "unfinished"
    if metrics.get("total_steps") and metrics["step"] < metrics["total_steps"]:
        return "stopped_early"
    return "completed"


def trial_row(
    trial_id: str, values: dict[str, Any], metrics: dict[str, Any],
    status: str, error: str, searched: Sequence[str], stratify_by: list[str] | None = None,
) -> dict[str, Any]:
    """One results row: method, density stratum, searched params, final metrics and status.

    ``values`` are the trial's explicit values (``trial_values``); keys it leaves out take their defaults.
    """
    full = values
    method = full.get("method", default_of("method"))
    row: dict[str, Any] = {
        "trial_id": trial_id,
        "method": method,
        "pruning_method": full.get("pruning_method", default_of("pruning_method")) if method != "dense" else "",
        "density": stratum_label(stratum_of(full, stratify_by)),
    }
    row.update({key: full.get(key) for key in searched})
    row.update({key: metrics.get(key) for key in RESULT_METRICS})
    row["status"] = status
    row["error"] = error
    row["node_id"] = metrics.get("node_id", "")
    return row


def error_line(trial) -> str:
    """The last line of a failed trial's error (its exception)."""
    try:
        error = trial.get_error()
    except Exception:  # the error file may be gone; the status still says failed
        error = None
    lines = [line for line in str(error or "").splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "failed"


def result_row(
    trial, ray_status: str, fixed: dict[str, Any], searched: Sequence[str], stratify_by: list[str] | None = None,
    sheet=None,
) -> dict:
    """The results row of one Ray Tune trial, whose status Ray gives as ``ray_status``.

    A trial of a sheet row (``sheet_row`` in its config) takes its row's values from the
    ``SheetPlan`` ``sheet`` and gets its origin columns (sheet file and name, row, EXP ID).
    """
    metrics = trial.last_result or {}
    status = trial_status(ray_status, metrics)
    error = error_line(trial) if status == "failed" else ""
    sheet_row = (trial.config or {}).get(SHEET_ROW)
    by_row = sheet.by_row() if sheet is not None else {}
    values = trial_values(fixed, trial.config or {}, {number: planned.values for number, planned in by_row.items()})
    row = trial_row(trial.trial_id, values, metrics, status, error, searched, stratify_by)
    if sheet is not None:
        row.update(sheet.origin(sheet_row) if sheet_row in by_row else dict.fromkeys(SHEET_COLUMNS, ""))
    return row


def rows_from_trials(
    trials, fixed: dict[str, Any], searched: Sequence[str], stratify_by: list[str] | None, sheet=None
) -> list[dict]:
    """Rows of Ray Tune trials (``ExperimentAnalysis(folder).trials``); see ``result_row``."""
    return [result_row(trial, trial.status, fixed, searched, stratify_by, sheet) for trial in trials]


def pareto_front(rows: Iterable[dict], x: str = "remaining_pct", y: str = "f1") -> list[dict]:
    """Rows not dominated by another: none has x as small and y as large, with one strictly better."""
    points = [r for r in rows if number(r.get(x)) is not None and number(r.get(y)) is not None]
    front = []
    for row in points:
        rx, ry = number(row[x]), number(row[y])
        dominated = any(
            number(o[x]) <= rx and number(o[y]) >= ry and (number(o[x]) < rx or number(o[y]) > ry) for o in points
        )
        if not dominated:
            front.append(row)
    return sorted(front, key=lambda r: number(r[x]))


def sorted_rows(rows: Iterable[dict]) -> list[dict]:
    """Rows grouped by density stratum, best F1 first within each."""
    return sorted(rows, key=lambda r: (str(r["density"]), -(number(r.get("f1")) or -1.0)))


def write_results_csv(rows: Sequence[dict], path: str | Path) -> Path:
    """Write ``results.csv`` (one row per trial, columns in the order of the first row)."""
    path = Path(path)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def completed_front(rows: Sequence[dict], x: str, y: str = "f1") -> list[dict]:
    """Pareto front of ``y`` against ``x`` over the completed trials (all trials when none completed).

    Trials stopped early were measured before their end, so they only count when nothing completed.
    """
    completed = [r for r in rows if r.get("status") == "completed"]
    return pareto_front(completed or list(rows), x=x, y=y)

