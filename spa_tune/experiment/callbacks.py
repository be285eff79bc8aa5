"""Driver-side Tune callback: when a trial ends, tag its MLflow run with how it ended."""

from __future__ import annotations

import logging

from ray.tune import Callback

from ..report.results import error_line, trial_status
from ..tracking.mlflow_runs import ExperimentRuns, set_trial_outcome

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
