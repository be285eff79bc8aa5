"""MLflow runs of an experiment: one parent run, one nested child run per trial.

Child runs are opened from inside the trial (on whatever node Ray placed it) with the experiment's
configured tracking URI, found again by their ``trial_id`` tag when a trial restarts, and never
log a step twice. Everything goes through ``MlflowClient`` (no global active run), so several
trials in one worker process cannot mix up their runs.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

# Metrics logged at every evaluation, named as the runs table and compare view show them.
STEP_METRICS = ("f1", "em", "remaining_pct", "learned_pct", "learned_params", "remaining_params", "loss", "threshold", "epoch")
TRIAL_ID_TAG = "trial_id"
ROLE_TAG = "spa_tune.role"
# Tags of the parent run saying where the experiment's files and Ray Tune trials are.
EXPERIMENT_DIR_TAG = "spa_tune.experiment_dir"
TUNE_PATH_TAG = "spa_tune.tune_path"

# The MLflow UI (3.17) opens an experiment in its GenAI view; its runs table shows no param or
# metric column and folds child runs under their parent until someone picks columns by hand. A view
# saved on the experiment (the tag the UI reads for ``viewStateShareKey``) shows each trial's method,
# density, EM and F1 side by side, sorted by F1, which lists the child runs flat.
RUNS_VIEW_KEY = "spa-tune"
RUNS_VIEW_TAG = f"mlflow.sharedViewState.{RUNS_VIEW_KEY}"
RUNS_VIEW_COLUMNS = ("params.`method`", "params.`pruning_method`", "params.`density`", "metrics.`em`", "metrics.`f1`",
                     "metrics.`remaining_pct`", "metrics.`learned_pct`")
RUNS_VIEW = {
    "selectedColumns": list(RUNS_VIEW_COLUMNS),
    "columnOrder": ["attributes.`Run Name`", *RUNS_VIEW_COLUMNS],
    "columnWidths": {"attributes.`Run Name`": 320, "params.`density`": 170, "metrics.`em`": 180, "metrics.`f1`": 180},
    "orderByKey": "metrics.`f1`",
    "orderByAsc": False,
}


def experiment_page(experiment_id: str) -> str:
    """UI address (after the host) of an experiment's runs table in the view above."""
    return f"#/experiments/{experiment_id}/runs?workflowType=machine_learning&viewStateShareKey={RUNS_VIEW_KEY}"


def default_tracking_uri(experiment_dir: str | Path) -> str:
    """The local store of an experiment: ``sqlite:///<experiment_dir>/mlflow.db``."""
    return f"sqlite:///{Path(experiment_dir).resolve() / 'mlflow.db'}"


def absolute_tracking_uri(tracking_uri: str) -> str:
    """A local store named relative to the working folder, made absolute (trials run elsewhere)."""
    if tracking_uri.startswith("sqlite:///") and not tracking_uri.startswith("sqlite:////"):
        return f"sqlite:///{Path(tracking_uri[len('sqlite:///'):]).resolve()}"
    if tracking_uri.startswith("file:") or "://" not in tracking_uri:
        path = tracking_uri[len("file:"):] if tracking_uri.startswith("file:") else tracking_uri
        return Path(path.removeprefix("//")).resolve().as_uri()
    return tracking_uri


def given_or_default_tracking_uri(given: str | None) -> str:
    """A command's store: ``given``, else ``$MLFLOW_TRACKING_URI``, else ``mlflow.db`` in the working folder."""
    return absolute_tracking_uri(given or os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db")


def sqlite_file(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores)."""
    return Path(tracking_uri[len("sqlite:///"):]) if tracking_uri.startswith("sqlite:///") else None


def store_exists(tracking_uri: str) -> bool:
    """Whether a local store is there (asking MLflow about a missing one would create it); servers: True."""
    if sqlite_file(tracking_uri) is not None:
        return sqlite_file(tracking_uri).is_file()
    if tracking_uri.startswith("file:"):
        return Path(tracking_uri[len("file:"):].removeprefix("//")).is_dir()
    return True


def quiet_mlflow_logs() -> None:
    """MLflow and its database migrations log every table they create; keep warnings only."""
    for name in ("alembic", "mlflow", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)


def is_local_store(tracking_uri: str) -> bool:
    """Whether the URI is a file or SQLite store (artifacts then live beside it)."""
    return tracking_uri.startswith(("sqlite:", "file:")) or "://" not in tracking_uri


def check_tracking_server(tracking_uri: str, timeout: float = 5.0) -> str | None:
    """For an ``http(s)://`` tracking URI, why its server cannot be reached (None when it answers).

    MLflow's client retries an unreachable server for minutes; this asks ``/health`` once.
    """
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(tracking_uri.rstrip("/") + "/health", timeout=timeout):
            return None
    except urllib.error.HTTPError as err:
        return None if err.code < 500 else f"server error {err.code}"
    except (OSError, ValueError) as err:
        return str(getattr(err, "reason", None) or err)


@dataclass(frozen=True)
class ExperimentRuns:
    """Where an experiment's runs live; picklable, so trials can carry it to any node."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str

    def client(self) -> MlflowClient:
        """A client bound to this experiment's tracking URI."""
        return MlflowClient(tracking_uri=self.tracking_uri)


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """Id of the MLflow experiment ``name``, created (with ``artifact_location``) if missing."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location)


def start_parent_run(
    tracking_uri: str, experiment_name: str, run_name: str, params: dict[str, Any], artifact_location: str | None
) -> ExperimentRuns:
    """Create the experiment's parent run with the space's settings as params."""
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = ensure_experiment(client, experiment_name, artifact_location)
    client.set_experiment_tag(experiment_id, RUNS_VIEW_TAG, json.dumps(RUNS_VIEW))
    run = client.create_run(experiment_id, run_name=run_name, tags={ROLE_TAG: "experiment"})
    client.log_batch(run.info.run_id, params=[Param(k, _param_value(v)) for k, v in params.items()])
    return ExperimentRuns(tracking_uri, experiment_id, run.info.run_id)


def _param_value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."


def find_trial_run(runs: ExperimentRuns, trial_id: str) -> str | None:
    """Run id of the child run of ``trial_id``, if one was created before."""
    query = f"tags.{TRIAL_ID_TAG} = '{trial_id}' and tags.`{MLFLOW_PARENT_RUN_ID}` = '{runs.parent_run_id}'"
    found = runs.client().search_runs([runs.experiment_id], filter_string=query, max_results=1)
    return found[0].info.run_id if found else None


UI_ADDRESS = "http://127.0.0.1:5000"  # where `spa-tune ui` serves a local store by default


def run_link(runs: ExperimentRuns, run_id: str) -> str:
    """Browser address of a run: on its tracking server, or on `spa-tune ui` for a local store."""
    base = runs.tracking_uri.rstrip("/") if runs.tracking_uri.startswith(("http://", "https://")) else UI_ADDRESS
    return f"{base}/#/experiments/{runs.experiment_id}/runs/{run_id}"


def trial_run_link(runs: ExperimentRuns, trial_id: str) -> str | None:
    """Browser address of a trial's run, or None if the trial has no run."""
    run_id = find_trial_run(runs, trial_id)
    return run_link(runs, run_id) if run_id else None


class TrialRun:
    """The child run of one trial: params once, metrics per evaluation step, per-layer artifacts."""

    def __init__(self, runs: ExperimentRuns, run_id: str):
        self.runs = runs
        self.run_id = run_id
        self.client = runs.client()
        history = self.client.get_metric_history(run_id, "f1")
        self.last_step = max((m.step for m in history), default=-1)

    @classmethod
    def open(cls, runs: ExperimentRuns, trial_id: str, trial_name: str, params: dict[str, Any], tags: dict[str, str]) -> TrialRun:
        """Find the trial's run (a restarted trial continues it) or create it with params and tags."""
        client = runs.client()
        run_id = find_trial_run(runs, trial_id)
        if run_id is None:
            run = client.create_run(
                runs.experiment_id,
                run_name=trial_name,
                tags={MLFLOW_PARENT_RUN_ID: runs.parent_run_id, TRIAL_ID_TAG: trial_id, MLFLOW_RUN_NAME: trial_name},
            )
            run_id = run.info.run_id
        else:  # a restarted trial: its run goes on, a retried failure's error tag goes
            client.update_run(run_id, status="RUNNING")
            if "error" in client.get_run(run_id).data.tags:
                client.delete_tag(run_id, "error")
        logged = client.get_run(run_id).data.params
        new_params = [Param(k, _param_value(v)) for k, v in params.items() if k not in logged]
        client.log_batch(run_id, params=new_params, tags=[RunTag(k, str(v)) for k, v in {**tags, "status": "running"}.items()])
        return cls(runs, run_id)

    def log_evaluation(self, metrics: dict[str, Any], timestamp_ms: int) -> bool:
        """Log one evaluation's metrics at its step; a step logged before is skipped (returns False)."""
        step = int(metrics["step"])
        if step <= self.last_step:
            return False
        values = [
            Metric(key, float(metrics[key]), timestamp_ms, step)
            for key in STEP_METRICS
            if key in metrics and metrics[key] is not None and math.isfinite(float(metrics[key]))
        ]
        self.client.log_batch(self.run_id, metrics=values)
        self.last_step = step
        return True

    def log_layer_table(self, layers: dict[str, dict[str, float]]) -> None:
        """Per-layer remaining % and learned parameters as ``layers/density.csv``."""
        out = io.StringIO()
        out.write("layer,remaining_pct,learned_params,learned_pct\n")
        for name, row in layers.items():
            out.write(f"{name},{row['remaining_pct']:.4f},{row['learned_params']},{row['learned_pct']:.4f}\n")
        self.client.log_text(self.run_id, out.getvalue(), "layers/density.csv")

    def log_image(self, image, path: str) -> None:
        """Log a Pillow image (or array) as a PNG artifact."""
        self.client.log_image(self.run_id, image, artifact_file=path)

    def log_file(self, path: str | Path, artifact_dir: str | None = None) -> None:
        """Log a local file as an artifact."""
        self.client.log_artifact(self.run_id, str(path), artifact_dir)

    def set_tag(self, key: str, value: str) -> None:
        """Set (or update) one tag of the run."""
        self.client.set_tag(self.run_id, key, value)


def set_trial_outcome(runs: ExperimentRuns, trial_id: str, status: str, tags: dict[str, str] | None = None) -> None:
    """Tag a trial's run with how it ended and close it (FINISHED, or FAILED for a failure)."""
    run_id = find_trial_run(runs, trial_id)
    if run_id is None:
        return
    client = runs.client()
    all_tags = {"status": status, **(tags or {})}
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in all_tags.items()])
    client.set_terminated(run_id, "FAILED" if status == "failed" else "FINISHED")


def finish_parent_run(runs: ExperimentRuns, artifacts: list[Path], metrics: dict[str, float], status: str) -> None:
    """Log the experiment's result files and summary metrics on the parent run and close it.

    ``status`` is FINISHED, or KILLED for an interrupted experiment (``spa-tune resume`` reopens it).
    """
    client = runs.client()
    for path in artifacts:
        client.log_artifact(runs.parent_run_id, str(path))
    if metrics:  # each finish (a resumed experiment finishes again) logs a newer step
        step = len(client.get_metric_history(runs.parent_run_id, "trials"))
        now = int(time.time() * 1000)
        client.log_batch(runs.parent_run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])
    client.set_terminated(runs.parent_run_id, status)
