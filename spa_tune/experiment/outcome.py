"""How a trial ended, as results.csv, the MLflow run and the sheet show it, divergence included.

A diverged trial ends without an error for Tune (``search/diverged.py``), so Tune calls it
terminated; its last result holds the reason, and here it becomes ``failed`` with that reason.
"""

from __future__ import annotations

import math
from typing import Any

from ..report.results import RESULT_METRICS, error_line, trial_status
from ..search.diverged import diverged_reason


def trial_diverged(trial, ray_status: str) -> str | None:
    """Why a trial that Tune records as ``ray_status`` diverged, or None."""
    return diverged_reason(trial.last_result) if ray_status == "TERMINATED" else None


def trial_outcome(trial, ray_status: str) -> tuple[str, str]:
    """``(status, error)`` of a trial: Tune's status, or ``failed`` with its reason for a diverged one."""
    reason = trial_diverged(trial, ray_status)
    if reason is not None:
        return "failed", reason
    status = trial_status(ray_status, trial.last_result or {})
    return status, error_line(trial) if status == "failed" else ""


def mark_diverged(row: dict[str, Any], trial, ray_status: str) -> dict[str, Any]:
    """A results row of ``trial``; a diverged trial's row says failed, its reason and no NaN metrics."""
    reason = trial_diverged(trial, ray_status)
    if reason is None:
        return row
    blank = {key: None for key in RESULT_METRICS if isinstance(row.get(key), float) and not math.isfinite(row[key])}
    return {**row, **blank, "status": "failed", "error": reason}
