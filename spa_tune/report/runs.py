"""Report rows from MLflow: one row per trial (child) run, with its final metrics and status tag."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from ..tracking.mlflow_runs import TRIAL_ID_TAG
from .values import parse_value

REPORT_METRICS = ("em", "f1", "remaining_pct", "learned_pct", "learned_params")
# Params that differ between trials without being a choice of the experiment (or that have a column):
# ``density`` is the stratum label, made of the method and the density keys, which are params themselves.
NOT_KEY_PARAMS = ("output_dir", "device", "method", "density")
# A run's own status where its trial never got a status tag (it died before the driver tagged it).
RUN_STATUSES = {"RUNNING": "running", "FAILED": "failed", "KILLED": "unfinished", "SCHEDULED": "unfinished"}


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str | None = None) -> list[Run]:
    """Every trial run of an MLflow experiment (a run with a parent), or only those of one parent run."""
    query = f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}'" if parent_run_id else ""
    found: list[Run] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], filter_string=query, max_results=1000, page_token=token)
        found.extend(run for run in page if MLFLOW_PARENT_RUN_ID in run.data.tags)
        token = page.token
        if not token:
            return sorted(found, key=lambda run: run.info.start_time or 0)


def varying_params(runs: Sequence[Run]) -> list[str]:
    """Params whose value is not the same in every run (a missing param counts as a value).

    Bookkeeping params (``output_dir``, ``device``), the ``density`` label and ``method`` (a column of
    its own) are left out.
    """
    keys = sorted({key for run in runs for key in run.data.params})
    return [
        key for key in keys
        if key not in NOT_KEY_PARAMS and len({run.data.params.get(key) for run in runs}) > 1
    ]


def run_status(run: Run) -> str:
    """The trial's status tag (completed, stopped_early, failed, running), else from the run's status."""
    tag = run.data.tags.get("status")
    if tag:
        return tag
    return RUN_STATUSES.get(run.info.status, "unfinished")


def run_row(run: Run, key_params: Iterable[str]) -> dict[str, Any]:
    """One report row: trial id, method, key params, final metric values, status, run id, and ``config``
    (all params: the trial's configuration)."""
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    row: dict[str, Any] = {
        "trial_id": tags.get(TRIAL_ID_TAG) or tags.get(MLFLOW_RUN_NAME) or run.info.run_id,
        "method": tags.get("method") or params.get("method", ""),
        "pruning_method": tags.get("pruning_method", ""),
        "density": tags.get("density", ""),
    }
    row.update({key: parse_value(params.get(key)) for key in key_params})
    row.update({key: metrics.get(key) for key in REPORT_METRICS})  # the value of the last step
    if isinstance(row["learned_params"], float) and row["learned_params"].is_integer():
        row["learned_params"] = int(row["learned_params"])  # a count; MLflow keeps floats
    row["status"] = run_status(run)
    row["run_id"] = run.info.run_id
    row["config"] = dict(params)  # the trial's whole configuration, for the seed groups
    return row


def rows_from_runs(runs: Sequence[Run], key_params: Iterable[str] = ()) -> tuple[list[dict], list[str]]:
    """Rows of trial runs and their key params: ``key_params`` plus the params that vary."""
    keys = list(dict.fromkeys([*key_params, *varying_params(runs)]))
    keys = [key for key in keys if key not in NOT_KEY_PARAMS]
    return [run_row(run, keys) for run in runs], keys
