"""Driver-side Tune callbacks: when a trial ends, tag its MLflow run and write its sheet row."""

from __future__ import annotations

import logging

from ray.tune import Callback

from ..report.results import error_line, trial_row, trial_status
from ..tracking.mlflow_runs import ExperimentRuns, find_trial_run, run_link, set_trial_outcome

log = logging.getLogger("spa_tune.tracking")


class TrialOutcomeTags(Callback):
    """Sets ``status`` (completed, stopped_early, failed) and ``stopped_early_at`` on child runs.

    Only the driver knows that a scheduler stopped a trial, so this is the one thing logged from
    the driver; it uses the experiment's tracking URI, never a local fallback.
    """

    def __init__(self, runs: ExperimentRuns):
        self.runs = runs

    def _tag(self, trial, ray_status: str) -> None:
        metrics = trial.last_result or {}
        status = trial_status(ray_status, metrics)
        tags = {}
        if status == "stopped_early":
            tags["stopped_early_at"] = metrics.get("step")
        if status == "failed":
            tags["error"] = error_line(trial)
        try:
            set_trial_outcome(self.runs, trial.trial_id, status, tags)
        except Exception as err:  # tracking must not take the experiment down
            log.warning("could not tag the MLflow run of trial %s: %s", trial.trial_id, err)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        """A trial finished or was stopped by the scheduler."""
        self._tag(trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        """A trial failed after its retries."""
        self._tag(trial, "ERROR")


class SheetResults(Callback):
    """Writes every finished sheet trial into its row as soon as it ends (write-back).

    An interrupted experiment keeps what finished; each write carries all results so far, so the
    write-back is idempotent and a resumed experiment writes the same target.
    """

    def __init__(self, folder, runs: ExperimentRuns, plan):
        self.folder = folder
        self.runs = runs
        self.plan = plan
        self.results: dict[int, object] = {}

    def _write(self, trial, ray_status: str) -> None:
        from ..sheet.outcome import load_writer, row_result, save_writer

        config = dict(trial.config or {})
        sheet_row = config.pop("sheet_row", None)
        if sheet_row not in self.plan.by_row():
            return
        metrics = trial.last_result or {}
        status = trial_status(ray_status, metrics)
        error = error_line(trial) if status == "failed" else ""
        row = trial_row(trial.trial_id, config, self.plan.by_row()[sheet_row].values, metrics, status, error, [])
        run_id = find_trial_run(self.runs, trial.trial_id)
        result = row_result({**row, "sheet_row": sheet_row}, run_link(self.runs, run_id) if run_id else None)
        if result is None:
            return
        self.results[sheet_row] = result
        try:  # the write-back state lives in the experiment folder, so a resumed run goes on from it
            writer = load_writer(self.folder)
            writer.write(list(self.results.values()))
            save_writer(self.folder, writer)
        except Exception as err:  # the results stay in results.csv and MLflow; say so, go on
            log.warning("could not write trial %s into sheet row %s: %s", trial.trial_id, sheet_row, err)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        """A trial finished or was stopped by the scheduler."""
        self._write(trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        """A trial failed after its retries."""
        self._write(trial, "ERROR")
