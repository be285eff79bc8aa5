"""Driver-side Tune callbacks: when a trial ends, tag its MLflow run and write its sheet row."""

from __future__ import annotations

import logging

from ray.tune import Callback

from ..report.results import result_row
from ..tracking.mlflow_runs import ExperimentRuns, set_trial_outcome, trial_run_link
from .outcome import mark_diverged, trial_outcome

log = logging.getLogger("spa_tune.tracking")


class TrialOutcomeTags(Callback):
    """Sets ``status`` (completed, stopped_early, failed) and ``stopped_early_at`` or ``error`` on child runs.

    Only the driver knows that a scheduler stopped a trial, so this is the one thing logged from
    the driver; it uses the experiment's tracking URI, never a local fallback.
    """

    def __init__(self, runs: ExperimentRuns):
        self.runs = runs

    def _tag(self, trial, ray_status: str) -> None:
        metrics = trial.last_result or {}
        status, error = trial_outcome(trial, ray_status)
        tags = {}
        if status == "stopped_early":
            tags["stopped_early_at"] = metrics.get("step")
        if status == "failed":
            tags["error"] = error
        try:
            set_trial_outcome(self.runs, trial.trial_id, status, tags)
        except Exception as err:  # tracking must not take the experiment down
            log.warning("could not tag the MLflow run of trial %s: %s", trial.trial_id, err)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        """A trial finished, was stopped by the scheduler or diverged."""
        self._tag(trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        """A trial failed after its retries."""
        self._tag(trial, "ERROR")


class SheetResults(Callback):
    """Writes every finished sheet trial into its row as soon as it ends (write-back).

    Each write carries the results of every trial that has ended so far (a resumed experiment
    included), so the write-back is idempotent and an interrupted experiment keeps what finished.
    The write-back state lives in the experiment folder, so a resumed run goes on from it.
    """

    def __init__(self, folder, runs: ExperimentRuns, plan):
        self.folder = folder
        self.runs = runs
        self.plan = plan
        self.links: dict[str, str | None] = {}

    def _link(self, trial_id: str) -> str | None:
        if trial_id not in self.links:
            self.links[trial_id] = trial_run_link(self.runs, trial_id)
        return self.links[trial_id]

    def _result(self, trial, ray_status: str):
        from ..sheet.outcome import row_result

        row = mark_diverged(result_row(trial, ray_status, {}, [], sheet=self.plan), trial, ray_status)
        if row["sheet_row"] == "":  # one of Optuna's own proposals, not a sheet row
            return None
        return row_result(row, self._link(trial.trial_id))

    def _write(self, trials, trial, ray_status: str) -> None:
        from ..sheet.outcome import load_writer, save_writer

        ended = {t.trial_id: (t, t.status) for t in trials if t.status in ("TERMINATED", "ERROR")}
        ended[trial.trial_id] = (trial, ray_status)  # its status may not be updated yet
        results = [r for t, status in ended.values() if (r := self._result(t, status)) is not None]
        if not results:
            return
        try:
            writer = load_writer(self.folder)
            writer.write(results)
            save_writer(self.folder, writer)
        except Exception as err:  # the results stay in results.csv and MLflow; say so, go on
            log.warning("could not write trial %s into its sheet row: %s", trial.trial_id, err)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        """A trial finished or was stopped by the scheduler."""
        self._write(trials, trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        """A trial failed after its retries."""
        self._write(trials, trial, "ERROR")
